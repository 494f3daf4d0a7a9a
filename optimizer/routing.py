"""Vehicle routing with OR-Tools: capacitated, time-windowed, prize-collecting, open or closed routes.

One problem type covers what branchnet routes: a bookmobile day (stops with dwell times and time windows, a
shift limit, optional stops worth their prize, at most one stop per community), a re-planned timetable pool
(open paths, no depot legs) and the CVRP benchmarks.

Formulation. Nodes 0..N-1 with a travel matrix t_ij (integer seconds or distance units), vehicles k with a start
and an end node (or an open end: the route stops at its last visit). Minimise the total travel of all routes
plus the prizes of dropped optional nodes, subject to vehicle capacity (sum of demand), a route span limit
(travel plus service, waiting included), time windows on arrival and at most one visited node per group.

Algorithm. OR-Tools routing with the matrix registered as a transit matrix (not a Python callback, which is
several times slower), a first solution by savings or cheapest arc, then guided local search until the time
limit. The routing solver proves no bound, so ``bound`` is NaN unless a caller supplies one; results carry status,
objective and runtime. Runs are deterministic for the same inputs and time limit on one thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from optimizer.errors import InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams

FirstSolution = Literal["savings", "path_cheapest_arc", "parallel_cheapest_insertion", "christofides"]
_FIRST = {
    "savings": routing_enums_pb2.FirstSolutionStrategy.SAVINGS,
    "path_cheapest_arc": routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC,
    "parallel_cheapest_insertion": routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION,
    "christofides": routing_enums_pb2.FirstSolutionStrategy.CHRISTOFIDES,
}


@dataclass(frozen=True)
class RoutingProblem:
    """A vehicle routing problem on a matrix.

    Parameters
    ----------
    travel
        (N, N) non-negative integers: travel time (s) or distance between nodes.
    n_vehicles
        Number of routes available.
    starts, ends
        Start and end node of each vehicle (default all at node 0). ``open_end`` makes every route end at its last
        visit instead, with no return leg.
    demand, capacity
        Load at each node and the capacity of each vehicle (CVRP).
    service
        (N,) service (dwell) time at each node, added when leaving it; used with ``max_span`` and time windows.
    time_windows
        (N, 2) earliest and latest arrival at each node, in the same units as ``travel``.
    max_span
        Longest route: travel plus service plus waiting, from leaving the start to reaching the end.
    prize
        (N,) prize of each optional node: dropping it costs its prize. ``None``: every node must be visited.
        Prizes of start and end nodes are ignored.
    groups
        Node groups of which at most one node may be visited (one stop per community); their nodes must be
        optional.
    max_visits
        Most nodes a route may visit (starts and ends excluded).
    """

    travel: np.ndarray
    n_vehicles: int = 1
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    open_end: bool = False
    demand: np.ndarray | None = None
    capacity: Sequence[int] | int | None = None
    service: np.ndarray | None = None
    time_windows: np.ndarray | None = None
    max_span: int | None = None
    prize: np.ndarray | None = None
    groups: tuple[tuple[int, ...], ...] = ()
    max_visits: int | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.travel)
        if t.ndim != 2 or t.shape[0] != t.shape[1]:
            raise ShapeMismatchError(f"travel must be a square (N, N) matrix, got shape {t.shape}")
        if not np.isfinite(t).all() or (t < 0).any():
            raise InvalidCostError("travel must be finite and non-negative; drop unreachable nodes first")
        n = t.shape[0]
        if self.n_vehicles < 1:
            raise InvalidProblemError(f"n_vehicles must be at least 1, not {self.n_vehicles}")
        for name in ("starts", "ends"):
            nodes = getattr(self, name)
            if nodes is not None and (len(nodes) != self.n_vehicles or not all(0 <= v < n for v in nodes)):
                raise ShapeMismatchError(f"{name} needs one node in 0..{n - 1} per vehicle ({self.n_vehicles})")
        for name in ("demand", "service", "prize"):
            v = getattr(self, name)
            if v is not None:
                arr = np.asarray(v, dtype=np.float64)
                if arr.shape != (n,):
                    raise ShapeMismatchError(f"{name} has shape {arr.shape}; it needs one entry per node ({n})")
                if not np.isfinite(arr).all() or (arr < 0).any():
                    raise InvalidCostError(f"{name} must be finite and non-negative")
        if self.time_windows is not None:
            tw = np.asarray(self.time_windows, dtype=np.float64)
            if tw.shape != (n, 2) or (tw[:, 0] > tw[:, 1]).any():
                raise InvalidProblemError("time_windows must be (N, 2) with earliest <= latest on every row")
        if self.demand is not None and self.capacity is None:
            raise InvalidProblemError("demand needs a vehicle capacity")
        if self.groups and self.prize is None:
            raise InvalidProblemError("groups (at most one visit each) need optional nodes, i.e. a prize vector")

    @property
    def size(self) -> int:
        return int(np.asarray(self.travel).shape[0])


@dataclass(frozen=True)
class RoutingResult:
    """Routes as node lists (start and end included; open routes end at their last visit)."""

    status: Literal["optimal", "feasible", "time_limit", "infeasible"]
    objective: float
    bound: float
    gap: float
    runtime_s: float
    routes: tuple[tuple[int, ...], ...]
    dropped: tuple[int, ...]
    arrivals: tuple[tuple[int, ...], ...] = ()
    travel: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        used = sum(1 for r in self.routes if len(r) > 2)
        return (
            f"routing: {self.status}, objective {self.objective:,.0f} (travel {self.travel:,.0f}), "
            f"{used} route(s), {len(self.dropped)} dropped, {self.runtime_s:.2f} s"
        )


def route_travel(travel: np.ndarray, route: Sequence[int]) -> float:
    """Sum of travel along a node sequence."""
    r = np.asarray(route)
    return float(np.asarray(travel)[r[:-1], r[1:]].sum()) if len(r) > 1 else 0.0


def solve_routing(
    problem: RoutingProblem,
    *,
    params: SolveParams | None = None,
    first_solution: FirstSolution = "path_cheapest_arc",
    initial_routes: Sequence[Sequence[int]] | None = None,
) -> RoutingResult:
    """Solve a :class:`RoutingProblem` with OR-Tools routing and guided local search.

    ``initial_routes`` (node lists without start/end) seeds the search, for example with today's timetable.
    """
    params = params or SolveParams()
    start_time = time.perf_counter()
    t = np.rint(np.asarray(problem.travel)).astype(np.int64)
    n = problem.size
    k = problem.n_vehicles
    starts = list(problem.starts or (0,) * k)
    ends = list(problem.ends or (0,) * k)
    if problem.open_end:
        # a virtual end node, free to reach from anywhere and unreachable to leave
        big = int(t.max() * (n + 1) + 1)
        t = np.vstack([np.hstack([t, np.zeros((n, 1), dtype=np.int64)]), np.full((1, n + 1), big)])
        t[n, n] = 0
        ends = [n] * k
    size = t.shape[0]

    # data -> model
    manager = pywrapcp.RoutingIndexManager(size, k, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    travel_cb = routing.RegisterTransitMatrix(t.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(travel_cb)
    if problem.demand is not None:
        demand = np.zeros(size, dtype=np.int64)
        demand[:n] = np.rint(problem.demand).astype(np.int64)
        cap = problem.capacity
        caps = [int(c) for c in cap] if isinstance(cap, Sequence) else [int(cap or 0)] * k
        demand_cb = routing.RegisterUnaryTransitVector(demand.tolist())
        routing.AddDimensionWithVehicleCapacity(demand_cb, 0, caps, True, "load")
    needs_time = problem.service is not None or problem.time_windows is not None or problem.max_span is not None
    if needs_time:
        service = np.zeros(size, dtype=np.int64)
        if problem.service is not None:
            service[:n] = np.rint(problem.service).astype(np.int64)
        timed = t + service[:, None]
        if problem.open_end:
            timed[:n, n] = service[:n]
        time_cb = routing.RegisterTransitMatrix(timed.tolist())
        horizon = int(problem.max_span if problem.max_span is not None else timed.max() * size + 1)
        if problem.time_windows is not None:
            horizon = max(horizon, int(np.asarray(problem.time_windows)[:, 1].max()) + 1)
        routing.AddDimension(time_cb, horizon, horizon, problem.time_windows is None, "time")
        time_dim = routing.GetDimensionOrDie("time")
        if problem.max_span is not None:
            for v in range(k):
                time_dim.SetSpanUpperBoundForVehicle(int(problem.max_span), v)
        if problem.time_windows is not None:
            tw = np.rint(np.asarray(problem.time_windows)).astype(np.int64)
            for node in range(n):
                if node in starts or node in ends:
                    continue
                time_dim.CumulVar(manager.NodeToIndex(node)).SetRange(int(tw[node, 0]), int(tw[node, 1]))
            for v in range(k):
                time_dim.CumulVar(routing.Start(v)).SetRange(int(tw[starts[v], 0]), int(tw[starts[v], 1]))
        for v in range(k):
            routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(routing.End(v)))
    if problem.max_visits is not None:
        count_cb = routing.RegisterUnaryTransitVector([0 if i in starts or i >= n else 1 for i in range(size)])
        routing.AddDimension(count_cb, 0, int(problem.max_visits), True, "visits")
    endpoints = set(starts) | set(ends)
    grouped: set[int] = set()
    if problem.prize is not None:
        prize = np.rint(np.asarray(problem.prize)).astype(np.int64)
        for group in problem.groups:
            nodes = [g for g in group if g not in endpoints]
            grouped.update(nodes)
            if nodes:
                # one disjunction per group with max cardinality 1: dropping it costs its best prize
                routing.AddDisjunction([manager.NodeToIndex(g) for g in nodes], int(prize[nodes].max()), 1)
        for node in range(n):
            if node not in endpoints and node not in grouped:
                routing.AddDisjunction([manager.NodeToIndex(node)], int(prize[node]))

    # search parameters -> solve
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = _FIRST[first_solution]
    search.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    search.time_limit.FromMilliseconds(max(1, int(params.time_limit_s * 1000)))
    if initial_routes is not None:
        routing.CloseModelWithParameters(search)
        seed = routing.ReadAssignmentFromRoutes([list(r) for r in initial_routes], True)
        solution = (
            routing.SolveFromAssignmentWithParameters(seed, search) if seed else routing.SolveWithParameters(search)
        )
    else:
        solution = routing.SolveWithParameters(search)

    if solution is None and first_solution != "path_cheapest_arc":
        # some constructions give up on tight instances; cheapest-arc extension rarely does
        remaining = params.time_limit_s - (time.perf_counter() - start_time)
        if remaining > 0.05:
            return solve_routing(problem, params=SolveParams(time_limit_s=remaining, seed=params.seed,
                                                             workers=params.workers),
                                 first_solution="path_cheapest_arc", initial_routes=initial_routes)  # fmt: skip

    # extract
    runtime = time.perf_counter() - start_time
    if solution is None:
        status_code = routing.status()
        infeasible = status_code == routing_enums_pb2.RoutingSearchStatus.ROUTING_INFEASIBLE
        return RoutingResult("infeasible" if infeasible else "time_limit", math.nan, math.nan, math.inf, runtime,
                             (), tuple(range(n)))  # fmt: skip
    routes: list[tuple[int, ...]] = []
    arrivals: list[tuple[int, ...]] = []
    visited: set[int] = set()
    time_dim = routing.GetDimensionOrDie("time") if needs_time else None
    for v in range(k):
        index = routing.Start(v)
        nodes, times = [], []
        while True:
            node = manager.IndexToNode(index)
            if node < n:
                nodes.append(node)
                visited.add(node)
                times.append(int(solution.Value(time_dim.CumulVar(index))) if time_dim is not None else 0)
            if routing.IsEnd(index):
                break
            index = solution.Value(routing.NextVar(index))
        routes.append(tuple(nodes))
        arrivals.append(tuple(times))
    dropped = tuple(i for i in range(n) if i not in visited and i not in endpoints)
    real = np.asarray(problem.travel)
    travel = sum(route_travel(real, r) for r in routes)
    return RoutingResult(
        status="feasible",
        objective=float(solution.ObjectiveValue()),
        bound=math.nan,
        gap=math.nan,
        runtime_s=runtime,
        routes=tuple(routes),
        dropped=dropped,
        arrivals=tuple(arrivals),
        travel=travel,
        stats={"solver_status": float(routing.status())},
    )
