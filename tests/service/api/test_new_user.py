"""Tried as a new user would: the ``branchnet`` commands and plain HTTP, from a key to a downloaded map.

``branchnet keys create`` makes an admin key, ``branchnet serve`` runs the API in its own process on a free
loopback port with a fresh data folder, and an httpx client uploads the synthetic toy region's files, stores a
scenario, runs it, polls it to success and downloads the plan, the GeoPackage, a GeoJSON layer and the map. The
same steps as the curl session in the README ("API and configuration").
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest

from service.api.local_server import LocalServer, branchnet_command, local_server
from service.plans.scenario import example
from tests.service.api.conftest import LEAFLET

API = "/api/v1"
KEY = re.compile(r"^bn_[0-9a-f]+_[A-Za-z0-9_-]+$")

SCENARIO: dict[str, Any] = example("toy_quick", name="first-try")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """``branchnet serve`` on a free port of 127.0.0.1 with a fresh data folder; stopped (SIGTERM) afterwards."""
    if not (LEAFLET / "leaflet.js").is_file():
        pytest.fail(f"Leaflet is missing from {LEAFLET}: run `make setup` (npm install)")
    settings = {"BRANCHNET_DATA_DIR": str(tmp_path / "data"), "BRANCHNET_LEAFLET_DIR": str(LEAFLET),
                "BRANCHNET_TIME_LIMIT_S": "10"}  # fmt: skip
    with local_server(settings, cwd=tmp_path, log=tmp_path / "server.log") as srv:
        yield srv


def test_from_a_key_to_a_downloaded_map(server: LocalServer, tmp_path: Path) -> None:
    from geodata.synthetic import generate_region, write_region

    # 1. an admin key, from the command line (printed alone on stdout)
    made = subprocess.run([branchnet_command(), "keys", "create", "--org", "demo", "--role", "admin"], env=server.env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert KEY.match(key), made.stdout
    assert "shown only once" in " ".join(made.stderr.split())

    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert httpx.get(f"{server.url}{API}/regions").status_code == 401  # no key
        assert http.get(f"{API}/regions").json() == []

        # 2. upload the region's raw files
        paths = write_region(generate_region("toy", seed=1), tmp_path / "toy")
        with (paths["osm"].open("rb") as osm, paths["areas"].open("rb") as areas,
              paths["branches"].open("rb") as branches, paths["settlements"].open("rb") as settlements):  # fmt: skip
            up = http.post(
                f"{API}/regions",
                data={"name": "toy", "area_field": "area_id", "group_field": "municipality", "id_field": "branch_id"},
                files={"osm": ("roads.osm", osm), "population": ("areas.geojson", areas),
                       "branches": ("branches.geojson", branches), "settlements": ("settlements.csv", settlements)},
                timeout=600,
            )  # fmt: skip
        assert up.status_code == 201, up.text
        region = up.json()
        assert region["name"] == "toy"
        assert region["summary"]["population"] > 0
        assert region["kpis"]["overall"]["population"] == pytest.approx(region["summary"]["population"])
        listed = http.get(f"{API}/regions").json()
        assert [r["id"] for r in listed] == [region["id"]]
        assert http.get(f"{API}/regions/{region['id']}").json()["name"] == "toy"

        # 3. a scenario, and a run of it
        sc = http.post(f"{API}/scenarios", json=SCENARIO)
        assert sc.status_code == 201, sc.text
        scenario_id = sc.json()["id"]
        assert sc.json()["region_id"] == region["id"]
        started = http.post(f"{API}/scenarios/{scenario_id}/runs")
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        assert started.headers["location"] == f"{API}/runs/{run_id}"
        assert started.json()["status"] in ("queued", "running")

        # 4. poll it to success; progress only grows
        seen: list[float] = []
        deadline = time.monotonic() + 300
        while True:
            run = http.get(f"{API}/runs/{run_id}").json()
            seen.append(run["progress"])
            if run["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, f"still {run['status']} after 300 s: {run}"
            time.sleep(0.3)
        assert run["status"] == "succeeded", f"{run}\n{server.log.read_text(errors='replace')[-4000:]}"
        assert seen == sorted(seen) and seen[-1] == 100
        assert run["summary"]["branches_total"] == region["summary"]["branches"]
        assert [r["id"] for r in http.get(f"{API}/scenarios/{scenario_id}/runs").json()] == [run_id]

        # 5. the results: plan, GeoPackage, a GeoJSON layer, the timetable (when a bookmobile runs), the map
        plan = http.get(f"{API}/runs/{run_id}/plan")
        assert plan.status_code == 200 and plan.headers["content-type"].startswith("application/json")
        assert plan.json()["scenario"] == "first-try" and plan.json()["region"] == "toy"

        gpkg = http.get(f"{API}/runs/{run_id}/layers.gpkg")
        assert gpkg.status_code == 200, gpkg.text
        (tmp_path / "layers.gpkg").write_bytes(gpkg.content)
        layers = {str(name) for name, _ in pyogrio.list_layers(tmp_path / "layers.gpkg")}
        assert {"demand", "branches", "catchments", "areas", "roads"} <= layers

        demand = http.get(f"{API}/runs/{run_id}/layers/demand.geojson")
        assert demand.status_code == 200 and demand.json()["type"] == "FeatureCollection"
        assert len(demand.json()["features"]) == len(pyogrio.read_dataframe(tmp_path / "layers.gpkg", layer="demand"))
        unknown = http.get(f"{API}/runs/{run_id}/layers/nothing.geojson")
        assert unknown.status_code == 404 and "demand" in unknown.json()["detail"]

        timetable = http.get(f"{API}/runs/{run_id}/timetable.csv")
        if plan.json()["decisions"]["bookmobile"]["stops_served"]:
            assert timetable.status_code == 200 and timetable.text.splitlines()[0].count(",") >= 5
        else:
            assert timetable.status_code == 404

        page = http.get(f"{API}/runs/{run_id}/map")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "<html" in html.lower() and "L.map(" in html
        assert "OpenStreetMap contributors" in html or "Synthetic region" in html
        assert "first-try" in html

        # 6. what an operator sees
        metrics = httpx.get(f"{server.url}/metrics").text
        assert re.search(
            r'branchnet_http_requests_total\{method="GET",route="[^"]*/runs/\{run_id\}",status="200"\}', metrics
        ), metrics

    # 7. the server stops cleanly on SIGTERM (uvicorn shuts down, then re-raises the signal: -15 or 0)
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(30)
    log = server.log.read_text(errors="replace")
    assert code in (0, -signal.SIGTERM), log[-4000:]
    assert "Application shutdown complete" in log and "Traceback" not in log, log[-4000:]
