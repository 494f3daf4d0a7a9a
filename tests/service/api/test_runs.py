"""Runs through the HTTP API: queue, progress, cancel, results, compare, worker loss and the Dask executor.

Every run is executed for real (the toy region, short time limits) in a worker process of the app's executor, or
on a Dask ``LocalCluster``. The apps come from the shared fixtures of ``conftest.py`` (``make_app``, ``db_url``).
"""

from __future__ import annotations

import contextlib
import copy
import csv as csvlib
import dataclasses
import io
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
from sqlalchemy import select, text, update

from geodata.region import RegionData
from service.api.local_server import local_server
from service.plans.scenario import example
from service.store.db import Region, Run, Scenario
from service.store.regions import save_region
from tests.service.api.conftest import LEAFLET, AppFactory, Keys, create_keys

API = "/api/v1"

# a quick plan with a bookmobile (so a timetable), on the toy region
QUICK: dict[str, Any] = example(
    "toy_quick",
    projection={"today_year": 2025, "target_year": 2035,
                "multipliers": {"age_0_17": 0.9, "age_18_64": 1.0, "age_65_plus": 1.3}},
)  # fmt: skip
# the cheapest network without a bookmobile: no timetable
NO_BOOKMOBILE = {**copy.deepcopy(QUICK), "name": "toy-no-bookmobile", "objective": "min_cost",
                 "fleet": {"max_vehicles": 0}, "standards": {**QUICK["standards"], "coverage_target": 0.8}}  # fmt: skip
NO_BOOKMOBILE.pop("budget_share")
# a sweep of budgets: several seconds, with progress reported after each budget
SLOW = {**copy.deepcopy(QUICK), "name": "toy-sweep", "objective": "pareto", "pareto": {"steps": 8}}
SLOW.pop("budget_share")


# ---------------------------------------------------------------------------------------------------------------
# helpers


def add_region(services: Any, org_id: str, region: RegionData) -> str:
    """Save the region into the organisation's folder of the file store and insert its row."""
    folder = save_region(region, services.files.regions_dir(org_id))
    with services.sessions() as s:
        row = Region(org_id=org_id, name=region.name, path=folder.relative_to(services.files.root).as_posix(),
                     summary={})  # fmt: skip
        s.add(row)
        s.commit()
        return row.id


def add_scenario(services: Any, org_id: str, region_id: str, body: dict[str, Any]) -> str:
    with services.sessions() as s:
        row = Scenario(org_id=org_id, region_id=region_id, name=body.get("name", "x"), body=body, version=1)
        s.add(row)
        s.commit()
        return row.id


def setup_org(services: Any, region: RegionData, *bodies: dict[str, Any]) -> tuple[Keys, list[str]]:
    """Keys of organisations a and b, the toy region in a's (and b's) store, and a's scenarios."""
    keys = create_keys(services)
    region_a = add_region(services, keys.org_id("a"), region)
    add_region(services, keys.org_id("b"), region)
    return keys, [add_scenario(services, keys.org_id("a"), region_a, b) for b in bodies]


def submit(client: Any, keys: Keys, scenario_id: str) -> str:
    r = client.post(f"{API}/scenarios/{scenario_id}/runs", headers=keys.headers("a", "planner"))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    assert r.headers["location"] == f"{API}/runs/{r.json()['id']}"
    return str(r.json()["id"])


def wait(
    client: Any, keys: Keys, run_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> dict[str, Any]:
    """Poll GET /runs/{id} until ``until(run)`` holds; fail with the last state after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{API}/runs/{run_id}", headers=keys.headers("a", "viewer"))
        assert r.status_code == 200, r.text
        run: dict[str, Any] = r.json()
        if until(run):
            return run
        assert time.monotonic() < deadline, f"timed out waiting for run {run_id}: {run}"
        time.sleep(0.1)


def finished(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed", "cancelled")


def succeeded(client: Any, keys: Keys, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    run = wait(client, keys, run_id, finished, timeout)
    assert run["status"] == "succeeded", f"run {run_id} ended {run['status']}: {run.get('error')!r} ({run})"
    return run


def pid_of(run: dict[str, Any]) -> int:
    return int(str(run["worker"]).rsplit(":", 1)[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError, ValueError):  # a killed child not yet reaped is a zombie: not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    return True


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def row(services: Any, run_id: str) -> Run:
    with services.sessions() as s:
        run: Run | None = s.get(Run, run_id)
        assert run is not None
        return run


# ---------------------------------------------------------------------------------------------------------------
# 1. a run end to end, results and compare, on SQLite and on PostgreSQL+PostGIS


def test_runs_end_to_end(db_url: str, make_app: AppFactory, toy_region: RegionData) -> None:
    # db_url before make_app: the app stops before its database is dropped
    client, services = make_app(db_url, run_workers=2, workers=1)
    keys, (quick, plain) = setup_org(services, toy_region, QUICK, NO_BOOKMOBILE)
    viewer, other = keys.headers("a", "viewer"), keys.headers("b", "admin")

    assert client.post(f"{API}/scenarios/{quick}/runs", headers=viewer).status_code == 403
    assert client.post(f"{API}/scenarios/{quick}/runs", headers=other).status_code == 404
    a, b = submit(client, keys, quick), submit(client, keys, plain)

    run = succeeded(client, keys, a)
    assert run["progress"] == 100 and run["attempts"] == 1 and run["error"] is None
    assert run["started_at"] and run["finished_at"] and run["worker"]
    s = run["summary"]
    assert s["cost"] > 0 and s["branches_kept"] <= s["branches_total"] and s["solver_status"]
    assert 0 <= s["covered_share"]["2025"] <= 1 and s["bookmobile_stops"] > 0

    plan = client.get(f"{API}/runs/{a}/plan", headers=viewer)
    assert plan.status_code == 200 and plan.headers["content-type"] == "application/json"
    assert plan.json()["scenario"] == "toy-quick" and plan.json()["costs"]["plan"]["total"] == s["cost"]
    assert client.get(f"{API}/runs/{a}/plan", headers=viewer).content == plan.content  # cached bytes
    csv = client.get(f"{API}/runs/{a}/timetable.csv", headers=viewer)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].count(",") >= 3 and len(csv.text.splitlines()) > 1
    # one calendar per vehicle; its events recounted from the timetable's rows of that vehicle
    cals = client.get(f"{API}/runs/{a}/calendars", headers=viewer).json()["calendars"]
    rows = list(csvlib.DictReader(io.StringIO(csv.text)))
    assert len(cals) == len({r["mobile"] for r in rows}) >= 1
    events = 0
    for name in cals:
        ics = client.get(f"{API}/runs/{a}/calendars/{name}", headers=viewer)
        assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
        assert ics.text.startswith("BEGIN:VCALENDAR")
        events += ics.text.count("BEGIN:VEVENT")
    assert events == len(rows)
    for bad in ("nope.ics", "..%2Fplan.json", "plan.json"):
        assert client.get(f"{API}/runs/{a}/calendars/{bad}", headers=viewer).status_code == 404
    gpkg = client.get(f"{API}/runs/{a}/layers.gpkg", headers=viewer)
    assert gpkg.status_code == 200 and gpkg.content[:16] == b"SQLite format 3\x00"
    stored = services.files.root / row(services, a).result_path
    layers = [str(n) for n, _ in pyogrio.list_layers(stored / "layers.gpkg")]
    assert {"branches", "demand", "bookmobile_stops"} <= set(layers)
    geo = client.get(f"{API}/runs/{a}/layers/branches.geojson", headers=viewer)
    assert geo.status_code == 200 and geo.headers["content-type"] == "application/geo+json"
    assert geo.json()["type"] == "FeatureCollection" and len(geo.json()["features"]) == len(toy_region.branches)
    assert {"decision", "branch_id"} <= set(geo.json()["features"][0]["properties"])
    unknown = client.get(f"{API}/runs/{a}/layers/nope.geojson", headers=viewer)
    assert unknown.status_code == 404 and "branches" in unknown.json()["detail"]
    assert client.get(f"{API}/runs/{a}/layers/..%2Fplan.geojson", headers=viewer).status_code == 404
    page = client.get(f"{API}/runs/{a}/map", headers=viewer)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower() and "toy-quick" in page.text

    succeeded(client, keys, b)
    no_tt = client.get(f"{API}/runs/{b}/timetable.csv", headers=viewer)
    assert no_tt.status_code == 404 and "timetable" in no_tt.json()["detail"]

    listed = client.get(f"{API}/scenarios/{quick}/runs", headers=viewer)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [a]
    assert listed.json()[0]["links"]["plan"] == f"{API}/runs/{a}/plan"

    cmp = client.get(f"{API}/compare", params={"runs": f"{a},{b}"}, headers=viewer)
    assert cmp.status_code == 200, cmp.text
    body = cmp.json()
    assert [r["id"] for r in body["runs"]] == [a, b] and body["runs"][0]["summary"]["cost"] == s["cost"]
    (pair,) = body["comparisons"]
    assert pair["a"]["run_id"] == a and pair["b"]["run_id"] == b and pair["years"] == ["2025", "2035"]
    total = next(r for r in pair["costs"] if r["key"] == "total")
    assert total["diff"] == pytest.approx(total["b"] - total["a"])
    assert client.get(f"{API}/compare", params={"runs": a}, headers=viewer).status_code == 422

    # organisation isolation: another organisation's ids answer 404, like missing ones
    for path in (f"/runs/{a}", f"/runs/{a}/plan", f"/runs/{a}/map", f"/runs/{a}/layers/branches.geojson",
                 f"/scenarios/{quick}/runs", "/runs/missing"):  # fmt: skip
        assert client.get(API + path, headers=other).status_code == 404, path
    assert client.delete(f"{API}/runs/{a}", headers=keys.headers("b", "planner")).status_code == 404
    assert client.get(f"{API}/compare", params={"runs": f"{a},{b}"}, headers=other).status_code == 404
    assert client.delete(f"{API}/runs/{a}", headers=keys.headers("a", "planner")).status_code == 409  # finished

    if services.postgis:  # the result layers are also in PostGIS, one row per feature
        with services.engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT layer, count(*) FROM result_features WHERE run_id = :r AND org_id = :o GROUP BY layer"
            ), {"r": a, "o": keys.org_id("a")}).all())  # fmt: skip
            srid = conn.scalar(text("SELECT DISTINCT ST_SRID(geom) FROM result_features WHERE run_id = :r"), {"r": a})
        assert counts == {n: len(pyogrio.read_dataframe(stored / "layers.gpkg", layer=n)) for n in layers}
        assert srid == 4326


# ---------------------------------------------------------------------------------------------------------------
# 2. submitting: the scenario is validated again, its region must exist


def test_submit_checks_scenario_and_region(make_app: AppFactory, toy_region: RegionData) -> None:
    client, services = make_app(run_workers=2, workers=1)
    keys, (good, bad, unknown) = setup_org(services, toy_region, QUICK, QUICK, {**QUICK, "forced": {"keep": ["x9"]}})
    planner = keys.headers("a", "planner")

    # errors only the run finds: a domain error gives its message, anything else "internal error: ..."
    broken = dataclasses.replace(toy_region, name="broken")
    region_id = add_region(services, keys.org_id("a"), broken)
    (services.files.regions_dir(keys.org_id("a")) / "broken" / "matrix.npz").write_bytes(b"not a matrix")
    internal = add_scenario(services, keys.org_id("a"), region_id, {**QUICK, "region": "broken"})
    a, b = submit(client, keys, unknown), submit(client, keys, internal)
    run = wait(client, keys, a, finished)
    assert run["status"] == "failed" and run["error"].startswith("forced.keep: unknown branch id(s) ['x9']"), run
    run = wait(client, keys, b, finished)
    assert run["status"] == "failed" and run["error"].startswith("internal error: "), run
    assert client.get(f"{API}/runs/{a}/plan", headers=planner).status_code == 409

    with services.sessions() as s:  # stored before a validation rule changed, say
        s.execute(update(Scenario).where(Scenario.id == bad).values(body={**QUICK, "budget_share": -1}))
        s.commit()
    r = client.post(f"{API}/scenarios/{bad}/runs", headers=planner)
    assert r.status_code == 422 and "budget_share" in r.json()["detail"]
    assert client.post(f"{API}/scenarios/nope/runs", headers=planner).status_code == 404
    services.files.remove(services.files.regions_dir(keys.org_id("a")) / "toy")
    r = client.post(f"{API}/scenarios/{good}/runs", headers=planner)
    assert r.status_code == 409 and "toy" in r.json()["detail"]
    with services.sessions() as s:
        assert set(s.scalars(select(Run.id))) == {a, b}


# ---------------------------------------------------------------------------------------------------------------
# 3. progress while running; cancelling a queued and a running run; results of unfinished runs


def test_progress_and_cancel(make_app: AppFactory, toy_region: RegionData) -> None:
    client, services = make_app(run_workers=1, workers=1)
    keys, (slow, quick) = setup_org(services, toy_region, SLOW, QUICK)
    viewer, planner = keys.headers("a", "viewer"), keys.headers("a", "planner")
    a, b = submit(client, keys, slow), submit(client, keys, quick)
    assert client.get(f"{API}/runs/{b}", headers=viewer).json()["status"] == "queued"  # one worker: b waits
    for path in ("plan", "timetable.csv", "layers.gpkg", "layers/branches.geojson", "map"):
        r = client.get(f"{API}/runs/{b}/{path}", headers=viewer)
        assert r.status_code == 409 and "queued" in r.json()["detail"], path

    run = wait(client, keys, a, lambda r: r["stage"] == "pareto" and r["progress"] > 10)
    r = client.get(f"{API}/runs/{a}/plan", headers=viewer)
    assert r.status_code == 409 and "running" in r.json()["detail"]
    before = run["progress"]
    run = wait(client, keys, a, lambda r: r["progress"] > before)  # progress is reported as it goes
    assert run["status"] == "running" and run["attempts"] == 1 and 10 < run["progress"] < 100, run
    pid = pid_of(run)
    assert alive(pid)
    metrics = client.get("/metrics").text
    assert "branchnet_runs_running 1.0" in metrics and "branchnet_runs_queued 1.0" in metrics

    assert client.delete(f"{API}/runs/{b}", headers=viewer).status_code == 403
    r = client.delete(f"{API}/runs/{b}", headers=planner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"  # queued: cancelled at once
    r = client.delete(f"{API}/runs/{a}", headers=planner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert gone(pid), "the worker process of a cancelled run is stopped"
    for run_id in (a, b):
        assert client.get(f"{API}/runs/{run_id}/plan", headers=viewer).status_code == 409
        assert client.delete(f"{API}/runs/{run_id}", headers=planner).status_code == 409
    r = client.get(f"{API}/compare", params={"runs": f"{a},{b}"}, headers=viewer)
    assert r.status_code == 409 and a in r.json()["detail"]
    time.sleep(1.0)  # the dispatcher neither restarts nor overwrites cancelled runs
    assert {row(services, x).status for x in (a, b)} == {"cancelled"}
    assert not services.files.run_dir(keys.org_id("a"), a).exists()
    # the slot is free again
    c = submit(client, keys, quick)
    assert succeeded(client, keys, c)["attempts"] == 1


# ---------------------------------------------------------------------------------------------------------------
# 4. worker processes that die: retried while the server runs; lost with the server, recovered at restart


def test_killed_worker_is_retried(make_app: AppFactory, toy_region: RegionData) -> None:
    client, services = make_app(run_workers=2, workers=1, run_max_attempts=2)
    keys, (slow,) = setup_org(services, toy_region, SLOW)
    a = submit(client, keys, slow)
    first = wait(client, keys, a, lambda r: r["stage"] == "pareto")
    os.kill(pid_of(first), signal.SIGKILL)
    retried = wait(client, keys, a, lambda r: r["attempts"] == 2 or finished(r))
    assert retried["attempts"] == 2 and retried["worker"] != first["worker"], retried
    assert "attempt 1 of 2 lost" in str(retried["error"]) or retried["status"] == "succeeded", retried
    final = succeeded(client, keys, a, timeout=90)
    assert final["attempts"] == 2 and final["error"] is None and final["progress"] == 100
    assert client.get(f"{API}/runs/{a}/plan", headers=keys.headers("a", "viewer")).status_code == 200
    assert not list(services.files.run_dir(keys.org_id("a"), a).parent.glob(f".{a}.*"))


def test_server_and_worker_killed_then_restarted(
    make_app: AppFactory, data_dir: Path, toy_region: RegionData, tmp_path: Path
) -> None:
    """The server process dies (SIGKILL) with its worker mid-run; a new server on the same data folder fails the
    lost run with its reason (one attempt allowed) once its lease has expired, runs the queued one, and everything
    else is intact."""
    settings = {"BRANCHNET_DATA_DIR": str(data_dir), "BRANCHNET_LEAFLET_DIR": str(LEAFLET),
                "BRANCHNET_RUN_WORKERS": "1", "BRANCHNET_WORKERS": "1", "BRANCHNET_RUN_MAX_ATTEMPTS": "1",
                "BRANCHNET_RUN_LEASE_S": "3"}  # fmt: skip
    # the database and file store, prepared by a first app (never started)
    from service.api.app import create_app
    from service.config import Settings

    services = create_app(Settings(data_dir=data_dir, leaflet_dir=LEAFLET)).state.services
    keys, (slow, quick) = setup_org(services, toy_region, SLOW, QUICK)
    services.engine.dispose()

    with local_server(settings, cwd=tmp_path, log=tmp_path / "server.log") as server:
        first = httpx.Client(base_url=server.url, timeout=10)
        done = submit(first, keys, quick)
        succeeded(first, keys, done)
        lost, waiting = submit(first, keys, slow), submit(first, keys, quick)
        run = wait(first, keys, lost, lambda r: r["stage"] == "pareto")
        server.process.kill()
        os.kill(pid_of(run), signal.SIGKILL)
        server.process.wait(10)
        first.close()
    assert row(services, lost).status == "running"  # nobody was left to notice

    client, services = make_app(run_workers=1, workers=1, run_max_attempts=1, run_lease_s=3)
    failed = wait(client, keys, lost, finished, timeout=30)  # once its lease (3 s) has expired
    assert failed["status"] == "failed" and failed["attempts"] == 1 and failed["finished_at"]
    assert failed["error"] == "worker lost (attempt 1 of 1): the server or worker stopped during the run"
    assert not list(services.files.run_dir(keys.org_id("a"), lost).parent.glob(f".{lost}.*"))
    succeeded(client, keys, waiting)  # the queued run survived the crash
    assert client.get(f"{API}/runs/{done}/plan", headers=keys.headers("a", "viewer")).status_code == 200
    listed = client.get(f"{API}/scenarios", headers=keys.headers("a", "viewer"))
    assert listed.status_code == 200 and {x["id"] for x in listed.json()} == {slow, quick}
    runs = client.get(f"{API}/scenarios/{quick}/runs", headers=keys.headers("a", "viewer")).json()
    assert {r["id"]: r["status"] for r in runs} == {done: "succeeded", waiting: "succeeded"}


# ---------------------------------------------------------------------------------------------------------------
# 5. the Dask executor


def test_dask_executor(make_app: AppFactory, toy_region: RegionData) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,  # type: ignore[no-untyped-call]
                      silence_logs=40) as cluster:  # fmt: skip
        client, services = make_app(dask_scheduler=cluster.scheduler_address, workers=1)
        assert type(services.executor).__name__ == "DaskExecutor"
        keys, (slow, quick) = setup_org(services, toy_region, SLOW, QUICK)
        worker_pid = next(iter(cluster.workers.values())).process.pid
        a = submit(client, keys, quick)
        run = succeeded(client, keys, a, timeout=90)
        assert pid_of(run) == worker_pid and run["summary"]["cost"] > 0
        assert client.get(f"{API}/runs/{a}/plan", headers=keys.headers("a", "viewer")).json()["scenario"] == "toy-quick"

        b = submit(client, keys, slow)
        wait(client, keys, b, lambda r: r["stage"] == "pareto")
        r = client.delete(f"{API}/runs/{b}", headers=keys.headers("a", "planner"))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        deadline = time.monotonic() + 30  # the task aborts at its next progress report, long before the sweep ends
        while services.executor.jobs:
            assert time.monotonic() < deadline, "the cancelled Dask task did not stop"
            time.sleep(0.1)
        assert row(services, b).status == "cancelled" and alive(worker_pid)
        assert not services.files.run_dir(keys.org_id("a"), b).exists()
        assert "branchnet_runs_succeeded 1.0" in client.get("/metrics").text
