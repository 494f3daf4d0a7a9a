"""Timetable files: RRULEs, validation that names file/row/field, CSV round trip, .ics calendars, GeoJSON lines."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from geodata.errors import DataRepairWarning, InputFileError, InvalidValueError, MissingFieldError
from geodata.libraries_hacked import (
    COLUMNS,
    calendar_text,
    parse_clock,
    parse_rrule,
    read_timetable,
    route_geometries,
    write_calendars,
    write_route_geometries,
    write_timetable,
)

HEADER = ",".join(COLUMNS)


def row(
    route: str = "Tuesday 1",
    stop: str = "Green",
    lon: str = "-1.0",
    lat: str = "52.0",
    day: str = "Tuesday",
    arrival: str = "09:30",
    departure: str = "10:00",
    frequency: str = "FREQ=WEEKLY;INTERVAL=2",
    start: str = "2024-01-02",
    mobile: str = "Mobile 1",
    community: str = "Village",
) -> str:
    return (
        f'Council,{mobile},{route},{community},{stop},"{stop}, {community}",AB1 2CD,{lon},{lat},{day},Public,'
        f"{arrival},{departure},{frequency},{start},,,https://example.org"
    )


def write_csv(tmp_path: Path, *rows: str, name: str = "stops.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def two_route_days(tmp_path: Path) -> Path:
    """Two route-days of one mobile: Tuesday fortnightly (week 1 of the cycle) and the 2nd Thursday monthly."""
    return write_csv(
        tmp_path,
        row(stop="Green", lon="-1.00", arrival="10:40", departure="11:00"),
        row(stop="Church", lon="-1.05", arrival="09:30", departure="10:00"),
        row(stop="School", lon="-1.10", arrival="11:30", departure="12:15"),
        row(
            route="Thursday 2",
            stop="Pub",
            lon="-1.2",
            lat="52.1",
            day="Thursday",
            arrival="14:00",
            departure="14:20",
            frequency="FREQ=MONTHLY;BYDAY=2TH",
            start="2024-01-11",
        ),
    )


# ---------------------------------------------------------------------------------------------------------------
# field parsers


@pytest.mark.parametrize(
    ("text", "weeks", "ordinal"),
    [
        ("FREQ=WEEKLY;INTERVAL=2", 2, None),
        ("FREQ=WEEKLY", 1, None),
        ("freq=weekly;interval=3;byday=TU", 3, None),
        ("RRULE:FREQ=WEEKLY;INTERVAL=4;UNTIL=20251231T000000Z", 4, None),
        ("FREQ=MONTHLY;BYDAY=1TH", 4, 1),
        ("FREQ=MONTHLY;BYDAY=-1FR", 4, -1),
        ("FREQ=MONTHLY", 4, None),
    ],
)
def test_rrule_interval_in_weeks(text: str, weeks: int, ordinal: int | None) -> None:
    rule = parse_rrule(text)
    assert rule.weeks == weeks
    assert rule.ordinal == ordinal


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("every other week", "KEY=VALUE"),
        ("FREQ=DAILY", "WEEKLY or MONTHLY"),
        ("FREQ=WEEKLY;INTERVAL=0", "positive whole number"),
        ("FREQ=WEEKLY;INTERVAL=two", "positive whole number"),
        ("FREQ=MONTHLY;BYDAY=9TH", "BYDAY"),
        ("FREQ=WEEKLY;COLOUR=red", "unknown part"),
        ("FREQ=WEEKLY;FREQ=MONTHLY", "twice"),
        ("FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO", "not supported"),
    ],
)
def test_unparseable_rrule_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidValueError, match=reason):
        parse_rrule(text)


def test_clock_times() -> None:
    assert parse_clock("9:40") == 9 * 3600 + 40 * 60
    assert parse_clock("17:05:30") == 17 * 3600 + 5 * 60 + 30
    for bad in ("25:00", "9h40", ""):
        with pytest.raises(InvalidValueError):
            parse_clock(bad)


# ---------------------------------------------------------------------------------------------------------------
# reading


def test_read_parses_route_days_phases_and_keeps_every_row(two_route_days: Path) -> None:
    t = read_timetable(two_route_days)
    assert len(t) == 4
    assert t.route_days == (("Mobile 1", "Tuesday 1"), ("Mobile 1", "Thursday 2"))
    assert t.weekday.tolist() == [1, 3]
    assert t.weeks.tolist() == [2, 2, 2, 4]
    assert t.reference == date(2024, 1, 1)
    assert t.phase.tolist() == [0, 1]  # week of 2024-01-02; 2nd Thursday of the month
    assert [o.tolist() for o in t.stop_orders()] == [[1, 0, 2], [3]]  # by arrival, not file order
    assert t.arrival[1] == 9 * 3600 + 30 * 60
    assert t.lon[3] == pytest.approx(-1.2)


def test_bad_rows_are_all_named_with_file_row_and_field(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        row(),
        row(stop="Bad rule", frequency="FREQ=FORTNIGHTLY"),
        row(stop="Late", arrival="11:30", departure="11:00"),
        row(stop="Nowhere", lon="", lat=""),
        row(stop="Day", day="Funday"),
    )
    with pytest.raises(InvalidValueError) as info:
        read_timetable(path, repair=False)
    msg = str(info.value)
    assert str(path) in msg
    assert "row 3, field 'frequency'" in msg and "FORTNIGHTLY" in msg
    assert "row 4, field 'arrival'" in msg and "after departure 11:00" in msg
    assert "row 5, field 'geox'" in msg and "row 5, field 'geoy'" in msg
    assert "row 6, field 'day'" in msg


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (row(frequency="FREQ=WEEKLY;INTERVAL=x"), "frequency"),
        (row(arrival="12:00", departure="10:00"), "arrival"),
        (row(lat=""), "geoy"),
        (row(lon="200"), "geox"),
        (row(start="2024-13-01"), "start"),
    ],
)
def test_each_bad_value_is_an_error_naming_its_row(tmp_path: Path, bad: str, field: str) -> None:
    path = write_csv(tmp_path, row(stop="Fine"), bad)
    with pytest.raises(InvalidValueError, match=f"row 3, field '{field}'"):
        read_timetable(path, repair=False)


def test_reversed_times_are_read_as_swapped_with_a_warning(tmp_path: Path) -> None:
    path = write_csv(tmp_path, row(arrival="13:30", departure="13:00"))
    with pytest.warns(DataRepairWarning, match="row 2 \\(stop 'Green'\\): arrival 13:30 is after departure 13:00"):
        t = read_timetable(path)
    assert (t.arrival[0], t.departure[0]) == (13 * 3600, 13 * 3600 + 1800)
    assert len(t.repairs) == 1
    with pytest.raises(InvalidValueError, match="row 2, field 'arrival': arrival 13:30 is after departure 13:00"):
        read_timetable(path, repair=False)


def test_one_route_on_two_weekdays_is_an_error_when_strict(tmp_path: Path) -> None:
    path = write_csv(tmp_path, row(), row(stop="Other", day="Friday", start="2024-01-05"))
    with pytest.raises(InvalidValueError, match=r"row 3, field 'day'.*runs on Tuesday in row 2"):
        read_timetable(path, repair=False)


def test_missing_file_column_or_rows(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        read_timetable(tmp_path / "absent.csv")
    (tmp_path / "cols.csv").write_text("mobile,route,day\nA,B,Monday\n")
    with pytest.raises(MissingFieldError, match="geox"):
        read_timetable(tmp_path / "cols.csv")
    (tmp_path / "empty.csv").write_text(HEADER + "\n")
    with pytest.raises(InputFileError, match="no rows"):
        read_timetable(tmp_path / "empty.csv")


def test_real_council_file(shared: Path) -> None:
    t = read_timetable(shared / "data" / "uk_mobile_libraries" / "stops" / "south_gloucestershire.csv")
    assert len(t) == 7 and len(t.route_days) == 1
    assert set(t.weeks.tolist()) == {2} and t.weekday.tolist() == [3]
    assert (t.departure > t.arrival).all()


# ---------------------------------------------------------------------------------------------------------------
# writing


def test_csv_round_trip(two_route_days: Path, tmp_path: Path) -> None:
    t = read_timetable(two_route_days)
    out = write_timetable(t.rows, tmp_path / "out" / "copy.csv")
    assert out.read_text(encoding="utf-8").splitlines()[0] == HEADER
    u = read_timetable(out)
    assert u.rows == t.rows
    for name in ("lon", "lat", "arrival", "departure", "weeks", "route_day", "weekday", "phase"):
        np.testing.assert_array_equal(getattr(u, name), getattr(t, name))


def test_calendar_has_one_event_per_stop_on_the_right_dates(two_route_days: Path) -> None:
    t = read_timetable(two_route_days)
    text = calendar_text(t, "Mobile 1")
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    lines = text.split("\r\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in lines)
    assert text.count("BEGIN:VEVENT") == 4
    assert "DTSTART:20240102T093000" in text and "DTEND:20240102T100000" in text  # Church, Tuesday 2 January
    assert "RRULE:FREQ=WEEKLY;INTERVAL=2" in text
    assert "SUMMARY:Village / Church" in text
    # FREQ=MONTHLY;BYDAY=2TH from 2024-01-11: the second Thursday of January is the 11th
    assert "DTSTART:20240111T140000" in text and "RRULE:FREQ=MONTHLY;BYDAY=2TH" in text
    assert "GEO:52.100000;-1.200000" in text


def test_calendars_are_written_per_vehicle(tmp_path: Path) -> None:
    path = write_csv(tmp_path, row(), row(mobile="Mobile 2", route="Friday", day="Friday", start="2024-01-05"))
    paths = write_calendars(read_timetable(path), tmp_path / "ics")
    assert sorted(p.name for p in paths) == ["mobile-1.ics", "mobile-2.ics"]
    assert "DTSTART:20240105T093000" in (tmp_path / "ics" / "mobile-2.ics").read_text()


def test_route_lines_follow_arrival_order(two_route_days: Path, tmp_path: Path) -> None:
    t = read_timetable(two_route_days)
    fc = route_geometries(t)
    assert [f["geometry"]["type"] for f in fc["features"]] == ["LineString", "LineString"]
    first = fc["features"][0]
    assert [c[0] for c in first["geometry"]["coordinates"]] == [-1.05, -1.0, -1.1]
    assert first["properties"] | {"stops": 3} == first["properties"]
    assert first["properties"]["travel"] == "crowfly"
    single = fc["features"][1]["geometry"]["coordinates"]
    assert len(single) == 2 and single[0] == single[1]  # a one-stop route-day is a degenerate line
    # network legs when given: every leg passes a midpoint
    bent = route_geometries(t, leg_path=lambda i, j: [(t.lon[i], t.lat[i]), (0.0, 0.0), (t.lon[j], t.lat[j])])
    assert len(bent["features"][0]["geometry"]["coordinates"]) == 5
    path = write_route_geometries(t, tmp_path / "routes.geojson")
    assert json.loads(path.read_text())["type"] == "FeatureCollection"
