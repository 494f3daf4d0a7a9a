"""Periodic mobile library timetables: the data model, the exact evaluator and re-planning.

A timetable is a set of stops (coordinates, dwell time in s, interval in weeks) served by route-days. A route-day
is one (mobile, route) pair: a trip on a fixed weekday, in a fixed phase week, repeated every k weeks; its stops
are ordered by arrival. The cycle is L = lcm of the intervals (weeks), so a route-day of interval k runs L / k
times a cycle.

Evaluation (the timetable replan benchmark, exactly). The driving of a route-day is the travel between its
consecutive stops (an open path: no depot legs); the cycle driving is sum over route-days of (L / k) x driving.
The span limit S is the longest real route-day, measured as the larger of its clock span (last departure - first
arrival) and its dwell plus driving. A new timetable is valid when it

- holds every stop exactly once, with its original interval, dwell and coordinates;
- puts stops of one interval only in each route-day;
- gives each route-day a span (dwell + travel) <= S;
- uses at most as many vehicle-days a cycle (sum of L / k) as the real timetable;
- keeps times consistent: arrival = previous departure + travel;
- gives each route-day its own (mobile, route) pair, and a mobile never drives two route-days on the same day of
  the cycle (same weekday, and phases equal modulo the gcd of the intervals);
- in ``same-day`` mode also keeps every stop's weekday and has at most as many route-days per (interval, weekday)
  as the real timetable.

Score = new cycle driving / real cycle driving. A council is left out of the score when its real route-days mix
intervals or more than 10% of its consecutive stops overlap in time (several vehicles under one name).

Re-planning. Stops are pooled by (interval, weekday) in ``same-day`` mode and by interval in ``free`` mode. Each
pool is an open-path VRP: minimise travel subject to span <= S with at most as many routes as the pool's real
route-days (fewer when the vehicles cannot drive them all on distinct days). Starting from the real routes, it is
solved by ruin-and-recreate with simulated annealing (:mod:`optimizer._openvrp`, SISR) and exact re-ordering of
each route. OR-Tools routing (a virtual start node with free arcs to every stop, an open end, service = dwell,
``max_span`` = S, seeded with the real routes) builds the start when the real routes cannot take every stop, and
can run first on every pool (``ortools_share``).
Route-days then take the identity (mobile, route, weekday, phase, start time) of the real route-day of their pool
with which they share most stops (an assignment problem), so a mobile keeps its days; a route-day left without
one gets a free (mobile, weekday, phase) slot, starting at 09:00 in ``free`` mode. ``bound`` is the minimum
spanning forest of each pool with as many trees as routes, a relaxation that ignores the span limit; the score
can never fall below ``bound / real cycle driving``.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from optimizer._openvrp import best_open_path, improve_routes, path_travel
from optimizer.errors import InfeasibleProblemError, InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams
from optimizer.routing import RoutingProblem, solve_routing

Mode = Literal["same-day", "free"]
MODES: tuple[Mode, ...] = ("same-day", "free")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EARTH_RADIUS_KM = 6371.0088
#: A new route-day without a real one to follow starts at 09:00 (free mode).
DEFAULT_START_S = 9 * 3600
#: Councils whose consecutive stops overlap in time more often than this are left out of the score.
OVERLAP_SHARE_LIMIT = 0.10
#: Arrival times are checked to this many seconds: files give clock times to the minute.
DEFAULT_TIME_TOLERANCE_S = 60.0
_LAST_START_S = 24 * 3600 - 60


# ---------------------------------------------------------------------------------------------------------------
# travel


def haversine_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(N, N) great-circle distances (km) between points given in degrees."""
    lo, la = np.radians(np.asarray(lon, dtype=np.float64)), np.radians(np.asarray(lat, dtype=np.float64))
    h = (
        np.sin((la[:, None] - la[None, :]) / 2) ** 2
        + np.cos(la)[:, None] * np.cos(la)[None, :] * np.sin((lo[:, None] - lo[None, :]) / 2) ** 2
    )
    km: np.ndarray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return km


def crowfly_travel(lon: np.ndarray, lat: np.ndarray, *, circuity: float = 1.3, speed_kmh: float = 40.0) -> np.ndarray:
    """(N, N) crow-fly driving times (s): haversine km x circuity / speed."""
    if not (circuity >= 1.0 and math.isfinite(circuity)):
        raise InvalidProblemError(f"circuity must be a number >= 1 (road km per crow-fly km), not {circuity!r}")
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise InvalidProblemError(f"speed_kmh must be positive, not {speed_kmh!r}")
    seconds: np.ndarray = haversine_km(lon, lat) * circuity / speed_kmh * 3600.0
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# the data model


@dataclass(frozen=True)
class PeriodicTimetable:
    """A periodic timetable: N stops served by R route-days.

    Parameters
    ----------
    lon, lat
        (N,) stop coordinates, degrees.
    dwell
        (N,) time at each stop, s (departure - arrival).
    interval
        (N,) weeks between visits of each stop.
    arrival
        (N,) arrival time, s after midnight; fixes the order of a route-day's stops.
    route_day
        (N,) the route-day (0..R-1) serving each stop.
    weekday
        (R,) weekday of each route-day, 0 = Monday.
    phase
        (R,) week of the cycle in which each route-day runs first (0..k-1 for interval k).
    mobile, route
        (R,) vehicle and route name of each route-day.
    stop_id
        (N,) what identifies a stop when two timetables are compared (e.g. community and stop name); the
        default is its index.
    """

    lon: np.ndarray
    lat: np.ndarray
    dwell: np.ndarray
    interval: np.ndarray
    arrival: np.ndarray
    route_day: np.ndarray
    weekday: np.ndarray
    phase: np.ndarray
    mobile: tuple[str, ...]
    route: tuple[str, ...]
    stop_id: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(np.asarray(self.lon))
        for name in ("lat", "dwell", "interval", "arrival", "route_day"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise ShapeMismatchError(f"{name} has shape {np.asarray(getattr(self, name)).shape}; need ({n},)")
        r = len(np.asarray(self.weekday))
        for name in ("phase", "mobile", "route"):
            if len(getattr(self, name)) != r:
                raise ShapeMismatchError(f"{name} has {len(getattr(self, name))} entries; need one per route-day ({r})")
        if self.stop_id and len(self.stop_id) != n:
            raise ShapeMismatchError(f"stop_id has {len(self.stop_id)} entries; need one per stop ({n})")
        for name in ("lon", "lat", "dwell", "arrival"):
            if not np.isfinite(np.asarray(getattr(self, name), dtype=np.float64)).all():
                raise InvalidCostError(f"{name} must be finite on every stop")
        if (np.asarray(self.dwell) < 0).any():
            raise InvalidCostError("dwell must be non-negative")
        if n and (np.asarray(self.interval) < 1).any():
            raise InvalidProblemError("interval must be at least 1 week on every stop")
        rd = np.asarray(self.route_day)
        if n and (rd.min() < 0 or rd.max() >= r):
            raise InvalidProblemError(f"route_day must lie in 0..{r - 1}")
        wd = np.asarray(self.weekday)
        if r and (wd.min() < 0 or wd.max() > 6):
            raise InvalidProblemError("weekday must lie in 0 (Monday)..6 (Sunday)")
        if r and (np.asarray(self.phase) < 0).any():
            raise InvalidProblemError("phase must be non-negative")

    @property
    def n_stops(self) -> int:
        return len(np.asarray(self.lon))

    @property
    def n_route_days(self) -> int:
        return len(np.asarray(self.weekday))

    @property
    def ids(self) -> tuple[str, ...]:
        """Stop identities (``stop_id``, or the indices)."""
        return self.stop_id or tuple(str(i) for i in range(self.n_stops))

    @property
    def cycle_weeks(self) -> int:
        """L, the lcm of the intervals."""
        return int(np.lcm.reduce(np.asarray(self.interval, dtype=np.int64))) if self.n_stops else 1

    def orders(self) -> list[np.ndarray]:
        """Stop indices of each route-day ordered by arrival (index order among equal arrivals)."""
        rd = np.asarray(self.route_day)
        order = np.lexsort((np.arange(self.n_stops), np.asarray(self.arrival, dtype=np.float64), rd))
        bounds = np.searchsorted(rd[order], np.arange(self.n_route_days + 1))
        return [order[bounds[r] : bounds[r + 1]] for r in range(self.n_route_days)]

    def route_day_interval(self) -> np.ndarray:
        """(R,) interval of each route-day: its most frequent stops' (the smallest) interval; 0 if it is empty."""
        out = np.zeros(self.n_route_days, dtype=np.int64)
        for r, o in enumerate(self.orders()):
            if len(o):
                out[r] = int(np.asarray(self.interval)[o].min())
        return out

    def vehicle_days(self) -> int:
        """Vehicle-days a cycle: sum over route-days of L / k."""
        k = self.route_day_interval()
        return int(sum(self.cycle_weeks // int(v) for v in k if v > 0))


def _check_travel(travel: np.ndarray, n: int) -> np.ndarray:
    t = np.asarray(travel, dtype=np.float64)
    if t.shape != (n, n):
        raise ShapeMismatchError(f"travel has shape {t.shape}; need ({n}, {n}), one row and column per stop")
    if not np.isfinite(t).all() or (t < 0).any():
        raise InvalidCostError("travel must be finite and non-negative: every stop must reach every other")
    return t


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def route_day_driving(tt: PeriodicTimetable, travel: np.ndarray) -> np.ndarray:
    """(R,) driving of each route-day, s: travel between consecutive stops."""
    t = _check_travel(travel, tt.n_stops)
    return np.array([path_travel(t, o) for o in tt.orders()], dtype=np.float64)


def cycle_driving(tt: PeriodicTimetable, travel: np.ndarray) -> float:
    """Sum over route-days of (L / k) x driving, s."""
    drive = route_day_driving(tt, travel)
    k = tt.route_day_interval()
    used = k > 0
    return float(((tt.cycle_weeks // np.where(used, k, 1)) * drive * used).sum())


def route_day_spans(tt: PeriodicTimetable, travel: np.ndarray) -> np.ndarray:
    """(R,) dwell plus driving of each route-day, s."""
    drive = route_day_driving(tt, travel)
    dwell = np.bincount(np.asarray(tt.route_day), weights=np.asarray(tt.dwell, float), minlength=tt.n_route_days)
    spans: np.ndarray = dwell + drive
    return spans


def span_limit(tt: PeriodicTimetable, travel: np.ndarray) -> float:
    """The longest route-day: max over route-days of max(last departure - first arrival, dwell + driving), s."""
    spans = route_day_spans(tt, travel)
    arrival, departure = np.asarray(tt.arrival, float), np.asarray(tt.arrival, float) + np.asarray(tt.dwell, float)
    clock = np.array([departure[o].max() - arrival[o].min() if len(o) else 0.0 for o in tt.orders()])
    return float(np.maximum(clock, spans).max()) if tt.n_route_days else 0.0


def _conflicts(tt: PeriodicTimetable) -> list[str]:
    """Route-days a mobile would drive on the same day of the cycle."""
    k = tt.route_day_interval()
    by_day: dict[tuple[str, int], list[int]] = defaultdict(list)
    for r in range(tt.n_route_days):
        if k[r] > 0:
            by_day[(tt.mobile[r], int(tt.weekday[r]))].append(r)
    out = []
    for (mobile, wd), rds in by_day.items():
        for a_pos, a in enumerate(rds):
            for b in rds[a_pos + 1 :]:
                g = math.gcd(int(k[a]), int(k[b]))
                if int(tt.phase[a]) % g == int(tt.phase[b]) % g:
                    out.append(
                        f"mobile {mobile!r} drives routes {tt.route[a]!r} and {tt.route[b]!r} on the same "
                        f"{WEEKDAY_NAMES[wd]} of the cycle"
                    )
    return out


@dataclass(frozen=True)
class TimetableReport:
    """What the evaluator measures on one timetable (times in s)."""

    n_stops: int
    n_route_days: int
    n_mobiles: int
    cycle_weeks: int
    vehicle_days: int
    cycle_driving_s: float
    span_limit_s: float
    mixed_interval_route_days: int
    overlapping_pairs: int
    consecutive_pairs: int
    mobile_conflicts: tuple[str, ...]
    intervals: dict[int, int]

    @property
    def overlap_share(self) -> float:
        return self.overlapping_pairs / self.consecutive_pairs if self.consecutive_pairs else 0.0

    @property
    def excluded_reason(self) -> str | None:
        """Why the benchmark leaves this timetable out of the score, or ``None`` when it is scored."""
        reasons = []
        if self.mixed_interval_route_days:
            reasons.append(f"{self.mixed_interval_route_days} real route-day(s) mix intervals")
        if self.overlap_share > OVERLAP_SHARE_LIMIT:
            reasons.append(
                f"{self.overlap_share:.0%} of consecutive stops overlap in time (> {OVERLAP_SHARE_LIMIT:.0%}: "
                "several vehicles under one name)"
            )
        return "; ".join(reasons) or None

    @property
    def scored(self) -> bool:
        return self.excluded_reason is None

    def summary(self) -> str:
        ivs = ", ".join(f"{n} stop(s) every {k} week(s)" for k, n in sorted(self.intervals.items()))
        lines = [
            f"{self.n_stops} stops on {self.n_route_days} route-days, {self.n_mobiles} mobile(s); {ivs}",
            f"cycle {self.cycle_weeks} week(s), {self.vehicle_days} vehicle-days a cycle",
            f"cycle driving {self.cycle_driving_s / 3600:,.2f} h; span limit {self.span_limit_s / 3600:.2f} h",
            f"consecutive stops overlapping in time: {self.overlapping_pairs}/{self.consecutive_pairs}",
            f"route-days mixing intervals: {self.mixed_interval_route_days}",
            f"mobile clashes (two route-days on one day of the cycle): {len(self.mobile_conflicts)}",
        ]
        lines += [f"  {c}" for c in self.mobile_conflicts[:10]]
        reason = self.excluded_reason
        lines.append("benchmark: scored" if reason is None else f"benchmark: excluded ({reason})")
        return "\n".join(lines)


def evaluate_timetable(tt: PeriodicTimetable, travel: np.ndarray) -> TimetableReport:
    """Measure a timetable: cycle driving, span limit, vehicle-days, overlaps, mixed intervals and mobile clashes."""
    t = _check_travel(travel, tt.n_stops)
    orders = tt.orders()
    interval = np.asarray(tt.interval)
    arrival = np.asarray(tt.arrival, float)
    departure = arrival + np.asarray(tt.dwell, float)
    mixed = sum(1 for o in orders if len(o) and len(set(interval[o].tolist())) > 1)
    overlap = sum(int((arrival[o[1:]] < departure[o[:-1]]).sum()) for o in orders)
    pairs = sum(max(len(o) - 1, 0) for o in orders)
    return TimetableReport(
        n_stops=tt.n_stops,
        n_route_days=sum(1 for o in orders if len(o)),
        n_mobiles=len(set(tt.mobile)),
        cycle_weeks=tt.cycle_weeks,
        vehicle_days=tt.vehicle_days(),
        cycle_driving_s=cycle_driving(tt, t),
        span_limit_s=span_limit(tt, t),
        mixed_interval_route_days=mixed,
        overlapping_pairs=overlap,
        consecutive_pairs=pairs,
        mobile_conflicts=tuple(_conflicts(tt)),
        intervals=dict(sorted(Counter(int(v) for v in interval).items())),
    )


def _stop_keys(tt: PeriodicTimetable, *, with_weekday: bool) -> Counter[tuple[Any, ...]]:
    wd = np.asarray(tt.weekday)[np.asarray(tt.route_day)]
    keys: Counter[tuple[Any, ...]] = Counter()
    for i, sid in enumerate(tt.ids):
        key: tuple[Any, ...] = (
            sid,
            int(tt.interval[i]),
            round(float(tt.dwell[i]), 3),
            round(float(tt.lon[i]), 6),
            round(float(tt.lat[i]), 6),
        )
        keys[(*key, int(wd[i])) if with_weekday else key] += 1
    return keys


def _describe(keys: Counter[tuple[Any, ...]], limit: int = 5) -> str:
    items = [f"{k[0]!r} (every {k[1]} wk, dwell {k[2]:g} s)" for k in list(keys.elements())[:limit]]
    more = sum(keys.values()) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def check_timetable(
    new: PeriodicTimetable,
    new_travel: np.ndarray,
    real: PeriodicTimetable,
    real_travel: np.ndarray,
    *,
    mode: Mode = "same-day",
    time_tolerance_s: float = DEFAULT_TIME_TOLERANCE_S,
) -> list[str]:
    """Every way ``new`` breaks the benchmark's validity rules against ``real`` (an empty list: valid).

    ``new_travel`` and ``real_travel`` are each timetable's own travel matrix (stops may be in another order).
    Arrivals may differ from previous departure + travel by ``time_tolerance_s`` (files give minutes).
    """
    if mode not in MODES:
        raise InvalidProblemError(f"mode must be one of {MODES}, not {mode!r}")
    nt = _check_travel(new_travel, new.n_stops)
    rt = _check_travel(real_travel, real.n_stops)
    out: list[str] = []
    have, want = _stop_keys(new, with_weekday=False), _stop_keys(real, with_weekday=False)
    if have != want:
        if want - have:
            out.append(f"stops missing or changed (interval, dwell or coordinates): {_describe(want - have)}")
        if have - want:
            out.append(f"stops not in the real timetable or served twice: {_describe(have - want)}")
    orders = new.orders()
    interval = np.asarray(new.interval)
    label = [f"{new.mobile[r]!r} route {new.route[r]!r}" for r in range(new.n_route_days)]
    for r, o in enumerate(orders):
        if len(o) and len(set(interval[o].tolist())) > 1:
            out.append(f"route-day {label[r]} mixes intervals {sorted(set(interval[o].tolist()))}")
    limit = span_limit(real, rt)
    spans = route_day_spans(new, nt)
    for r in np.flatnonzero(spans > limit + 1e-6).tolist():
        out.append(f"route-day {label[r]} spans {spans[r] / 3600:.2f} h, over the limit of {limit / 3600:.2f} h")
    if new.vehicle_days() > real.vehicle_days() or new.cycle_weeks != real.cycle_weeks:
        out.append(
            f"{new.vehicle_days()} vehicle-days in a {new.cycle_weeks}-week cycle; "
            f"the real timetable uses {real.vehicle_days()} in {real.cycle_weeks}"
        )
    arrival = np.asarray(new.arrival, float)
    dwell = np.asarray(new.dwell, float)
    for r, o in enumerate(orders):
        if len(o) > 1:
            expected = arrival[o[:-1]] + dwell[o[:-1]] + nt[o[:-1], o[1:]]
            off = np.abs(arrival[o[1:]] - expected)
            if (off > time_tolerance_s + 1e-6).any():
                j = int(np.argmax(off))
                out.append(
                    f"route-day {label[r]}: arrival at stop {new.ids[o[j + 1]]!r} is {off[j] / 60:.1f} min off the "
                    "previous departure plus travel"
                )
    used = [r for r, o in enumerate(orders) if len(o)]
    pairs = Counter((new.mobile[r], new.route[r]) for r in used)
    out += [f"(mobile, route) {p!r} is given to {c} route-days" for p, c in pairs.items() if c > 1]
    rk = new.route_day_interval()
    out += [f"phase of route-day {label[r]} is not below its interval" for r in used if new.phase[r] >= rk[r]]
    out += _conflicts(new)
    if mode == "same-day":
        have_d, want_d = _stop_keys(new, with_weekday=True), _stop_keys(real, with_weekday=True)
        moved = (want_d - have_d) if have == want else Counter()
        if moved:
            out.append(f"stops moved to another weekday in same-day mode: {_describe(moved)}")
        real_k = real.route_day_interval()
        real_count = Counter((int(real_k[r]), int(real.weekday[r])) for r in range(real.n_route_days) if real_k[r])
        new_count = Counter((int(rk[r]), int(new.weekday[r])) for r in used)
        for (k, wd), c in sorted(new_count.items()):
            if c > real_count.get((k, wd), 0):
                out.append(
                    f"{c} route-days every {k} week(s) on {WEEKDAY_NAMES[wd]}; "
                    f"the real timetable has {real_count.get((k, wd), 0)}"
                )
    return out


# ---------------------------------------------------------------------------------------------------------------
# re-planning


@dataclass(frozen=True)
class _Pool:
    """Stops that may share route-days: one interval (and one weekday in same-day mode)."""

    interval: int
    weekday: int | None
    stops: np.ndarray
    real_route_days: tuple[int, ...]
    n_routes: int
    seeds: tuple[tuple[int, ...], ...]


def _pools(real: PeriodicTimetable, mode: Mode) -> list[_Pool]:
    orders = real.orders()
    interval = np.asarray(real.interval)
    members: dict[tuple[int, int | None], dict[int, list[int]]] = defaultdict(dict)
    for r, o in enumerate(orders):
        for i in o.tolist():
            key = (int(interval[i]), int(real.weekday[r]) if mode == "same-day" else None)
            members[key].setdefault(r, []).append(i)
    pools = []
    for (k, wd), by_rd in sorted(members.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])):
        stops = np.array([i for rd in by_rd.values() for i in rd], dtype=np.int64)
        seeds = tuple(tuple(rd) for rd in by_rd.values())
        pools.append(_Pool(k, wd, stops, tuple(by_rd), len(by_rd), seeds))
    return _fit_vehicles(real, pools)


def _fit_vehicles(real: PeriodicTimetable, pools: list[_Pool]) -> list[_Pool]:
    """Cut route-day counts until the mobiles can drive them on distinct days of the cycle (week-slots)."""
    mobiles = len(set(real.mobile))
    cycle = real.cycle_weeks
    days = sorted(set(np.asarray(real.weekday).tolist()))
    counts = [p.n_routes for p in pools]

    def demand(idx: list[int]) -> int:
        return sum(counts[i] * (cycle // pools[i].interval) for i in idx)

    groups: dict[int | None, list[int]] = defaultdict(list)
    for i, p in enumerate(pools):
        groups[p.weekday].append(i)
    for wd, idx in groups.items():
        slots = mobiles * cycle * (1 if wd is not None else len(days))
        while demand(idx) > slots:
            i = max(idx, key=lambda j: (counts[j], -pools[j].interval))
            if counts[i] <= 1:
                need = ", ".join(f"{counts[j]} every {pools[j].interval} wk" for j in idx)
                where = f"on {WEEKDAY_NAMES[wd]}s" if wd is not None else "on the weekdays in use"
                raise InfeasibleProblemError(
                    f"{mobiles} mobile(s) cannot drive the route-days {where} on distinct days of the {cycle}-week "
                    f"cycle: they need {demand(idx)} vehicle-days ({need}) and there are {slots}; stops of "
                    "different intervals cannot share a route-day"
                )
            counts[i] -= 1
    return [
        _Pool(p.interval, p.weekday, p.stops, p.real_route_days, c, p.seeds) for p, c in zip(pools, counts, strict=True)
    ]


def _forest_bound(travel: np.ndarray, trees: int) -> float:
    """Weight of a minimum spanning forest with ``trees`` trees (Prim, then drop the heaviest edges)."""
    n = len(travel)
    if n <= trees:
        return 0.0
    w = np.minimum(travel, travel.T)
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = w[0].copy()
    edges = []
    for _ in range(n - 1):
        cand = np.where(inside, np.inf, best)
        j = int(np.argmin(cand))
        edges.append(float(cand[j]))
        inside[j] = True
        best = np.minimum(best, w[j])
    return float(np.sort(edges)[: n - trees].sum())


def _work_budget(n: int, m: int, seconds: float) -> int:
    """Ruin-and-recreate iterations for a pool: a fixed cost per iteration, so a time limit gives a work limit.

    One iteration takes about 300 + 0.5 (n + m) microseconds here; the budget assumes 5 times that, so the
    search normally ends on its iteration count (and is then reproducible) rather than on the clock, even on a
    machine busy enough to slow it 5 times (2.5 times was not enough: with two other processes per core the
    clock stopped it and the same inputs gave another timetable). The search quality levels off well before the
    budget (ten times the time changes scores by under 1%).
    """
    per_iteration = 5.0 * (300.0 + 0.5 * (n + m)) * 1e-6
    return int(min(600 * n, max(200, seconds / per_iteration)))


def _solve_pool(
    travel: np.ndarray,
    dwell: np.ndarray,
    limit: float,
    pool: _Pool,
    seeds: list[list[int]],
    time_limit_s: float,
    seed: int,
    ortools_share: float,
    stats: dict[str, float],
    work_s: float | None = None,
) -> list[list[int]]:
    """Open routes (local node ids) covering the pool, with span <= limit, cheapest travel found in the time.

    ``work_s`` (default ``time_limit_s``) sets the search's iteration budget: it is the pool's share of the
    nominal time limit, not of the time left, so that the same inputs do the same work (the clock only caps it).

    Start from today's routes (those within the limit, the longest when there are too many), or from OR-Tools
    when ``ortools_share`` > 0 or today's routes cannot take every stop; then ruin-and-recreate.
    """
    n, m = len(dwell), pool.n_routes
    where = f" on {WEEKDAY_NAMES[pool.weekday]}s" if pool.weekday is not None else ""
    no_fit = (
        f"the {n} stops every {pool.interval} week(s){where} do not fit in {m} route-day(s) within the span limit "
        f"of {limit / 3600:.2f} h"
    )
    if n <= m:
        return [[i] for i in range(n)]
    if m == 1 and n <= 12:
        path = best_open_path(travel, range(n))
        if dwell.sum() + path_travel(travel, path) > limit + 1e-6:
            raise InfeasibleProblemError(no_fit)
        return [path]
    start = time.perf_counter()
    fitting = [s for s in seeds if s and dwell[s].sum() + path_travel(travel, s) <= limit + 1e-6]
    routes = sorted(fitting, key=len, reverse=True)[:m]
    if ortools_share > 0:
        found = _ortools_routes(travel, dwell, limit, m, seeds, max(0.2, ortools_share * time_limit_s), stats)
        routes = found if found is not None else routes
    nominal = time_limit_s if work_s is None else work_s
    for attempt in range(2):
        remaining = max(0.05, time_limit_s - (time.perf_counter() - start))
        try:
            info: dict[str, float] = {}
            found_routes = improve_routes(
                travel, dwell, limit, routes, m, time_limit_s=remaining,
                iterations=_work_budget(n, m, nominal if attempt == 0 else remaining),
                seed=seed, info=info,
            )  # fmt: skip
            stats["iterations"] = stats.get("iterations", 0.0) + info["iterations"]
            stats["pools_stopped_by_clock"] = stats.get("pools_stopped_by_clock", 0.0) + info["stopped_by_clock"]
            return found_routes
        except InfeasibleProblemError:
            found = None if attempt else _ortools_routes(travel, dwell, limit, m, seeds, 0.3 * remaining, stats)
            if found is None:
                raise InfeasibleProblemError(no_fit) from None
            routes = found
    raise AssertionError("unreachable")


def _ortools_routes(
    travel: np.ndarray,
    dwell: np.ndarray,
    limit: float,
    m: int,
    seeds: list[list[int]],
    time_limit_s: float,
    stats: dict[str, float],
) -> list[list[int]] | None:
    """OR-Tools on the pool: node n is a virtual start with free arcs to every stop; routes end where they stop.

    Travel is rounded up to whole seconds, so a route within ``max_span`` in whole seconds is within the span
    limit exactly.
    """
    n = len(dwell)
    t = np.zeros((n + 1, n + 1), dtype=np.int64)
    t[:n, :n] = np.ceil(travel - 1e-9).astype(np.int64)
    service = np.zeros(n + 1)
    service[:n] = np.ceil(dwell)
    problem = RoutingProblem(
        travel=t, n_vehicles=m, starts=(n,) * m, open_end=True, service=service, max_span=math.floor(limit)
    )
    fits = [s for s in seeds if s and service[s].sum() + t[s[:-1], s[1:]].sum() <= math.floor(limit)]
    initial = fits + [[] for _ in range(m - len(fits))] if len(fits) == len(seeds) and len(seeds) <= m else None
    result = solve_routing(problem, params=SolveParams(time_limit_s=time_limit_s), initial_routes=initial)
    stats["ortools_s"] = stats.get("ortools_s", 0.0) + result.runtime_s
    if result.status != "feasible" or result.dropped:
        return None
    return [[v for v in r if v < n] for r in result.routes if any(v < n for v in r)]


def _assign_identities(
    real: PeriodicTimetable,
    pools: list[_Pool],
    routes: list[list[list[int]]],
    mode: Mode,
) -> list[tuple[str, str, int, int, float | None]]:
    """(mobile, route, weekday, phase, start s or None) of each new route-day, pool by pool.

    A new route-day follows the real route-day of its pool with which it shares most stops (an assignment
    problem), keeping its mobile, route name, weekday, phase and first arrival. If that clashes with a route-day
    already placed (only when the real timetable clashed), or none is left, it gets the first free
    (mobile, weekday, phase) slot and a new route name.
    """
    orders = real.orders()
    real_first = [float(np.asarray(real.arrival, float)[o].min()) if len(o) else None for o in orders]
    mobiles = list(dict.fromkeys(real.mobile))
    days = sorted(set(np.asarray(real.weekday).tolist()))
    cycle = real.cycle_weeks
    placed: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)  # (mobile, weekday) -> (k, phase)
    names: set[tuple[str, str]] = set()
    taken: set[int] = set()
    out: list[tuple[str, str, int, int, float | None]] = []

    def free(mobile: str, wd: int, k: int, ph: int) -> bool:
        return all(ph % math.gcd(k, k2) != ph2 % math.gcd(k, k2) for k2, ph2 in placed[(mobile, wd)])

    for pool, pool_routes in zip(pools, routes, strict=True):
        candidates = [x for x in pool.real_route_days if x not in taken]
        overlap = np.zeros((len(pool_routes), len(candidates)))
        for a, route in enumerate(pool_routes):
            stops = set(route)
            for b, x in enumerate(candidates):
                overlap[a, b] = len(stops.intersection(orders[x].tolist()))
        match: dict[int, int] = {}
        if len(pool_routes) and candidates:
            rows, cols = linear_sum_assignment(-overlap)
            match = {int(a): candidates[int(b)] for a, b in zip(rows, cols, strict=True)}
        k = pool.interval
        for a in range(len(pool_routes)):
            r = match.get(a)
            if r is not None:
                taken.add(r)
                mobile, wd, ph = real.mobile[r], int(real.weekday[r]), int(real.phase[r]) % k
                if free(mobile, wd, k, ph) and (mobile, real.route[r]) not in names:
                    placed[(mobile, wd)].append((k, ph))
                    names.add((mobile, real.route[r]))
                    out.append((mobile, real.route[r], wd, ph, real_first[r]))
                    continue
            wds = [pool.weekday] if pool.weekday is not None else ([int(real.weekday[r])] if r is not None else [])
            wds += [d for d in days if d not in wds]
            slot = next(
                ((mb, d, p) for d in wds for mb in mobiles for p in range(k) if free(mb, d, k, p)),
                None,
            )
            if slot is None:
                raise InfeasibleProblemError(
                    f"no free day in the {cycle}-week cycle for a route-day every {k} week(s) "
                    f"({len(mobiles)} mobile(s))"
                )
            mobile, wd, ph = slot
            placed[(mobile, wd)].append((k, ph))
            base = WEEKDAY_NAMES[wd] + (f" week {ph + 1} of {k}" if k > 1 else "")
            name, extra = base, 2
            while (mobile, name) in names:
                name, extra = f"{base} ({extra})", extra + 1
            names.add((mobile, name))
            start = None if mode == "free" else (real_first[r] if r is not None else None)
            if start is None and mode == "same-day":
                firsts = [real_first[x] for x in pool.real_route_days if real_first[x] is not None]
                start = min(v for v in firsts if v is not None) if firsts else None
            out.append((mobile, name, wd, ph, start))
    return out


@dataclass(frozen=True)
class ReplanResult:
    """A re-planned timetable and its evaluation (times in s).

    ``objective`` is the new cycle driving; ``bound`` a lower bound on any valid timetable's cycle driving in this
    mode (minimum spanning forests, span limit relaxed); ``gap`` = (objective - bound) / objective.
    """

    status: Literal["feasible", "invalid"]
    objective: float
    bound: float
    gap: float
    runtime_s: float
    mode: Mode
    timetable: PeriodicTimetable
    real_cycle_driving_s: float
    span_limit_s: float
    violations: tuple[str, ...]
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """New cycle driving / real cycle driving."""
        return self.objective / self.real_cycle_driving_s if self.real_cycle_driving_s > 0 else 1.0

    @property
    def valid(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        check = "valid" if self.valid else f"INVALID ({len(self.violations)} violation(s))"
        floor = self.bound / self.real_cycle_driving_s if self.real_cycle_driving_s > 0 else 1.0
        return (
            f"replan ({self.mode}): cycle driving {self.real_cycle_driving_s / 3600:,.2f} h -> "
            f"{self.objective / 3600:,.2f} h, score {self.score:.3f} (no valid timetable below {floor:.3f}), "
            f"{self.timetable.n_route_days} route-days, {check}, {self.runtime_s:.1f} s"
        )


def _clock_times(route: list[int], first: float, dwell: np.ndarray, travel: np.ndarray) -> np.ndarray:
    """Arrival times along a route: arrival = previous departure + travel, the last departure by 23:59."""
    legs = np.concatenate([[0.0], dwell[route[:-1]] + travel[route[:-1], route[1:]]])
    span = float(dwell[route].sum() + legs.sum())
    start = min(first, max(0.0, _LAST_START_S - span))
    times: np.ndarray = start + np.cumsum(legs)
    return times


def replan_timetable(
    real: PeriodicTimetable,
    travel: np.ndarray,
    *,
    mode: Mode = "same-day",
    params: SolveParams | None = None,
    ortools_share: float = 0.0,
) -> ReplanResult:
    """Re-plan a periodic timetable to cut its cycle driving, keeping the benchmark's validity rules.

    Parameters
    ----------
    real
        Today's timetable.
    travel
        (N, N) driving time between its stops, s (crow-fly or road network).
    mode
        ``"same-day"``: every stop keeps its weekday, at most today's number of route-days per (interval,
        weekday). ``"free"``: stops of one interval may move to any route-day and weekday.
    params
        ``time_limit_s`` is shared by the pools in proportion to their size and sets each pool's work budget
        (iterations), so the same seed and time limit give the same timetable unless the clock runs out first;
        ``seed`` drives the ruin-and-recreate search.
    ortools_share
        Share of each pool's time for OR-Tools' guided local search, seeded with today's routes, before
        ruin-and-recreate. 0 (the default) starts from today's routes directly and calls OR-Tools only when they
        cannot take every stop: on the 20 councils the OR-Tools phase did not lower the scores (mean 0.508 at 0,
        0.509 at 0.35, 0.512 at 0.7) and it stops on the clock, so it makes runs irreproducible.

    Raises
    ------
    InfeasibleProblemError
        When the mobiles cannot drive the route-days on distinct days of the cycle, or a pool's stops do not fit
        in its route-days within the span limit.
    """
    if mode not in MODES:
        raise InvalidProblemError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    params = params or SolveParams()
    start = time.perf_counter()
    t = _check_travel(travel, real.n_stops)
    dwell = np.asarray(real.dwell, dtype=np.float64)
    # a route-day must also fit in one clock day (only binds where several vehicles share a name)
    limit = min(span_limit(real, t), float(_LAST_START_S))
    real_driving = cycle_driving(real, t)
    cycle = real.cycle_weeks
    pools = _pools(real, mode)
    bound = sum(
        (cycle // p.interval) * _forest_bound(t[np.ix_(p.stops, p.stops)], p.n_routes) for p in pools
    )  # fmt: skip
    budget = max(0.1, 0.95 * params.time_limit_s - (time.perf_counter() - start))
    hard = [len(p.stops) > p.n_routes and not (p.n_routes == 1 and len(p.stops) <= 12) for p in pools]
    weight = sum(len(p.stops) for p, h in zip(pools, hard, strict=True) if h) or 1
    stats: dict[str, float] = {"pools": float(len(pools))}
    all_routes: list[list[list[int]]] = []
    for i, pool in enumerate(pools):
        local = {int(s): j for j, s in enumerate(pool.stops)}
        seeds = [[local[s] for s in seed] for seed in pool.seeds]
        sub = t[np.ix_(pool.stops, pool.stops)]
        share = budget * len(pool.stops) / weight if hard[i] else 0.0
        work = 0.95 * params.time_limit_s * len(pool.stops) / weight if hard[i] else 0.0  # not clock-dependent
        routes = _solve_pool(sub, dwell[pool.stops], limit, pool, seeds, share, params.seed + i, ortools_share, stats,
                             work_s=work)  # fmt: skip
        if sorted(v for r in routes for v in r) != list(range(len(pool.stops))):
            raise AssertionError("a pool's routes lost or repeated stops")
        all_routes.append([[int(pool.stops[v]) for v in r] for r in routes])
    identities = _assign_identities(real, pools, all_routes, mode)

    n = real.n_stops
    route_day = np.zeros(n, dtype=np.int64)
    arrival = np.zeros(n, dtype=np.float64)
    flat = [r for pool_routes in all_routes for r in pool_routes]
    for r, (route, ident) in enumerate(zip(flat, identities, strict=True)):
        first = ident[4] if ident[4] is not None else float(DEFAULT_START_S)
        times = _clock_times(route, first, dwell, t)
        # an open path driven backwards drives as far (when travel is symmetric): keep stops near today's times
        back = route[::-1]
        if abs(path_travel(t, back) - path_travel(t, route)) < 1e-6:
            back_times = _clock_times(back, first, dwell, t)
            old = np.asarray(real.arrival, dtype=np.float64)
            if np.abs(back_times - old[back]).sum() < np.abs(times - old[route]).sum() - 1e-6:
                route, times = back, back_times
        route_day[route] = r
        arrival[route] = times
    new = PeriodicTimetable(
        lon=real.lon,
        lat=real.lat,
        dwell=real.dwell,
        interval=real.interval,
        arrival=arrival,
        route_day=route_day,
        weekday=np.array([i[2] for i in identities], dtype=np.int64),
        phase=np.array([i[3] for i in identities], dtype=np.int64),
        mobile=tuple(i[0] for i in identities),
        route=tuple(i[1] for i in identities),
        stop_id=real.stop_id,
    )
    objective = cycle_driving(new, t)
    violations = tuple(check_timetable(new, t, real, t, mode=mode, time_tolerance_s=1e-6))
    stats["route_days"] = float(len(flat))
    return ReplanResult(
        status="feasible" if not violations else "invalid",
        objective=objective,
        bound=bound,
        gap=(objective - bound) / objective if objective > 0 else 0.0,
        runtime_s=time.perf_counter() - start,
        mode=mode,
        timetable=new,
        real_cycle_driving_s=real_driving,
        span_limit_s=span_limit(real, t),
        violations=violations,
        stats=stats,
    )
