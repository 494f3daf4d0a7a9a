"""One pipeline behind every entry point, and every example through it: by the CLI and by the API.

``service.plans.pipeline.run_plan`` is the only function that chains scenario, region, problem, solve, report and
files; the CLI's ``plan`` (a file or flags) and ``demo``, and the API's run worker, all call it. Every scenario
file in ``examples/`` plans through ``branchnet plan FILE`` and through the API as a stored scenario whose run
succeeds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from service.cli import app as cli
from service.plans import pipeline
from service.store.regions import save_region
from tests.service.api.conftest import LEAFLET, REPO, AppFactory, Keys, create_keys
from tests.service.api.test_runs import succeeded

API = "/api/v1"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
REGION_FIXTURES = {"toy": "toy_region", "rutland": "rutland_region", "synthetic-demo-42": "demo_region"}
TIME_LIMIT_S = 5.0  # each example's own limit, capped: the test checks that it runs, not how well
#: Examples whose first plan meeting every constraint takes longer: Rutland at 75% of today's budget needs a routed
#: bookmobile for the villages beyond 10 minutes; with the slower, junction-costed times of issue 14 the search
#: needs more than 5 s to find one.
#: A roadmap plans a network per keep/close pattern (16 for Rutland, a chain of the demo's 14 branches) before it
#: chains the years; 5 s plans too few of them, and at 30 s the demo's chain reaches its 15% saving with one or two
#: networks to spare (each network's solve takes 4-5 s here), too close for a busy CI machine.
LONGER_S = {"rutland_bookmobile": 30.0, "demo_roadmap": 60.0, "rutland_roadmap": 60.0, "demo_network": 30.0}


def test_one_definition_of_the_pipeline() -> None:
    """``grep`` finds one ``def run_plan``; solves are started only by the pipeline's own modules."""
    sources = {p: p.read_text() for p in (REPO / "service").rglob("*.py")}
    defs = [p for p, text in sources.items() if re.search(r"^def run_plan\(", text, re.M)]
    assert defs == [REPO / "service" / "plans" / "pipeline.py"]
    allowed = {REPO / "service" / "plans" / f for f in ("pipeline.py", "location.py", "pareto.py")}
    for call in ("solve_plan(", "solve_location(", "pareto_front("):
        callers = {p for p, text in sources.items() if call in text.replace(f"def {call}", "")}
        assert callers <= allowed, (call, sorted(map(str, callers - allowed)))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of the pipeline (by scenario name), and let it run."""
    calls: list[str] = []
    real = pipeline.run_plan

    def recording(region: Any, scenario: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(scenario.name)
        return real(region, scenario, *args, **kwargs)

    monkeypatch.setattr(pipeline, "run_plan", recording)
    return calls


def test_every_entry_point_goes_through_the_pipeline(spy: list[str], toy_region: Any, tmp_path: Path) -> None:
    data = tmp_path / "var"
    save_region(toy_region, data / "regions")
    env = {"BRANCHNET_DATA_DIR": str(data), "COLUMNS": "200"}
    runner = CliRunner()
    quick = str(REPO / "examples" / "toy_quick.yaml")

    r = runner.invoke(cli, ["plan", quick, "--out", str(tmp_path / "a"), "--time-limit", "5"], env=env)
    assert r.exit_code == 0, r.output
    assert spy == ["toy-quick"]
    r = runner.invoke(
        cli, ["plan", "toy", "--objective", "p_median", "--p", "3", "--out", str(tmp_path / "b")], env=env
    )
    assert r.exit_code == 0, r.output
    assert spy[-1] == "toy-p_median" and len(spy) == 2
    r = runner.invoke(cli, ["demo", "--preset", "toy", "--seed", "7", "--scenario", quick, "--out", str(tmp_path / "c"),
                            "--json"], env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert spy[-1] == "toy-quick" and len(spy) == 3
    assert json.loads(r.stdout)["region"] == "synthetic-toy-7"  # --json: the plan as one document

    # the API's run worker, executed here (the app's own executor would run it in another process)
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings
    from service.runs.worker import execute_run

    app = create_app(Settings(data_dir=tmp_path / "api", leaflet_dir=LEAFLET))
    services = app.state.services
    run_id, _ = _stored_run(TestClient(app), services, toy_region, yaml.safe_load(Path(quick).read_text()))
    status = execute_run(run_id, services.settings.db_url, services.settings.data_dir, LEAFLET, workers=1)
    assert status == "succeeded"
    assert spy[-1] == "toy-quick" and len(spy) == 4


def _stored_run(client: Any, services: Any, region: Any, body: dict[str, Any]) -> tuple[str, Keys]:
    """Store ``region`` for organisation a, post ``body`` as its scenario and queue a run; the run's id, the keys."""
    from service.plans.report import region_summary
    from service.store.regions import store_region

    keys = create_keys(services, orgs=("a",))
    with services.sessions() as s:
        store_region(s, services.files, keys.org_id("a"), region, region_summary(region))
    planner = keys.headers("a", "planner")
    made = client.post(f"{API}/scenarios", json=body, headers=planner)
    assert made.status_code == 201, made.text
    run = client.post(f"{API}/scenarios/{made.json()['id']}/runs", headers=planner)
    assert run.status_code == 202, run.text
    return str(run.json()["id"]), keys


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_plans_through_the_cli_and_the_api(
    path: Path, request: pytest.FixtureRequest, tmp_path: Path, make_app: AppFactory
) -> None:
    body = yaml.safe_load(path.read_text())
    solve = body.get("solve") or {}
    cap = LONGER_S.get(path.stem, TIME_LIMIT_S)
    body["solve"] = {**solve, "time_limit_s": min(float(solve.get("time_limit_s", 60)), cap)}
    region = request.getfixturevalue(REGION_FIXTURES[body["region"]])
    data = tmp_path / "var"
    save_region(region, data / "regions")
    spec = tmp_path / path.name
    spec.write_text(yaml.safe_dump(body))

    r = CliRunner().invoke(cli, ["plan", str(spec), "--out", str(tmp_path / "cli"), "--json"],
                           env={"BRANCHNET_DATA_DIR": str(data)})  # fmt: skip
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["scenario"] == body.get("name", "scenario") and plan["region"] == body["region"]
    assert {"plan.json", "layers.gpkg", "map.html"} <= {p.name for p in (tmp_path / "cli").iterdir()}

    client, services = make_app(data_dir=tmp_path / "api", workers=1)
    run_id, keys = _stored_run(client, services, region, body)
    run = succeeded(client, keys, run_id, timeout=240)  # the app's executor runs it in a worker process
    assert run["summary"]["branches_total"] == len(region.branches)
    served = client.get(f"{API}/runs/{run_id}/plan", headers=keys.headers("a", "viewer")).json()
    assert served["scenario"] == plan["scenario"] and served["study"] == plan["study"]
