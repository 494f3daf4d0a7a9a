"""Every failure of the Libraries Hacked reader (:mod:`geodata.libraries_hacked`), through ``branchnet timetable
check`` and ``branchnet timetable replan --out`` (exit code 2 for both): the message names the file, the row and the
field, ``replan`` writes nothing (no CSV, no calendars, no route lines) and the data folder is unchanged.

What the reader repairs instead of refusing (a route on two weekdays, a reversed arrival, a start off its weekday)
is tested in ``tests/geodata/test_timetable_repairs.py``; the one repair it must refuse is an entry here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from geodata.libraries_hacked import COLUMNS
from tests.catalogue._support import Entry, cli, snapshot, unchanged

HEADER = ",".join(COLUMNS)


def row(**fields: str) -> str:
    """A good stop visit (Tuesday, fortnightly) with ``fields`` replaced."""
    values = {"organisation": "Council", "mobile": "Mobile 1", "route": "Tue", "community": "Village",
              "stop": "Green", "address": "Green Lane", "postcode": "AB1 2CD", "geox": "-1.0", "geoy": "52.0",
              "day": "Tuesday", "type": "Public", "arrival": "09:30", "departure": "10:00",
              "frequency": "FREQ=WEEKLY;INTERVAL=2", "start": "2024-01-02", "end": "", "exceptions": "",
              "timetable": "https://example.org"}  # fmt: skip
    values.update(fields)
    return ",".join(f'"{values[c]}"' if "," in values[c] or ";" in values[c] else values[c] for c in COLUMNS)


GOOD = row(stop="Church", geox="-1.05", arrival="11:00", departure="11:30")


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, GOOD, *rows]) + "\n"


ENTRIES = [
    Entry("missing-file", "a path where there is no file", "file not found", extra={"data": None}),
    Entry("zero-bytes", "a 0-byte file", "the file is empty (0 bytes)", extra={"data": b""}),
    Entry("png-named-csv", "a PNG image named stops.csv", "line 1: byte 0x89 is not UTF-8",
          extra={"data": b"\x89PNG\r\n\x1a\n" + bytes(100)}),
    Entry("latin1", "a Latin-1 file with é on line 3", "line 3: byte 0xe9 is not UTF-8",
          extra={"data": csv_text(row(community="Caf\xe9")).encode("latin-1")}),
    Entry("field-too-large", "a community name of 200,000 characters on line 3",
          "line 3: not a readable CSV line (field larger than field limit", extra={"data": csv_text(
              row(community="V" * 200_000))}),
    Entry("missing-columns", "a file without geox and geoy", "column(s) geox, geoy missing",
          extra={"data": "mobile,route,day,arrival,departure,frequency\nM,R,Tuesday,09:30,10:00,FREQ=WEEKLY\n"}),
    Entry("header-only", "the header and no rows", "the table has no rows", extra={"data": HEADER + "\n"}),
    Entry("rrule-unknown-freq", "frequency FREQ=FORTNIGHTLY",
          "row 3, field 'frequency': RRULE 'FREQ=FORTNIGHTLY': FREQ must be WEEKLY or MONTHLY",
          extra={"data": csv_text(row(frequency="FREQ=FORTNIGHTLY"))}),
    Entry("rrule-bad-interval", "frequency FREQ=WEEKLY;INTERVAL=x",
          "row 3, field 'frequency': RRULE 'FREQ=WEEKLY;INTERVAL=x': INTERVAL must be a positive whole number",
          extra={"data": csv_text(row(frequency="FREQ=WEEKLY;INTERVAL=x"))}),
    Entry("rrule-bad-byday", "frequency FREQ=MONTHLY;BYDAY=9TH",
          "row 3, field 'frequency': RRULE 'FREQ=MONTHLY;BYDAY=9TH': BYDAY entry '9TH' is not like TH, 1TH or -1FR",
          extra={"data": csv_text(row(frequency="FREQ=MONTHLY;BYDAY=9TH"))}),
    Entry("rrule-unknown-part", "frequency FREQ=WEEKLY;COLOUR=RED",
          "row 3, field 'frequency': RRULE 'FREQ=WEEKLY;COLOUR=RED': unknown part 'COLOUR'",
          extra={"data": csv_text(row(frequency="FREQ=WEEKLY;COLOUR=RED"))}),
    Entry("rrule-not-key-value", "frequency WEEKLY",
          "row 3, field 'frequency': RRULE 'WEEKLY': 'WEEKLY' is not KEY=VALUE",
          extra={"data": csv_text(row(frequency="WEEKLY"))}),
    Entry("rrule-empty", "an empty frequency", "row 3, field 'frequency': the RRULE is empty",
          extra={"data": csv_text(row(frequency=""))}),
    Entry("rrule-every-two-months", "frequency FREQ=MONTHLY;INTERVAL=2",
          "row 3, field 'frequency': RRULE 'FREQ=MONTHLY;INTERVAL=2': a monthly round every 2 months is not supported",
          extra={"data": csv_text(row(frequency="FREQ=MONTHLY;INTERVAL=2"))}),
    Entry("time-not-a-clock", "arrival 'half nine'", "row 3, field 'arrival': 'half nine' is not a time like 09:30",
          extra={"data": csv_text(row(arrival="half nine"))}),
    Entry("time-out-of-day", "departure 25:00", "row 3, field 'departure': '25:00' is not a time of day",
          extra={"data": csv_text(row(departure="25:00"))}),
    Entry("weekday-unknown", "day Funday", "row 3, field 'day': 'Funday' is not a weekday name",
          extra={"data": csv_text(row(day="Funday"))}),
    Entry("coordinate-missing", "an empty geoy", "row 3, field 'geoy': no coordinate",
          extra={"data": csv_text(row(geoy=""))}),
    Entry("coordinate-out-of-range", "geox 200", "row 3, field 'geox': '200' is not a WGS84 coordinate in [-180, 180]",
          extra={"data": csv_text(row(geox="200"))}),
    Entry("coordinate-not-a-number", "geoy 'north'", "row 3, field 'geoy': 'north' is not a number",
          extra={"data": csv_text(row(geoy="north"))}),
    Entry("start-not-a-date", "start 2024-13-01", "row 3, field 'start': '2024-13-01' is not a date like 2024-01-31",
          extra={"data": csv_text(row(start="2024-13-01"))}),
    Entry("end-before-start", "end 2023-12-31 before start 2024-01-02",
          "row 3, field 'end': 2023-12-31 is before the start 2024-01-02",
          extra={"data": csv_text(row(end="2023-12-31"))}),
    Entry("exception-not-a-date", "exceptions 'Christmas'",
          "row 3, field 'exceptions': 'Christmas' is not a date like 2024-01-31",
          extra={"data": csv_text(row(exceptions="2024-12-24 Christmas"))}),
    Entry("mobile-empty", "an empty mobile",
          "row 3, field 'mobile': empty; each stop belongs to a (mobile, route) pair",
          extra={"data": csv_text(row(mobile=""))}),
    Entry("route-split-name-taken", "route Tue on Tuesday and Friday beside a route named 'Tue (Friday)'",
          "row 3, field 'day': 'Friday', but route 'Tue' of mobile 'Mobile 1' runs on Tuesday in row 2; it cannot be "
          "split into one route per weekday since 'Tue (Friday)' is taken",
          extra={"data": csv_text(row(day="Friday", start="2024-01-05"),
                                  row(route="Tue (Friday)", day="Friday", start="2024-01-05"))}),
]  # fmt: skip
IDS = [e.id for e in ENTRIES]


def timetable(entry: Entry, folder: Path) -> Path:
    path = folder / "stops.csv"
    data = entry.extra["data"]
    if data is not None:
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("command", ["check", "replan"])
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_cli(entry: Entry, command: str, cli_data: Path, tmp_path: Path) -> None:
    path = timetable(entry, tmp_path)
    out = tmp_path / "out"
    args = ["timetable", command, str(path)]
    if command == "replan":
        args += ["--out", str(out / "new.csv"), "--calendars", str(out / "ics"), "--geojson", str(out / "routes.json")]
    before = snapshot(cli_data)
    code, output = cli(args, cli_data)
    assert code == entry.exit_code, output
    assert "error:" in output and "internal error" not in output and "Traceback" not in output, output
    assert f"{path}: " in output, output
    assert entry.expected("cli") in output, output
    assert not out.exists() or not any(out.iterdir())
    unchanged(before, snapshot(cli_data))
