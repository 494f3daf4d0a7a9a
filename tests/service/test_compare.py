"""`branchnet compare DIR_A DIR_B`: KPI, cost and access differences of two plans, the JSON/CSV output, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.plans.compare import CompareError, compare_dirs, compare_plans

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def area(population: float, share: float) -> dict[str, float]:
    return {"population": population, "covered": population * share, "share": share}


def kpi(covered_share: float, mean_min: float, *, groups: dict[str, float], zones: dict[str, float],
        areas: dict[str, float], home: float = 0.0) -> dict[str, Any]:  # fmt: skip
    return {
        "population": 10_000.0,
        "covered": 10_000.0 * covered_share,
        "covered_share": covered_share,
        "credit_share": covered_share - 0.05,
        "mean_drive_min": mean_min,
        "p95_drive_min": 2 * mean_min,
        "within_15_min_drive_share": covered_share,
        "within_20_min_drive_share": 0.97,
        "within_2_miles_share": 0.4,
        "unreachable": 0.0,
        "people_by_mode": {"branch": 8000.0, "bookmobile": 500.0, "desk": 0.0, "home_delivery": home, "none": 100.0},
        "by_group": {g: area(1000.0, s) for g, s in groups.items()},
        "by_zone": {z: area(5000.0, s) for z, s in zones.items()},
        "by_area": {a: area(100.0, s) for a, s in areas.items()},
    }


def plan(name: str, blocks: dict[str, dict[str, Any]], costs: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": name,
        "region": "rutland",
        "objective": "max_coverage",
        "years": list(blocks),
        "kpis": {y: {"today": kpi(0.5, 30.0, groups={}, zones={}, areas={}), "plan": k} for y, k in blocks.items()},
        "costs": {"today": {"total": 1e6, "branches": 1e6}, "plan": costs},
    }


AREAS_A = {"E001": 0.80, "E002": 1.00, "E003": 0.50, "E004": 0.90}
AREAS_B = {"E001": 0.90, "E002": 1.00, "E003": 0.20, "E004": 0.92, "E005": 1.0}  # E005 only in B


def plan_a() -> dict[str, Any]:
    k = kpi(0.90, 12.0, groups={"age_0_17": 0.9, "age_65_plus": 0.85}, zones={"Oakham": 0.95, "Uppingham": 0.8},
            areas=AREAS_A)  # fmt: skip
    k25 = kpi(0.88, 12.5, groups={"age_0_17": 0.9}, zones={"Oakham": 0.9}, areas=AREAS_A)
    costs = {"total": 900_000.0, "branches": 700_000.0, "closures": 0.0, "bookmobile": 150_000.0,
             "desks": 50_000.0, "home_delivery": {"2025": 0.0, "2035": 0.0},
             "total_by_year": {"2025": 900_000.0, "2035": 900_000.0}}  # fmt: skip
    return plan("baseline", {"2025": k, "2035": k25}, costs)


def plan_b() -> dict[str, Any]:
    k = kpi(0.95, 10.5, groups={"age_0_17": 0.91, "age_65_plus": 0.95}, zones={"Oakham": 0.94, "Uppingham": 0.9},
            areas=AREAS_B, home=50.0)  # fmt: skip
    k40 = kpi(0.9, 11.0, groups={}, zones={}, areas={})
    costs = {"total": 850_000.0, "branches": 600_000.0, "closures": 20_000.0, "bookmobile": 170_000.0,
             "desks": 40_000.0, "home_delivery": {"2025": 20_000.0, "2040": 25_000.0}}  # fmt: skip
    return plan("cuts", {"2025": k, "2040": k40}, costs)


def write_plan(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return write_plan(tmp_path / "baseline", plan_a()), write_plan(tmp_path / "cuts", plan_b())


def by(rows: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    return {r[field]: r for r in rows}


def test_kpi_and_cost_differences() -> None:
    r = compare_plans(plan_a(), plan_b())
    assert r["years"] == ["2025"]  # 2035 only in A, 2040 only in B
    assert any("2035" in n and "only in plan A" in n for n in r["notes"])
    assert any("2040" in n and "only in plan B" in n for n in r["notes"])
    k = by(r["kpis"]["2025"], "metric")
    assert k["covered_share"]["a"] == 0.9 and k["covered_share"]["b"] == 0.95
    assert k["covered_share"]["diff"] == pytest.approx(0.05)
    assert k["covered_share"]["diff_pp"] == 5.0  # rounded: no 4.999999999
    assert k["mean_drive_min"]["diff"] == pytest.approx(-1.5) and "diff_pp" not in k["mean_drive_min"]
    assert k["covered"]["diff"] == pytest.approx(500.0)
    assert k["people_by_mode.home_delivery"]["diff"] == 50.0
    metrics = [row["metric"] for row in r["kpis"]["2025"]]
    assert len(metrics) == len(set(metrics)) == 15
    assert metrics[:4] == ["population", "covered", "covered_share", "credit_share"]
    assert metrics.index("within_15_min_drive_share") < metrics.index("within_20_min_drive_share")
    assert metrics[-5:] == [f"people_by_mode.{m}" for m in ("branch", "bookmobile", "desk", "home_delivery", "none")]

    costs = {(c["key"], c["year"]): c for c in r["costs"]}
    assert [c["key"] for c in r["costs"]][:5] == ["total", "branches", "closures", "bookmobile", "desks"]
    assert costs["total", None]["diff"] == -50_000.0
    assert costs["branches", None]["diff"] == -100_000.0
    assert costs["home_delivery", "2025"]["diff"] == 20_000.0
    assert costs["home_delivery", "2035"]["b"] is None and costs["home_delivery", "2035"]["diff"] is None
    assert costs["home_delivery", "2040"]["a"] is None
    assert costs["total_by_year", "2025"]["b"] is None  # missing in B: compared as missing, not an error


def test_groups_zones_areas_sorted_by_largest_change() -> None:
    r = compare_plans(plan_a(), plan_b())
    groups = r["groups"]["2025"]
    assert [g["key"] for g in groups] == ["age_65_plus", "age_0_17"]
    assert groups[0]["diff_pp"] == pytest.approx(10.0) and groups[1]["diff_pp"] == pytest.approx(1.0)
    zones = r["zones"]["2025"]
    assert [z["key"] for z in zones] == ["Uppingham", "Oakham"]
    assert zones[1]["diff_pp"] == pytest.approx(-1.0)
    areas = r["areas"]["2025"]
    assert [a["key"] for a in areas] == ["E003", "E001", "E004", "E002", "E005"]
    assert [a["diff_pp"] for a in areas[:4]] == pytest.approx([-30.0, 10.0, 2.0, 0.0])
    assert [a["changed"] for a in areas] == [True, True, True, False, True]
    assert areas[-1]["share_a"] is None and areas[-1]["share_b"] == 1.0 and areas[-1]["diff_pp"] is None
    assert areas[0]["population_a"] == 100.0 and areas[0]["covered_b"] == pytest.approx(20.0)


def test_missing_keys_give_empty_sections() -> None:
    r = compare_plans({"kpis": {"2025": {"plan": {"covered_share": 0.5}}}}, {"years": ["2025"], "kpis": {}})
    assert r["years"] == [] and r["kpis"] == {} and r["costs"] == [] and r["areas"] == {}
    assert any("share no year" in n for n in r["notes"])
    r = compare_plans({"kpis": {"2025": {"plan": {"covered_share": 0.5}}}}, {"kpis": {"2025": {"plan": {}}}})
    assert r["kpis"]["2025"] == [{"metric": "covered_share", "a": 0.5, "b": None, "diff": None, "diff_pp": None}]
    assert r["groups"] == {"2025": []}
    with pytest.raises(CompareError, match="plan B"):
        compare_plans({}, [])  # type: ignore[arg-type]


def test_cli_prints_and_writes_json(dirs: tuple[Path, Path]) -> None:
    a, b = dirs
    res = runner.invoke(app, ["compare", str(a), str(b)], env=ENV)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "+5.0 pp" in out  # covered_share 90.0% -> 95.0%
    assert "90.0%" in out and "95.0%" in out
    assert "-30.0 pp" in out and "E003" in out  # areas where access changed
    assert "only in B" in out  # E005
    assert "Areas where access changed, 2025: 4 of 5" in out
    assert "-50,000" in out  # total cost
    assert "only in plan A" in out
    path = b / "compare_baseline.json"
    assert f"wrote {path}" in out.replace("\n", "")
    written = json.loads(path.read_text())
    assert written == compare_dirs(a, b)
    assert written["a"]["name"] == "baseline" and written["b"]["scenario"] == "cuts"
    assert [x["key"] for x in written["areas"]["2025"]][:2] == ["E003", "E001"]


def test_cli_out_csv(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = dirs
    out = tmp_path / "reports" / "diff.csv"
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)], env=ENV)
    assert res.exit_code == 0, res.output
    assert not (b / "compare_baseline.json").exists()
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["section", "year", "key", "metric", "a", "b", "diff"]
    index = {(r["section"], r["year"], r["key"], r["metric"]): r for r in rows}
    cs = index["kpis", "2025", "", "covered_share"]
    assert float(cs["a"]) == 0.9 and float(cs["b"]) == 0.95 and float(cs["diff"]) == pytest.approx(0.05)
    assert float(index["costs", "", "total", "annual_cost"]["diff"]) == -50_000.0
    assert index["costs", "2035", "home_delivery", "annual_cost"]["b"] == ""
    e3 = index["areas", "2025", "E003", "share"]
    assert float(e3["diff"]) == pytest.approx(-0.3)
    assert index["areas", "2025", "E005", "share"]["a"] == ""
    assert float(index["groups", "2025", "age_65_plus", "covered"]["diff"]) == pytest.approx(100.0)
    assert {r["section"] for r in rows} == {"kpis", "costs", "groups", "zones", "areas"}


def test_cli_out_json_path(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = dirs
    out = tmp_path / "cmp.json"
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)], env=ENV)
    assert res.exit_code == 0, res.output
    assert set(json.loads(out.read_text())) >= {"kpis", "costs", "groups", "zones", "areas", "years", "notes"}


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("missing_dir", "nowhere/plan.json"),
        ("no_plan", "empty/plan.json"),
        ("bad_json", "broken/plan.json"),
        ("not_object", "listy/plan.json"),
        ("location_plan", "legacy/plan.json"),
    ],
)
def test_cli_bad_input_names_the_file_and_writes_nothing(
    dirs: tuple[Path, Path], tmp_path: Path, case: str, named: str
) -> None:
    a, _ = dirs
    folder = tmp_path / named.split("/")[0]
    if case == "no_plan":
        folder.mkdir()
    elif case == "bad_json":
        folder.mkdir()
        (folder / "plan.json").write_text('{"kpis": {"2025": ')
    elif case == "not_object":
        folder.mkdir()
        (folder / "plan.json").write_text("[1, 2]")
    elif case == "location_plan":
        write_plan(folder, {"region": "r", "kpis": {"before": {}, "after": {}}})
    before = files(tmp_path)
    for args in (["compare", str(a), str(folder)], ["compare", str(folder), str(a), "--out", str(tmp_path / "x.csv")]):
        res = runner.invoke(app, args, env=ENV)
        assert res.exit_code == 2, res.output
        text = res.output.replace("\n", "")
        assert "error:" in text and str(tmp_path / named) in text
        assert "Traceback" not in text
        assert files(tmp_path) == before  # nothing written


def test_unwritable_out_is_a_user_error(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = dirs
    (tmp_path / "blocker").write_text("a file, not a folder")
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "blocker" / "c.json")], env=ENV)
    assert res.exit_code == 2, res.output
    assert "blocker/c.json" in res.output.replace("\n", "")
    assert not (b / "compare_baseline.json").exists()


def test_same_plan_twice_has_no_changes(dirs: tuple[Path, Path]) -> None:
    a, _ = dirs
    r = compare_dirs(a, a)
    assert all(row["diff"] in (0.0, None) for rows in r["kpis"].values() for row in rows)
    assert not any(row["changed"] for rows in r["areas"].values() for row in rows)
    assert r["notes"] == []
    res = runner.invoke(app, ["compare", str(a), str(a)], env=ENV)
    assert res.exit_code == 0 and "access is unchanged in every area" in res.output
