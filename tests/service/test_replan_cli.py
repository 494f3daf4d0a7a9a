"""`branchnet timetable replan` and `check`: output, written files, validity of the file, bad input, network travel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geodata.libraries_hacked import COLUMNS, read_timetable
from service.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def stops_csv(path: Path, points: list[tuple[float, float]], *, bad_rule_row: int | None = None) -> Path:
    """Two fortnightly route-days a day apart, visiting the points in a zig-zag order."""
    lines = [",".join(COLUMNS)]
    half = len(points) // 2
    for i, (lon, lat) in enumerate(points):
        route, day, start = ("Tue", "Tuesday", "2024-01-02") if i < half else ("Wed", "Wednesday", "2024-01-03")
        j = i if i < half else i - half
        minutes = 9 * 60 + 50 * j
        rule = "FREQ=SOMETIMES" if bad_rule_row == i + 2 else "FREQ=WEEKLY;INTERVAL=2"
        lines.append(
            f"Council,Mobile,{route},Place {i},Stop {i},,,{lon},{lat},{day},Public,"
            f"{clock(minutes)},{clock(minutes + 20)},{rule},{start},,,"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


ZIGZAG = [(-1.0, 52.0), (-1.3, 52.1), (-1.05, 52.02), (-1.25, 52.12), (-1.1, 52.2), (-1.2, 52.22), (-1.15, 52.21),
          (-1.0, 52.3)]  # fmt: skip


def test_replan_prints_score_validity_and_travel_model(tmp_path: Path) -> None:
    src = stops_csv(tmp_path / "stops.csv", ZIGZAG)
    out = tmp_path / "new.csv"
    args = ["timetable", "replan", str(src), "--out", str(out), "--time-limit", "2", "--calendars",
            str(tmp_path / "ics"), "--geojson", str(tmp_path / "routes.geojson")]  # fmt: skip
    r = runner.invoke(app, args, env=ENV)
    assert r.exit_code == 0, r.output
    assert "crow-fly: haversine km x circuity 1.3 / 40 km/h" in r.output
    assert "cycle driving: real" in r.output and "score 0." in r.output
    assert "valid: every check" in r.output and "benchmark: scored" in r.output
    new = read_timetable(out)
    assert len(new) == len(ZIGZAG) and {d for d in new.weekday.tolist()} == {1, 2}
    assert (tmp_path / "ics" / "mobile.ics").is_file() and (tmp_path / "routes.geojson").is_file()

    r = runner.invoke(app, ["timetable", "check", str(out), "--against", str(src)], env=ENV)
    assert r.exit_code == 0, r.output
    assert "valid against" in r.output and "score 0." in r.output


def test_free_mode_and_check_without_original(tmp_path: Path) -> None:
    src = stops_csv(tmp_path / "stops.csv", ZIGZAG)
    out = tmp_path / "free.csv"
    r = runner.invoke(app, ["timetable", "replan", str(src), "--out", str(out), "--mode", "free",
                            "--time-limit", "2", "--speed-kmh", "30"], env=ENV)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "/ 30 km/h" in r.output and "(free mode)" in r.output
    r = runner.invoke(app, ["timetable", "check", str(src)], env=ENV)
    assert r.exit_code == 0, r.output
    assert "8 stops on 2 route-days" in r.output and "benchmark: scored" in r.output


def test_a_same_day_check_fails_on_a_timetable_that_moved_stops(tmp_path: Path) -> None:
    src = stops_csv(tmp_path / "stops.csv", ZIGZAG)
    moved = tmp_path / "moved.csv"
    text = (
        src.read_text()
        .replace(",Tue,Place 0,", ",Tue2,Place 0,")
        .replace("Tuesday,Public,09:00", "Wednesday,Public,09:00")
    )
    moved.write_text(text)
    r = runner.invoke(app, ["timetable", "check", str(moved), "--against", str(src)], env=ENV)
    assert r.exit_code == 1
    assert "moved to another weekday" in r.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--travel", "network"], "needs a region with a road network: pass --region NAME"),
        (["--mode", "sometimes"], "--mode 'sometimes'"),
    ],
)
def test_bad_options(tmp_path: Path, extra: list[str], message: str) -> None:
    src = stops_csv(tmp_path / "stops.csv", ZIGZAG)
    r = runner.invoke(app, ["timetable", "replan", str(src), "--out", str(tmp_path / "x.csv"), *extra], env=ENV)
    assert r.exit_code == 2
    assert message in r.output.replace("\n", " ")
    assert not (tmp_path / "x.csv").exists()


def test_bad_row_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    src = stops_csv(tmp_path / "stops.csv", ZIGZAG, bad_rule_row=4)
    r = runner.invoke(app, ["timetable", "replan", str(src), "--out", str(tmp_path / "x.csv")], env=ENV)
    assert r.exit_code == 2
    assert "row 4, field 'frequency'" in r.output.replace("\n", " ")
    assert not (tmp_path / "x.csv").exists()


def test_network_travel_on_a_stored_region(tmp_path: Path, toy_region) -> None:  # type: ignore[no-untyped-def]
    from service.store.regions import save_region

    data = tmp_path / "var"
    save_region(toy_region, data / "regions")
    pts = toy_region.demand.geometry
    picks = [(float(pts.x.iloc[i]), float(pts.y.iloc[i])) for i in range(0, len(pts), len(pts) // 8)][:8]
    src = stops_csv(tmp_path / "stops.csv", picks)
    out = tmp_path / "net.csv"
    args = ["timetable", "replan", str(src), "--out", str(out), "--travel", "network", "--region", "toy",
            "--time-limit", "2"]  # fmt: skip
    r = runner.invoke(app, args, env={**ENV, "BRANCHNET_DATA_DIR": str(data)})
    assert r.exit_code == 0, r.output
    assert "road network of region 'toy'" in r.output and "valid: every check" in r.output
    # by default the calendars and route lines are written next to the CSV; on a network the lines follow the roads
    assert list((tmp_path / "net_ics").glob("*.ics"))
    lines = json.loads((tmp_path / "net_routes.geojson").read_text())["features"]
    rows = list(csv.DictReader(out.open()))
    vertices = sum(len(f["geometry"]["coordinates"]) for f in lines if f["geometry"])
    assert vertices > len(rows), "route lines should follow the road network, not join the stops straight"


def test_rows_moved_to_another_day_get_a_new_rule_and_start(tmp_path: Path) -> None:
    from dataclasses import replace

    import numpy as np

    from geodata.libraries_hacked import timetable_from_rows
    from service.plans.replan import load_timetable, new_rows, to_model

    src = stops_csv(tmp_path / "stops.csv", ZIGZAG)
    rule = "FREQ=MONTHLY;BYDAY=1WE"
    src.write_text(src.read_text().replace("Wednesday,Public,09:00,09:20,FREQ=WEEKLY;INTERVAL=2",
                                           f"Wednesday,Public,09:00,09:20,{rule}"))  # fmt: skip
    table, real = load_timetable(src)
    assert table.weeks.tolist().count(4) == 1
    # Tue -> Friday in week 2 of the cycle; Wed stays
    moved = replace(real, weekday=np.array([4, 2]), phase=np.array([1, 0]))
    rows = new_rows(table, moved)
    assert [r["day"] for r in rows] == ["Friday"] * 4 + ["Wednesday"] * 4
    assert {r["start"] for r in rows[:4]} == {"2024-01-12"}  # Friday of the reference week + 1
    assert {r["frequency"] for r in rows[:4]} == {"FREQ=WEEKLY;INTERVAL=2"}
    assert rows[4]["frequency"] == rule and rows[4]["start"] == "2024-01-03"  # unchanged rows keep their fields
    back = to_model(timetable_from_rows(rows))
    assert back.weekday.tolist() == [4, 2] and back.phase.tolist() == [1, 0]
    np.testing.assert_array_equal(back.dwell, real.dwell)
