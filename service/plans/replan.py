"""Timetable files in, re-planned timetables out: the glue between geodata's CSV schema and the optimizer's model.

``load_timetable`` reads a mobile-library-stops CSV and builds the optimizer's :class:`PeriodicTimetable`;
``travel_matrix`` gives the driving times between its stops (crow-fly, or along a stored region's roads);
``replan_file`` re-plans it and writes the new CSV (and optionally calendars and route lines), and
``check_file`` validates a written timetable against the original with the optimizer's own evaluator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geodata.errors import InvalidValueError
from geodata.libraries_hacked import (
    ICAL_DAYS,
    WEEKDAYS,
    LegPath,
    StopTimetable,
    first_visit,
    format_clock,
    read_timetable,
    row_phase,
    timetable_from_rows,
    write_calendars,
    write_route_geometries,
    write_timetable,
)
from optimizer.params import SolveParams
from optimizer.replan import (
    DEFAULT_TIME_TOLERANCE_S,
    Mode,
    PeriodicTimetable,
    ReplanResult,
    check_timetable,
    crowfly_travel,
    replan_timetable,
)
from service.errors import BadRequestError

Travel = Literal["crowfly", "network"]


@dataclass(frozen=True)
class TravelModel:
    """How driving times between stops are measured."""

    kind: Travel = "crowfly"
    circuity: float = 1.3
    speed_kmh: float = 40.0
    region: str | None = None
    regions_dir: Path | None = None

    def describe(self) -> str:
        if self.kind == "network":
            return f"road network of region {self.region!r} (drive graph travel times)"
        return f"crow-fly: haversine km x circuity {self.circuity:g} / {self.speed_kmh:g} km/h"


def stop_ids(table: StopTimetable) -> tuple[str, ...]:
    """A stop's identity across timetables: community, stop name, address and postcode."""
    return tuple(
        "|".join(r.get(c, "") for c in ("community", "stop", "address", "postcode")) for r in table.rows
    )  # fmt: skip


def to_model(table: StopTimetable) -> PeriodicTimetable:
    """The optimizer's model of a timetable file (stops in file order)."""
    return PeriodicTimetable(
        lon=table.lon,
        lat=table.lat,
        dwell=(table.departure - table.arrival).astype(np.float64),
        interval=table.weeks,
        arrival=table.arrival.astype(np.float64),
        route_day=table.route_day,
        weekday=table.weekday,
        phase=table.phase % np.maximum(_route_day_weeks(table), 1),
        mobile=tuple(m for m, _ in table.route_days),
        route=tuple(r for _, r in table.route_days),
        stop_id=stop_ids(table),
    )


def _route_day_weeks(table: StopTimetable) -> np.ndarray:
    weeks = np.full(len(table.route_days), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(weeks, table.route_day, table.weeks)
    return weeks


def load_timetable(path: str | Path, *, repair: bool = True) -> tuple[StopTimetable, PeriodicTimetable]:
    """Read and validate a timetable CSV (repairing what is readable, with warnings; see
    :mod:`geodata.libraries_hacked`); return the file's table and the optimizer's model of it."""
    table = read_timetable(path, repair=repair)
    return table, to_model(table)


def travel_matrix(table: StopTimetable, model: TravelModel) -> np.ndarray:
    """(N, N) driving times (s) between the rows' stops under ``model``.

    Raises
    ------
    ValueError
        ``network`` without a region, or a stop the road network cannot reach (named by row).
    """
    return _travel(table, model)[0]


def _travel(table: StopTimetable, model: TravelModel) -> tuple[np.ndarray, LegPath | None]:
    """The travel matrix and, on a road network, the road path of a leg (None for crow-fly)."""
    if model.kind == "crowfly":
        return crowfly_travel(table.lon, table.lat, circuity=model.circuity, speed_kmh=model.speed_kmh), None
    if model.kind != "network":
        raise BadRequestError(f"--travel must be 'crowfly' or 'network', not {model.kind!r}")
    if model.region is None or model.regions_dir is None:
        raise BadRequestError(
            "--travel network needs a region with a road network: pass --region NAME "
            "(import one with `branchnet region import`)"
        )
    import geopandas as gpd
    import networkx as nx

    from geodata.matrix import travel_time_matrix
    from geodata.snapping import snap_points
    from service.plans.bookmobile import bookmobile_graph
    from service.store.regions import load_region

    region = load_region(model.region, model.regions_dir)
    van = bookmobile_graph(region.drive)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(table.lon, table.lat), crs="EPSG:4326")
    labels = [f"row {i + 2} ({r.get('community', '')} {r.get('stop', '')})".strip() for i, r in enumerate(table.rows)]
    snapped = snap_points(van, points, ids=labels, what="stop", source=table.source, max_m=5000.0)
    nodes = snapped["node"].to_numpy()
    seconds = travel_time_matrix(van, nodes, nodes)
    np.fill_diagonal(seconds, 0.0)
    bad = ~np.isfinite(seconds)
    if bad.any():
        worst = int(np.argmax(bad.sum(axis=0) + bad.sum(axis=1)))
        raise InvalidValueError(
            f"{table.source}: {labels[worst]} cannot be reached on region {model.region!r}'s road network "
            f"from {int(bad[:, worst].sum())} other stop(s); check its coordinates or the network extent"
        )
    lon = nx.get_node_attributes(van, "lon")
    lat = nx.get_node_attributes(van, "lat")

    def leg_path(i: int, j: int) -> list[tuple[float, float]]:
        path = nx.shortest_path(van, int(nodes[i]), int(nodes[j]), weight="travel_time")
        return [(float(lon[v]), float(lat[v])) for v in path]

    return seconds, leg_path


def new_rows(table: StopTimetable, new: PeriodicTimetable) -> list[dict[str, str]]:
    """The rows of a re-planned timetable: each original row, moved to its new route-day, with new times.

    A row whose route-day keeps its weekday and phase keeps its RRULE and start date; otherwise the RRULE is
    rewritten (``FREQ=WEEKLY;INTERVAL=k``, or ``FREQ=MONTHLY;BYDAY=nXX`` for an n-th weekday of the month rule) and
    the start date becomes the first day of the new weekday and phase week after the file's reference Monday.
    """
    rows: list[dict[str, str]] = []
    for r, order in enumerate(new.orders()):
        wd, ph = int(new.weekday[r]), int(new.phase[r])
        for i in order.tolist():
            row = dict(table.rows[i])
            old_rd = int(table.route_day[i])
            k = int(table.weeks[i])
            rule = table.recurrence[i]
            own = row_phase(table, i)
            unchanged = int(table.weekday[old_rd]) == wd and (own if own is not None else 0) == ph % k
            if unchanged and row.get("start"):  # a start off the weekday (repaired on reading) is written as read
                row["start"] = first_visit(date.fromisoformat(row["start"][:10]), wd).isoformat()
            if not unchanged:
                if rule.ordinal is not None:
                    row["frequency"] = f"FREQ=MONTHLY;BYDAY={ph % 4 + 1}{ICAL_DAYS[wd]}"
                elif rule.freq == "WEEKLY":
                    row["frequency"] = f"FREQ=WEEKLY;INTERVAL={k}"
                row["start"] = (table.reference + timedelta(days=7 * ph + wd)).isoformat()
            arrival = float(new.arrival[i])
            minutes = round(arrival / 60)
            row.update(
                mobile=new.mobile[r],
                route=new.route[r],
                day=WEEKDAYS[wd],
                arrival=format_clock(minutes * 60),
                departure=format_clock(minutes * 60 + float(new.dwell[i])),
            )
            rows.append(row)
    return rows


@dataclass(frozen=True)
class ReplanReport:
    """What ``branchnet timetable replan`` did."""

    source: str
    out: Path
    travel: str
    result: ReplanResult
    file_violations: tuple[str, ...]
    excluded_reason: str | None
    written: tuple[Path, ...]
    #: The repairs made while reading the original (each names its rows; see :mod:`geodata.libraries_hacked`).
    repairs: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "source": self.source,
            "out": str(self.out),
            "travel": self.travel,
            "mode": r.mode,
            "score": r.score,
            "real_cycle_driving_h": r.real_cycle_driving_s / 3600,
            "new_cycle_driving_h": r.objective / 3600,
            "bound_score": r.bound / r.real_cycle_driving_s if r.real_cycle_driving_s else 1.0,
            "valid": r.valid and not self.file_violations,
            "violations": list(r.violations) + list(self.file_violations),
            "scored": self.excluded_reason is None,
            "excluded_reason": self.excluded_reason,
            "runtime_s": r.runtime_s,
            "repairs": list(self.repairs),
        }


def replan_file(
    stops: str | Path,
    out: str | Path,
    *,
    mode: Mode = "same-day",
    travel: TravelModel | None = None,
    params: SolveParams | None = None,
    calendars: str | Path | None = None,
    geojson: str | Path | None = None,
    repair: bool = True,
    ortools_share: float = 0.0,
) -> ReplanReport:
    """Re-plan a timetable file, write the new CSV (and calendars and route lines if asked), and check the file.

    The written CSV is read back and checked against the original with :func:`check_timetable`, so the
    reported validity is that of the file, with clock times to the minute.
    """
    from optimizer.replan import evaluate_timetable

    travel = travel or TravelModel()
    table, real = load_timetable(stops, repair=repair)
    matrix, leg_path = _travel(table, travel)
    result = replan_timetable(real, matrix, mode=mode, params=params, ortools_share=ortools_share)
    rows = new_rows(table, result.timetable)
    out = write_timetable(rows, out)
    written_table = timetable_from_rows(rows, source=str(out))
    written = to_model(written_table)
    order = _row_order(table, written_table)
    file_violations = tuple(
        check_timetable(
            written, matrix[np.ix_(order, order)], real, matrix, mode=mode, time_tolerance_s=DEFAULT_TIME_TOLERANCE_S
        )
    )
    paths = [out]
    if calendars is not None:
        paths += write_calendars(written_table, calendars)
    if geojson is not None:
        paths.append(write_route_geometries(written_table, geojson, leg_path=_by_written_row(leg_path, order)))
    reason = evaluate_timetable(real, matrix).excluded_reason
    return ReplanReport(str(stops), out, travel.describe(), result, file_violations, reason, tuple(paths),
                        table.repairs)  # fmt: skip


def _by_written_row(leg_path: LegPath | None, order: np.ndarray) -> LegPath | None:
    """``leg_path`` indexed by the written file's rows instead of the original's."""
    if leg_path is None:
        return None
    path = leg_path
    return lambda i, j: path(int(order[i]), int(order[j]))


def _row_order(original: StopTimetable, written: StopTimetable) -> np.ndarray:
    """For each written row, the index of the original row it came from (rows are matched by their fields)."""
    pending: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(original.rows):
        pending.setdefault(_row_key(row), []).append(i)
    order = []
    for row in written.rows:
        candidates = pending.get(_row_key(row))
        if not candidates:
            raise InvalidValueError(f"{written.source}: a written row matches no original stop: {row}")
        order.append(candidates.pop(0))
    return np.array(order, dtype=np.int64)


def _row_key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.get(c, "") for c in ("community", "stop", "address", "postcode", "geox", "geoy", "timetable"))


def check_file(
    stops: str | Path,
    *,
    against: str | Path | None = None,
    mode: Mode = "same-day",
    travel: TravelModel | None = None,
    repair: bool = True,
) -> dict[str, Any]:
    """The evaluator's account of a timetable file and, with ``against`` (the original), its violations.

    Returns ``report`` (the readable text), ``evaluation`` (the evaluator's numbers), ``travel`` (the travel
    model), and with ``against``: ``against`` (the original's cycle driving, the new one's, the score) and
    ``violations`` (a list, empty when valid); without it ``violations`` is ``None``. ``repairs`` lists the
    repairs made while reading ``stops`` (each naming its rows).
    """
    from optimizer.replan import cycle_driving, evaluate_timetable

    travel = travel or TravelModel()
    table, model = load_timetable(stops, repair=repair)
    matrix = travel_matrix(table, travel)
    evaluation = evaluate_timetable(model, matrix)
    numbers = {**asdict(evaluation), "overlap_share": evaluation.overlap_share,
               "excluded_reason": evaluation.excluded_reason}  # fmt: skip
    out: dict[str, Any] = {
        "file": str(stops),
        "report": evaluation.summary() + f"\ntravel model: {travel.describe()}",
        "evaluation": numbers,
        "travel": travel.describe(),
        "against": None,
        "violations": None,
        "repairs": list(table.repairs),
    }
    if against is None:
        return out
    ref_table, ref = load_timetable(against, repair=repair)
    ref_matrix = travel_matrix(ref_table, travel)
    out["violations"] = check_timetable(model, matrix, ref, ref_matrix, mode=mode,
                                        time_tolerance_s=DEFAULT_TIME_TOLERANCE_S)  # fmt: skip
    real = cycle_driving(ref, ref_matrix)
    new = cycle_driving(model, matrix)
    score = new / real if real else 1.0
    out["against"] = {"file": str(against), "mode": mode, "real_cycle_driving_h": real / 3600,
                      "new_cycle_driving_h": new / 3600, "score": score}  # fmt: skip
    out["report"] += (
        f"\nagainst {against}: cycle driving {real / 3600:,.2f} h -> {new / 3600:,.2f} h, score {score:.3f}"
    )
    return out
