"""Mobile library timetables in the Libraries Hacked mobile-library-stops schema: read, validate, write, export.

A timetable file has one row per stop visit with the columns :data:`COLUMNS`: ``geox``/``geoy`` are WGS84
longitude/latitude, ``day`` a weekday name, ``arrival``/``departure`` clock times (``HH:MM``), ``frequency`` an
iCalendar RRULE (``FREQ=WEEKLY;INTERVAL=2``, ``FREQ=MONTHLY;BYDAY=1TH``) and ``start``/``end`` ISO dates. One
(``mobile``, ``route``) pair is one route-day: a day's trip on a fixed weekday, repeated at its frequency.

The reader keeps every row (no row is dropped), parses the fields the planner needs and names the file, row and
field of every bad value. Published timetables that are inconsistent but readable are repaired, each repair with a
:class:`~geodata.errors.DataRepairWarning` naming the rows (``repair=False`` refuses them instead):

- one route name on several weekdays becomes one route-day per weekday, ``"Route 3 (Tuesday)"`` and
  ``"Route 3 (Thursday)"`` (a route-day is one day's trip);
- an arrival after its departure (``13:30`` to ``13:00``) is read with the two swapped;
- a start date on another weekday than the row's day is read as the first such weekday on or after it (the week
  of that first visit sets the route-day's phase).

The writers produce the same CSV schema, one iCalendar (``.ics``) file per vehicle and the route-days as GeoJSON
LineStrings. Rows are numbered as in a spreadsheet: the header is row 1.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from geodata._text import decode_text
from geodata.errors import DataRepairWarning, InputFileError, InvalidValueError, MissingFieldError

COLUMNS = (
    "organisation", "mobile", "route", "community", "stop", "address", "postcode", "geox", "geoy", "day", "type",
    "arrival", "departure", "frequency", "start", "end", "exceptions", "timetable",
)  # fmt: skip
#: Columns without which a timetable cannot be planned.
REQUIRED = ("mobile", "route", "geox", "geoy", "day", "arrival", "departure", "frequency")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ICAL_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: Weeks between visits of any ``FREQ=MONTHLY`` rule (the benchmark's convention: a month is four weeks).
MONTHLY_WEEKS = 4
#: Monday used for phases and calendar dates when a file gives no start date.
DEFAULT_REFERENCE = date(2024, 1, 1)

_TIME = re.compile(r"^\s*(\d{1,2})[:.](\d{2})(?::(\d{2}))?\s*$")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_RRULE_KEYS = frozenset(
    {"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT", "WKST", "BYSETPOS", "BYMONTH", "BYMONTHDAY", "BYWEEKNO"}
)


# ---------------------------------------------------------------------------------------------------------------
# field parsers


@dataclass(frozen=True)
class Recurrence:
    """A parsed RRULE.

    Parameters
    ----------
    freq
        ``"WEEKLY"`` or ``"MONTHLY"``.
    interval
        The RRULE ``INTERVAL`` (1 when absent).
    byday
        ``BYDAY`` entries as (ordinal, weekday 0=Monday..6); ordinal 0 means every such weekday, 1 the first in
        the month, -1 the last.
    text
        The rule as written.
    """

    freq: str
    interval: int = 1
    byday: tuple[tuple[int, int], ...] = ()
    text: str = ""

    @property
    def weeks(self) -> int:
        """Weeks between visits: ``INTERVAL`` for a weekly rule, 4 for any monthly rule."""
        return MONTHLY_WEEKS if self.freq == "MONTHLY" else self.interval

    @property
    def ordinal(self) -> int | None:
        """The week of the month of a ``BYDAY=nXX`` monthly rule (1..4, -1 for the last), else ``None``."""
        ordinals = {o for o, _ in self.byday if o != 0}
        return ordinals.pop() if self.freq == "MONTHLY" and len(ordinals) == 1 else None


def parse_rrule(text: str) -> Recurrence:
    """Parse an iCalendar RRULE such as ``FREQ=WEEKLY;INTERVAL=2`` or ``FREQ=MONTHLY;BYDAY=1TH``.

    Only weekly and monthly rules describe a mobile library round; anything else raises
    :class:`~geodata.errors.InvalidValueError` with the reason.
    """
    rule = str(text).strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[6:]
    if not rule:
        raise InvalidValueError("the RRULE is empty; write e.g. FREQ=WEEKLY;INTERVAL=2")
    parts: dict[str, str] = {}
    for part in rule.strip(";").split(";"):
        key, sep, value = part.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not sep or not key or not value:
            raise InvalidValueError(f"RRULE {text!r}: {part!r} is not KEY=VALUE")
        if key not in _RRULE_KEYS:
            raise InvalidValueError(f"RRULE {text!r}: unknown part {key!r}")
        if key in parts:
            raise InvalidValueError(f"RRULE {text!r}: {key} is given twice")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq not in ("WEEKLY", "MONTHLY"):
        raise InvalidValueError(
            f"RRULE {text!r}: FREQ must be WEEKLY or MONTHLY for a mobile library round, not {freq!r}"
        )
    interval = 1
    if "INTERVAL" in parts:
        if not parts["INTERVAL"].isdigit() or int(parts["INTERVAL"]) < 1:
            raise InvalidValueError(f"RRULE {text!r}: INTERVAL must be a positive whole number")
        interval = int(parts["INTERVAL"])
    byday: list[tuple[int, int]] = []
    if "BYDAY" in parts:
        for item in parts["BYDAY"].split(","):
            m = _BYDAY.match(item.strip())
            if m is None or (m.group(1) is not None and not 1 <= abs(int(m.group(1))) <= 5):
                raise InvalidValueError(f"RRULE {text!r}: BYDAY entry {item!r} is not like TH, 1TH or -1FR")
            byday.append((int(m.group(1) or 0), ICAL_DAYS.index(m.group(2))))
    if freq == "MONTHLY" and interval != 1:
        raise InvalidValueError(f"RRULE {text!r}: a monthly round every {interval} months is not supported")
    return Recurrence(freq=freq, interval=interval, byday=tuple(byday), text=str(text).strip())


def parse_clock(text: str) -> int:
    """Seconds after midnight of a clock time ``H:MM``, ``HH:MM`` or ``HH:MM:SS``."""
    m = _TIME.match(str(text))
    if m is None:
        raise InvalidValueError(f"{text!r} is not a time like 09:30")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        raise InvalidValueError(f"{text!r} is not a time of day")
    return h * 3600 + mi * 60 + s


def format_clock(seconds: float) -> str:
    """``HH:MM`` of a time in seconds after midnight, rounded to the minute (hours run past 23 if it does)."""
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_weekday(text: str) -> int:
    """0 (Monday) .. 6 (Sunday) from a weekday name or its first three letters."""
    key = str(text).strip().lower()
    for i, name in enumerate(WEEKDAYS):
        if key in (name.lower(), name[:3].lower()):
            return i
    raise InvalidValueError(f"{text!r} is not a weekday name")


# ---------------------------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class StopTimetable:
    """A timetable file, parsed. Per-row arrays follow the file order; per-route-day arrays the order of first use.

    Parameters
    ----------
    source
        Where the rows came from (a file path), used in messages.
    rows
        Every row's fields as text, in the order of :data:`COLUMNS` plus any extra columns.
    lon, lat
        (N,) stop coordinates, degrees (WGS84).
    arrival, departure
        (N,) clock times, seconds after midnight.
    weeks
        (N,) weeks between visits (RRULE ``INTERVAL``; 4 for a monthly rule).
    recurrence
        (N,) parsed RRULEs.
    route_day
        (N,) index of each row's (mobile, route) pair in ``route_days``.
    route_days
        (R,) the (mobile, route) pairs.
    weekday
        (R,) weekday of each route-day, 0 = Monday.
    phase
        (R,) week of the cycle in which each route-day first runs, counted from ``reference``: for a weekly rule
        the week of its start date modulo its interval, for ``BYDAY=nXX`` monthly rules ``n - 1``.
    reference
        The Monday on or before the earliest start date (:data:`DEFAULT_REFERENCE` when none is given).
    repairs
        What was repaired while reading, one message per repair naming its rows (also warned).
    """

    source: str
    rows: tuple[dict[str, str], ...]
    lon: np.ndarray
    lat: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    weeks: np.ndarray
    recurrence: tuple[Recurrence, ...]
    route_day: np.ndarray
    route_days: tuple[tuple[str, str], ...]
    weekday: np.ndarray
    phase: np.ndarray
    reference: date
    repairs: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def stop_orders(self) -> list[np.ndarray]:
        """Row indices of each route-day, ordered by arrival (file order among equal arrivals)."""
        orders: list[list[int]] = [[] for _ in self.route_days]
        for i, r in enumerate(self.route_day):
            orders[int(r)].append(i)
        return [np.array(sorted(o, key=lambda i: (int(self.arrival[i]), i)), dtype=np.int64) for o in orders]


class _Problems:
    """Collects bad values so that one error lists every bad row, not just the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[type[Exception], str]] = []

    def add(self, row: int, field: str, message: str, kind: type[Exception] = InvalidValueError) -> None:
        self.items.append((kind, f"row {row}, field {field!r}: {message}"))

    def raise_any(self) -> None:
        if not self.items:
            return
        kind = self.items[0][0]
        shown = "; ".join(m for _, m in self.items[:10])
        more = f"; and {len(self.items) - 10} more" if len(self.items) > 10 else ""
        raise kind(f"{self.source}: {len(self.items)} bad value(s): {shown}{more}")


def read_timetable(path: str | Path, *, repair: bool = True) -> StopTimetable:
    """Read and validate a mobile-library-stops CSV.

    With ``repair`` (the default), an inconsistent but readable file is repaired as the module docstring says,
    with a :class:`~geodata.errors.DataRepairWarning` naming the rows of each repair; ``repair=False`` refuses it.

    Raises
    ------
    InputFileError
        The file is missing, empty, not UTF-8, unreadable or has no rows.
    MissingFieldError
        A required column (:data:`REQUIRED`) is absent.
    InvalidValueError
        Any bad value, naming file, row and field: an unparseable RRULE, time, weekday or date, missing or
        out-of-range coordinates, an end before the start; without ``repair`` also an arrival after the
        departure, a (mobile, route) pair on two weekdays or a start date off the row's weekday.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty ({len(data)} bytes); a mobile-library-stops file has a "
                             f"header line ({', '.join(COLUMNS)}) and one row per stop visit")  # fmt: skip
    text = decode_text(data, path)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [str(c).strip() for c in (reader.fieldnames or [])]
        raw = [list(r.values()) for r in reader]
    except csv.Error as exc:
        # the reader counts a line once it is whole; the error is in the next one
        raise InputFileError(f"{path}: line {reader.line_num + 1}: not a readable CSV line ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise MissingFieldError(
            f"{path}: column(s) {', '.join(missing)} missing; a mobile-library-stops file has {', '.join(COLUMNS)}"
        )
    if not raw:
        raise InputFileError(f"{path}: the table has no rows")
    columns = list(COLUMNS) + [c for c in header if c not in COLUMNS]
    rows = []
    for values in raw:
        record = dict(zip(header, values, strict=False))
        rows.append({c: ("" if record.get(c) is None else str(record.get(c)).strip()) for c in columns})
    return timetable_from_rows(rows, source=str(path), repair=repair)


def _lines(rows: Sequence[int]) -> str:
    """Spreadsheet row numbers as ranges: ``rows 2-4, 7`` (``row 5`` for one)."""
    nums = sorted(set(rows))
    spans: list[str] = []
    start = prev = nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ("row " if len(nums) == 1 else "rows ") + ", ".join(spans)


def timetable_from_rows(
    records: Sequence[Mapping[str, str]], *, source: str = "timetable", repair: bool = True
) -> StopTimetable:
    """Parse and validate rows of the schema (text fields); see :func:`read_timetable` for repairs and errors."""
    problems = _Problems(source)
    repairs: list[str] = []
    rows = [dict(r) for r in records]  # a repair may rename a row's route
    n = len(rows)
    if n == 0:
        raise InputFileError(f"{source}: the table has no rows")
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    arrival, departure = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    weeks = np.ones(n, dtype=np.int64)
    rules: list[Recurrence] = []
    days = np.zeros(n, dtype=np.int64)
    starts: list[date | None] = []
    for i, row in enumerate(rows):
        line = i + 2
        for field, arr, lo, hi in (("geox", lon, -180.0, 180.0), ("geoy", lat, -90.0, 90.0)):
            text = row.get(field, "")
            if not text:
                problems.add(line, field, "no coordinate; every stop needs geox (longitude) and geoy (latitude)")
                continue
            try:
                value = float(text)
            except ValueError:
                problems.add(line, field, f"{text!r} is not a number")
                continue
            if not (math.isfinite(value) and lo <= value <= hi):
                problems.add(line, field, f"{text!r} is not a WGS84 coordinate in [{lo:g}, {hi:g}]")
                continue
            arr[i] = value
        times_ok = True
        for field, target in (("arrival", arrival), ("departure", departure)):
            try:
                target[i] = parse_clock(row.get(field, ""))
            except InvalidValueError as exc:
                problems.add(line, field, str(exc))
                times_ok = False
        if times_ok and arrival[i] > departure[i]:
            if repair:
                arrival[i], departure[i] = departure[i], arrival[i]
                stop = f" (stop {row.get('stop')!r})" if row.get("stop") else ""
                repairs.append(f"{source}: row {line}{stop}: arrival {row['arrival']} is after departure "
                               f"{row['departure']}; read as swapped")  # fmt: skip
            else:
                problems.add(line, "arrival", f"arrival {row['arrival']} is after departure {row['departure']}")
        try:
            rule = parse_rrule(row.get("frequency", ""))
            weeks[i] = rule.weeks
        except InvalidValueError as exc:
            problems.add(line, "frequency", str(exc))
            rule = Recurrence("WEEKLY", text=row.get("frequency", ""))
        rules.append(rule)
        try:
            days[i] = parse_weekday(row.get("day", ""))
        except InvalidValueError as exc:
            problems.add(line, "day", str(exc))
        start_text = row.get("start", "")
        start: date | None = None
        if start_text:
            try:
                start = date.fromisoformat(start_text[:10])
            except ValueError:
                problems.add(line, "start", f"{start_text!r} is not a date like 2024-01-31")
        starts.append(start)
        end_text = row.get("end", "")
        if end_text:
            try:
                end = date.fromisoformat(end_text[:10])
            except ValueError:
                problems.add(line, "end", f"{end_text!r} is not a date like 2024-12-31")
            else:
                if start is not None and end < start:
                    problems.add(line, "end", f"{end_text} is before the start {start_text}")
        for item in re.split(r"[,;\s]+", row.get("exceptions", "").strip()):
            if item:
                try:
                    date.fromisoformat(item[:10])
                except ValueError:
                    problems.add(line, "exceptions", f"{item!r} is not a date like 2024-01-31")
        for field in ("mobile", "route"):
            if not row.get(field, ""):
                problems.add(line, field, "empty; each stop belongs to a (mobile, route) pair")
    problems.raise_any()

    _split_route_days(rows, days, source, repair, repairs, problems)
    problems.raise_any()

    keys: dict[tuple[str, str], int] = {}
    route_day = np.array([keys.setdefault((r["mobile"], r["route"]), len(keys)) for r in rows], dtype=np.int64)
    n_rd = len(keys)
    firsts = [date.max] * n_rd
    known = [s for s in starts if s is not None]
    reference = min(known) - timedelta(days=min(known).weekday()) if known else DEFAULT_REFERENCE
    weekday = np.full(n_rd, -1, dtype=np.int64)
    phase = np.zeros(n_rd, dtype=np.int64)
    for i, r in enumerate(route_day):
        weekday[int(r)] = days[i]  # one weekday per route-day (split above)
    off_day: dict[int, list[int]] = {}
    for i, r in enumerate(route_day):
        r = int(r)
        start = starts[i]
        if start is not None and start.weekday() != weekday[r]:
            off_day.setdefault(r, []).append(i)
            start = first_visit(start, int(weekday[r]))
        k = int(weeks[i])
        ordinal = rules[i].ordinal
        if ordinal is not None:
            if firsts[r] == date.max:
                phase[r] = (ordinal - 1 if ordinal > 0 else MONTHLY_WEEKS + ordinal) % MONTHLY_WEEKS
                firsts[r] = date.min
        elif start is not None and start < firsts[r]:
            firsts[r] = start
            phase[r] = ((start - reference).days // 7) % k
    names = tuple(keys)
    for r, where in off_day.items():
        first = starts[where[0]]
        assert first is not None
        day, rows_text = WEEKDAYS[int(weekday[r])], _lines([j + 2 for j in where])
        core = f"start {first.isoformat()} is a {WEEKDAYS[first.weekday()]}, but route {names[r][1]!r} runs on {day}"
        if repair:
            repairs.append(f"{source}: {rows_text}: {core}; the first visit is read as the first {day} on or after it")
        else:
            problems.add(where[0] + 2, "start", f"{core} ({rows_text}); give a start date on a {day}")
    problems.raise_any()
    for message in repairs:
        warnings.warn(message, DataRepairWarning, stacklevel=3)
    return StopTimetable(
        source=source,
        rows=tuple(dict(r) for r in rows),
        lon=lon,
        lat=lat,
        arrival=arrival,
        departure=departure,
        weeks=weeks,
        recurrence=tuple(rules),
        route_day=route_day,
        route_days=tuple(keys),
        weekday=weekday,
        phase=phase,
        reference=reference,
        repairs=tuple(repairs),
    )


def _split_route_days(
    rows: list[dict[str, str]],
    days: np.ndarray,
    source: str,
    repair: bool,
    repairs: list[str],
    problems: _Problems,
) -> None:
    """Give each weekday of a (mobile, route) pair on several weekdays its own route name (in place), or refuse."""
    by_pair: dict[tuple[str, str], dict[int, list[int]]] = {}
    for i, row in enumerate(rows):
        by_pair.setdefault((row["mobile"], row["route"]), {}).setdefault(int(days[i]), []).append(i)
    for (mobile, route), per_day in by_pair.items():
        if len(per_day) < 2:
            continue
        first_day, first_rows = next(iter(per_day.items()))
        names = {d: f"{route} ({WEEKDAYS[d]})" for d in per_day}
        taken = sorted(name for name in names.values() if (mobile, name) in by_pair)
        if not repair or taken:
            i = next(j for d, where in per_day.items() if d != first_day for j in where)
            why = (f"; it cannot be split into one route per weekday since {taken[0]!r} is taken" if taken
                   else "; give each day's trip its own route name")  # fmt: skip
            problems.add(
                i + 2, "day", f"{rows[i]['day']!r}, but route {route!r} of mobile {mobile!r} runs on "
                f"{WEEKDAYS[first_day]} in row {first_rows[0] + 2}{why}",
            )  # fmt: skip
            continue
        for d, where in per_day.items():
            for i in where:
                rows[i]["route"] = names[d]
        shown = " and ".join(f"{WEEKDAYS[d]} ({_lines([i + 2 for i in where])})" for d, where in per_day.items())
        repairs.append(f"{source}: route {route!r} of mobile {mobile!r} runs on {shown}; read as one route-day per "
                       f"weekday: {', '.join(repr(x) for x in names.values())}")  # fmt: skip


def first_visit(start: date, weekday: int) -> date:
    """The first ``weekday`` (0 = Monday) on or after ``start``."""
    return start + timedelta(days=(weekday - start.weekday()) % 7)


# ---------------------------------------------------------------------------------------------------------------
# writers


def write_timetable(rows: Sequence[Mapping[str, str]], path: str | Path) -> Path:
    """Write rows in the mobile-library-stops schema (its columns first, then any extra ones) as UTF-8 CSV."""
    path = Path(path)
    extra = [c for c in (rows[0] if rows else {}) if c not in COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in (*COLUMNS, *extra)})
    return path


def weekly_rule(weeks: int) -> str:
    """The RRULE of a round every ``weeks`` weeks."""
    return "FREQ=WEEKLY" if weeks == 1 else f"FREQ=WEEKLY;INTERVAL={weeks}"


def first_date(table: StopTimetable, row: int) -> date:
    """The first date a row's stop is served: its weekday, in its route-day's phase week, on or after the start.

    For a ``BYDAY=nXX`` monthly rule, the first such weekday of a month on or after the start.
    """
    rd = int(table.route_day[row])
    wd = int(table.weekday[rd])
    text = table.rows[row].get("start", "")
    start = date.fromisoformat(text[:10]) if text else table.reference
    rule = table.recurrence[row]
    if rule.ordinal is not None:
        day = start
        for _ in range(400):
            if day.weekday() == wd and _is_nth_weekday(day, rule.ordinal):
                return day
            day += timedelta(days=1)
        return start
    day = start + timedelta(days=(wd - start.weekday()) % 7)
    k = int(table.weeks[row])
    weeks_in = ((day - table.reference).days // 7) % k
    return day + timedelta(weeks=(int(table.phase[rd]) - weeks_in) % k)


def row_phase(table: StopTimetable, row: int) -> int | None:
    """The phase week a row's own RRULE and start date give (``None`` for a weekly rule without a start date)."""
    rule = table.recurrence[row]
    ordinal = rule.ordinal
    if ordinal is not None:
        return (ordinal - 1 if ordinal > 0 else MONTHLY_WEEKS + ordinal) % MONTHLY_WEEKS
    text = table.rows[row].get("start", "")
    if not text:
        return None
    visit = first_visit(date.fromisoformat(text[:10]), int(table.weekday[table.route_day[row]]))
    return ((visit - table.reference).days // 7) % int(table.weeks[row])


def _is_nth_weekday(day: date, ordinal: int) -> bool:
    """Whether ``day`` is the ``ordinal``-th of its weekday in its month (negative: counted from the end)."""
    if ordinal > 0:
        return (day.day - 1) // 7 + 1 == ordinal
    back = -ordinal
    return (day + timedelta(weeks=back)).month != day.month and (day + timedelta(weeks=back - 1)).month == day.month


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545, 3.1)."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for ch in line:
        b = ch.encode("utf-8")
        if len(current) + len(b) > (75 if not parts else 74):
            parts.append(current.decode("utf-8"))
            current = b""
        current += b
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def _exdates(text: str, *, where: str) -> list[date]:
    out = []
    for item in re.split(r"[,;\s]+", text.strip()):
        if item:
            try:
                out.append(date.fromisoformat(item[:10]))
            except ValueError:
                raise InvalidValueError(
                    f"{where}, field 'exceptions': {item!r} is not a date like 2024-01-31"
                ) from None
    return out


def calendar_text(table: StopTimetable, mobile: str, *, prodid: str = "-//branchnet//timetable//EN") -> str:
    """An iCalendar (RFC 5545) text with one recurring VEVENT per stop of ``mobile``.

    Each event starts on :func:`first_date` at the arrival time and ends at the departure time (floating local
    time), repeats by the row's RRULE (with ``UNTIL`` from ``end`` when the rule has no end) and skips the dates in
    ``exceptions``. SUMMARY is ``community / stop``; LOCATION the address and postcode; GEO the coordinates.
    """
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{prodid}", "CALSCALE:GREGORIAN"]
    lines.append(f"X-WR-CALNAME:{_ics_text(mobile)}")
    stamp = table.reference.strftime("%Y%m%dT000000Z")
    for i, row in enumerate(table.rows):
        if row["mobile"] != mobile:
            continue
        day = first_date(table, i)
        rule = table.recurrence[i].text.removeprefix("RRULE:")
        if row.get("end") and "UNTIL=" not in rule.upper() and "COUNT=" not in rule.upper():
            rule += f";UNTIL={date.fromisoformat(row['end'][:10]).strftime('%Y%m%d')}T235959"
        summary = " / ".join(x for x in (row.get("community", ""), row.get("stop", "")) if x) or row["route"]
        where = ", ".join(x for x in (row.get("address", ""), row.get("postcode", "")) if x)
        uid = f"{_slug(row['mobile'])}-{_slug(row['route'])}-{i + 2}@branchnet"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{day.strftime('%Y%m%d')}T{_hms(int(table.arrival[i]))}",
            f"DTEND:{day.strftime('%Y%m%d')}T{_hms(int(table.departure[i]))}",
            f"RRULE:{rule}",
            f"SUMMARY:{_ics_text(summary)}",
            f"DESCRIPTION:{_ics_text(row['mobile'])}\\, route {_ics_text(row['route'])}",
        ]
        if where:
            lines.append(f"LOCATION:{_ics_text(where)}")
        lines.append(f"GEO:{float(table.lat[i]):.6f};{float(table.lon[i]):.6f}")
        exdates = _exdates(row.get("exceptions", ""), where=f"{table.source}: row {i + 2}")
        lines += [f"EXDATE:{d.strftime('%Y%m%d')}T{_hms(int(table.arrival[i]))}" for d in exdates]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def _hms(seconds: int) -> str:
    seconds = min(seconds, 24 * 3600 - 1)
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def write_calendars(table: StopTimetable, folder: str | Path) -> list[Path]:
    """Write one ``<mobile>.ics`` per vehicle into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for mobile in dict.fromkeys(m for m, _ in table.route_days):
        path = folder / f"{_slug(mobile)}.ics"
        path.write_text(calendar_text(table, mobile), encoding="utf-8", newline="")
        paths.append(path)
    return paths


LegPath = Callable[[int, int], Sequence[tuple[float, float]]]


def route_geometries(table: StopTimetable, *, leg_path: LegPath | None = None) -> dict[str, Any]:
    """The route-days as a GeoJSON FeatureCollection of LineStrings (EPSG:4326), one feature per route-day.

    Parameters
    ----------
    leg_path
        ``leg_path(i, j)`` gives the (lon, lat) vertices from row ``i`` to row ``j`` along the road network;
        ``None`` draws straight (crow-fly) legs.
    """
    features = []
    for r, order in enumerate(table.stop_orders()):
        coords: list[list[float]] = []
        for a, b in itertools.pairwise(order.tolist()):
            leg = (
                [(float(table.lon[a]), float(table.lat[a])), (float(table.lon[b]), float(table.lat[b]))]
                if leg_path is None
                else list(leg_path(int(a), int(b)))
            )
            for lon_lat in leg:
                point = [round(float(lon_lat[0]), 7), round(float(lon_lat[1]), 7)]
                if not coords or coords[-1] != point:
                    coords.append(point)
        if len(coords) == 1 or len(order) == 1:
            i = int(order[0])
            coords = [[float(table.lon[i]), float(table.lat[i])]] * 2
        mobile, route = table.route_days[r]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {
                    "mobile": mobile,
                    "route": route,
                    "day": WEEKDAYS[int(table.weekday[r])],
                    "weeks": int(table.weeks[order].min()),
                    "phase": int(table.phase[r]),
                    "stops": len(order),
                    "travel": "crowfly" if leg_path is None else "network",
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_route_geometries(table: StopTimetable, path: str | Path, *, leg_path: LegPath | None = None) -> Path:
    """Write :func:`route_geometries` to a GeoJSON file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(route_geometries(table, leg_path=leg_path)), encoding="utf-8")
    return path
