"""Inconsistent but readable timetables are repaired with a warning naming the rows, not refused (issue 16, item 3).

Small synthetic files for each repair (a route on two weekdays, an arrival after its departure, a start date off
its weekday), what ``repair=False`` says instead, how ``branchnet timetable check`` and ``replan`` show them, and
the 20 real councils in ``../shared``: every file now reads, and the repairs are recounted from the raw CSV.
"""

from __future__ import annotations

import csv
import json
import warnings
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geodata.errors import DataRepairWarning, InvalidValueError
from geodata.libraries_hacked import WEEKDAYS, first_date, read_timetable
from service.cli import app
from tests.geodata.test_libraries_hacked import row, write_csv

runner = CliRunner()


def read_with_warnings(path: Path, **kwargs: object) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = read_timetable(path, **kwargs)  # type: ignore[arg-type]
    return table, [str(w.message) for w in caught if issubclass(w.category, DataRepairWarning)]


def test_one_route_on_two_weekdays_becomes_one_route_day_per_weekday(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        row(route="Route 3", stop="Green", day="Tuesday", start="2024-01-02"),
        row(route="Route 3", stop="Church", day="Tuesday", arrival="10:30", departure="11:00", start="2024-01-02"),
        row(route="Route 3", stop="Pub", day="Thursday", start="2024-01-04"),
        row(route="Route 4", stop="Mill", day="Friday", start="2024-01-05"),
    )
    table, repairs = read_with_warnings(path)
    assert repairs == [
        f"{path}: route 'Route 3' of mobile 'Mobile 1' runs on Tuesday (rows 2-3) and Thursday (row 4); read as one "
        "route-day per weekday: 'Route 3 (Tuesday)', 'Route 3 (Thursday)'"
    ]
    assert table.repairs == tuple(repairs)  # type: ignore[attr-defined]
    assert table.route_days == (  # type: ignore[attr-defined]
        ("Mobile 1", "Route 3 (Tuesday)"), ("Mobile 1", "Route 3 (Thursday)"), ("Mobile 1", "Route 4"),
    )  # fmt: skip
    assert [WEEKDAYS[d] for d in table.weekday] == ["Tuesday", "Thursday", "Friday"]  # type: ignore[attr-defined]
    # every row keeps its stop and now names its route-day; a route-day is one weekday
    assert [r["route"] for r in table.rows] == [  # type: ignore[attr-defined]
        "Route 3 (Tuesday)", "Route 3 (Tuesday)", "Route 3 (Thursday)", "Route 4",
    ]  # fmt: skip
    with pytest.raises(InvalidValueError, match=r"row 4, field 'day': 'Thursday', but route 'Route 3' of mobile "
                       r"'Mobile 1' runs on Tuesday in row 2; give each day's trip its own route name"):  # fmt: skip
        read_timetable(path, repair=False)


def test_a_split_that_would_take_an_existing_route_name_is_refused(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        row(route="Route 3", day="Tuesday"),
        row(route="Route 3", stop="Pub", day="Thursday", start="2024-01-04"),
        row(route="Route 3 (Thursday)", stop="Mill", day="Thursday", start="2024-01-04"),
    )
    with pytest.raises(InvalidValueError, match=r"row 3, field 'day'.*cannot be split into one route per weekday "
                       r"since 'Route 3 \(Thursday\)' is taken"):  # fmt: skip
        read_timetable(path)


def test_a_start_off_its_weekday_starts_on_the_first_such_weekday(tmp_path: Path) -> None:
    # fortnightly Mondays whose start is a Saturday: the first visit is Monday 8 January, in week 1 of the cycle
    path = write_csv(
        tmp_path,
        row(route="Mon", stop="Green", day="Monday", start="2024-01-06"),
        row(route="Mon", stop="Church", day="Monday", arrival="11:00", departure="11:30", start="2024-01-06"),
        row(route="Wed", stop="Pub", day="Wednesday", start="2024-01-03"),
    )
    table, repairs = read_with_warnings(path)
    assert repairs == [f"{path}: rows 2-3: start 2024-01-06 is a Saturday, but route 'Mon' runs on Monday; the "
                       "first visit is read as the first Monday on or after it"]  # fmt: skip
    assert table.reference == date(2024, 1, 1)  # type: ignore[attr-defined]
    assert table.phase.tolist() == [1, 0]  # type: ignore[attr-defined]
    assert first_date(table, 0) == date(2024, 1, 8)  # type: ignore[arg-type]
    assert first_date(table, 2) == date(2024, 1, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match=r"row 2, field 'start': start 2024-01-06 is a Saturday, but route "
                       r"'Mon' runs on Monday \(rows 2-3\); give a start date on a Monday"):  # fmt: skip
        read_timetable(path, repair=False)


def test_every_repair_is_named_by_check_and_replan(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        row(route="Route 3", stop="Green", lon="-1.00", day="Tuesday", arrival="10:30", departure="10:00"),
        row(route="Route 3", stop="Church", lon="-1.05", day="Tuesday", arrival="11:00", departure="11:20"),
        row(route="Route 3", stop="Pub", lon="-1.10", day="Thursday", start="2024-01-04"),
        row(route="Route 3", stop="Mill", lon="-1.15", day="Thursday", arrival="11:00", departure="11:30",
            start="2024-01-04"),
    )  # fmt: skip
    r = runner.invoke(app, ["timetable", "check", str(path)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    text = r.output.replace("\n", " ")
    assert "warning: " in text
    assert "row 2 (stop 'Green'): arrival 10:30 is after departure 10:00; read as swapped" in text
    assert "route 'Route 3' of mobile 'Mobile 1' runs on Tuesday (rows 2-3) and Thursday (rows 4-5)" in text
    assert "repaired 2 inconsistency(ies) while reading" in text
    assert "4 stops on 2 route-days" in text
    r = runner.invoke(app, ["timetable", "check", str(path), "--json"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    repairs = json.loads(r.stdout)["repairs"]
    assert len(repairs) == 2 and all(str(path) in x for x in repairs)
    r = runner.invoke(app, ["timetable", "check", str(path), "--strict"], env={"COLUMNS": "250"})
    assert r.exit_code == 2 and "row 2, field 'arrival'" in r.output.replace("\n", " ")

    out = tmp_path / "new.csv"
    r = runner.invoke(app, ["timetable", "replan", str(path), "--out", str(out), "--time-limit", "2"],
                      env={"COLUMNS": "250"})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "repaired 2 inconsistency(ies) while reading" in r.output.replace("\n", " ")
    _, again = read_with_warnings(out)
    assert again == []  # the written timetable is consistent: nothing left to repair
    with out.open(newline="") as f:
        written = {(x["route"], x["day"]) for x in csv.DictReader(f)}
    assert written == {("Route 3 (Tuesday)", "Tuesday"), ("Route 3 (Thursday)", "Thursday")}


# ---------------------------------------------------------------------------------------------------------------
# the real councils


def recount(path: Path) -> dict[str, int]:
    """Inconsistencies counted from the raw CSV with the csv module and datetime, not with the reader."""

    def minutes(text: str) -> int:
        h, m = text.strip().split(":")[:2]
        return int(h) * 60 + int(m)

    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    days: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        days.setdefault((r["mobile"], r["route"]), set()).add(r["day"].strip().lower()[:3])
    day_index = {d.lower()[:3]: i for i, d in enumerate(WEEKDAYS)}
    off_day_routes = {
        (r["mobile"], r["route"])
        for r in rows
        if r["start"] and date.fromisoformat(r["start"][:10]).weekday() != day_index[r["day"].strip().lower()[:3]]
    }
    return {
        "rows": len(rows),
        "reversed": sum(minutes(r["arrival"]) > minutes(r["departure"]) for r in rows),
        "split_routes": sum(len(d) > 1 for d in days.values()),
        "off_day_route_days": len(off_day_routes),
    }


def test_all_twenty_real_councils_read_and_their_repairs_are_counted(shared: Path) -> None:
    files = sorted((shared / "data" / "uk_mobile_libraries" / "stops").glob("*.csv"))
    assert len(files) == 20
    found: dict[str, list[str]] = {}
    for path in files:
        table, repairs = read_with_warnings(path)
        expected = recount(path)
        assert len(table) == expected["rows"], path.name  # type: ignore[arg-type]
        kinds = {
            "reversed": sum("read as swapped" in x for x in repairs),
            "split_routes": sum("read as one route-day per weekday" in x for x in repairs),
            "off_day_route_days": sum("the first visit is read as" in x for x in repairs),
        }
        assert kinds == {k: expected[k] for k in kinds}, path.name
        assert len(repairs) == sum(kinds.values())
        if repairs:
            found[path.stem] = repairs
            with pytest.raises(InvalidValueError):  # refused when strict: these are the files read only by repair
                read_timetable(path, repair=False)
        else:
            read_timetable(path, repair=False)
    # today: one reversed stop in Libraries NI (row 281, The Fairways, 13:30 -> 13:00) and one Birmingham route
    # whose three rows start on the Monday before their Tuesday
    assert sorted(found) == ["birmingham", "librariesni"]
    assert found["librariesni"] == [f"{files[6]}: row 281 (stop 'The Fairways'): arrival 13:30 is after departure "
                                    "13:00; read as swapped"]  # fmt: skip
    assert "rows 21-23: start 2020-03-16 is a Monday, but route 'Tuesday' runs on Tuesday" in found["birmingham"][0]
