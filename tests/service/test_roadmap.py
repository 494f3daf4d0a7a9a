"""`branchnet plan` with ``objective: roadmap`` on the toy region: roadmap.json's layout and rules, recounted from
the branch file, the per-year layers, the timeline and chart, and bad input that names its field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest

from geodata.region import RegionData
from tests.service.test_planner import DECISIONS, MAX_COVERAGE, run, scenario
from tests.service.test_planner import data_dir as data_dir  # the module fixture: the toy region as "toy"

ROADMAP: dict[str, Any] = scenario(
    MAX_COVERAGE, drop=("budget_share",), objective="roadmap",
    roadmap={"target_year": 2029, "objective": "max_credit", "budget_path_share": {2025: 1.0},
             "savings_target": 0.1, "savings_year": 2028, "max_closures_per_year": 1, "notice_years": 1,
             "no_gap": False, "vehicle_purchase": 20_000},
    solve={"time_limit_s": 20, "seed": 0},
)  # fmt: skip


@pytest.fixture(scope="module")
def road(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("roadmap")
    code, output, out = run(data_dir, ROADMAP, folder)
    assert code == 0, output
    return json.loads((out / "roadmap.json").read_text(encoding="utf-8")), out


def test_roadmap_json_layout_and_files(road: tuple[dict[str, Any], Path]) -> None:
    doc, out = road
    assert {"roadmap.json", "timeline.md", "roadmap.png", "plan.json", "layers.gpkg", "map.html"} <= {
        p.name for p in out.iterdir()
    }
    assert doc["today_cost"] > 0 and [y["year"] for y in doc["years"]] == list(range(2025, 2030))
    for y in doc["years"]:
        assert {b["decision"] for b in y["decisions"]["branches"]} <= DECISIONS
        assert y["costs"]["total"] == pytest.approx(y["costs"]["running"] + y["costs"]["one_off"])
        assert 0 <= y["kpis"]["covered_share"] <= 1
    s = doc["solver"]
    assert s["status"] in ("optimal", "feasible") and s["bound"] is not None and s["bound"] >= s["objective"] - 1e-9
    assert (out / "roadmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timeline = (out / "timeline.md").read_text(encoding="utf-8")
    assert all(f"## {y}" in timeline for y in range(2025, 2030)) and "OpenStreetMap" in timeline


def test_the_rules_hold_recounted_from_the_branch_file(
    road: tuple[dict[str, Any], Path], toy_region: RegionData
) -> None:
    doc, _ = road
    branches = toy_region.branches.set_index("branch_id")
    per_hour = 60.0 * 52  # the scenario's default cost of a weekly staffed hour, a year
    closed_before: set[str] = set()
    for k, y in enumerate(doc["years"]):
        decisions = {b["branch_id"]: b for b in y["decisions"]["branches"]}
        closed = {i for i, b in decisions.items() if b["decision"] == "close"}
        assert closed_before <= closed  # no reopening
        assert len(closed - closed_before) <= 1  # one closure a year
        if k == 0:
            assert not closed  # a year's notice: nothing closes in the first year
        # branch running cost from the branch file's cost and hours, and the scenario's cost per staffed hour
        cost, hours = branches["annual_cost"].astype(float), branches["staffed_hours_week"].astype(float)
        kept = [(i, b["hours"]) for i, b in decisions.items() if b["decision"] != "close"]
        run_cost = sum(cost[i] + per_hour * (h - hours[i]) for i, h in kept)
        assert y["costs"]["by_mode"]["branches"] == pytest.approx(run_cost)
        assert y["costs"]["total"] <= doc["today_cost"] * (1 + 1e-6) + 1e-6  # the budget path: today's cost
        if y["year"] >= 2028:
            assert y["costs"]["planner_running"] <= 0.9 * doc["today_cost"] * (1 + 1e-9)
        closed_before = closed


def test_year_layers_match_the_years(road: tuple[dict[str, Any], Path]) -> None:
    doc, out = road
    names = {name for name, _ in pyogrio.list_layers(out / "layers.gpkg")}
    for y in doc["years"]:
        assert {f"branches_{y['year']}", f"demand_{y['year']}"} <= names
        b = gpd.read_file(out / "layers.gpkg", layer=f"branches_{y['year']}")
        assert dict(zip(b["branch_id"], b["decision"], strict=True)) == {
            d["branch_id"]: d["decision"] for d in y["decisions"]["branches"]
        }


def test_a_one_year_roadmap_is_the_single_year_plan(data_dir: Path, tmp_path: Path) -> None:
    """With closure costs charged within the year by both (closure_years: 1), no notice and no limits, a one-year
    roadmap plans the single-year planner's network."""
    single = scenario(MAX_COVERAGE, solve={"time_limit_s": 20, "seed": 0}, costs={"closure_years": 1},
                      fleet={"max_vehicles": 0})  # fmt: skip
    single.pop("projection")
    code, output, out = run(data_dir, single, tmp_path / "single")
    assert code == 0, output
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    one = {k: v for k, v in single.items() if k != "budget_share"}
    one.update(objective="roadmap", roadmap={"target_year": 2025, "objective": "max_credit", "no_gap": False,
                                             "budget_path_share": {2025: 0.8}, "notice_years": 0,
                                             "max_closures_per_year": None})  # fmt: skip
    code, output, out = run(data_dir, one, tmp_path / "one")
    assert code == 0, output
    doc = json.loads((out / "roadmap.json").read_text(encoding="utf-8"))
    assert doc["solver"]["objective"] == pytest.approx(plan["solver"]["objective"], rel=1e-6)
    assert [b["decision"] for b in doc["years"][0]["decisions"]["branches"]] == [
        b["decision"] for b in plan["decisions"]["branches"]
    ]


BAD: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("target-before-today", scenario(ROADMAP, roadmap={"target_year": 2020}),
     ("roadmap.target_year", "before today_year 2025")),
    ("budget-path-outside", scenario(ROADMAP, roadmap={"budget_path": {2040: 1e6}}),
     ("roadmap.budget_path", "2040", "outside the horizon 2025-2029")),
    ("notice-longer-than-horizon", scenario(ROADMAP, roadmap={"notice_years": 6}),
     ("roadmap.notice_years", "not shorter than the horizon")),
    ("savings-year-outside", scenario(ROADMAP, roadmap={"savings_year": 2031}),
     ("roadmap.savings_year", "2031")),
    ("unreachable-savings", scenario(ROADMAP, roadmap={"savings_target": 0.9, "objective": "min_cost"}),
     ("no roadmap", "saves", "of today's running cost", "savings target is 90.0% by 2028")),
    ("roadmap-without-section", scenario(ROADMAP, roadmap=None), ("objective roadmap needs a roadmap section",)),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "words"), [(s, w) for _, s, w in BAD], ids=[n for n, _, _ in BAD])
def test_bad_roadmaps_exit_2_naming_the_field(
    data_dir: Path, tmp_path: Path, spec: dict[str, Any], words: tuple[str, ...]
) -> None:
    if spec.get("roadmap") is None:
        spec = {k: v for k, v in spec.items() if k != "roadmap"}
    code, output, out = run(data_dir, spec, tmp_path)
    assert code == 2, output
    assert "error:" in output and "Traceback" not in output
    for word in words:
        assert word in output, (word, output)
    assert not out.exists()
