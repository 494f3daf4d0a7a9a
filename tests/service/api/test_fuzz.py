"""Property-based API testing: schemathesis over every operation of the OpenAPI document, once per role.

The world: organisation ``a`` has the toy region, a scenario, a succeeded roadmap run (whose folder holds every
result file: plan, timetable, calendars, layers, map, roadmap, chart and timeline), a succeeded plan run and a
nightly batch; the app runs without its executor, so the runs that planners queue stay queued. schemathesis
generates requests for every operation of ``/api/v1/openapi.json`` (positive and negative data), mostly with these
real ids in the path and ``runs`` query (so that requests reach the handlers, not only 404s) and sometimes with
made-up ones, and sends :data:`EXAMPLES` of them per operation as each caller: no key, a viewer, a planner and an
admin of ``a``. A DELETE gets a fresh object of its kind instead of the seeded one, so the world stays whole. The
OGC API's own document (``/ogc/api``) is fuzzed the same way.

Every answer must pass ``not_a_server_error`` (no 5xx), ``status_code_conformance`` (a declared status),
``content_type_conformance`` and ``response_schema_conformance`` (the declared body). Generation is seeded per
(operation, caller) (:mod:`benchmarks.api_fuzz`), so a run sends the same requests every time. The rate limit is
off (it would make the answers depend on timing); :func:`test_a_429_is_declared` checks its answer separately.
``test_the_fuzzer_catches_*`` break a handler on purpose and check that the run fails. The long run is ``python -m
benchmarks.api_fuzz`` (``make bench``), against a live ``branchnet serve``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.api_fuzz import Tally, fuzz, operations, table
from service.config import Settings
from tests.service.api.conftest import LEAFLET, Keys, create_keys
from tests.service.api.test_access import PLAN, seed_results

#: Generated requests per (operation, caller).
EXAMPLES = 8
SEED = 16
ROLES = ("viewer", "planner", "admin")


@dataclass
class World:
    app: Any
    services: Any
    keys: Keys
    ids: dict[str, str]
    registration: dict[str, Any] = field(default_factory=dict)

    def callers(self) -> dict[str, dict[str, str]]:
        return {"no key": {}, **{role: self.keys.headers("a", role) for role in ROLES}}

    def fresh(self, name: str, _value: str) -> str:
        """A new object of organisation ``a`` for a DELETE to consume (``name`` is the path parameter)."""
        import uuid

        from service.store.db import Region, Run
        from service.store.db import Scenario as ScenarioRow

        a = self.keys.org_id("a")
        with self.services.sessions() as s:
            row: Any
            if name == "region_id":
                row = Region(org_id=a, name=f"spare-{uuid.uuid4().hex[:8]}", path="orgs/none", summary={})
            elif name == "scenario_id":
                row = ScenarioRow(org_id=a, region_id=self.ids["region_id"], name="spare", body=PLAN, version=1)
            elif name == "run_id":
                row = Run(org_id=a, scenario_id=self.ids["scenario_id"], body=PLAN, status="queued", stage="queued")
            else:
                return _value
            s.add(row)
            s.commit()
            return str(row.id)

    def run(self, schema: Any, **kwargs: Any) -> dict[str, Tally]:
        from schemathesis.python.asgi import get_client

        # a client that is not entered: no lifespan, so no executor (queued runs stay queued)
        bodies = {
            "POST /api/v1/scenarios": {**PLAN, "name": "toy-fuzz-new"},
            "PUT /api/v1/scenarios/{scenario_id}": PLAN,
            "POST /api/v1/regions": self.registration,
        }
        return fuzz(schema, self.callers(), self.ids, examples=kwargs.pop("examples", EXAMPLES), seed=SEED,
                    fresh=self.fresh, bodies=bodies, session=get_client(self.app), **kwargs)  # fmt: skip


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "leaflet_dir": LEAFLET, "log_json": True, "rate_limit_per_s": 0}
    return Settings(**(values | overrides))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, toy_region: Any, toy_sources: dict[str, Path], toy_results: Path,
          toy_roadmap_results: Path) -> Iterator[World]:  # fmt: skip
    """The app on SQLite with organisation a's toy region, scenario, two succeeded runs and a batch (no executor)."""
    import logging

    from service.api.app import create_app

    data_dir = tmp_path_factory.mktemp("fuzz")
    app = create_app(_settings(data_dir))
    sources = data_dir / "sources"  # server files an admin may register (one import, 201)
    shutil.copytree(toy_sources["osm"].parent, sources)
    registration = {"name": "toy-registered", "area_field": "area_id", "group_field": "municipality",
                    "id_field": "branch_id", "paths": {k: str(sources / toy_sources[f].name) for k, f in
                                                       (("osm", "osm"), ("population", "areas"),
                                                        ("branches", "branches"))}}  # fmt: skip
    services = app.state.services
    quiet = logging.getLogger("branchnet")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # one access log line per generated request would drown the output
    try:
        keys = create_keys(services)
        a = keys.org_id("a")
        with services.sessions() as s:
            seeded = seed_results(s, services, a, toy_region, "toy-fuzz", toy_results, toy_roadmap_results)
            run, other = seeded.roadmap_run, seeded.plan_run
            calendar = min(p.name for p in (toy_roadmap_results / "calendars").glob("*.ics"))
            ids = {"region_id": seeded.region_id, "scenario_id": seeded.scenario_id, "run_id": run, "name": calendar,
                   "layer": "branches", "batch_id": seeded.batch_id, "runs": f"{run},{other}",
                   "collection_id": f"{run}__branches", "feature_id": "1", "collectionId": f"{run}__branches",
                   "featureId": "1"}  # fmt: skip
        yield World(app, services, keys, ids, registration)
    finally:
        quiet.setLevel(level)
        services.engine.dispose()


def _schema(world: World) -> Any:
    import schemathesis

    schema = schemathesis.openapi.from_dict(world.app.openapi())
    schema.app = world.app
    return schema


def _report(tallies: dict[str, Tally]) -> str:
    lines = [table(tallies)]
    for t in tallies.values():
        lines += [f"{t.label}: {dict(t.violations)}", *(f"    {e}" for e in t.examples)] if t.failed else []
    return "\n".join(lines)


def test_every_operation_conforms_as_every_role(world: World) -> None:
    schema = _schema(world)
    labels = {op.label for op in operations(schema)}
    tallies = world.run(schema)
    assert set(tallies) == labels
    failed = [t.label for t in tallies.values() if t.failed]
    assert not failed, f"{len(failed)} of {len(tallies)} operations fail:\n{_report(tallies)}"
    # the seeded ids reach the handlers: every read of the world answers 200 to a viewer at least once
    reached = {label for label, t in tallies.items() if t.statuses[200] or t.statuses[201] or t.statuses[204]}
    unreached = sorted(label for label in labels if label.startswith("GET") and label not in reached)
    assert not unreached, f"never answered 2xx: {unreached}\n{table(tallies)}"
    for label in ("POST /api/v1/regions", "POST /api/v1/scenarios", "PUT /api/v1/scenarios/{scenario_id}",
                  "DELETE /api/v1/scenarios/{scenario_id}", "DELETE /api/v1/regions/{region_id}",
                  "POST /api/v1/scenarios/{scenario_id}/runs", "DELETE /api/v1/runs/{run_id}"):  # fmt: skip
        t = tallies[label]
        done = t.statuses[200] + t.statuses[201] + t.statuses[202] + t.statuses[204]
        assert t.statuses[401] and t.statuses[403] and done, f"{label}: {dict(t.statuses)}"


def test_the_ogc_document_conforms(world: World) -> None:
    import schemathesis

    from service.api.ogc_document import api_document

    schema = schemathesis.openapi.from_dict(api_document("http://testserver/ogc"))
    schema.app = world.app
    tallies = world.run(schema)
    assert len(tallies) == 7
    assert not [t for t in tallies.values() if t.failed], _report(tallies)
    assert tallies["GET /collections/{collectionId}/items"].statuses[200] > 0, table(tallies)


def test_a_429_is_declared(world: World, tmp_path: Path) -> None:
    """The rate limit's answer (429, ``Retry-After``, an error body) is what the document declares."""
    from fastapi.testclient import TestClient
    from schemathesis.core.failures import FailureGroup

    from benchmarks.api_fuzz import checks
    from service.api.app import create_app

    app = create_app(_settings(tmp_path / "data", rate_limit_per_s=0.001, rate_limit_burst=1))
    keys = create_keys(app.state.services)
    schema = _schema(World(app, app.state.services, keys, {}))
    client = TestClient(app)
    for label in ("GET /api/v1/regions", "GET /metrics", "GET /ogc/conformance"):
        method, path = label.split(" ")
        op = schema[path][method]
        case = op.Case(headers=keys.headers("a", "viewer"))
        answers = [client.request(method, path, headers=keys.headers("a", "viewer")) for _ in range(3)]
        assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) >= 1
        try:
            case.validate_response(answers[-1], checks=checks())
        except FailureGroup as exc:  # pragma: no cover - the message says what is undeclared
            pytest.fail(f"{label}: {exc}")


@pytest.mark.parametrize("breakage", ["undeclared status", "wrong body", "server error"])
def test_the_fuzzer_catches(world: World, breakage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Break one handler: the run fails on that operation (so a passing run means something)."""
    from service.api import batches
    from service.errors import ConflictError

    real = batches._report

    def broken(*args: Any) -> Any:
        row, mine = real(*args)
        if breakage == "undeclared status":
            raise ConflictError("a 409 that GET /batches/{id} does not declare")
        if breakage == "wrong body":
            return row, {**mine, "scenarios": "not a list"}
        return row, {**mine, "counts": object()}  # not JSON: a 500

    monkeypatch.setattr(batches, "_report", broken)
    label = "GET /api/v1/batches/{batch_id}"
    tallies = world.run(_schema(world), only=[label], examples=4)
    want = {"undeclared status": "Undocumented status code", "wrong body": "Response violates schema",
            "server error": "Server error"}[breakage]  # fmt: skip
    assert tallies[label].failed and tallies[label].violations[want] > 0, dict(tallies[label].violations)
