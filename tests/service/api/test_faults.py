"""Faults: a worker killed at every stage of a run, the database restarting mid-run, the disk filling while results
are written, and the server killed during an upload.

After each: no half-written result (no run folder of a run that did not succeed, no temporary ``.<run>.*``
folder), no run left ``running``, a clear reason on every failed run, and the service back without manual repair.
The checks recount from the database rows and the file store, and compare the results of recovered runs with
those of an undisturbed run of the same scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from geodata.region import RegionData
from service.api.local_server import local_server
from service.store.db import Region, Run
from tests.service.api.conftest import LEAFLET, AppFactory, PostgresCluster, create_keys, unavailable
from tests.service.api.faults import PLAN_ENV, faulty_main
from tests.service.api.test_regions_scenarios import upload
from tests.service.api.test_runs import QUICK, SLOW, finished, setup_org, submit, succeeded, wait

API = "/api/v1"


def no_partial_results(services: Any, org_id: str, run_id: str, *, kept: bool) -> None:
    folder = services.files.run_dir(org_id, run_id)
    assert folder.is_dir() == kept, f"run {run_id}: results {'missing' if kept else 'left behind'}"
    assert not list(folder.parent.glob(f".{run_id}.*")), f"run {run_id}: a temporary folder is left"
    if kept:
        assert (folder / "plan.json").is_file() and (folder / "map.html").is_file()


def decisions(services: Any, org_id: str, run_id: str) -> Any:
    plan = json.loads((services.files.run_dir(org_id, run_id) / "plan.json").read_text())
    return plan["decisions"], plan["costs"]["plan"]["total"]


def statuses(services: Any) -> dict[str, str]:
    with services.sessions() as s:
        return {r.id: r.status for r in s.scalars(select(Run))}


# ---------------------------------------------------------------------------------------------------------------
# 1. a worker killed at every stage


def test_worker_killed_at_every_stage(
    make_app: AppFactory, toy_region: RegionData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.runs.executor import LocalExecutor

    plan_file = tmp_path / "faults.json"
    monkeypatch.setenv(PLAN_ENV, str(plan_file))
    client, services = make_app(run_workers=2, workers=1, run_max_attempts=2)
    services.executor.stop()
    services.executor = LocalExecutor(services, target=faulty_main)
    services.executor.start()
    keys, (quick,) = setup_org(services, toy_region, QUICK)
    org = keys.org_id("a")

    # an undisturbed run: its stages, in the order the worker reported them, and its results
    clean = submit(client, keys, quick)
    assert succeeded(client, keys, clean, timeout=120)["attempts"] == 1
    seen = plan_file.with_name(f"{plan_file.name}.stages.{clean}").read_text().splitlines()
    stages = [x for x in dict.fromkeys(seen) if not x.startswith("attempt ")]
    assert {"loading region", "write results"} <= set(stages), stages
    points = [*stages, "mid-write", "final write"]

    services.executor.stop()  # queue every faulty run before any worker can start, then plan the faults
    runs = {point: submit(client, keys, quick) for point in points}
    plan_file.write_text(json.dumps({run_id: {"at": point} for point, run_id in runs.items()}))
    services.executor = LocalExecutor(services, target=faulty_main)
    services.executor.start()

    expected = decisions(services, org, clean)
    for point, run_id in runs.items():
        run = succeeded(client, keys, run_id, timeout=240)
        assert run["attempts"] == 2 and run["error"] is None, (point, run)
        reported = plan_file.with_name(f"{plan_file.name}.stages.{run_id}").read_text().splitlines()
        assert [x for x in reported if x.startswith("attempt ")] == ["attempt 1", "attempt 2"], (point, reported)
        assert point in reported[: reported.index("attempt 2")] or point in ("mid-write", "final write")
        no_partial_results(services, org, run_id, kept=True)
        assert decisions(services, org, run_id) == expected, f"killed at {point!r}: other results"
    assert set(statuses(services).values()) == {"succeeded"}


def test_server_keeps_the_lease_of_a_silent_worker(
    make_app: AppFactory, toy_region: RegionData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot beat for itself (a native solve holding the GIL) keeps its run: its server renews the
    lease while the worker lives, so a 2 s lease survives 6 s of silence and the run ends in its first attempt."""
    from service.runs.executor import LocalExecutor

    plan_file = tmp_path / "faults.json"
    monkeypatch.setenv(PLAN_ENV, str(plan_file))
    client, services = make_app(run_workers=1, workers=1, run_max_attempts=2, run_lease_s=2)
    services.executor.stop()
    keys, (quick,) = setup_org(services, toy_region, QUICK)
    run_id = submit(client, keys, quick)
    plan_file.write_text(json.dumps({run_id: {"at": "silent"}}))
    services.executor = LocalExecutor(services, target=faulty_main)
    services.executor.start()
    run = succeeded(client, keys, run_id, timeout=120)
    assert run["attempts"] == 1 and run["error"] is None, run
    assert "solve" in plan_file.with_name(f"{plan_file.name}.stages.{run_id}").read_text().splitlines()


# ---------------------------------------------------------------------------------------------------------------
# 2. the database restarting mid-run


def test_database_restart_mid_run(make_app: AppFactory, postgres: PostgresCluster, toy_region: RegionData) -> None:
    url = postgres.create_database()
    client, services = make_app(url, run_workers=1, workers=1)
    keys, (slow, quick) = setup_org(services, toy_region, SLOW, QUICK)
    viewer = keys.headers("a", "viewer")
    run_id = submit(client, keys, slow)
    wait(client, keys, run_id, lambda r: r["stage"] == "pareto")

    postgres.stop()
    try:
        health = client.get("/healthz")
        assert health.status_code == 503 and "database" in health.json()["detail"], health.text
        r = client.get(f"{API}/runs/{run_id}", headers=viewer)
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        time.sleep(3.0)  # the worker keeps planning; its progress and heartbeats fail meanwhile
    finally:
        postgres.resume()

    run = succeeded(client, keys, run_id, timeout=180)
    assert run["attempts"] == 1 and run["error"] is None  # the same execution finished it
    no_partial_results(services, keys.org_id("a"), run_id, kept=True)
    assert client.get(f"{API}/runs/{run_id}/plan", headers=viewer).status_code == 200
    after = submit(client, keys, quick)  # and the service takes new work without repair
    succeeded(client, keys, after, timeout=120)
    assert client.get("/healthz").status_code == 200
    services.engine.dispose()
    postgres.drop_database(url)


# ---------------------------------------------------------------------------------------------------------------
# 3. the disk filling while results are written


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` at ``path`` (unmounted at the end)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        unavailable(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill ``disk`` until ``leave_bytes`` are free; the filler file."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    with filler.open("wb") as f:
        f.write(b"\0" * max(stat.f_bavail * stat.f_frsize - leave_bytes, 0))
    return filler


def test_disk_full_while_results_are_written(make_app: AppFactory, toy_region: RegionData, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", 64) as disk:
        db = f"sqlite:///{tmp_path / 'branchnet.db'}"  # the database on another disk: only the file store fills
        client, services = make_app(db, data_dir=disk, run_workers=1, workers=1)
        keys, (quick,) = setup_org(services, toy_region, QUICK)
        org = keys.org_id("a")
        filler = fill(disk, 64 * 1024)  # the region is stored; the results (several MB) cannot be

        failed = wait(client, keys, submit(client, keys, quick), finished, timeout=120)
        assert failed["status"] == "failed" and failed["attempts"] == 1, failed
        assert str(failed["error"]).startswith("the disk is full: could not write "), failed["error"]
        assert "No space left on device" in failed["error"] and "free some space" in failed["error"]
        no_partial_results(services, org, failed["id"], kept=False)
        r = client.get(f"{API}/runs/{failed['id']}/plan", headers=keys.headers("a", "viewer"))
        assert r.status_code == 409 and "disk is full" in r.json()["detail"]

        filler.unlink()  # space again: the same scenario succeeds, nothing to repair
        again = submit(client, keys, quick)
        succeeded(client, keys, again, timeout=120)
        no_partial_results(services, org, again, kept=True)
        assert statuses(services) == {failed["id"]: "failed", again: "succeeded"}
        client.app.state.services.executor.stop()  # before the disk goes away


# ---------------------------------------------------------------------------------------------------------------
# 4. the server killed during an upload


def multipart(sources: dict[str, Path]) -> tuple[bytes, dict[str, str]]:
    """The body and content type of the toy region's upload (as the API tests send it)."""
    request = httpx.Request("POST", "http://x/", files=upload(sources), data={"name": "toy"})
    return request.read(), {"content-type": request.headers["content-type"]}


def test_server_killed_during_an_upload(data_dir: Path, tmp_path: Path, toy_sources: dict[str, Path]) -> None:
    from service.api.app import create_app
    from service.config import Settings

    services = create_app(Settings(data_dir=data_dir, leaflet_dir=LEAFLET)).state.services
    keys = create_keys(services)
    admin = keys.headers("a", "admin")
    body, headers = multipart(toy_sources)
    settings = {"BRANCHNET_DATA_DIR": str(data_dir), "BRANCHNET_LEAFLET_DIR": str(LEAFLET)}
    uploads = services.files.root / "uploads"

    with local_server(settings, cwd=tmp_path, log=tmp_path / "first.log") as server:
        sent = threading.Event()

        def slowly() -> Iterator[bytes]:
            chunk = 16 * 1024
            for i in range(0, len(body), chunk):
                yield body[i : i + chunk]
                if i > len(body) // 2:
                    sent.set()
                    time.sleep(30)  # the server is killed meanwhile
                time.sleep(0.01)

        def kill_when_half_sent() -> None:
            sent.wait(60)
            time.sleep(0.5)  # let the server write what it received
            server.process.send_signal(signal.SIGKILL)

        killer = threading.Thread(target=kill_when_half_sent)
        killer.start()
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{server.url}{API}/regions", content=slowly(), headers={**admin, **headers}, timeout=60)
        killer.join()
        server.process.wait(10)
    partial_files = [p for p in uploads.rglob("*") if p.is_file()]
    assert partial_files, "the kill came after the upload had started writing"
    assert sum(p.stat().st_size for p in partial_files) < len(body)

    with local_server(settings, cwd=tmp_path, log=tmp_path / "second.log") as server:
        assert not [p for p in uploads.rglob("*")], "the new server removed the interrupted upload"
        with services.sessions() as s:
            assert s.scalars(select(Region)).all() == []
        r = httpx.get(f"{server.url}{API}/regions", headers=admin)
        assert r.status_code == 200 and r.json() == []
        r = httpx.post(f"{server.url}{API}/regions", content=body, headers={**admin, **headers}, timeout=120)
        assert r.status_code == 201, r.text
        assert [x["name"] for x in httpx.get(f"{server.url}{API}/regions", headers=admin).json()] == ["toy"]
    assert not [p for p in uploads.rglob("*") if p.is_file()]
    services.engine.dispose()
