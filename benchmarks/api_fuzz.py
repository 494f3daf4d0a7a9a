"""Property-based API testing: schemathesis over every operation of the OpenAPI documents, once per role.

Usage::

    python -m benchmarks.api_fuzz [--examples 15] [--seed 16] [--json]

The long run of issue 16's fuzzing (the short one is ``tests/service/api/test_fuzz.py``, which uses :func:`fuzz`
in process). Starts ``branchnet serve`` (SQLite in a temporary data folder, the rate limit off so that requests
reach the handlers) on a free loopback port, makes a viewer, a planner and an admin key with ``branchnet keys
create``, uploads the synthetic toy region, stores a plan scenario and a two-year roadmap scenario and runs both to
success through the API, and adds a nightly batch's report to the database. Then, for every operation of
``/api/v1/openapi.json`` and of the OGC API's own document (``/ogc/api``), it sends ``--examples`` generated
requests (schemathesis, positive and negative data) as each caller (no key, viewer, planner, admin): mostly with
the seeded ids in the path and the ``runs`` query, so that they reach the handlers, and a valid scenario body among
the generated ones (and a registration of the toy region's files on the server: one import, 201). A DELETE
gets a fresh object (a scenario made through the API, a region or queued run row made
in the database) instead of a seeded one.

Every answer is checked: no 5xx (``not_a_server_error``), a declared status (``status_code_conformance``), a
declared content type (``content_type_conformance``) and a body of the declared schema
(``response_schema_conformance``). Printed per operation: requests sent, 5xx, schema violations (any check
failing) and the statuses; then the totals. Exits 1 on any 5xx or violation, or with fewer than ``--min-requests``
requests sent. Generation is seeded per (operation, caller): the same requests every run. Only 127.0.0.1 is ever
contacted; every loop is bounded by ``--examples``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API = "/api/v1"
ROLES = ("viewer", "planner", "admin")


@dataclass
class Tally:
    """What one operation got and answered: requests, statuses, 5xx and check failures (by kind)."""

    label: str
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.server_errors > 0 or sum(self.violations.values()) > 0

    def note(self, caller: str, case: Any, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"{caller}: {case.method} {case.formatted_path} {what}")


def checks() -> list[Any]:
    """The checks every answer must pass: no 5xx, a declared status, its declared content type and schema."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def operations(schema: Any) -> list[Any]:
    """Every operation of the schema; RuntimeError naming one that schemathesis cannot test."""
    from schemathesis.core.result import Ok

    out = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"an operation of the OpenAPI document cannot be tested: {result.err()}")
        out.append(result.ok())
    return out


def _strategies(op: Any, ids: dict[str, str], bodies: dict[str, Any]) -> list[Any]:
    """Generated cases of ``op``: mostly with the seeded ids (path and query), sometimes made-up ones."""
    from schemathesis import GenerationMode

    real: dict[str, Any] = {}
    names = [p.name for p in op.path_parameters]
    if names and all(n in ids for n in names):
        real["path_parameters"] = {n: ids[n] for n in names}
    query = {p.name: ids[p.name] for p in op.query if p.name in ids}
    if query:
        real["query"] = query
    out = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        out = [op.as_strategy(GenerationMode.POSITIVE, **real), op.as_strategy(GenerationMode.NEGATIVE, **real), out[0]]
    if op.label in bodies:  # a valid body too: generated ones seldom pass the handler's own checks
        out.append(op.as_strategy(GenerationMode.POSITIVE, body=bodies[op.label], media_type="application/json",
                                  **real))  # fmt: skip
    return out


def _send(op: Any, caller: str, headers: dict[str, str], tally: Tally, ids: dict[str, str],
          fresh: Callable[[str, str], str] | None, call_kwargs: dict[str, Any]) -> Callable[[Any], None]:  # fmt: skip
    """The body of the property test of ``op`` as ``caller``: send the case, tally the answer and its checks."""
    from schemathesis.core.failures import FailureGroup

    run_checks = checks()

    def send(case: Any) -> None:
        if fresh is not None and op.method.upper() == "DELETE":
            case.path_parameters = {k: fresh(k, v) if v == ids.get(k) else v for k, v in case.path_parameters.items()}
        tally.sent += 1
        try:
            response = case.call(headers=headers, **call_kwargs)
        except Exception as exc:  # in process, the app's own exception (a 500 over HTTP); not a transport error
            if type(exc).__module__.startswith(("requests", "urllib3")) or isinstance(exc, OSError):
                raise
            tally.server_errors += 1
            tally.statuses[500] += 1
            tally.violations["Server error"] += 1
            tally.note(caller, case, f"raised {exc!r}")
            return
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=run_checks, headers=headers, transport_kwargs=call_kwargs)
        except FailureGroup as group:
            for failure in group.exceptions:
                tally.violations[type(failure).kind_title] += 1
                tally.note(caller, case, f"-> {response.status_code}: {failure.title}: {failure.message[:400]}")

    return send


def fuzz(
    schema: Any,
    callers: dict[str, dict[str, str]],
    ids: dict[str, str],
    *,
    examples: int,
    seed: int,
    fresh: Callable[[str, str], str] | None = None,
    bodies: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
    **call_kwargs: Any,
) -> dict[str, Tally]:
    """Send ``examples`` generated requests per (operation, caller) and check every answer; tallies by operation.

    ``callers`` are request headers by name; ``ids`` are values of path and query parameters by name (the seeded
    world); ``fresh(name, value)`` gives a DELETE a new object instead of ``value``; ``bodies`` are valid request
    bodies by operation label; ``call_kwargs`` go to :meth:`schemathesis.Case.call` (``session``, ``base_url``).
    Each (operation, caller) is one Hypothesis test with its own seed, derived from ``seed``: deterministic.
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from hypothesis import strategies as st

    tallies: dict[str, Tally] = {}
    wanted = set(only) if only is not None else None
    for op in operations(schema):
        if wanted is not None and op.label not in wanted:
            continue
        tally = tallies.setdefault(op.label, Tally(op.label))
        cases = st.one_of(_strategies(op, ids, bodies or {}))
        for caller, headers in callers.items():
            test = given(case=cases)(_send(op, caller, headers, tally, ids, fresh, call_kwargs))
            test = settings(max_examples=examples, database=None, deadline=None, derandomize=False,
                            phases=[Phase.explicit, Phase.generate],
                            suppress_health_check=list(HealthCheck))(test)  # fmt: skip
            with_seed(zlib.crc32(f"{seed}:{op.label}:{caller}".encode()))(test)()
    return tallies


def table(tallies: dict[str, Tally]) -> str:
    """Per operation: requests sent, 5xx, violations and statuses; then the totals."""
    lines = [f"{'operation':<60} {'sent':>6} {'5xx':>5} {'violations':>10}  statuses"]
    for t in tallies.values():
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(t.statuses.items()))
        lines.append(f"{t.label:<60} {t.sent:>6} {t.server_errors:>5} {sum(t.violations.values()):>10}  {statuses}")
    sent = sum(t.sent for t in tallies.values())
    errors5 = sum(t.server_errors for t in tallies.values())
    bad = sum(sum(t.violations.values()) for t in tallies.values())
    lines.append(f"{'total: ' + str(len(tallies)) + ' operations':<60} {sent:>6} {errors5:>5} {bad:>10}")
    return "\n".join(lines)


def failures(tallies: dict[str, Tally]) -> str:
    """The failing operations with their violations and a few example requests."""
    lines = []
    for t in tallies.values():
        if t.failed:
            lines += [f"{t.label}: {dict(t.violations)}", *(f"    {e}" for e in t.examples)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# the long run, against a live server


def roadmap_scenario(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` as a two-year roadmap (2025 to 2026, 90 % of today's budget in 2025)."""
    body = {k: v for k, v in base.items() if k != "budget_share"}
    body.update(name=f"{base['name']}-roadmap", objective="roadmap",
                roadmap={"target_year": 2026, "objective": "max_credit", "notice_years": 0,
                         "budget_path_share": {2025: 0.9}, "no_gap": False, "max_closures_per_year": None})  # fmt: skip
    return body


@dataclass
class LiveWorld:
    """The seeded objects on the live server: keys by role, ids by parameter name, and the database for spares."""

    base: str
    keys: dict[str, str]
    ids: dict[str, str]
    db_url: str
    org_id: str
    registration: dict[str, Any] = field(default_factory=dict)

    def callers(self) -> dict[str, dict[str, str]]:
        return {"no key": {}, **{role: {"X-API-Key": self.keys[role]} for role in ROLES}}

    def fresh(self, name: str, value: str) -> str:
        """A spare object for a DELETE: a scenario through the API; a region or a queued run row in the database."""
        import httpx
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from service.store.db import Region, Run

        if name == "scenario_id":
            body = {**self.scenario, "name": "spare"}
            r = httpx.post(f"{self.base}{API}/scenarios", json=body, headers={"X-API-Key": self.keys["planner"]})
            r.raise_for_status()
            return str(r.json()["id"])
        if name not in ("region_id", "run_id"):
            return value
        engine = create_engine(self.db_url)
        try:
            with Session(engine) as s:
                row: Any
                if name == "region_id":
                    row = Region(org_id=self.org_id, name=f"spare-{zlib.crc32(str(time.time_ns()).encode())}",
                                 path="orgs/none", summary={})  # fmt: skip
                else:  # cancelled at once by the DELETE (or, if the executor is quicker, a 409: declared)
                    row = Run(org_id=self.org_id, scenario_id=self.ids["scenario_id"], body=self.scenario,
                              status="queued", stage="queued")  # fmt: skip
                s.add(row)
                s.commit()
                return str(row.id)
        finally:
            engine.dispose()

    @property
    def scenario(self) -> dict[str, Any]:
        from service.plans.scenario import example

        return example("toy_quick", name="fuzz")


def _wait(http: Any, run_id: str, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while (state := http.get(f"{API}/runs/{run_id}").json())["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the run {run_id} did not finish in {timeout_s:g} s: {state}")
        time.sleep(0.5)
    if state["status"] != "succeeded":
        raise SystemExit(f"the run {run_id} {state['status']}: {state.get('error')}")


def prepare(base: str, env: dict[str, str], tmp: Path, db_url: str) -> LiveWorld:
    """Keys, the toy region, a plan and a roadmap run to success, and a nightly batch's report."""
    import httpx
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from geodata.synthetic import generate_region, write_region
    from service.api.local_server import branchnet_command
    from service.batch.report import summarise
    from service.store.db import ApiKey, Batch

    keys = {}
    for role in ROLES:
        made = subprocess.run([branchnet_command(), "keys", "create", "--org", "fuzz", "--role", role], env=env,
                              cwd=tmp, capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        keys[role] = made.stdout.strip()
    # under <data_dir>/sources, so that a registration may name them (one import: a fixed body is sent once per caller)
    paths = write_region(generate_region("toy", seed=1), Path(env["BRANCHNET_DATA_DIR"]) / "sources" / "toy")
    world = LiveWorld(base, keys, {}, db_url, "")
    on_server = {"osm": str(paths["osm"]), "population": str(paths["areas"]), "branches": str(paths["branches"])}
    world.registration = {"name": "toy-registered", "area_field": "area_id", "group_field": "municipality",
                          "id_field": "branch_id", "paths": on_server}  # fmt: skip
    with httpx.Client(base_url=base, headers={"X-API-Key": keys["admin"]}, timeout=900) as http:
        files = {"osm": ("roads.osm", paths["osm"].read_bytes()),
                 "population": ("areas.geojson", paths["areas"].read_bytes()),
                 "branches": ("branches.geojson", paths["branches"].read_bytes())}  # fmt: skip
        form = {"name": "toy", "area_field": "area_id", "group_field": "municipality", "id_field": "branch_id"}
        region = http.post(f"{API}/regions", data=form, files=files)
        if region.status_code != 201:
            raise SystemExit(f"region upload failed: {region.status_code} {region.text}")
        runs = []
        for body in (roadmap_scenario(world.scenario), world.scenario):
            sc = http.post(f"{API}/scenarios", json=body)
            if sc.status_code != 201:
                raise SystemExit(f"scenario failed: {sc.status_code} {sc.text}")
            run = http.post(f"{API}/scenarios/{sc.json()['id']}/runs")
            if run.status_code != 202:
                raise SystemExit(f"run failed to start: {run.status_code} {run.text}")
            _wait(http, run.json()["id"])
            runs.append((sc.json()["id"], run.json()["id"]))
        calendars = http.get(f"{API}/runs/{runs[0][1]}/calendars").json()["calendars"]
    (scenario_id, run_id), (_, plan_run) = runs
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            org = s.scalars(select(ApiKey).where(ApiKey.prefix == keys["admin"].split("_")[1])).one()
            row = {"scenario_id": scenario_id, "name": "fuzz", "org_id": org.org_id, "org": "fuzz", "region": "toy",
                   "status": "succeeded", "reasons": ["scenario edited"], "attempts": 1, "retried": False,
                   "run_id": run_id, "previous_run": plan_run, "seconds": 1.0, "stages_s": {}, "worker": "w",
                   "peak_rss_mb": 100.0, "error": None}  # fmt: skip
            batch = Batch(status="succeeded", exit_code=0, options={},
                          report={"batch_id": "x", "scenarios": [row], "changes": [], "reimported": [], "wall_s": 1.0,
                                  **summarise([row], 1.0)})  # fmt: skip
            s.add(batch)
            s.commit()
            world.org_id, batch_id = org.org_id, batch.id
    finally:
        engine.dispose()
    world.ids = {"region_id": region.json()["id"], "scenario_id": scenario_id, "run_id": run_id,
                 "name": calendars[0] if calendars else "none.ics", "layer": "branches", "batch_id": batch_id,
                 "runs": f"{run_id},{plan_run}", "collection_id": f"{run_id}__branches", "feature_id": "1",
                 "collectionId": f"{run_id}__branches", "featureId": "1"}  # fmt: skip
    return world


def main() -> None:
    import httpx
    import schemathesis

    from benchmarks._common import REPO, emit, verdict
    from service.api.local_server import local_server

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--examples", type=int, default=15, help="generated requests per (operation, caller)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--min-requests", type=int, default=2000, help="fail when fewer requests were sent")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="branchnet-bench-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        settings = {"BRANCHNET_DATA_DIR": str(data), "BRANCHNET_LEAFLET_DIR": str(REPO / "node_modules" / "leaflet" /
                    "dist"), "BRANCHNET_RATE_LIMIT_PER_S": "0", "BRANCHNET_LOG_JSON": "true"}  # fmt: skip
        with local_server(settings, cwd=tmp, log=tmp / "server.log") as server:
            world = prepare(server.url, server.env, tmp, f"sqlite:///{data / 'branchnet.db'}")
            setup_s = time.perf_counter() - t0
            bodies = {f"POST {API}/scenarios": {**world.scenario, "name": "fuzz-new"},
                      f"PUT {API}/scenarios/{{scenario_id}}": world.scenario,
                      f"POST {API}/regions": world.registration}  # fmt: skip
            main_doc = schemathesis.openapi.from_url(f"{server.url}{API}/openapi.json")
            tallies = fuzz(main_doc, world.callers(), world.ids, examples=args.examples, seed=args.seed,
                           fresh=world.fresh, bodies=bodies, base_url=server.url, timeout=120)  # fmt: skip
            ogc = httpx.get(f"{server.url}/ogc/api", headers={"X-API-Key": world.keys["viewer"]}).json()
            ogc_doc = schemathesis.openapi.from_dict(ogc)
            ogc_tallies = fuzz(ogc_doc, world.callers(), world.ids, examples=args.examples, seed=args.seed,
                               base_url=f"{server.url}/ogc", timeout=120)  # fmt: skip
    wall_s = time.perf_counter() - t0
    everything = {**tallies, **{f"OGC {k}": v for k, v in ogc_tallies.items()}}
    for key, t in everything.items():
        t.label = key
    sent = sum(t.sent for t in everything.values())
    errors5 = sum(t.server_errors for t in everything.values())
    violations = sum(sum(t.violations.values()) for t in everything.values())
    failing = [t.label for t in everything.values() if t.failed]
    ok = not failing and sent >= args.min_requests
    if args.json:
        emit({"operations": len(everything), "requests": sent, "server_errors": errors5, "violations": violations,
              "failing_operations": failing, "setup_s": round(setup_s, 1), "wall_s": round(wall_s, 1), "pass": ok,
              "by_operation": {t.label: {"sent": t.sent, "5xx": t.server_errors, "violations": dict(t.violations),
                                         "statuses": dict(t.statuses)} for t in everything.values()}})  # fmt: skip
    else:
        print(f"schemathesis against branchnet serve (SQLite), {args.examples} generated requests per operation "
              f"and caller (no key, {', '.join(ROLES)}), seed {args.seed}; setup {setup_s:.0f} s, "
              f"total {wall_s:.0f} s")  # fmt: skip
        print(table(everything))
        if failing:
            print(failures(everything))
        print(f"{len(everything)} operations, {sent} requests (at least {args.min_requests}), {errors5} 5xx, "
              f"{violations} violations, {len(failing)} failing operations: {verdict(ok)}")  # fmt: skip
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
