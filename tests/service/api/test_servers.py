"""Several ``branchnet serve`` processes on one PostgreSQL database share the run queue (leased runs).

Two live servers on one throwaway PostgreSQL database and one data folder take 20 runs, submitted alternately to
each. Mid-way one server is killed (SIGKILL) while its worker is in the middle of a run. The test recounts from
the database and the processes, not from what the servers say about themselves:

- every run ends ``succeeded``, with its results on disk and readable through the surviving server;
- each run was claimed exactly once (``attempts == 1``), except the killed server's runs in flight, which were
  claimed twice: once by the killed server, once by the survivor after the lease expired;
- both servers executed runs (the parent of each worker process seen running, read from ``/proc``);
- the killed server's worker died with it, and the survivor finished its run.
"""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from geodata.region import RegionData
from service.api.local_server import local_server
from service.store.db import Run
from tests.service.api.conftest import LEAFLET, PostgresCluster
from tests.service.api.test_runs import NO_BOOKMOBILE, SLOW, alive, gone, setup_org

API = "/api/v1"
RUNS = 20
SWEEPS = 4
LEASE_S = 3


def ppid(pid: int) -> int | None:
    """The parent of ``pid`` from /proc (None when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_two_servers_share_the_queue_and_finish_a_killed_servers_runs(
    postgres: PostgresCluster, tmp_path: Path, toy_region: RegionData
) -> None:
    from service.api.app import create_app
    from service.config import Settings

    url = postgres.create_database()
    data_dir = tmp_path / "data"
    services = create_app(Settings(data_dir=data_dir, database_url=url, leaflet_dir=LEAFLET)).state.services
    # a few short sweeps first (several seconds each, so a server can be killed mid-run), then quick plans
    sweep = {**copy.deepcopy(SLOW), "pareto": {"steps": 3}}
    keys, (slow, quick) = setup_org(services, toy_region, sweep, NO_BOOKMOBILE)
    settings = {"BRANCHNET_DATA_DIR": str(data_dir), "BRANCHNET_DATABASE_URL": url,
                "BRANCHNET_LEAFLET_DIR": str(LEAFLET), "BRANCHNET_RUN_WORKERS": "1", "BRANCHNET_WORKERS": "1",
                "BRANCHNET_RUN_MAX_ATTEMPTS": "2", "BRANCHNET_RUN_LEASE_S": str(LEASE_S),
                "BRANCHNET_RATE_LIMIT_PER_S": "0"}  # fmt: skip
    planner, viewer = keys.headers("a", "planner"), keys.headers("a", "viewer")

    def runs() -> dict[str, Run]:
        with services.sessions() as s:
            return {r.id: r for r in s.scalars(select(Run))}

    with (
        local_server(settings, cwd=tmp_path, log=tmp_path / "a.log") as a,
        local_server(settings, cwd=tmp_path, log=tmp_path / "b.log") as b,
    ):
        clients = [httpx.Client(base_url=a.url, timeout=30), httpx.Client(base_url=b.url, timeout=30)]
        ids: list[str] = []
        for i in range(RUNS):
            r = clients[i % 2].post(f"{API}/scenarios/{slow if i < SWEEPS else quick}/runs", headers=planner)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        servers = {a.process.pid: "a", b.process.pid: "b"}

        # watch the workers; kill server a while its worker is in the middle of a sweep
        executed_by: dict[str, set[str]] = {}
        victim: tuple[str, int] | None = None
        deadline = time.monotonic() + 240
        while victim is None:
            assert time.monotonic() < deadline, [(r.status, r.stage) for r in runs().values()]
            for run in runs().values():
                if run.status != "running" or not run.worker or ":" not in run.worker:
                    continue
                pid = int(run.worker.rsplit(":", 1)[1])
                owner = servers.get(ppid(pid) or -1)
                if owner is not None:
                    executed_by.setdefault(run.id, set()).add(owner)
                if owner == "a" and run.stage in ("select", "route", "pareto") and run.progress > 12:
                    victim = (run.id, pid)
            time.sleep(0.05)
        lost_run, lost_worker = victim
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(10)
        assert gone(lost_worker), "the killed server's worker died with it"

        # server b finishes everything, the killed server's run included
        deadline = time.monotonic() + 600
        while True:
            state = runs()
            for run in state.values():  # keep recording who executes what
                if run.status == "running" and run.worker and ":" in run.worker:
                    owner = servers.get(ppid(int(run.worker.rsplit(":", 1)[1])) or -1)
                    if owner is not None:
                        executed_by.setdefault(run.id, set()).add(owner)
            if all(r.status in ("succeeded", "failed", "cancelled") for r in state.values()):
                break
            assert time.monotonic() < deadline, {r.id: (r.status, r.stage, r.attempts) for r in state.values()}
            time.sleep(0.2)
        assert alive(b.process.pid)

        final = runs()
        assert len(final) == RUNS
        assert {r.status for r in final.values()} == {"succeeded"}, {r.id: (r.status, r.error) for r in final.values()}
        claimed_twice = {r.id for r in final.values() if r.attempts == 2}
        assert lost_run in claimed_twice
        assert {r.attempts for r in final.values()} <= {1, 2}
        # only runs that were running on server a when it was killed were claimed twice (at most its one worker)
        assert claimed_twice == {lost_run}, {x: executed_by.get(x) for x in claimed_twice}
        assert "b" in executed_by[lost_run]
        assert final[lost_run].error is None and final[lost_run].finished_at is not None
        assert {"a", "b"} <= set().union(*executed_by.values()), executed_by
        # every run's results, through the surviving server
        for run_id in ids:
            plan = clients[1].get(f"{API}/runs/{run_id}/plan", headers=viewer)
            assert plan.status_code == 200, plan.text
            folder = services.files.run_dir(keys.org_id("a"), run_id)
            assert (folder / "plan.json").is_file()
            assert not list(folder.parent.glob(f".{run_id}.*")), "no partial results"
        for client in clients:
            client.close()
    services.engine.dispose()
    postgres.drop_database(url)


def test_serve_with_two_processes_on_sqlite(data_dir: Path, tmp_path: Path, toy_region: RegionData) -> None:
    """``branchnet serve --processes 2`` (BRANCHNET_SERVER_PROCESSES): two serving processes on one port and one
    SQLite database, each with its own dispatcher; every run is executed once."""
    from service.api.app import create_app
    from service.config import Settings

    services = create_app(Settings(data_dir=data_dir, leaflet_dir=LEAFLET)).state.services
    keys, (quick,) = setup_org(services, toy_region, NO_BOOKMOBILE)
    settings = {"BRANCHNET_DATA_DIR": str(data_dir), "BRANCHNET_LEAFLET_DIR": str(LEAFLET),
                "BRANCHNET_SERVER_PROCESSES": "2", "BRANCHNET_RUN_WORKERS": "1", "BRANCHNET_WORKERS": "1"}  # fmt: skip
    with local_server(settings, cwd=tmp_path, log=tmp_path / "serve.log") as server:
        serving = [p for p in Path("/proc").iterdir() if p.name.isdigit() and ppid(int(p.name)) == server.process.pid]
        with httpx.Client(base_url=server.url, timeout=30) as client:
            ids = []
            for _ in range(4):
                r = client.post(f"{API}/scenarios/{quick}/runs", headers=keys.headers("a", "planner"))
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            deadline = time.monotonic() + 300
            while True:
                with services.sessions() as s:
                    state = {r.id: r for r in s.scalars(select(Run))}
                if all(r.status in ("succeeded", "failed") for r in state.values()):
                    break
                assert time.monotonic() < deadline, {r.id: r.status for r in state.values()}
                time.sleep(0.2)
    assert len(serving) >= 2, "two serving processes under the supervisor"
    assert {(r.status, r.attempts) for r in state.values()} == {("succeeded", 1)}
    services.engine.dispose()
