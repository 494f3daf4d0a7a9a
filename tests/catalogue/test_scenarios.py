"""Bad scenarios, each through ``branchnet plan FILE.yaml`` (exit code 2) and ``POST`` and ``PUT /api/v1/scenarios``
(422): every field's wrong type, an out-of-range value, an unknown key, contradictions, and files that are not
scenarios. The message names the field (and on the command line the file); nothing is written (no output folder,
the stored scenario keeps its body and version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.catalogue._support import Entry, cli, snapshot, unchanged
from tests.catalogue.conftest import API, SCENARIO, Service


def sc(**changes: Any) -> dict[str, Any]:
    """The good scenario with top-level fields replaced (``None`` drops one)."""
    out: dict[str, Any] = json.loads(json.dumps(SCENARIO))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


ROADMAP = {"target_year": 2030, "savings_target": 0.1, "savings_year": 2040}
ENTRIES = [
    Entry("budget-wrong-type", "budget: 'lots'", "budget: Input should be a valid number",
          extra={"body": sc(budget_share=None, budget="lots")}),
    Entry("budget-negative", "budget: -1", "budget: Input should be greater than 0",
          extra={"body": sc(budget_share=None, budget=-1)}),
    Entry("budget-share-zero", "budget_share: 0", "budget_share: Input should be greater than 0",
          extra={"body": sc(budget_share=0)}),
    Entry("objective-unknown", "objective: cheapest",
          "objective: Input should be 'min_cost', 'max_coverage', 'pareto', 'location' or 'roadmap'",
          extra={"body": sc(objective="cheapest")}),
    Entry("unknown-key", "a top-level key colour", "colour: Extra inputs are not permitted",
          extra={"body": sc(colour="red")}),
    Entry("unknown-nested-key", "standards.branch_drive (a typo of branch_drive_min)",
          "standards.branch_drive: Extra inputs are not permitted",
          extra={"body": sc(standards={"branch_drive": 10})}),
    Entry("standards-wrong-type", "standards: 15 (a number, not a section)",
          "standards: Input should be a valid dictionary or instance of StandardsSpec",
          extra={"body": sc(standards=15)}),
    Entry("budget-and-share", "budget and budget_share together", "give budget or budget_share, not both",
          extra={"body": sc(budget=100_000)}),
    Entry("max-coverage-without-budget", "objective max_coverage without a budget",
          "max_coverage needs a budget (or budget_share)", extra={"body": sc(budget_share=None)}),
    Entry("keep-and-close", "branch main in forced.keep and forced.close",
          "forced: branch(es) ['main'] are both in keep and in close",
          extra={"body": sc(forced={"keep": ["main"], "close": ["main"]})}),
    Entry("forced-unknown-branch", "forced.keep: [atlantis], no such branch",
          {"cli": "forced.keep: unknown branch id(s) ['atlantis']; the region's branches are ['main', 'east']",
           "api": "forced.keep: unknown branch id(s) atlantis in region 'tiny'"},
          extra={"body": sc(forced={"keep": ["atlantis"]})}),
    Entry("region-missing", "no region", "region: Field required", extra={"body": sc(region=None)}),
    Entry("region-unknown", "region: atlantis, never imported",
          {"cli": "region 'atlantis' has not been imported (imported regions: tiny)",
           "api": "region: region 'atlantis' is not imported in your organisation (its regions: tiny)"},
          extra={"body": sc(region="atlantis")}),
    Entry("region-name-too-long", "a region name of 64 characters", "region: String should have at most 63 characters",
          extra={"body": sc(region="r" * 64)}),
    Entry("weekday-out-of-range", "fleet.weekdays: [7]", "fleet.weekdays: distinct weekdays 0 (Monday) to 6 (Sunday)",
          extra={"body": sc(fleet={"weekdays": [7]})}),
    Entry("shift-too-long", "fleet.shift_hours: 20", "fleet.shift_hours: Input should be less than or equal to 14",
          extra={"body": sc(fleet={"shift_hours": 20})}),
    Entry("interval-unsupported", "fleet.intervals_weeks: [5]",
          "fleet.intervals_weeks: visit intervals among 1, 2, 3, 4 weeks",
          extra={"body": sc(fleet={"intervals_weeks": [5]})}),
    Entry("hours-levels-negative", "hours.levels: [-1]", "hours.levels: hours levels must be positive factors",
          extra={"body": sc(hours={"levels": [-1]})}),
    Entry("coverage-target-above-1", "standards.coverage_target: 1.5",
          "standards.coverage_target: Input should be less than or equal to 1",
          extra={"body": sc(standards={"coverage_target": 1.5})}),
    Entry("group-target-unknown-group", "standards.group_targets: {teens: 0.5}",
          "standards.group_targets: key 'teens': Input should be 'age_0_17', 'age_18_64' or 'age_65_plus'",
          extra={"body": sc(standards={"group_targets": {"teens": 0.5}})}),
    Entry("projection-years-reversed", "projection target_year 2020 before today_year 2025",
          "projection: target_year 2020 must come after today_year 2025",
          extra={"body": sc(projection={"target_year": 2020, "today_year": 2025})}),
    Entry("dwell-contradiction", "stops.setup_min 130 above max_dwell_min 120",
          "stops: max_dwell_min (120) must exceed setup_min (130)", extra={"body": sc(stops={"setup_min": 130})}),
    Entry("location-with-objective", "a location section with objective max_coverage",
          "location: a location section makes a branch-only study, but objective is 'max_coverage'",
          extra={"body": sc(location={"objective": "p_median", "p": 1})}),
    Entry("roadmap-savings-year-outside", "roadmap savings_year 2040 after target_year 2030",
          "roadmap.savings_year: 2040 is not a year of the horizon 2025-2030",
          extra={"body": sc(objective="roadmap", budget_share=None, roadmap=ROADMAP)}),
    Entry("seed-negative", "solve.seed: -1 (the solvers take 0 to 2**31 - 1)",
          "solve.seed: Input should be greater than or equal to 0", extra={"body": sc(solve={"seed": -1})}),
    Entry("seed-huge", "solve.seed: 10**30", "solve.seed: Input should be less than or equal to 2147483647",
          extra={"body": sc(solve={"seed": 10**30})}),
    Entry("name-too-long", "a name of 201 characters", "name: at most 200 characters, not 201",
          extra={"body": sc(name="n" * 201)}),
    Entry("desk-latitude", "an outreach site at latitude 100",
          "outreach.sites.0.lat: Input should be less than or equal to 90",
          extra={"body": sc(outreach={"sites": [{"id": "d1", "lon": 9.5, "lat": 100}]})}),
    Entry("not-a-mapping", "a list of scenarios", "a scenario is a mapping of fields, not list",
          extra={"body": [SCENARIO]}),
    # the command line only: YAML that JSON cannot carry, and files that are not scenarios
    Entry("time-limit-infinite", "solve.time_limit_s: .inf (YAML)",
          "solve.time_limit_s: Input should be a finite number",
          extra={"yaml": yaml.safe_dump(SCENARIO).replace("time_limit_s: 5", "time_limit_s: .inf")}),
    Entry("yaml-syntax-error", "a YAML file with an unclosed bracket", "not a readable YAML/JSON scenario",
          extra={"yaml": "region: tiny\nbudget_share: [0.8\n"}),
    Entry("not-utf8", "a scenario in Latin-1 with é on line 1", "line 1: byte 0xe9 is not UTF-8",
          extra={"yaml": "name: R\xe9seau\nregion: tiny\nbudget_share: 0.8\n".encode("latin-1")}),
    Entry("seed-flag-negative", "a good file with --seed -1",
          "command-line flags --time-limit/--seed: solve.seed: Input should be greater than or equal to 0",
          extra={"body": sc(), "flags": ["--seed", "-1"]}),
]  # fmt: skip
IDS = [e.id for e in ENTRIES]
API_ENTRIES = [e for e in ENTRIES if "body" in e.extra and "flags" not in e.extra]


def scenario_file(entry: Entry, folder: Path) -> Path:
    path = folder / "scenario.yaml"
    data = entry.extra.get("yaml")
    if data is None:
        data = yaml.safe_dump(entry.extra["body"])
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_cli(entry: Entry, cli_data: Path, tmp_path: Path) -> None:
    path = scenario_file(entry, tmp_path)
    out = tmp_path / "out"
    before = snapshot(cli_data)
    code, output = cli(["plan", str(path), "--out", str(out), *entry.extra.get("flags", [])], cli_data)
    assert code == entry.exit_code, output
    assert "error:" in output and "internal error" not in output and "Traceback" not in output, output
    if entry.id not in ("region-unknown", "forced-unknown-branch", "seed-flag-negative"):  # found by region/flag
        assert f"{path}: " in output, output
    assert entry.expected("cli") in output, output
    assert not out.exists()
    unchanged(before, snapshot(cli_data))


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("entry", API_ENTRIES, ids=[e.id for e in API_ENTRIES])
def test_api(entry: Entry, method: str, service: Service) -> None:
    path = f"{API}/scenarios" if method == "POST" else f"{API}/scenarios/{service.scenario_id}"
    before = service.snapshot()
    r = service.client.request(method, path, headers=service.headers("a", "planner"), json=entry.extra["body"])
    assert r.status_code == entry.status, r.text
    detail = r.json()["detail"]
    assert detail.startswith("scenario: "), detail
    assert entry.expected("api") in detail, detail
    unchanged(before, service.snapshot())
