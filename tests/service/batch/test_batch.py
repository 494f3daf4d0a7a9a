"""The nightly batch (``branchnet batch``, :mod:`service.batch`), executed for real on the toy region.

Six scenarios in three regions of two organisations; regions ``toy-1`` and ``toy-2`` share their population file,
``toy-3`` has its own copies. Each claim is checked against the database and the files, not the batch's own
report alone:

- the first batch computes 6, the second 0 (exit 0); an edit recomputes exactly that scenario; a change of the
  shared file re-imports both regions once and recomputes exactly their 4 scenarios, with that reason;
- an injected failure gives exit 1 and keeps every other result; a worker that crashes once costs a retry
  (attempts = 2); a Dask worker killed mid-batch costs a retry, not a result;
- with the lock held a second batch exits 75 at once (file lock; on PostgreSQL also the advisory lock);
- bad input: an unknown scenario id, an unreachable scheduler, a vanished source file, each one line naming it;
- ``GET /batches`` shows each organisation its own scenarios only; batch runs are runs (``trigger: batch``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.batch.run import BatchOptions, file_lock, run_batch
from service.batch.tasks import plan_task, run_child
from service.plans.scenario import example
from service.store.db import Run
from tests.service.api.conftest import AppFactory, Keys, create_keys

API = "/api/v1"
FIELDS = {"area_field": "area_id", "group_field": "municipality", "id_field": "branch_id"}
QUICK: dict[str, Any] = {**example("toy_quick"), "solve": {"time_limit_s": 3, "seed": 0}}
CHEAP: dict[str, Any] = {**copy.deepcopy(QUICK), "name": "cheapest", "objective": "min_cost",
                         "fleet": {"max_vehicles": 0},
                         "standards": {**QUICK["standards"], "coverage_target": 0.8}}  # fmt: skip
CHEAP.pop("budget_share")


# ---------------------------------------------------------------------------------------------------------------
# the world: three regions, six scenarios


class World:
    """Three regions and six scenarios stored through the API, and the batch on the same settings."""

    def __init__(self, client: Any, services: Any, keys: Keys, data_dir: Path) -> None:
        self.client, self.services, self.keys, self.data_dir = client, services, keys, data_dir
        self.scenarios: dict[str, str] = {}  # "<region>/<scenario name>" -> id
        self.orgs: dict[str, str] = {}  # scenario id -> "a" or "b"

    def batch(self, task: Any = plan_task, **options: Any) -> Any:
        return run_batch(self.services.settings, BatchOptions(**{"workers": 2, **options}), task=task)

    def runs(self) -> list[Run]:
        with self.services.sessions() as s:
            return list(s.scalars(select(Run).order_by(Run.created_at, Run.id)))

    def edit(self, key: str, change: dict[str, Any]) -> None:
        sid = self.scenarios[key]
        org = self.orgs[sid]
        current = self.client.get(f"{API}/scenarios/{sid}", headers=self.keys.headers(org, "viewer")).json()
        headers = {**self.keys.headers(org, "planner"), "If-Match": f'"{current["version"]}"'}
        r = self.client.put(f"{API}/scenarios/{sid}", headers=headers, json={**current["body"], **change})
        assert r.status_code == 200, r.text

    def region_of(self, sid: str) -> str:
        return next(key.split("/")[0] for key, value in self.scenarios.items() if value == sid)

    def of_region(self, *regions: str) -> set[str]:
        return {sid for key, sid in self.scenarios.items() if key.split("/")[0] in regions}


@pytest.fixture
def world(make_app: AppFactory, db_url: str, data_dir: Path, toy_sources: dict[str, Path]) -> World:
    client, services = make_app(db_url, workers=1, run_workers=1)
    keys = create_keys(services)
    shared, own = data_dir / "sources" / "shared", data_dir / "sources" / "own"
    for folder in (shared, own):
        shutil.copytree(toy_sources["osm"].parent, folder)
    w = World(client, services, keys, data_dir)
    for region, org, folder in (("toy-1", "a", shared), ("toy-2", "a", shared), ("toy-3", "b", own)):
        paths = {"osm": str(folder / "roads.osm"), "population": str(folder / "areas.geojson"),
                 "branches": str(folder / "branches.geojson")}  # fmt: skip
        r = client.post(f"{API}/regions", headers=keys.headers(org, "admin"), json={"name": region, "paths": paths,
                                                                                    **FIELDS})  # fmt: skip
        assert r.status_code == 201, r.text
        for body in (QUICK, CHEAP):
            named = {**copy.deepcopy(body), "region": region, "name": f"{body['name']}-{region}"}
            r = client.post(f"{API}/scenarios", headers=keys.headers(org, "planner"), json=named)
            assert r.status_code == 201, r.text
            w.scenarios[f"{region}/{body['name']}"] = r.json()["id"]
            w.orgs[r.json()["id"]] = org
    return w


def recomputed(outcome: Any) -> set[str]:
    return {r["scenario_id"] for r in outcome.report["scenarios"] if r["status"] != "skipped"}


def rows(outcome: Any) -> dict[str, dict[str, Any]]:
    return {r["scenario_id"]: r for r in outcome.report["scenarios"]}


def plan_files(w: World) -> dict[str, bytes]:
    """Every stored plan.json by run id (to prove results untouched)."""
    return {run.id: (w.services.files.root / run.result_path / "plan.json").read_bytes()
            for run in w.runs() if run.result_path}  # fmt: skip


def file_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_people(path: Path, extra: int) -> int:
    """Add ``extra`` residents to the most populous area of a census GeoJSON; the new total."""
    data = json.loads(path.read_text())
    top = max(data["features"], key=lambda f: f["properties"]["population"])
    top["properties"]["population"] += extra
    top["properties"]["age_18_64"] += extra  # the age groups must still sum to the population
    path.write_text(json.dumps(data))
    return sum(int(f["properties"]["population"]) for f in data["features"])


# ---------------------------------------------------------------------------------------------------------------
# 1. incremental by content


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_incremental_batches(world: World) -> None:
    w = world
    first = w.batch()
    assert first.exit_code == 0, first.report
    assert first.report["counts"] == {"total": 6, "skipped": 0, "recomputed": 6, "succeeded": 6, "failed": 0,
                                      "retried": 0}  # fmt: skip
    runs = w.runs()
    assert len(runs) == 6 and {r.scenario_id for r in runs} == set(w.scenarios.values())
    assert all(r.status == "succeeded" and r.trigger == "batch" and r.batch_id == first.batch_id for r in runs)
    assert all(r.fingerprint and len(r.fingerprint) == 64 for r in runs)
    assert set(plan_files(w)) == {r.id for r in runs}
    assert all(row["reasons"] == ["never computed with a fingerprint (no succeeded run records its inputs)"]
               for row in first.report["scenarios"])  # fmt: skip
    json_path, html_path = first.paths
    assert json.loads(json_path.read_text())["batch_id"] == first.batch_id
    page = html_path.read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page and "toy-quick-toy-3" in page
    assert page.count('<img src="data:image/png;base64,') == 6  # each recomputed scenario's map, embedded
    assert all(row["stages_s"] and row["worker"] and row["peak_rss_mb"] for row in first.report["scenarios"])

    # batch runs are runs: the API shows them, with their batch
    sid = w.scenarios["toy-3/toy-quick"]
    listed = w.client.get(f"{API}/scenarios/{sid}/runs", headers=w.keys.headers("b", "viewer")).json()
    assert [(r["trigger"], r["batch_id"], r["status"]) for r in listed] == [("batch", first.batch_id, "succeeded")]

    second = w.batch()
    assert second.exit_code == 0 and recomputed(second) == set() and second.report["counts"]["skipped"] == 6
    assert len(w.runs()) == 6

    # an edit recomputes exactly that scenario, with its reason, and the change is reported
    before = plan_files(w)
    w.edit("toy-1/toy-quick", {"budget_share": 0.6})
    third = w.batch()
    edited = w.scenarios["toy-1/toy-quick"]
    assert third.exit_code == 0 and recomputed(third) == {edited}
    assert rows(third)[edited]["reasons"] == ["scenario edited (version 1 -> 2)"]
    (change,) = third.report["changes"]
    assert change["scenario_id"] == edited and change["kpis"]["cost"]["after"] < change["kpis"]["cost"]["before"]
    new_run = rows(third)[edited]["run_id"]
    assert change["links"]["compare"] == f"{API}/compare?runs={change['previous_run']},{new_run}"
    assert all(plan_files(w)[k] == v for k, v in before.items())  # the earlier results are untouched

    # a source file shared by two regions: both re-imported once, exactly their four scenarios recomputed
    shared = w.data_dir / "sources" / "shared" / "areas.geojson"
    total = add_people(shared, 250)
    fourth = w.batch()
    assert fourth.exit_code == 0, fourth.report
    assert recomputed(fourth) == w.of_region("toy-1", "toy-2")
    for sid in w.of_region("toy-1", "toy-2"):
        assert rows(fourth)[sid]["reasons"] == [f"region {w.region_of(sid)}: population changed (re-imported)"]
    assert sorted(r["region"] for r in fourth.report["reimported"]) == ["toy-1", "toy-2"]
    for region in ("toy-1", "toy-2"):  # recount from the stored region and the file itself
        meta = json.loads((w.services.files.regions_dir(w.keys.org_id("a")) / region / "region.json").read_text())
        assert meta["digests"]["population"] == file_sha(shared) and meta["population"] == total
    fifth = w.batch()
    assert recomputed(fifth) == set() and fifth.exit_code == 0

    # the API serves the reports, each organisation its own scenarios only
    b = w.client.get(f"{API}/batches", headers=w.keys.headers("b", "viewer")).json()
    assert [x["id"] for x in b] == [o.batch_id for o in (fifth, fourth, third, second, first)]
    assert [x["counts"]["recomputed"] for x in b] == [0, 0, 0, 0, 2]
    mine = w.client.get(f"{API}/batches/{fourth.batch_id}", headers=w.keys.headers("b", "viewer")).json()
    assert {r["scenario_id"] for r in mine["scenarios"]} == w.of_region("toy-3")
    assert mine["counts"]["recomputed"] == 0 and mine["changes"] == [] and mine["reimported"] == []
    theirs = w.client.get(f"{API}/batches/{fourth.batch_id}", headers=w.keys.headers("a", "viewer")).json()
    assert theirs["counts"]["recomputed"] == 4 and len(theirs["reimported"]) == 2
    page = w.client.get(f"{API}/batches/{third.batch_id}/report.html", headers=w.keys.headers("a", "viewer"))
    assert page.status_code == 200 and "toy-quick-toy-1" in page.text and "toy-3" not in page.text
    assert w.client.get(f"{API}/batches/{third.batch_id}", headers=w.keys.headers("a", "planner")).status_code == 200
    assert w.client.get(f"{API}/batches/nope", headers=w.keys.headers("a", "viewer")).status_code == 404
    assert w.client.get(f"{API}/batches").status_code == 401


# ---------------------------------------------------------------------------------------------------------------
# 2. faults: an injected failure, a crash that happens once, a Dask worker killed mid-batch


def crash_child(run_id: str, db_url: str, data_dir: str, leaflet_dir: str, workers: int, max_attempts: int) -> None:
    """A worker that claims its run, then dies mid-plan (exit code 13), like a crash or an out-of-memory kill."""
    import service.plans.pipeline as pipeline
    from service.runs.worker import execute_run

    def die(*_args: Any, **_kwargs: Any) -> None:
        os._exit(13)

    pipeline.run_plan = die  # type: ignore[assignment]
    execute_run(run_id, db_url, data_dir, leaflet_dir, workers, max_attempts)


class CrashingTask:
    """The batch's plan task, except that the runs of one scenario crash (``times`` times, then run normally)."""

    def __init__(self, scenario_id: str, times: int) -> None:
        self.scenario_id, self.left, self.lock = scenario_id, times, threading.Lock()

    def __call__(self, run_id: str, db_url: str, data_dir: str, leaflet_dir: str, workers: int, max_attempts: int,
                 timeout_s: float) -> dict[str, Any]:  # fmt: skip
        from sqlalchemy import create_engine

        engine = create_engine(db_url)
        with engine.connect() as conn:
            scenario = conn.execute(select(Run.scenario_id).where(Run.id == run_id)).scalar()
        engine.dispose()
        with self.lock:
            crash = scenario == self.scenario_id and self.left > 0
            self.left -= crash
        if not crash:
            return plan_task(run_id, db_url, data_dir, leaflet_dir, workers, max_attempts, timeout_s)
        args = (run_id, db_url, data_dir, leaflet_dir, workers, max_attempts)
        return {"run_id": run_id, **run_child(f"{__name__}:crash_child", args, timeout_s)}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failure_costs_only_its_scenario_and_a_crash_is_retried(world: World) -> None:
    w = world
    x, y, z = (w.scenarios[k] for k in ("toy-1/toy-quick", "toy-2/cheapest", "toy-3/toy-quick"))
    failing = w.batch(scenario_ids=(x, y, z), task=CrashingTask(x, times=99), retries=1)
    assert failing.exit_code == 1, failing.report
    got = rows(failing)
    assert got[x]["status"] == "failed" and got[x]["attempts"] == 2 and got[x]["retried"]
    assert got[x]["error"] == "the worker exited with code 13"
    assert got[y]["status"] == got[z]["status"] == "succeeded"
    runs = {r.scenario_id: r for r in w.runs()}
    assert runs[x].status == "failed" and runs[x].error == "the worker exited with code 13" and not runs[x].result_path
    assert runs[y].status == runs[z].status == "succeeded"
    saved = plan_files(w)
    assert set(saved) == {runs[y].id, runs[z].id}
    assert failing.report["counts"] | {} == {"total": 3, "skipped": 0, "recomputed": 3, "succeeded": 2, "failed": 1,
                                             "retried": 1}  # fmt: skip

    once = w.batch(scenario_ids=(x, y, z), task=CrashingTask(x, times=1), retries=1)
    assert once.exit_code == 0, once.report
    got = rows(once)
    assert got[x]["status"] == "succeeded" and got[x]["attempts"] == 2 and got[x]["retried"]
    assert got[y]["status"] == got[z]["status"] == "skipped"
    assert all(plan_files(w)[k] == v for k, v in saved.items())
    rerun = next(r for r in w.runs() if r.id == got[x]["run_id"])
    assert rerun.status == "succeeded" and rerun.attempts == 2 and rerun.error is None

    # a failure on the scenario's own input is final: no retry, the message names what is wrong
    with w.services.sessions() as s:
        from service.store.db import Scenario

        row = s.get(Scenario, y)
        row.body = {**row.body, "forced": {"keep": ["no-such-branch"]}}
        row.version += 1
        s.commit()
    final = w.batch(scenario_ids=(y,))
    assert final.exit_code == 1 and rows(final)[y]["attempts"] == 1 and not rows(final)[y]["retried"]
    assert "no-such-branch" in rows(final)[y]["error"]


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_killed_dask_worker_costs_a_retry_not_a_result(world: World) -> None:
    w = world
    x, y = w.scenarios["toy-1/toy-quick"], w.scenarios["toy-3/cheapest"]
    killed: list[int] = []

    def killer() -> None:  # kill the Dask worker process that runs x's first attempt, mid-plan
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            with w.services.sessions() as s:
                run = s.scalar(select(Run).where(Run.scenario_id == x, Run.status == "running"))
                if run is not None and run.attempts == 1 and run.stage not in ("queued", "starting"):
                    worker = _ppid(int(str(run.worker).rsplit(":", 1)[1]))  # the child's parent: the Dask worker
                    os.kill(worker, signal.SIGKILL)
                    killed.append(worker)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    outcome = w.batch(scenario_ids=(x, y), executor="dask", workers=2)
    thread.join(5)
    assert killed, "the test never saw the run to kill its worker"
    assert outcome.exit_code == 0, outcome.report
    got = rows(outcome)
    assert got[x]["status"] == "succeeded" and got[x]["attempts"] == 2 and got[x]["retried"]
    assert got[y]["status"] == "succeeded" and got[y]["attempts"] == 1
    assert outcome.report["executor"]["executor"] == "dask" and "dashboard" in outcome.report["executor"]
    assert len(plan_files(w)) == 2


# ---------------------------------------------------------------------------------------------------------------
# 3. the lock


def test_a_second_batch_exits_75_at_once(tmp_path: Path) -> None:
    """A second batch gives up at once instead of waiting for the lock.

    The lock stays held throughout, so a batch that waited for it would never return. The command's time is
    compared with `branchnet --help` measured in the same run, so a slow start of Python on a busy machine is not
    mistaken for waiting (a timed bound of its own failed in CI on a busy machine).
    """
    from service.config import Settings
    from service.errors import LockedError

    data = tmp_path / "data"
    raised: list[BaseException] = []

    def second_batch() -> None:
        try:
            run_batch(Settings(data_dir=data), BatchOptions())
        except BaseException as error:  # handed to the test's thread
            raised.append(error)

    branchnet = str(Path(sys.executable).parent / "branchnet")
    env = {**os.environ, "BRANCHNET_DATA_DIR": str(data)}
    batch_times, help_times = [], []
    with file_lock(data):
        thread = threading.Thread(target=second_batch, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "run_batch waited for the lock"
        assert len(raised) == 1 and isinstance(raised[0], LockedError), raised
        assert "another batch is running" in str(raised[0])
        for _ in range(3):  # interleaved, the best of three each
            started = time.perf_counter()
            subprocess.run([branchnet, "--help"], env=env, capture_output=True, check=True, timeout=60)
            help_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            cli = subprocess.run([branchnet, "batch"], env=env, capture_output=True, text=True, timeout=60)
            batch_times.append(time.perf_counter() - started)
            assert cli.returncode == 75, cli.stderr
            assert cli.stderr.strip() == f"error: another batch is running (lock {data / 'batch.lock'} is held); try " \
                                         "again when it ends"  # fmt: skip
    waited = min(batch_times) - min(help_times)
    assert waited < 2.0, f"batch took {waited:.2f} s longer than --help to give up: {batch_times} vs {help_times}"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_on_postgresql_the_advisory_lock_spans_servers(world: World, tmp_path: Path) -> None:
    """Two servers share the database but not the data folder: the advisory lock keeps their batches apart."""
    from sqlalchemy import create_engine, text

    from service.batch.run import ADVISORY_KEY
    from service.config import Settings
    from service.errors import LockedError

    w = world
    other = Settings(data_dir=tmp_path / "other-server", database_url=w.services.settings.db_url)
    engine = create_engine(w.services.settings.db_url)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
        started = time.perf_counter()
        with pytest.raises(LockedError, match="advisory lock"):
            run_batch(other, BatchOptions())
        # pg_try_advisory_lock does not wait; the margin is for a busy machine (a waiting batch never returns)
        assert time.perf_counter() - started < 15.0
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
    engine.dispose()
    sid = w.scenarios["toy-3/cheapest"]
    outcome = w.batch(scenario_ids=(sid,))
    assert outcome.exit_code == 0 and rows(outcome)[sid]["status"] == "succeeded"
    engine = create_engine(w.services.settings.db_url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM result_features WHERE run_id = :r"),
                         {"r": rows(outcome)[sid]["run_id"]}).scalar()  # fmt: skip
    engine.dispose()
    assert n and n > 0  # the batch run's layers are in PostGIS, like any run's


# ---------------------------------------------------------------------------------------------------------------
# 4. the API's runs and the batch's share the runs table without taking each other's


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_api_executor_never_takes_batch_runs(world: World, make_app: AppFactory) -> None:
    w = world
    x, y = w.scenarios["toy-1/toy-quick"], w.scenarios["toy-1/cheapest"]
    with w.services.sessions() as s:
        queued = Run(org_id=w.keys.org_id("a"), scenario_id=x, body={}, status="queued", stage="queued",
                     trigger="batch", batch_id="b" * 32)  # fmt: skip
        running = Run(org_id=w.keys.org_id("a"), scenario_id=x, body={}, status="running", stage="solve",
                      trigger="batch", batch_id="b" * 32, attempts=1)  # fmt: skip
        s.add_all([queued, running])
        s.commit()
        ids = (queued.id, running.id)
    r = w.client.post(f"{API}/scenarios/{y}/runs", headers=w.keys.headers("a", "planner"))
    assert r.status_code == 202
    api_run = r.json()["id"]
    deadline = time.monotonic() + 90
    while (run := next(x for x in w.runs() if x.id == api_run)).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert run.status == "succeeded" and run.trigger == "api" and run.fingerprint  # the API's run records its inputs
    make_app(w.services.settings.db_url, workers=1, run_workers=1)  # a restarted server recovers only its own runs
    by_id = {r.id: r for r in w.runs()}
    assert (by_id[ids[0]].status, by_id[ids[0]].attempts) == ("queued", 0)
    assert (by_id[ids[1]].status, by_id[ids[1]].attempts) == ("running", 1)
    # and the batch skips what the API has just computed
    dry = w.batch(scenario_ids=(y,), dry_run=True)
    assert rows(dry)[y]["status"] == "skipped" and rows(dry)[y]["reasons"] == [f"unchanged since run {api_run}"]
    assert dry.batch_id is None and dry.exit_code == 0


# ---------------------------------------------------------------------------------------------------------------
# 5. bad input: one line naming it, the right exit code, nothing else touched


def _cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRANCHNET_DATA_DIR": str(data_dir)}
    return subprocess.run([_branchnet(), "batch", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_input(world: World) -> None:
    from service.api.local_server import free_port
    from service.store.db import Batch

    w = world
    before_regions = {p: p.read_bytes() for p in w.services.files.root.rglob("region.json")}

    out = _cli(w.data_dir, "--scenario", "nope")
    assert out.returncode == 2 and _error_line(out.stderr) == "error: --scenario: no scenario with id nope"
    out = _cli(w.data_dir, "--org", "nobody")
    assert out.returncode == 2 and "--org 'nobody': no such organisation" in _error_line(out.stderr)

    address = f"tcp://127.0.0.1:{free_port()}"
    out = _cli(w.data_dir, "--executor", "dask", "--scheduler", address)
    assert out.returncode == 2 and f"--scheduler {address}: cannot reach the Dask scheduler" in _error_line(out.stderr)

    # a Dask worker that cannot see the data folder (it runs in its own mount namespace, with an empty folder there)
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        from tests.service.api.conftest import unavailable

        unavailable("`unshare -m` is not permitted here, so no worker can be given a different view of the files")
    port = free_port()
    dask = str(Path(sys.executable).parent / "dask")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", ":0"], stderr=subprocess.DEVNULL)  # fmt: skip
    script = f"mount -t tmpfs tmpfs {w.data_dir} && exec {dask} worker tcp://127.0.0.1:{port} --nthreads 1 --name blind"
    blind = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stderr=subprocess.DEVNULL)
    try:
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="30s") as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(1, timeout=60)
        out = _cli(w.data_dir, "--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}")
    finally:
        for proc in (blind, scheduler):
            proc.terminate()
            proc.wait(20)
    assert out.returncode == 2, out.stderr
    line = _error_line(out.stderr)
    assert f"the data folder {w.data_dir} is not visible to Dask worker(s)" in line and "shared mount" in line

    # a vanished source file: its region's scenarios fail with its name, nothing runs, exit 3
    own = w.data_dir / "sources" / "own" / "areas.geojson"
    own.rename(own.with_suffix(".moved"))
    vanished = w.batch(org="org-b")
    own.with_suffix(".moved").rename(own)
    assert vanished.exit_code == 3
    for row in vanished.report["scenarios"]:
        assert row["status"] == "failed"
        assert row["error"] == f"region 'toy-3': its population source file {own} has vanished; restore it or " \
                               "re-import the region"  # fmt: skip

    # a changed source file that is now invalid: the re-import fails naming the file and row; the region stays
    shared = w.data_dir / "sources" / "shared" / "areas.geojson"
    data = json.loads(shared.read_text())
    data["features"][0]["properties"]["population"] += 1000
    shared.write_text(json.dumps(data))
    broken = w.batch(org="org-a")
    assert broken.exit_code == 3
    assert all(r["status"] == "failed" and r["error"].startswith(f"re-import failed: {shared}: row ")
               for r in broken.report["scenarios"])  # fmt: skip
    assert {p: p.read_bytes() for p in w.services.files.root.rglob("region.json")} == before_regions
    assert w.runs() == []  # no run was created, none touched
    with w.services.sessions() as s:
        assert [b.exit_code for b in s.scalars(select(Batch).order_by(Batch.started_at))] == [3, 3]


# ---------------------------------------------------------------------------------------------------------------
# 6. scheduling: the contrib files hold a command line that works


def test_the_scheduling_files_run_a_valid_batch_command(tmp_path: Path) -> None:
    import configparser
    import shlex

    contrib = Path(__file__).resolve().parents[3] / "contrib"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((contrib / "branchnet-batch.service").read_text().replace("\\\n", " "))
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read_string((contrib / "branchnet-batch.timer").read_text())
    assert unit["Service"]["Type"] == "oneshot" and unit["Service"]["TimeoutStartSec"]  # oneshot's runtime cap
    assert "75" in unit["Service"]["SuccessExitStatus"].split()
    assert timer["Timer"]["Persistent"] == "true" and timer["Timer"]["OnCalendar"]
    cron = next(line for line in (contrib / "branchnet-batch.cron").read_text().splitlines()
                if line[:1].isdigit())  # fmt: skip
    commands = [shlex.split(unit["Service"]["ExecStart"]), shlex.split(cron.split("&&", 1)[1].split(">>")[0])]
    for command in commands:
        args = command[command.index("batch") + 1 :]
        args = [a.replace("/var/lib/branchnet", str(tmp_path)) for a in args]
        out = _cli(tmp_path, *args, "--dry-run")
        assert out.returncode == 0, (command, out.stderr)
        assert "batch: 0 scenario(s)" in out.stderr
    if shutil.which("systemd-analyze"):  # the units as systemd reads them, with this checkout's command and user
        for name in ("branchnet-batch.service", "branchnet-batch.timer"):
            text = (contrib / name).read_text().replace("/opt/branchnet/.venv/bin/branchnet", _branchnet())
            (tmp_path / name).write_text(text.replace("=branchnet\n", "=root\n"))
        out = subprocess.run(["systemd-analyze", "verify", *(str(p) for p in sorted(tmp_path.glob("branchnet-*")))],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def _branchnet() -> str:
    return str(Path(sys.executable).parent / "branchnet")
