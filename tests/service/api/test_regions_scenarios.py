"""Regions and scenarios over HTTP, on SQLite and on PostgreSQL+PostGIS (the ``api`` fixture of conftest.py).

- a region uploaded as multipart (client file names like ``../../etc/roads.osm`` only lend their extension) is
  imported, listed with the current network's KPIs and invisible to the other organisation; one registered by
  server paths likewise;
- scenarios: create, list, read, replace (version + 1, ``If-Match``), delete; every invalid body is a 422 whose
  message names the field, and a rejected write changes nothing;
- bad input — malformed JSON, a wrong content type, an oversized or corrupt upload, a path-like or unsupported
  file name, unknown fields, a region of another organisation — is a precise 4xx, never a 5xx, and leaves the
  database rows and the file store exactly as they were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.errors import ConflictError, classify
from service.plans.report import region_summary
from service.store.db import ApiKey, Organisation, Region, Run
from service.store.db import Scenario as ScenarioRow
from service.store.regions import store_region
from tests.service.api.conftest import create_keys

API = "/api/v1"
FIELDS = {"area_field": "area_id", "group_field": "municipality", "id_field": "branch_id"}
PLAN: dict[str, Any] = {
    "name": "toy-plan",
    "region": "toy",
    "objective": "max_coverage",
    "budget_share": 0.8,
    "standards": {"branch_drive_min": 5},
    "solve": {"time_limit_s": 5, "seed": 0},
}


def plan(**changes: Any) -> dict[str, Any]:
    """PLAN with top-level fields replaced (None drops one)."""
    out = json.loads(json.dumps(PLAN))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="session")
def toy_summary(toy_region: Any) -> dict[str, Any]:
    return region_summary(toy_region)


@pytest.fixture
def toy_a(api: tuple[Any, Any], keys: Any, toy_region: Any, toy_summary: dict[str, Any]) -> str:
    """The toy region registered for organisation ``a`` (saved into its file store, with its row); its id."""
    _, services = api
    with services.sessions() as session:
        row = store_region(session, services.files, keys.org_id("a"), toy_region, toy_summary)
        return row.id


def upload(sources: dict[str, Path], names: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """The ``files`` of a multipart upload of the toy region's sources, with client file names ``names``."""
    names = names or {}
    files: dict[str, Any] = {}
    for field, key in (("osm", "osm"), ("population", "areas"), ("branches", "branches"),
                       ("settlements", "settlements")):  # fmt: skip
        files[field] = (names.get(field, sources[key].name), sources[key].read_bytes())
    files.update(overrides)
    return {k: v for k, v in files.items() if v is not None}


def stored(services: Any) -> dict[str, Any]:
    """Every row of every table, and every file of the file store with its size and modification time."""
    out: dict[str, Any] = {}
    with services.sessions() as session:
        for model in (Organisation, ApiKey, Region, ScenarioRow, Run):
            rows = session.execute(select(model.__table__)).all()
            out[model.__tablename__] = sorted(repr(tuple(r)) for r in rows)
    root: Path = services.files.root
    out["files"] = sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                          for p in root.rglob("*") if p.is_file())  # fmt: skip
    return out


def leftover_uploads(services: Any) -> list[str]:
    uploads: Path = services.files.root / "uploads"
    return sorted(p.name for p in uploads.iterdir()) if uploads.is_dir() else []


# ---------------------------------------------------------------------------------------------------------------
# regions


def test_upload_region_then_list_it_with_kpis(api: tuple[Any, Any], keys: Any, toy_sources: dict[str, Path],
                                              data_dir: Path) -> None:  # fmt: skip
    client, services = api
    names = {"osm": "../../etc/roads.osm", "population": "..\\..\\windows\\areas.GeoJSON",
             "branches": "/etc/passwd/branches.geojson", "settlements": "settlements.csv"}  # fmt: skip
    r = client.post(f"{API}/regions", headers=keys.headers("a", "admin"), files=upload(toy_sources, names),
                    data={"name": "toy", **FIELDS})  # fmt: skip
    assert r.status_code == 201, r.text
    region = r.json()
    assert r.headers["location"] == f"{API}/regions/{region['id']}"
    assert region["name"] == "toy"
    summary = region["summary"]
    assert summary["population"] == pytest.approx(10_000)
    assert summary["branches"] == 6 and summary["demand_points"] > 1000
    assert {b["id"] for b in summary["branch_list"]} and len(summary["branch_list"]) == 6
    assert summary["sources"]["osm"] == "osm (../../etc/roads.osm)"  # the client's name as a label only
    assert summary["sources"]["area_field"] == "area_id"
    assert str(data_dir) not in json.dumps(region)  # no server path leaks
    overall = region["kpis"]["overall"]
    assert overall["population"] == pytest.approx(10_000)
    assert 0 < overall["share_within_5_min"] <= overall["share_within_15_min"] <= 1
    assert region["kpis"]["by_area"] and region["kpis"]["by_group"]

    listed = client.get(f"{API}/regions", headers=keys.headers("a", "viewer")).json()
    assert [x["id"] for x in listed] == [region["id"]]
    assert listed[0]["kpis"]["overall"] == overall and "by_area" not in listed[0]["kpis"]
    shown = client.get(f"{API}/regions/{region['id']}", headers=keys.headers("a", "viewer"))
    assert shown.status_code == 200 and shown.json()["kpis"] == region["kpis"]
    assert client.get(f"{API}/regions", headers=keys.headers("b", "admin")).json() == []
    foreign = client.get(f"{API}/regions/{region['id']}", headers=keys.headers("b", "admin"))
    assert foreign.status_code == 404 and foreign.json()["detail"] == f"region {region['id']!r} not found"

    # the files: the region in organisation a's folder under generated names, the upload folder gone
    folder = services.files.regions_dir(keys.org_id("a")) / "toy"
    assert (folder / "region.json").is_file() and (folder / "matrix.npz").is_file()
    meta = json.loads((folder / "region.json").read_text())
    assert "uploads" not in json.dumps(meta["sources"])
    assert leftover_uploads(services) == []
    tmp = data_dir.parent
    assert not [p for p in tmp.rglob("*") if p.name in ("etc", "passwd", "windows", "roads.osm")]
    with services.sessions() as session:
        row = session.scalars(select(Region)).one()
        assert (row.org_id, row.name) == (keys.org_id("a"), "toy")
        assert services.files.root / row.path == folder

    # the same name again: 409 before any import, nothing changes
    before = stored(services)
    again = client.post(f"{API}/regions", headers=keys.headers("a", "admin"), files=upload(toy_sources),
                        data={"name": "toy", **FIELDS})  # fmt: skip
    assert again.status_code == 409, again.text
    assert again.json()["detail"].startswith("a region named 'toy' already exists in your organisation")
    assert stored(services) == before and leftover_uploads(services) == []


def test_register_region_from_server_paths(api: tuple[Any, Any], keys: Any, toy_sources: dict[str, Path],
                                           data_dir: Path, tmp_path: Path) -> None:  # fmt: skip
    client, services = api
    src = data_dir / "sources" / "toy"
    shutil.copytree(toy_sources["osm"].parent, src)
    body = {"name": "toy-b", "paths": {"osm": str(src / "roads.osm"), "population": str(src / "areas.geojson"),
                                       "branches": str(src / "branches.geojson")}, **FIELDS}  # fmt: skip
    admin = keys.headers("b", "admin")

    outside = tmp_path / "elsewhere.osm"
    shutil.copy(toy_sources["osm"], outside)
    before = stored(services)
    for paths, status, detail in [
        ({"osm": str(outside)}, 422, f"paths.osm: '{outside}' is outside the folders regions may be registered from"),
        ({"osm": "roads.osm"}, 422, "paths.osm: 'roads.osm' is not an absolute path on the server"),
        ({"osm": str(src / "../toy/../../sources/toy/nothere.osm")}, 422, "is not a file on the server"),
        ({"osm": str(src / "areas.geojson")}, 422, "paths.osm: '" + str(src / "areas.geojson")
         + "' is not of a supported type; use .osm.pbf"),
        ({"branches": None}, 422, "paths.branches: Field required"),
        ({"colour": "red"}, 422, "paths.colour: Extra inputs are not permitted"),
    ]:  # fmt: skip
        bad = {**body, "paths": {k: v for k, v in {**body["paths"], **paths}.items() if v is not None}}
        r = client.post(f"{API}/regions", headers=admin, json=bad)
        assert r.status_code == status, (paths, r.text)
        assert detail in r.json()["detail"], (paths, r.json())
    assert stored(services) == before

    r = client.post(f"{API}/regions", headers=admin, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["summary"]["sources"]["osm"] == str(src / "roads.osm")
    assert r.json()["kpis"]["overall"]["population"] == pytest.approx(10_000)
    assert [x["name"] for x in client.get(f"{API}/regions", headers=keys.headers("b", "viewer")).json()] == ["toy-b"]
    assert client.get(f"{API}/regions", headers=keys.headers("a", "viewer")).json() == []


def test_delete_region_only_when_unused(api: tuple[Any, Any], keys: Any, toy_a: str) -> None:
    client, services = api
    admin, planner = keys.headers("a", "admin"), keys.headers("a", "planner")
    sid = client.post(f"{API}/scenarios", headers=planner, json=plan()).json()["id"]
    r = client.delete(f"{API}/regions/{toy_a}", headers=admin)
    assert r.status_code == 409 and r.json()["detail"] == "region 'toy' is used by 1 scenario(s); delete them first"
    assert client.delete(f"{API}/scenarios/{sid}", headers=planner).status_code == 204
    assert client.delete(f"{API}/regions/{toy_a}", headers=keys.headers("b", "admin")).status_code == 404
    assert client.delete(f"{API}/regions/{toy_a}", headers=admin).status_code == 204
    assert client.get(f"{API}/regions/{toy_a}", headers=admin).status_code == 404
    assert not (services.files.regions_dir(keys.org_id("a")) / "toy").exists()
    assert client.get(f"{API}/regions", headers=admin).json() == []


def test_a_name_taken_meanwhile_keeps_the_first_region(api: tuple[Any, Any], keys: Any, toy_a: str,
                                                       toy_region: Any) -> None:  # fmt: skip
    """Two imports of one name racing past the early check: the row reserves the name, the loser stores nothing."""
    _, services = api
    folder = services.files.regions_dir(keys.org_id("a")) / "toy"
    first = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    before = stored(services)
    with services.sessions() as session, pytest.raises(ConflictError) as refused:
        store_region(session, services.files, keys.org_id("a"), toy_region, {"late": True})
    assert classify(refused.value).status == 409
    assert str(refused.value) == "a region named 'toy' already exists in your organisation"
    assert stored(services) == before
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == first
    assert [p.name for p in folder.parent.iterdir()] == ["toy"]  # no staging folder left


# ---------------------------------------------------------------------------------------------------------------
# scenarios


def test_scenario_crud(api: tuple[Any, Any], keys: Any, toy_a: str) -> None:
    client, services = api
    planner, viewer = keys.headers("a", "planner"), keys.headers("a", "viewer")

    r = client.post(f"{API}/scenarios", headers=planner, json=plan())
    assert r.status_code == 201, r.text
    created = r.json()
    sid = created["id"]
    assert r.headers["location"] == f"{API}/scenarios/{sid}" and r.headers["etag"] == '"1"'
    assert (created["name"], created["region"], created["region_id"], created["version"]) == ("toy-plan", "toy",
                                                                                               toy_a, 1)  # fmt: skip
    assert created["body"] == plan()

    other = client.post(f"{API}/scenarios", headers=keys.headers("a", "admin"), json=plan(name="second")).json()
    listed = client.get(f"{API}/scenarios", headers=viewer).json()
    assert [s["id"] for s in listed] == [sid, other["id"]]
    assert [s["id"] for s in client.get(f"{API}/scenarios?region=toy", headers=viewer).json()] == [sid, other["id"]]
    assert client.get(f"{API}/scenarios?region=elsewhere", headers=viewer).json() == []
    assert client.get(f"{API}/scenarios", headers=keys.headers("b", "viewer")).json() == []
    got = client.get(f"{API}/scenarios/{sid}", headers=viewer)
    assert got.status_code == 200 and got.json() == created and got.headers["etag"] == '"1"'

    changed = plan(name="toy-plan-2", budget_share=0.7)
    r = client.put(f"{API}/scenarios/{sid}", headers=planner, json=changed)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["name"], r.json()["body"]) == (2, "toy-plan-2", changed)
    assert r.json()["updated_at"] > created["updated_at"] and r.json()["created_at"] == created["created_at"]

    # conditional update: a stale version is refused and changes nothing; the current one goes through
    before = stored(services)
    stale = client.put(f"{API}/scenarios/{sid}", headers={**planner, "If-Match": '"1"'}, json=plan(budget_share=0.5))
    assert stale.status_code == 412 and stale.json()["detail"] == f"scenario {sid!r} is at version 2, not 1"
    assert stored(services) == before
    ok = client.put(f"{API}/scenarios/{sid}", headers={**planner, "If-Match": '"2"'}, json=plan(budget_share=0.5))
    assert ok.status_code == 200 and ok.json()["version"] == 3

    # a rejected update changes nothing
    before = stored(services)
    bad = client.put(f"{API}/scenarios/{sid}", headers=planner, json=plan(budget_share=-1))
    assert bad.status_code == 422 and "budget_share" in bad.json()["detail"]
    assert stored(services) == before
    assert client.get(f"{API}/scenarios/{sid}", headers=viewer).json()["version"] == 3

    assert client.delete(f"{API}/scenarios/{sid}", headers=planner).status_code == 204
    gone = client.get(f"{API}/scenarios/{sid}", headers=viewer)
    assert gone.status_code == 404 and gone.json()["detail"] == f"scenario {sid!r} not found"
    assert client.delete(f"{API}/scenarios/{sid}", headers=planner).status_code == 404
    assert [s["id"] for s in client.get(f"{API}/scenarios", headers=viewer).json()] == [other["id"]]


def test_delete_scenario_with_runs(api: tuple[Any, Any], keys: Any, toy_a: str) -> None:
    client, services = api
    planner = keys.headers("a", "planner")
    sid = client.post(f"{API}/scenarios", headers=planner, json=plan()).json()["id"]
    a = keys.org_id("a")
    with services.sessions() as session:
        done = Run(org_id=a, scenario_id=sid, body=plan(), status="succeeded", stage="done")
        queued = Run(org_id=a, scenario_id=sid, body=plan(), status="queued", stage="queued")
        session.add_all([done, queued])
        session.flush()
        results = services.files.run_dir(a, done.id)
        results.mkdir(parents=True)
        (results / "plan.json").write_text("{}")
        done.result_path = results.relative_to(services.files.root).as_posix()
        session.commit()
        done_id, queued_id = done.id, queued.id
    r = client.delete(f"{API}/scenarios/{sid}", headers=planner)
    assert r.status_code == 409
    assert r.json()["detail"] == f"scenario {sid!r} has 1 queued or running run(s) ({queued_id}); cancel them first"
    assert client.delete(f"{API}/runs/{queued_id}", headers=planner).status_code == 200  # cancelled
    assert client.delete(f"{API}/scenarios/{sid}", headers=planner).status_code == 204
    assert not results.exists()
    with services.sessions() as session:
        assert session.scalars(select(Run).where(Run.id.in_([done_id, queued_id]))).all() == []


INVALID: list[tuple[str, Any, str]] = [
    ("coverage target above 1", plan(standards={"coverage_target": 1.5}),
     "scenario: standards.coverage_target: Input should be less than or equal to 1"),
    ("unknown field", plan(colour="red"), "scenario: colour: Extra inputs are not permitted"),
    ("no region", plan(region=None), "scenario: region: Field required"),
    ("unknown objective", plan(objective="cheapest"),
     "scenario: objective: Input should be 'min_cost', 'max_coverage', 'pareto', 'location' or 'roadmap'"),
    ("no budget", plan(budget_share=None), "scenario: max_coverage needs a budget (or budget_share)"),
    ("bad weekday", plan(fleet={"weekdays": [7]}), "scenario: fleet.weekdays: distinct weekdays 0 (Monday)"),
    ("wrong type", plan(solve={"time_limit_s": "soon"}),
     "scenario: solve.time_limit_s: Input should be a valid number"),
    ("keep and close", plan(forced={"keep": ["x"], "close": ["x"]}), "scenario: forced: branch(es) ['x'] are both"),
    ("unknown branch", plan(forced={"keep": ["no-such-branch"]}),
     "scenario: forced.keep: unknown branch id(s) no-such-branch in region 'toy'"),
    ("missing region", plan(region="atlantis"),
     "scenario: region: region 'atlantis' is not imported in your organisation (its regions: toy)"),
    ("long name", plan(name="x" * 201), "scenario: name: at most 200 characters, not 201"),
    ("a list", [PLAN], "scenario: a scenario is a mapping of fields, not list"),
    ("a number", 42, "scenario: a scenario is a mapping of fields, not int"),
]  # fmt: skip


def test_invalid_scenarios_are_422_naming_the_field(api: tuple[Any, Any], keys: Any, toy_a: str) -> None:
    client, services = api
    planner = keys.headers("a", "planner")
    sid = client.post(f"{API}/scenarios", headers=planner, json=plan()).json()["id"]
    before = stored(services)
    for what, body, detail in INVALID:
        for method, path in (("POST", f"{API}/scenarios"), ("PUT", f"{API}/scenarios/{sid}")):
            r = client.request(method, path, headers=planner, json=body)
            assert r.status_code == 422, (what, method, r.text)
            assert r.json()["detail"].startswith(detail), (what, method, r.json())
    assert stored(services) == before


# ---------------------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_a_precise_4xx_and_changes_nothing(
    api: tuple[Any, Any], keys: Any, toy_a: str, toy_sources: dict[str, Path], data_dir: Path
) -> None:
    client, services = api
    admin, planner = keys.headers("a", "admin"), keys.headers("a", "planner")
    sid = client.post(f"{API}/scenarios", headers=planner, json=plan()).json()["id"]
    form = {"name": "toy2", **FIELDS}
    corrupt = ("roads.osm.pbf", b"\x00\x00\x00\x0dthis is not a PBF" * 64)
    cases: list[tuple[str, str, str, dict[str, Any], int, str]] = [
        ("malformed JSON", "POST", "/scenarios", {"content": b'{"region": "toy",}', "headers": {
            "Content-Type": "application/json"}}, 422,
         "malformed JSON at line 1, column 18: Expecting property name enclosed in double quotes"),
        ("malformed JSON (PUT)", "PUT", f"/scenarios/{sid}", {"content": b'{"region": "toy"', "headers": {
            "Content-Type": "application/json"}}, 422, "malformed JSON at line 1, column 17: Expecting ',' delimiter"),
        ("not UTF-8", "POST", "/scenarios", {"content": b'{"name": "\xff"}', "headers": {
            "Content-Type": "application/json"}}, 422, "the request body is not UTF-8 encoded JSON"),
        ("NaN", "POST", "/scenarios", {"content": b'{"region": "toy", "budget": NaN}', "headers": {
            "Content-Type": "application/json"}}, 422, "malformed JSON: NaN is not a JSON number"),
        ("nested too deeply", "POST", "/scenarios", {"content": b"[" * 200_000 + b"]" * 200_000, "headers": {
            "Content-Type": "application/json"}}, 422, "malformed JSON: nested too deeply"),
        ("too large", "POST", "/scenarios", {"content": b'{"name": "' + b"x" * (1 << 20) + b'"}', "headers": {
            "Content-Type": "application/json"}}, 413, "the JSON body is larger than 1 MB"),
        ("empty body", "POST", "/scenarios", {"content": b"", "headers": {"Content-Type": "application/json"}}, 422,
         "the request body is empty; send a JSON object"),
        ("text/plain scenario", "POST", "/scenarios", {"content": json.dumps(PLAN).encode(), "headers": {
            "Content-Type": "text/plain"}}, 415, "send JSON with 'Content-Type: application/json', not 'text/plain'"),
        ("no content type", "PUT", f"/scenarios/{sid}", {"content": json.dumps(PLAN).encode()}, 415,
         "send JSON with 'Content-Type: application/json', not a body without a Content-Type"),
        ("form-encoded scenario", "POST", "/scenarios", {"data": {"region": "toy"}}, 415,
         "not 'application/x-www-form-urlencoded'"),
        ("text/plain region", "POST", "/regions", {"content": b"roads", "headers": {"Content-Type": "text/plain"}},
         415, "upload the files as multipart/form-data, or register server files with a JSON body"),
        ("malformed JSON region", "POST", "/regions", {"content": b"{name: toy}", "headers": {
            "Content-Type": "application/json"}}, 422, "malformed JSON at line 1, column 2"),
        ("corrupt PBF", "POST", "/regions", {"files": upload(toy_sources, osm=corrupt), "data": form}, 422,
         "osm (roads.osm.pbf): not a readable OSM file"),
        ("path-like file name", "POST", "/regions", {"files": upload(toy_sources, osm=("../../etc/passwd", b"x" * 99)),
                                                     "data": form}, 422,
         "osm: the file '../../etc/passwd' is not of a supported type; use .osm.pbf, .osm.bz2, .osm.gz, .pbf, .osm"),
        ("wrong file type", "POST", "/regions", {"files": upload(toy_sources, population=("people.xlsx", b"PK")),
                                                 "data": form}, 422,
         "population: the file 'people.xlsx' is not of a supported type; use .geojson"),
        ("empty file", "POST", "/regions", {"files": upload(toy_sources, branches=("branches.csv", b"")),
                                            "data": form}, 422, "branches: the uploaded file branches (branches.csv) "
                                                                "is empty"),
        ("missing file", "POST", "/regions", {"files": upload(toy_sources, osm=None, branches=None), "data": form},
         422, "osm: missing; upload the OSM extract (.osm.pbf or .osm); branches: missing; upload the branches"),
        ("unknown form field", "POST", "/regions", {"files": upload(toy_sources), "data": {**form, "colour": "red"}},
         422, "unknown form field 'colour'; files: osm, population, branches"),
        ("file as text", "POST", "/regions", {"files": {k: v for k, v in upload(toy_sources).items() if k != "osm"},
                                              "data": {**form, "osm": "roads.osm"}}, 422,
         "osm: send a file (a multipart part with a filename), not a text field"),
        ("bad region name", "POST", "/regions", {"files": upload(toy_sources), "data": {**form, "name": "../Toy"}},
         422, "name: region name '../Toy' must be 1-63 lower-case letters, digits, '-' or '_'"),
        ("no region name", "POST", "/regions", {"files": upload(toy_sources), "data": FIELDS}, 422,
         "name: missing; give the region a name"),
        ("bad age shares", "POST", "/regions", {"files": upload(toy_sources), "data": {**form, "age_shares": "a,b"}},
         422, "age_shares: 'a,b' is not three numbers, e.g. 0.2,0.6,0.2"),
        ("missing field", "POST", "/regions", {"files": upload(toy_sources), "data": {**form, "id_field": "nope"}},
         422, "branches (branches.geojson): "),
        ("name taken", "POST", "/regions", {"files": upload(toy_sources), "data": {**form, "name": "toy"}}, 409,
         "a region named 'toy' already exists in your organisation"),
        ("multipart without boundary", "POST", "/regions", {"content": b"--x--", "headers": {
            "Content-Type": "multipart/form-data"}}, 422, "multipart/form-data without a boundary"),
        ("truncated multipart", "POST", "/regions", {"content": b"--xyz\r\nContent-Disposition: form-data; name=",
                                                     "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
         422, "name: missing"),
    ]  # fmt: skip
    before = stored(services)
    for what, method, path, kwargs, status, detail in cases:
        headers = {**(admin if path == "/regions" else planner), **kwargs.pop("headers", {})}
        r = client.request(method, f"{API}{path}", headers=headers, **kwargs)
        assert r.status_code == status, (what, r.text)
        assert detail in r.json()["detail"], (what, r.json())
        assert str(data_dir) not in r.text, (what, r.text)  # no server path leaks
        assert stored(services) == before, what
        assert leftover_uploads(services) == [], what

    # a scenario on another organisation's region: as if it did not exist
    r = client.post(f"{API}/scenarios", headers=keys.headers("b", "planner"), json=plan())
    assert r.status_code == 422
    assert r.json()["detail"] == ("scenario: region: region 'toy' is not imported in your organisation "
                                  "(its regions: none)")  # fmt: skip
    r = client.put(f"{API}/scenarios/{sid}", headers=keys.headers("b", "planner"), json=plan())
    assert r.status_code == 404 and r.json()["detail"] == f"scenario {sid!r} not found"
    assert stored(services) == before


def test_oversized_upload_is_413_naming_the_field(make_app: Any, db_url: str, toy_sources: dict[str, Path]) -> None:
    client, services = make_app(db_url, max_upload_mb=0.5)  # the toy OSM file is about 2 MB, the rest a few kB
    keys = create_keys(services)
    before = stored(services)
    r = client.post(f"{API}/regions", headers=keys.headers("a", "admin"), files=upload(toy_sources),
                    data={"name": "toy", **FIELDS})  # fmt: skip
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == "osm: the file exceeds the upload limit of 0.5 MB per file (BRANCHNET_MAX_UPLOAD_MB)"
    assert stored(services) == before and leftover_uploads(services) == []
    tiny = upload(toy_sources, osm=("roads.osm", b"<osm/>"), population=("areas.geojson", b" " * (MB_HALF + 1)))
    r = client.post(f"{API}/regions", headers=keys.headers("a", "admin"), files=tiny, data={"name": "toy"})
    assert r.status_code == 413 and r.json()["detail"].startswith("population: the file exceeds the upload limit")
    assert stored(services) == before and leftover_uploads(services) == []


MB_HALF = 512 * 1024
