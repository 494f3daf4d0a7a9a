"""``GET /runs/{id}/map.png`` and the map thumbnails of the batch report, on SQLite and PostgreSQL.

The run is a succeeded run whose folder holds only ``layers.gpkg`` and ``plan.json`` (as a run computed before
``map.png`` existed): the first request draws the map from the layers and keeps it in the folder.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from service.batch.report import summarise
from service.plans.mapimage import read_layers, write_map_png
from service.plans.maps import OSM_ATTRIBUTION
from service.plans.outputs import write_layers
from service.store.db import Batch, Region, Run, Scenario
from tests.service.api.conftest import Keys
from tests.service.test_mapimage import sample_layers

API = "/api/v1"
EVIL = "<img src=x onerror=alert(1)>"


def old_run(services: Any, keys: Keys, scenario_name: str = "old-run") -> tuple[str, Path]:
    """A succeeded run of organisation a whose result folder has layers.gpkg and plan.json, but no map.png."""
    org = keys.org_id("a")
    with services.sessions() as s:
        region = Region(org_id=org, name="oakham", path="orgs/none", summary={})
        s.add(region)
        s.flush()
        scenario = Scenario(org_id=org, region_id=region.id, name=scenario_name, body={}, version=1)
        s.add(scenario)
        s.flush()
        run = Run(org_id=org, scenario_id=scenario.id, body={}, status="succeeded", progress=100.0, stage="done",
                  attempts=1, summary={})  # fmt: skip
        s.add(run)
        s.flush()
        folder = services.files.run_dir(org, run.id)
        folder.mkdir(parents=True)
        write_layers(folder / "layers.gpkg", sample_layers())
        plan = {"scenario": scenario_name, "attribution": OSM_ATTRIBUTION}
        (folder / "plan.json").write_text(json.dumps(plan))
        run.result_path = folder.relative_to(services.files.root).as_posix()
        s.commit()
        return run.id, folder


def test_map_png_of_a_run(api: tuple[Any, Any], keys: Keys, tmp_path: Path) -> None:
    client, services = api
    run_id, folder = old_run(services, keys)
    url = f"{API}/runs/{run_id}/map.png"

    r = client.get(url, headers=keys.headers("a", "viewer"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline")
    with Image.open(io.BytesIO(r.content)) as image:
        assert image.format == "PNG" and image.size == (1600, 1200)
    # drawn from the stored layers with the plan's title and attribution, and kept beside them
    expected = write_map_png(tmp_path / "expected.png", read_layers(folder / "layers.gpkg"),
                             title="branchnet: old-run", attribution=OSM_ATTRIBUTION)  # fmt: skip
    assert r.content == expected.read_bytes() == (folder / "map.png").read_bytes()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert client.get(url, headers=keys.headers("a", "viewer")).content == r.content

    run = client.get(f"{API}/runs/{run_id}", headers=keys.headers("a", "viewer")).json()
    assert run["links"]["map_png"] == url
    assert client.get(url, headers=keys.headers("b", "admin")).status_code == 404  # another organisation
    missing = client.get(f"{API}/runs/nope/map.png", headers=keys.headers("a", "viewer"))
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    assert client.get(url).status_code == 401

    (folder / "map.png").unlink()
    (folder / "layers.gpkg").unlink()
    gone = client.get(url, headers=keys.headers("a", "viewer"))
    assert gone.status_code == 404 and "layers.gpkg" in gone.json()["detail"]

    ok = client.get(f"{API}/openapi.json").json()["paths"][url.replace(run_id, "{run_id}")]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["image/png"]


def test_batch_report_shows_each_recomputed_map(api: tuple[Any, Any], keys: Keys) -> None:
    client, services = api
    run_id, folder = old_run(services, keys, scenario_name=EVIL)
    a = keys.org_id("a")
    base = {"org_id": a, "org": "org-a", "region": "oakham", "reasons": ["scenario edited"], "attempts": 1,
            "retried": False, "previous_run": None, "seconds": 1.0, "stages_s": {}, "worker": "w",
            "peak_rss_mb": 1.0, "error": None}  # fmt: skip
    rows = [{**base, "scenario_id": "s1", "name": EVIL, "status": "succeeded", "run_id": run_id},
            {**base, "scenario_id": "s2", "name": "broken", "status": "failed", "run_id": run_id}]  # fmt: skip
    with services.sessions() as s:
        batch = Batch(status="succeeded", exit_code=0, options={},
                      report={"batch_id": "x", "scenarios": rows, "changes": [], "reimported": [], "wall_s": 1.0,
                              **summarise(rows, 1.0)})  # fmt: skip
        s.add(batch)
        s.commit()
        batch_id = batch.id

    page = client.get(f"{API}/batches/{batch_id}/report.html", headers=keys.headers("a", "viewer"))
    assert page.status_code == 200, page.text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*>', page.text)
    assert len(images) == 1  # the succeeded scenario's; the failed one shows none
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as thumb:
        assert thumb.format == "PNG" and thumb.size == (400, 300)
    assert EVIL not in page.text and 'alt="map of &lt;img src=x onerror=alert(1)&gt;"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert (folder / "map.png").is_file() and (folder / "map-thumbnail.png").is_file()
    assert client.get(f"{API}/batches/{batch_id}/report.html", headers=keys.headers("b", "viewer")).status_code == 404
