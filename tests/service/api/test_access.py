"""Who may call what: the role × organisation access matrix of every API endpoint, on SQLite and PostgreSQL.

Each endpoint is one line of ``ENDPOINTS``: the least role it needs, the status for an allowed caller of the
organisation that owns the objects (``ok``), and for an allowed caller of another organisation (``foreign``:
404 for an id, exactly like a missing one). Every endpoint is called by a viewer, a planner and an admin of the
owning organisation ``a`` and of the other organisation ``b``, and without a valid key (none, malformed,
unknown, revoked): 401 without a valid key, 403 below the role, then ``ok`` / ``foreign``. A refused call
changes nothing; a foreign caller's successful call shows nothing of ``a``. ``test_every_endpoint_is_in_the_matrix``
fails when an endpoint is added without its line.

The world: organisation ``a`` has the toy region, a scenario and two succeeded runs whose results were written
once by :func:`service.plans.pipeline.run_plan`; the app runs without its executor, so queued runs stay queued.
Also here: ``branchnet keys create`` makes a working key, ``branchnet serve`` starts uvicorn with the app factory,
and ``.env.example`` lists every setting.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.api.auth import create_key
from service.batch.report import summarise
from service.config import REPO_ROOT, Settings
from service.plans.report import region_summary
from service.runs.worker import summarize
from service.store.db import ROLES, ApiKey, Batch, Region, Run
from service.store.db import Scenario as ScenarioRow
from service.store.regions import store_region
from tests.service.api.conftest import LEAFLET, Keys, create_keys

API = "/api/v1"
PLAN: dict[str, Any] = {
    "name": "toy-access",
    "region": "toy",
    "objective": "max_coverage",
    "budget_share": 0.8,
    "standards": {"branch_drive_min": 5, "stop_walk_min": 10, "home_delivery_beyond_min": 8},
    "costs": {"bookmobile": {"vehicle_annual": 5000}},
    "fleet": {"max_vehicles": 1, "intervals_weeks": [1, 2]},
    "stops": {"min_population": 20},
    "solve": {"time_limit_s": 10, "seed": 0},
}
#: A registration the access check lets through and the import then rejects (an import per case would be slow).
BAD_REGISTRATION = {"name": "nowhere", "paths": {"osm": "/nowhere.osm", "population": "/p.csv", "branches": "/b.csv"}}


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_results` stored."""

    region_id: str
    scenario_id: str
    plan_run: str
    roadmap_run: str
    batch_id: str


def seed_results(
    s: Any, services: Any, org_id: str, region: Any, name: str, plan_results: Path, roadmap_results: Path
) -> Seeded:
    """Store, for ``org_id``: the region, a scenario ``name``, two succeeded runs holding the session's computed
    plan and roadmap results (copied into the file store), and a nightly batch whose report names the roadmap run
    (the plan run as its previous one). Committed."""
    stored = store_region(s, services.files, org_id, region, region_summary(region))
    scenario = ScenarioRow(org_id=org_id, region_id=stored.id, name=name, body=PLAN, version=1)
    s.add(scenario)
    s.flush()
    runs = []
    for results in (plan_results, roadmap_results):
        run = Run(org_id=org_id, scenario_id=scenario.id, body=PLAN, status="succeeded", progress=100.0,
                  stage="done", attempts=1, summary={})  # fmt: skip
        s.add(run)
        s.flush()
        folder = services.files.run_dir(org_id, run.id)
        shutil.copytree(results, folder)
        run.result_path = folder.relative_to(services.files.root).as_posix()
        run.summary = summarize(json.loads((folder / "plan.json").read_text()))
        runs.append(run.id)
    row = {"scenario_id": scenario.id, "name": name, "org_id": org_id, "org": "org-a", "region": "toy",
           "status": "succeeded", "reasons": ["scenario edited"], "attempts": 1, "retried": False,
           "run_id": runs[1], "previous_run": runs[0], "seconds": 1.0, "stages_s": {}, "worker": "w",
           "peak_rss_mb": 100.0, "error": None}  # fmt: skip
    batch = Batch(status="succeeded", exit_code=0, options={},
                  report={"batch_id": "x", "scenarios": [row], "changes": [], "reimported": [], "wall_s": 1.0,
                          **summarise([row], 1.0)})  # fmt: skip
    s.add(batch)
    s.commit()
    return Seeded(stored.id, scenario.id, runs[0], runs[1], batch.id)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: ``path`` placeholders are filled from the world; ``{new_*}`` are made afresh for each call."""

    method: str
    path: str
    role: str  # the least role allowed
    ok: int  # an allowed caller of the owning organisation
    foreign: int = 404  # an allowed caller of another organisation
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


E = Endpoint
ENDPOINTS = [
    # regions
    E("GET", "/regions", "viewer", 200, foreign=200),
    E("POST", "/regions", "admin", 422, foreign=422, body=BAD_REGISTRATION),
    E("GET", "/regions/{region}", "viewer", 200),
    E("DELETE", "/regions/{new_region}", "admin", 204),
    # scenarios
    E("GET", "/scenarios", "viewer", 200, foreign=200),
    E("POST", "/scenarios", "planner", 201, foreign=422, body=PLAN),  # b has no region 'toy'
    E("GET", "/scenarios/{scenario}", "viewer", 200),
    E("PUT", "/scenarios/{scenario}", "planner", 200, body=PLAN),
    E("DELETE", "/scenarios/{new_scenario}", "planner", 204),
    # runs
    E("POST", "/scenarios/{scenario}/runs", "planner", 202),
    E("GET", "/scenarios/{scenario}/runs", "viewer", 200),
    E("GET", "/runs/{run}", "viewer", 200),
    E("DELETE", "/runs/{new_run}", "planner", 200),
    # results
    E("GET", "/runs/{run}/plan", "viewer", 200),
    E("GET", "/runs/{run}/timetable.csv", "viewer", 200),
    E("GET", "/runs/{run}/calendars", "viewer", 200),
    E("GET", "/runs/{run}/calendars/{calendar}", "viewer", 200),
    E("GET", "/runs/{run}/layers.gpkg", "viewer", 200),
    E("GET", "/runs/{run}/layers/{layer}.geojson", "viewer", 200),
    E("GET", "/runs/{run}/map", "viewer", 200),
    E("GET", "/runs/{run}/map.png", "viewer", 200),
    E("GET", "/runs/{run2}/roadmap", "viewer", 200),
    E("GET", "/runs/{run2}/roadmap.png", "viewer", 200),
    E("GET", "/runs/{run2}/timeline.md", "viewer", 200),
    E("GET", "/compare?runs={run},{run2}", "viewer", 200),
    # the nightly batches' reports (another organisation's batch is missing: 404)
    E("GET", "/batches", "viewer", 200, foreign=200),
    E("GET", "/batches/{batch}", "viewer", 200),
    E("GET", "/batches/{batch}/report.html", "viewer", 200),
    # the audit log (each organisation's admins see their own entries)
    E("GET", "/audit", "admin", 200, foreign=200),
]


@dataclass(frozen=True)
class Caller:
    name: str
    org: str | None = None  # "a" owns the world's objects
    role: str | None = None
    key: str | None = None  # "none", "malformed", "unknown", "revoked", "bearer-unknown" for the anonymous

    def __str__(self) -> str:
        return self.name


CALLERS = [Caller(f"{role}-{'own' if org == 'a' else 'foreign'}", org, role) for org in "ab" for role in ROLES] + [
    Caller(f"{k}-key", key=k) for k in ("none", "malformed", "unknown", "revoked", "bearer-unknown")
]


def expected(endpoint: Endpoint, caller: Caller) -> int:
    if caller.role is None:
        return 401
    if ROLES.index(caller.role) < ROLES.index(endpoint.role):
        return 403
    return endpoint.ok if caller.org == "a" else endpoint.foreign


@dataclass
class World:
    client: Any
    services: Any
    keys: Keys
    revoked: str
    ids: dict[str, str]

    def headers(self, caller: Caller) -> dict[str, str]:
        if caller.org is not None and caller.role is not None:
            return self.keys.headers(caller.org, caller.role)
        prefix = self.keys["a"]["admin"].split("_")[1]
        return {
            "none": {},
            "malformed": {"X-API-Key": "not-a-key"},
            "unknown": {"X-API-Key": f"bn_{prefix}_{'x' * 43}"},  # a known prefix with a wrong secret
            "revoked": {"X-API-Key": self.revoked},
            "bearer-unknown": {"Authorization": "Bearer bn_00000000_nothing"},
        }[caller.key or "none"]

    def fresh(self, kind: str) -> str:
        """A new object of organisation a that the call may consume."""
        a = self.keys.org_id("a")
        with self.services.sessions() as s:
            row: Any
            if kind == "new_region":
                row = Region(org_id=a, name=f"spare-{uuid.uuid4().hex[:8]}", path="orgs/none", summary={})
            elif kind == "new_scenario":
                row = ScenarioRow(org_id=a, region_id=self.ids["region"], name="spare", body=PLAN, version=1)
            else:
                row = Run(org_id=a, scenario_id=self.ids["scenario"], body=PLAN, status="queued", stage="queued")
            s.add(row)
            s.commit()
            return str(row.id)

    def state(self) -> list[Any]:
        with self.services.sessions() as s:
            return [sorted(map(repr, s.execute(select(m.__table__)).all())) for m in (Region, ScenarioRow, Run)]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, toy_region: Any,
          toy_results: Path, toy_roadmap_results: Path) -> Iterator[World]:  # fmt: skip
    """Organisations a and b with keys; a's toy region, scenario and two succeeded runs (no executor): a plan and
    a roadmap (the second, whose folder also holds its last year's plan)."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    data_dir = tmp_path_factory.mktemp(f"access-{request.param}")
    url = None
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    app = create_app(Settings(data_dir=data_dir, leaflet_dir=LEAFLET, database_url=url))
    services = app.state.services
    try:
        keys = create_keys(services)
        a = keys.org_id("a")
        with services.sessions() as s:
            revoked, row = create_key(s, "org-a", "admin", name="revoked")
            row.revoked = True
            s.commit()
            seeded = seed_results(s, services, a, toy_region, "toy-access", toy_results, toy_roadmap_results)
            calendar = min(p.name for p in (toy_results / "calendars").glob("*.ics"))
            ids = {"region": seeded.region_id, "scenario": seeded.scenario_id, "run": seeded.plan_run,
                   "run2": seeded.roadmap_run, "layer": "branches", "calendar": calendar,
                   "batch": seeded.batch_id}  # fmt: skip
        yield World(TestClient(app), services, keys, revoked, ids)
    finally:
        services.engine.dispose()
        if url is not None:
            request.getfixturevalue("postgres").drop_database(url)


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_access_matrix(world: World, endpoint: Endpoint, caller: Caller) -> None:
    values = dict(world.ids)
    for kind in re.findall(r"\{(new_\w+)\}", endpoint.path):
        values[kind] = world.fresh(kind)
    path = API + endpoint.path.format(**values)
    before = world.state()
    r = world.client.request(endpoint.method, path, headers=world.headers(caller), json=endpoint.body)
    want = expected(endpoint, caller)
    assert r.status_code == want, f"{endpoint} as {caller}: {r.status_code} {r.text[:300]}"
    if want == 401:
        assert r.json()["detail"].startswith("a valid API key is required")
        assert r.headers["www-authenticate"] == "Bearer"
    elif want == 403:
        assert r.json()["detail"] == f"this needs the {endpoint.role} role; your key has {caller.role}"
    elif want == 404 and endpoint.foreign == 404 and caller.org == "b":
        assert "not found" in r.json()["detail"]
    if r.status_code >= 400:
        assert world.state() == before, f"{endpoint} as {caller} was refused but changed the stored state"
    elif caller.org == "b" and endpoint.path != "/audit":  # b's audit log holds b's own requests (test_audit.py)
        leaked = [k for k, v in world.ids.items() if k not in ("layer", "calendar") and v in r.text]
        assert not leaked, f"{endpoint} as {caller} shows organisation a's {leaked}"


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def test_every_endpoint_is_in_the_matrix(world: World) -> None:
    paths = world.client.get(f"{API}/openapi.json").json()["paths"]
    routes = {(m.upper(), _shape(p.removeprefix(API))) for p, ops in paths.items() if p.startswith(API) for m in ops}
    matrix = {(e.method, _shape(e.path)) for e in ENDPOINTS}
    assert routes - matrix == set(), "endpoints without a line in ENDPOINTS"
    assert matrix - routes == set(), "lines of ENDPOINTS without an endpoint"


# ---------------------------------------------------------------------------------------------------------------
# keys, serve and settings


def test_keys_create_prints_a_working_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.cli import app as cli

    monkeypatch.setenv("BRANCHNET_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--org", "Rutland County", "--role", "planner", "--name", "ops"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert re.fullmatch(r"bn_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", key), made.stdout
    assert "shown only once" in made.stderr
    second = runner.invoke(cli, ["keys", "create", "--org", "Rutland County", "--role", "viewer"])
    assert second.exit_code == 0 and second.stdout.strip() != key

    client = TestClient(create_app(Settings(data_dir=tmp_path / "data", leaflet_dir=LEAFLET)))
    assert client.get(f"{API}/regions", headers={"X-API-Key": key}).status_code == 200
    refused = client.delete(f"{API}/regions/x", headers={"X-API-Key": second.stdout.strip()})
    assert refused.status_code == 403
    with client.app.state.services.sessions() as s:
        rows = s.scalars(select(ApiKey)).all()
        assert len(rows) == 2 and len({r.org_id for r in rows}) == 1  # one organisation, created once
        assert key not in {r.hash for r in rows} and rows[0].name == "ops"

    bad = runner.invoke(cli, ["keys", "create", "--org", "Rutland County", "--role", "owner"])
    assert bad.exit_code == 2 and "--role 'owner': use viewer, planner, admin" in bad.output


def test_serve_runs_uvicorn_with_the_app_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from service.cli import app as cli

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    for extra in ([], ["--processes", "3"]):
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", *extra])
        assert result.exit_code == 0, result.output
    common = {"factory": True, "host": "0.0.0.0", "port": 8123, "access_log": False}
    assert calls == [
        (("service.api.app:create_app",), {**common, "workers": None}),  # one process: no supervisor
        (("service.api.app:create_app",), {**common, "workers": 3}),
    ]


def test_env_example_lists_every_setting() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?BRANCHNET_([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}
