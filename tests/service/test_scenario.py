"""``branchnet plan --scenario``: a location section makes a branch-only study, through the one pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.store.regions import save_region

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(toy_region, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A data dir holding the toy region under the name 'toy'."""
    path = tmp_path_factory.mktemp("var")
    save_region(toy_region, path / "regions")
    return path


def plan(data_dir: Path, scenario: str, tmp_path: Path) -> tuple[int, str, Path]:
    f = tmp_path / "scenario.yaml"
    f.write_text(scenario)
    out = tmp_path / "out"
    r = runner.invoke(app, ["plan", "--scenario", str(f), "--out", str(out)],
                      env={"BRANCHNET_DATA_DIR": str(data_dir), "COLUMNS": "200"})  # fmt: skip
    return r.exit_code, r.output, out


@pytest.mark.parametrize(
    "location",
    [
        "objective: p_median\n  p: 3",
        "objective: attendance\n  budget_share: 0.7\n  decay: {kind: power, scale_min: 10, exponent: 1.5}",
        "objective: p_center\n  p: 3",
        "objective: min_cost\n  coverage_target: 0.9\n  standard_min: 10",
        "objective: max_coverage\n  p: 2\n  standard_min: 8",
        "objective: fixed_charge",
    ],
)
def test_every_objective_runs_from_a_scenario(data_dir: Path, tmp_path: Path, location: str) -> None:
    code, output, out = plan(data_dir, f"region: toy\nlocation:\n  {location}\nsolve:\n  time_limit_s: 10\n", tmp_path)
    assert code == 0, output
    result = json.loads((out / "plan.json").read_text())
    assert result["solver"]["status"] in ("optimal", "feasible", "time_limit")
    assert result["solver"]["bound"] is not None and result["solver"]["gap"] is not None
    assert result["study"] == "branches" and result["location"]["model"] in location
    if "p: 3" in location:
        assert sum(d["decision"] == "keep" for d in result["decisions"]["branches"]) == 3


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("region: toy\nlocation:\n  objective: p_median\n  pp: 3\n", "location.pp: Extra inputs are not permitted"),
        ("region: toy\nlocation:\n  objective: best\n", "location.objective: Input should be 'max_coverage'"),
        ("region: toy\nobjective: min_cost\nlocation:\n  objective: p_median\n", "location: a location section"),
        ("region: toy\nlocation:\n  objective: min_cost\n", "min_cost needs coverage_target"),
        ("region: toy\nlocation:\n  bookmobile: {vehicles: 1}\n", "has no bookmobile any more"),
        ("region: nowhere\nlocation:\n  objective: p_median\n  p: 2\n", "has not been imported"),
        ("region: toy\nlocation:\n  objective: p_median\n  p: 99\n", "choose p between"),
        ("region: toy\nlocation:\n  budget: -5\n", "location.budget: Input should be greater than 0"),
        ("region: toy\n", "max_coverage needs a budget"),  # no 'location' section: the joint planner's scenario
        ("region: toy\nlocation:\n  objective: p_median\n  p: 2\n  keep: [nope]\n", "unknown branch id"),
    ],
)
def test_bad_scenarios_name_the_field(data_dir: Path, tmp_path: Path, scenario: str, message: str) -> None:
    code, output, _ = plan(data_dir, scenario, tmp_path)
    assert code == 2, output
    assert message in output.replace("\n", " ")


def test_closing_two_small_branches_brings_a_bookmobile(data_dir: Path, tmp_path: Path, toy_region) -> None:  # type: ignore[no-untyped-def]
    """The joint planner with two small branches forced closed (what a branch-only study with a bookmobile block
    did before): a periodic timetable within the shifts, written as CSV, calendars and map layers."""
    small = toy_region.branches.sort_values("staffed_hours_week")["branch_id"].head(2).tolist()
    scenario = (
        "name: toy-bookmobile\nregion: toy\nobjective: max_coverage\nbudget_share: 1.0\n"
        "standards: {branch_drive_min: 4, stop_walk_min: 10}\nhours: {levels: [1.0]}\n"
        "fleet: {max_vehicles: 1, intervals_weeks: [1, 2]}\nstops: {min_population: 20}\n"
        f"forced: {{close: [{', '.join(small)}], no_desks: true}}\nsolve:\n  time_limit_s: 10\n"
    )
    code, output, out = plan(data_dir, scenario, tmp_path)
    assert code == 0, output
    result = json.loads((out / "plan.json").read_text())
    mobile = result["decisions"]["bookmobile"]
    assert mobile["route_days"] >= 1 and mobile["stops_served"] >= 1
    timetable = (out / "timetable.csv").read_text().splitlines()
    assert timetable[0].startswith("organisation,mobile,route,community,stop")
    assert len(timetable) - 1 == mobile["stops_served"]
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(out / "layers.gpkg")}
    assert {"bookmobile_stops", "bookmobile_routes"} <= layers
    assert "Bookmobile routes" in (out / "map.html").read_text()
    assert (out / "bookmobile_routes.geojson").is_file()
    calendars = sorted((out / "calendars").glob("*.ics"))
    assert 1 <= len(calendars) <= mobile["vehicles"]  # one per vehicle that drives
    events = sum(p.read_text().count("BEGIN:VEVENT") for p in calendars)
    assert events == mobile["stops_served"]  # one recurring event per timetable row
    shift_end = 17 * 60  # the default shift: 09:00 for 8 hours
    for row in timetable[1:]:
        arrival, departure = row.split(",")[11:13]
        assert "09:00" <= arrival < departure and int(departure[:2]) * 60 + int(departure[3:]) <= shift_end
