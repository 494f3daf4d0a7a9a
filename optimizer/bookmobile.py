"""Periodic bookmobile timetables: which stops to serve, on which weekday and week, by which vehicle, when.

Model. A fleet of V vehicles works given weekdays, each day a shift of S seconds with a lunch break of B seconds,
from a depot (the main library; optionally ending at another depot). Candidate stops i have a prize p_i (people
served), a dwell time, a visit interval k_i in {1, 2, 3, 4} weeks and optionally an arrival time window; stops of
one community are alternatives (at most one is served). A *route-day* is one vehicle's day: a depot-to-depot
route of stops of one interval k, repeated on the same weekday every k weeks (phase 0..k-1), so every stop keeps
its weekday and its time in every cycle. Over a cycle of L = lcm(k) weeks, the fleet has V x |weekdays| x L
vehicle-days; a route-day of interval k uses L / k of them.

Objective: minimise  sum over route-days of driving_s x (L / k)  +  value_per_person_s x sum of dropped prizes,
i.e. a stop is served when its people are worth more than the driving it adds (its marginal cost).

Algorithm (decomposition). (1) Split the vehicle-days among intervals by workload, each class getting route-days
in proportion to its dwell plus an estimate of its driving, within the fleet; (2) per interval, a prize-collecting
VRP (OR-Tools routing, :mod:`optimizer.routing`) with that many route-days, span = shift - lunch, community
groups as disjunctions; (3) pack route-days onto (vehicle, weekday, phase) wheels first-fit, weekly first; (4) lay
out clock times: shift start, arrival = previous departure + travel, lunch inserted at the first stop boundary
inside the lunch window. Routing proves no bound, so ``bound`` is NaN and ``gap`` unknown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer._tours import MAX_EXACT_STOPS, subset_tours
from optimizer.errors import InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams
from optimizer.routing import RoutingProblem, solve_routing

INTERVALS = (1, 2, 3, 4)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def dwell_time(expected_visitors: np.ndarray, *, fixed_s: float = 600.0, per_visitor_s: float = 90.0,
               cap_s: float = 3600.0) -> np.ndarray:  # fmt: skip
    """Dwell at a stop: a fixed set-up time plus time per expected visitor, capped."""
    v = np.asarray(expected_visitors, dtype=np.float64)
    return np.asarray(np.minimum(fixed_s + per_visitor_s * np.maximum(v, 0.0), cap_s))


@dataclass(frozen=True)
class Fleet:
    """The vehicles and their working pattern. Times in seconds; clock times from midnight."""

    vehicles: int = 1
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    shift_start_s: int = 9 * 3600
    shift_s: int = 8 * 3600
    lunch_s: int = 1800
    lunch_earliest_s: int = 12 * 3600
    lunch_latest_s: int = 14 * 3600

    def __post_init__(self) -> None:
        if self.vehicles < 1:
            raise InvalidProblemError(f"the fleet needs at least one vehicle, not {self.vehicles}")
        if (
            not self.weekdays
            or not all(0 <= d <= 6 for d in self.weekdays)
            or len(set(self.weekdays)) != len(self.weekdays)
        ):
            raise InvalidProblemError(f"weekdays must be distinct numbers 0 (Monday) .. 6, not {self.weekdays}")
        if not 0 <= self.lunch_s < self.shift_s:
            raise InvalidProblemError("the lunch break must be shorter than the shift")
        if self.lunch_earliest_s > self.lunch_latest_s:
            raise InvalidProblemError("lunch_earliest_s must not be after lunch_latest_s")

    @property
    def working_s(self) -> int:
        """Driving plus dwell available in a shift."""
        return self.shift_s - self.lunch_s


@dataclass(frozen=True)
class BookmobileProblem:
    """Periodic bookmobile timetabling (see the module docstring).

    Parameters
    ----------
    travel_s
        (N + 1, N + 1) bookmobile travel times in seconds; node 0 is the depot, nodes 1..N the stops. Add a
        last row/column and set ``end_depot`` to finish elsewhere.
    stop_ids
        N unique stop ids.
    prize
        (N,) people served by each stop.
    dwell_s
        (N,) time parked at each stop.
    interval_weeks
        (N,) visit interval of each stop, in :data:`INTERVALS`.
    fleet
        Vehicles, weekdays, shift and lunch.
    community
        (N,) labels; at most one stop per label is served. Empty labels are independent stops.
    time_windows
        (N, 2) earliest and latest arrival (clock seconds), NaN where free.
    value_per_person_s
        Driving seconds one served person is worth: a stop is served when p_i x this exceeds its marginal driving.
    end_depot
        Index of an end depot node (``travel_s`` has N + 2 rows then), or ``None`` to return to node 0.
    """

    travel_s: np.ndarray
    stop_ids: tuple[str, ...]
    prize: np.ndarray
    dwell_s: np.ndarray
    interval_weeks: np.ndarray
    fleet: Fleet = field(default_factory=Fleet)
    community: tuple[str, ...] | None = None
    time_windows: np.ndarray | None = None
    value_per_person_s: float = 60.0
    end_depot: int | None = None

    def __post_init__(self) -> None:
        n = len(self.stop_ids)
        t = np.asarray(self.travel_s, dtype=np.float64)
        need = n + 1 + (1 if self.end_depot is not None else 0)
        if t.shape != (need, need):
            raise ShapeMismatchError(f"travel_s must be ({need}, {need}) for {n} stops and the depot(s), got {t.shape}")
        if not np.isfinite(t).all() or (t < 0).any():
            bad = np.argwhere(~np.isfinite(t) | (t < 0))[0]
            who = "depot" if bad[0] == 0 else (self.stop_ids[bad[0] - 1] if bad[0] <= n else "end depot")
            raise InvalidCostError(
                f"stop {who!r} cannot be reached on the network (travel time {t[tuple(bad)]}); drop it or fix the data"
            )
        if len(set(self.stop_ids)) != n:
            raise InvalidProblemError("stop_ids repeat")
        for name in ("prize", "dwell_s", "interval_weeks"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.shape != (n,):
                raise ShapeMismatchError(f"{name} needs one entry per stop ({n}), got shape {v.shape}")
            if not np.isfinite(v).all() or (v < 0).any():
                raise InvalidCostError(f"{name} must be finite and non-negative")
        bad_k = sorted(set(np.asarray(self.interval_weeks).astype(int).tolist()) - set(INTERVALS))
        if bad_k:
            raise InvalidProblemError(f"interval_weeks must be in {INTERVALS} (weekly to 4-weekly), found {bad_k}")
        longest = float(np.max(np.asarray(self.dwell_s))) if n else 0.0
        if longest > self.fleet.working_s:
            i = int(np.argmax(np.asarray(self.dwell_s)))
            raise InvalidProblemError(
                f"stop {self.stop_ids[i]!r} dwells {longest / 60:.0f} min, longer than the "
                f"{self.fleet.working_s / 60:.0f}-minute working shift; shorten the dwell or lengthen the shift"
            )
        if self.community is not None and len(self.community) != n:
            raise ShapeMismatchError("community needs one label per stop")
        if self.time_windows is not None and np.asarray(self.time_windows).shape != (n, 2):
            raise ShapeMismatchError("time_windows must be (N, 2)")
        if not self.value_per_person_s >= 0:
            raise InvalidProblemError("value_per_person_s must be non-negative")


@dataclass(frozen=True)
class RouteDay:
    """One vehicle's day, repeated on ``weekday`` every ``interval`` weeks from week ``phase`` of the cycle."""

    vehicle: int
    weekday: int
    interval: int
    phase: int
    stops: tuple[str, ...]
    arrivals_s: tuple[int, ...]
    departures_s: tuple[int, ...]
    lunch: tuple[int, int]
    start_s: int
    end_s: int
    driving_s: float


@dataclass(frozen=True)
class BookmobileResult:
    """A periodic timetable and its account."""

    status: Literal["optimal", "feasible", "time_limit", "infeasible"]
    objective: float
    bound: float
    gap: float
    runtime_s: float
    cycle_weeks: int
    route_days: tuple[RouteDay, ...]
    dropped: dict[str, str]
    served_prize: float
    cycle_driving_s: float
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"bookmobile: {len(self.route_days)} route-days over a {self.cycle_weeks}-week cycle, "
            f"{self.served_prize:,.0f} people served, {len(self.dropped)} stops dropped, "
            f"{self.cycle_driving_s / 3600:,.1f} h driving per cycle, {self.runtime_s:.1f} s"
        )


def _allocate(problem: BookmobileProblem, classes: list[int]) -> dict[int, int]:
    """Route-days per interval: proportional to workload, within V x |weekdays| vehicle-days a week."""
    fleet = problem.fleet
    week_capacity = fleet.vehicles * len(fleet.weekdays)  # vehicle-days per week
    k_arr = np.asarray(problem.interval_weeks).astype(int)
    t = np.asarray(problem.travel_s)
    # workload of a class: dwell plus a detour estimate per stop (twice its nearest-neighbour distance), in
    # route-days; weighted by visits per week (1/k) it consumes vehicle-days
    nn = np.where(np.eye(len(t), dtype=bool), np.inf, t).min(axis=1)[1 : len(problem.stop_ids) + 1]
    need = {}
    for k in classes:
        mask = k_arr == k
        work = float(np.asarray(problem.dwell_s)[mask].sum() + 2 * nn[mask].sum())
        need[k] = max(1, math.ceil(work / fleet.working_s))
    use = sum(need[k] / k for k in classes)
    if use <= week_capacity:
        return need
    # not enough vehicle-days: scale every class down, keeping at least one route-day where the fleet allows
    scale = week_capacity / use
    alloc = {k: max(0, math.floor(need[k] * scale)) for k in classes}
    for k in sorted(classes, key=lambda c: -need[c] / c):
        if alloc[k] == 0 and sum(alloc[c] / c for c in classes) + 1 / k <= week_capacity + 1e-9:
            alloc[k] = 1
    return alloc


def _pack(route_days: list[tuple[int, int]], fleet: Fleet, cycle: int) -> list[tuple[int, int, int]] | None:
    """Place (interval, index) route-days on (vehicle, weekday, phase) without two in one vehicle-week-day."""
    busy = np.zeros((fleet.vehicles, len(fleet.weekdays), cycle), dtype=bool)
    placed: list[tuple[int, int, int]] = []
    for k, _ in route_days:
        spot = None
        for v in range(fleet.vehicles):
            for d in range(len(fleet.weekdays)):
                for phase in range(k):
                    weeks = np.arange(phase, cycle, k)
                    if not busy[v, d, weeks].any():
                        spot = (v, d, phase)
                        break
                if spot:
                    break
            if spot:
                break
        if spot is None:
            return None
        v, d, phase = spot
        busy[v, d, np.arange(phase, cycle, k)] = True
        placed.append((v, fleet.weekdays[d], phase))
    return placed


def _clock(
    problem: BookmobileProblem, route: Sequence[int], end_node: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, int], int, float]:
    """Arrival and departure clock times along a route (nodes without depots), with lunch inserted."""
    fleet = problem.fleet
    t = np.asarray(problem.travel_s)
    dwell = np.asarray(problem.dwell_s)
    now = float(fleet.shift_start_s)
    prev = 0
    lunch: tuple[int, int] | None = None
    arr, dep = [], []
    driving = 0.0
    for node in route:
        leg = float(t[prev, node])
        if lunch is None and (now >= fleet.lunch_earliest_s or now + leg + dwell[node - 1] > fleet.lunch_latest_s):
            # lunch at the first stop boundary in its window (waiting for the window to open if need be)
            begin = max(now, float(fleet.lunch_earliest_s))
            lunch = (round(begin), round(begin + fleet.lunch_s))
            now = begin + fleet.lunch_s
        driving += leg
        now += leg
        if problem.time_windows is not None:
            earliest = np.asarray(problem.time_windows)[node - 1, 0]
            if np.isfinite(earliest):
                now = max(now, float(earliest))
        arr.append(round(now))
        now += float(dwell[node - 1])
        dep.append(round(now))
        prev = node
    if lunch is None:
        lunch = (round(max(now, fleet.lunch_earliest_s)), round(max(now, fleet.lunch_earliest_s) + fleet.lunch_s))
        now = max(now, float(lunch[1]))
    leg = float(t[prev, end_node])
    driving += leg
    now += leg
    return tuple(arr), tuple(dep), lunch, round(now), driving


def plan_timetable(problem: BookmobileProblem, *, params: SolveParams | None = None) -> BookmobileResult:
    """Plan a periodic bookmobile timetable (see the module docstring)."""
    params = params or SolveParams()
    start = time.perf_counter()
    k_arr = np.asarray(problem.interval_weeks).astype(int)
    classes = sorted(set(k_arr.tolist()))
    cycle = math.lcm(*classes) if classes else 1
    alloc = _allocate(problem, classes)
    end_node = problem.end_depot if problem.end_depot is not None else 0
    prize_s = np.asarray(problem.prize, dtype=np.float64) * problem.value_per_person_s
    # weekly stops are routed first, so a community served weekly is not served again less often
    dropped: dict[str, str] = {}
    routes: list[tuple[int, tuple[int, ...]]] = []
    objective = 0.0
    total_work = sum(float(np.asarray(problem.dwell_s)[k_arr == k].sum()) for k in classes) or 1.0
    taken: set[str] = set()  # communities already served by a more frequent class
    for k in classes:
        members = np.flatnonzero(k_arr == k)
        if problem.community is not None:
            blocked = [i for i in members if problem.community[i] and problem.community[i] in taken]
            for i in blocked:
                dropped[problem.stop_ids[i]] = "another stop serves its community"
            members = np.array([i for i in members if i not in set(blocked)], dtype=np.int64)
            if not len(members):
                continue
        if alloc[k] == 0:
            for i in members:
                dropped[problem.stop_ids[i]] = f"no vehicle-days left for {k}-weekly stops"
            objective += float(prize_s[members].sum())
            continue
        # sub-problem nodes: depot(s) then this class's stops; the class's driving counts L/k times a cycle
        tail = [end_node] if end_node else []
        nodes = np.array([0, *(members + 1).tolist(), *tail], dtype=np.int64)
        t = np.asarray(problem.travel_s)[np.ix_(nodes, nodes)] * (cycle / k)
        zero = [0.0] * len(tail)
        service = np.array([0.0, *np.asarray(problem.dwell_s)[members].tolist(), *zero])
        prize = np.array([0.0, *prize_s[members].tolist(), *zero])
        groups: list[tuple[int, ...]] = []
        if problem.community is not None:
            labels: dict[str, list[int]] = {}
            for pos, i in enumerate(members, start=1):
                if problem.community[i]:
                    labels.setdefault(problem.community[i], []).append(pos)
            groups = [tuple(v) for v in labels.values() if len(v) > 1]
        tw = None
        if problem.time_windows is not None:
            win = np.asarray(problem.time_windows, dtype=np.float64)[members] - problem.fleet.shift_start_s
            lunch_after = win >= problem.fleet.lunch_latest_s - problem.fleet.shift_start_s
            win = np.where(lunch_after, win - problem.fleet.lunch_s, win)  # working clock excludes lunch
            horizon = float(problem.fleet.working_s)
            win = np.where(np.isfinite(win), win, np.array([0.0, horizon]))
            free = np.array([[0.0, horizon]])
            tw = np.vstack([free, win, *([free] if end_node else [])])
        ends = (len(nodes) - 1,) * alloc[k] if end_node else None
        share = float(np.asarray(problem.dwell_s)[members].sum()) / total_work
        sub = RoutingProblem(
            travel=t, n_vehicles=alloc[k], ends=ends, service=service * (cycle / k),
            max_span=int(problem.fleet.working_s * cycle / k), prize=prize,
            groups=tuple(groups), time_windows=None if tw is None else tw * (cycle / k),
        )  # fmt: skip
        res = solve_routing(sub, params=SolveParams(time_limit_s=max(0.5, params.time_limit_s * share),
                                                    seed=params.seed, workers=params.workers,
                                                    solution_limit=params.solution_limit))  # fmt: skip
        if res.status == "infeasible" or not res.routes:
            for i in members:
                dropped[problem.stop_ids[i]] = "no feasible route within the shift"
            objective += float(prize_s[members].sum())
            continue
        objective += res.objective
        served = {int(nodes[v]) - 1 for r in res.routes for v in r[1:] if 0 < v < len(members) + 1}
        for i in members:
            if i not in served:
                in_group = problem.community is not None and any(
                    problem.community[j] == problem.community[i] and j in served for j in members if j != i
                )
                dropped[problem.stop_ids[i]] = (
                    "another stop serves its community" if in_group else "prize below its marginal driving cost"
                )
        if problem.community is not None:
            taken.update(problem.community[i] for i in served if problem.community[i])
        for r in res.routes:
            stops = tuple(int(nodes[v]) for v in r[1:] if 0 < v < len(members) + 1)
            if stops:
                routes.append((k, stops))
    return _assemble(problem, routes, cycle, start, dropped, objective, math.nan,
                     {f"route_days_{k}w": float(alloc[k]) for k in classes})  # fmt: skip


def _assemble(
    problem: BookmobileProblem,
    routes: list[tuple[int, tuple[int, ...]]],
    cycle: int,
    start: float,
    dropped: dict[str, str],
    objective: float,
    bound: float,
    stats: dict[str, float],
    exact: bool = False,
) -> BookmobileResult:
    """Pack (interval, stop nodes) route-days on the fleet's wheels, lay out their clock times, and account."""
    n = len(problem.stop_ids)
    end_node = problem.end_depot if problem.end_depot is not None else 0
    order = sorted(range(len(routes)), key=lambda i: (routes[i][0], -len(routes[i][1])))
    placed = _pack([(routes[i][0], i) for i in order], problem.fleet, cycle)
    if placed is None:
        raise InvalidProblemError("the route-days do not fit the fleet's weekdays; add vehicles or weekdays")
    days: list[RouteDay] = []
    cycle_driving = 0.0
    for (v, weekday, phase), ri in zip(placed, order, strict=True):
        interval, stops = routes[ri]
        arr, dep, lunch, end_s, driving = _clock(problem, stops, end_node)
        cycle_driving += driving * cycle / interval
        names = tuple(problem.stop_ids[s - 1] for s in stops)
        days.append(RouteDay(v, weekday, interval, phase, names, arr, dep, lunch, problem.fleet.shift_start_s, end_s,
                             driving))  # fmt: skip
    days.sort(key=lambda d: (d.vehicle, d.weekday, d.phase, d.interval))
    served_prize = float(sum(np.asarray(problem.prize)[problem.stop_ids.index(s)] for d in days for s in d.stops))
    status: Literal["optimal", "feasible", "time_limit", "infeasible"] = (
        ("optimal" if exact else "feasible") if days or n == 0 else "infeasible"
    )
    gap = 0.0 if exact and status == "optimal" else math.nan
    return BookmobileResult(
        status=status, objective=objective, bound=bound, gap=gap, runtime_s=time.perf_counter() - start,
        cycle_weeks=cycle, route_days=tuple(days), dropped=dropped, served_prize=served_prize,
        cycle_driving_s=cycle_driving, stats=stats,
    )  # fmt: skip


def plan_timetable_exact(
    problem: BookmobileProblem, *, arc_cost: np.ndarray | None = None, params: SolveParams | None = None
) -> BookmobileResult:
    """Serve every stop at the least cycle cost: an exact periodic timetable for small stop sets.

    Formulation. For each interval class k with stop set S_k (at most :data:`optimizer._tours.MAX_EXACT_STOPS`),
    every subset T of S_k gets its cheapest depot tour whose driving plus dwell fits the working shift
    (:func:`optimizer._tours.subset_tours`, exact). A set-partitioning MIP then picks route-days:

        minimise    sum_k (L / k) sum_T c_T x_T               (L = lcm of the intervals: the cycle in weeks)
        subject to  sum_{T containing i} x_T = 1               for every stop i
                    sum_{k in {1,2,4}} n_k / k + w_3 <= V |D|   (n_k = sum of x_T of class k; V vehicles,
                    3 w_3 >= n_3,  x, w_3 integer                |D| working weekdays)

    The packing rows are exact for intervals 1, 2, 3 and 4 weeks: 1-, 2- and 4-weekly route-days nest on a
    (vehicle, weekday) wheel like binary fractions, and a 3-weekly route-day shares a wheel only with other
    3-weekly ones. Arc costs default to the travel times; the planner passes money per arc (hours and km). The
    MIP is solved by HiGHS to a zero gap, so ``status`` is ``optimal`` (``bound`` = ``objective``), or
    ``infeasible`` when the stops cannot all be served with the fleet (every stop then ``dropped``).

    Lunch is placed as :func:`plan_timetable` does; like it, feasibility counts working time (shift minus lunch).
    Time windows and a separate end depot are not supported; stops of one community must not both be given.
    """
    params = params or SolveParams()
    start = time.perf_counter()
    if problem.time_windows is not None or problem.end_depot is not None:
        raise InvalidProblemError("plan_timetable_exact supports neither time windows nor a separate end depot")
    if problem.community is not None:
        named = [c for c in problem.community if c]
        if len(named) != len(set(named)):
            raise InvalidProblemError("plan_timetable_exact serves every stop: give at most one stop per community")
    travel = np.asarray(problem.travel_s, dtype=np.float64)
    cost = travel if arc_cost is None else np.asarray(arc_cost, dtype=np.float64)
    if cost.shape != travel.shape or not np.isfinite(cost).all() or (cost < 0).any():
        raise InvalidCostError(f"arc_cost must be a finite non-negative {travel.shape} matrix")
    k_arr = np.asarray(problem.interval_weeks).astype(int)
    classes = sorted(set(k_arr.tolist()))
    cycle = math.lcm(*classes) if classes else 1
    columns: list[tuple[int, tuple[int, ...], float, np.ndarray]] = []  # (interval, stop nodes, cycle cost, members)
    for k in classes:
        members = np.flatnonzero(k_arr == k)
        if len(members) > MAX_EXACT_STOPS:
            raise InvalidProblemError(
                f"plan_timetable_exact: {len(members)} {k}-weekly stops; at most {MAX_EXACT_STOPS} per interval"
            )
        nodes = np.concatenate([[0], members + 1])
        best, order = subset_tours(cost[np.ix_(nodes, nodes)], travel[np.ix_(nodes, nodes)],
                                   np.asarray(problem.dwell_s, dtype=np.float64)[members],
                                   float(problem.fleet.working_s))  # fmt: skip
        for mask in range(1, 1 << len(members)):
            tour = order[mask]
            if tour is not None and np.isfinite(best[mask]):
                in_t = np.array([(mask >> q) & 1 for q in range(len(members))], dtype=bool)
                columns.append((k, tuple(int(nodes[v]) for v in tour), float(best[mask]) * cycle / k,
                                members[in_t]))  # fmt: skip
    routes = _partition(problem, columns, classes, params)
    if routes is None:
        reason = "the stops cannot all be served within the fleet's shifts"
        return _assemble(problem, [], cycle, start, {sid: reason for sid in problem.stop_ids}, math.inf, math.inf,
                         {}, exact=True)  # fmt: skip
    objective = float(sum(col[2] for col in routes))
    result = _assemble(problem, [(col[0], col[1]) for col in routes], cycle, start, {}, objective, objective,
                       {f"route_days_{k}w": float(sum(col[0] == k for col in routes)) for k in classes},
                       exact=True)  # fmt: skip
    return result


def _partition(
    problem: BookmobileProblem,
    columns: list[tuple[int, tuple[int, ...], float, np.ndarray]],
    classes: list[int],
    params: SolveParams,
) -> list[tuple[int, tuple[int, ...], float, np.ndarray]] | None:
    """Solve the set-partitioning MIP of :func:`plan_timetable_exact`; ``None`` when infeasible."""
    n = len(problem.stop_ids)
    if n == 0:
        return []
    ncol = len(columns)
    has3 = 3 in classes
    nvar = ncol + int(has3)
    rows, cols, vals = [], [], []
    for q, (_, _, _, members) in enumerate(columns):
        for i in members.tolist():
            rows.append(i)
            cols.append(q)
            vals.append(1.0)
    wheels = float(problem.fleet.vehicles * len(problem.fleet.weekdays))
    r = n
    for q, (k, _, _, _) in enumerate(columns):  # packing row
        if k != 3:
            rows.append(r)
            cols.append(q)
            vals.append(1.0 / k)
    if has3:
        rows.append(r)
        cols.append(ncol)
        vals.append(1.0)
        for q, (k, _, _, _) in enumerate(columns):
            if k == 3:
                rows.append(r + 1)
                cols.append(q)
                vals.append(1.0)
        rows.append(r + 1)
        cols.append(ncol)
        vals.append(-3.0)
    n_rows = n + 1 + int(has3)
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, nvar))
    lo = np.concatenate([np.ones(n), [-np.inf], [-np.inf] if has3 else []])
    hi = np.concatenate([np.ones(n), [wheels + 1e-9], [0.0] if has3 else []])
    c = np.concatenate([[col[2] for col in columns], [0.0] if has3 else []])
    if not ncol:
        return None
    res = milp(c, constraints=[LinearConstraint(a, lo, hi)], integrality=np.ones(nvar),
               bounds=Bounds(np.zeros(nvar), np.concatenate([np.ones(ncol), [np.inf] if has3 else []])),
               options={"time_limit": max(1.0, params.time_limit_s), "mip_rel_gap": 0.0, "disp": False})  # fmt: skip
    if res.x is None or res.status not in (0,):
        return None
    return [columns[q] for q in range(ncol) if res.x[q] > 0.5]
