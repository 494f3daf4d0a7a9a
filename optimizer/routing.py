"""Vehicle routing with OR-Tools (or PyVRP): capacitated, time-windowed, prize-collecting, open or closed routes.

One problem type covers what branchnet routes: a bookmobile day (stops with dwell times and time windows, a
shift limit, optional stops worth their prize, at most one stop per community), a re-planned timetable pool
(open paths, no depot legs) and the CVRP benchmarks.

Formulation. Nodes 0..N-1 with a travel matrix t_ij (integer seconds or distance units), vehicles k with a start
and an end node (or an open end: the route stops at its last visit). Minimise the total travel of all routes
plus the prizes of dropped optional nodes, subject to vehicle capacity (sum of demand), a route span limit
(travel plus service, waiting included), time windows on arrival and at most one visited node per group.

Algorithm. OR-Tools routing with the matrix registered as a transit matrix (not a Python callback, which is
several times slower) and a first solution by cheapest arc, savings or insertion. Then one of two searches runs
until the time limit:

- iterated local search (ILS), the default for problems without time, prizes or a seed solution: ruin a few
  geographically close strings of visits (SISR, Christiaens & Vanden Berghe 2020), reinsert them by cheapest
  insertion, descend with OR-Tools' local search operators, and accept the result by simulated annealing whose
  temperature scales with the typical arc (the mean travel to a node's 10 nearest neighbours), falling from 1 to
  0.1 of it over the time limit. On the Augerat A set it is several times closer to the optimum than GLS at 10 s
  (see ``benchmarks/cvrp.py``);
- guided local search (GLS), used for everything else and when ``initial_routes`` seeds the search.

``backend="pyvrp"`` hands a plain CVRP (one depot, closed routes, capacities only) to PyVRP's hybrid genetic
search instead, with ``params.seed`` as its seed.

Limits. Routing proves no bound, so ``bound`` is NaN and ``gap`` NaN. OR-Tools' routing search has no seed: it is
deterministic in its sequence of moves, and the same inputs and time limit give the same routes when the machine
is equally loaded; a time limit that cuts the search at a different move (another machine, a busy CPU) can give
other routes. ``params.workers`` is unused (routing searches on one thread).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2, routing_parameters_pb2
from ortools.util import optional_boolean_pb2

from optimizer.errors import InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams

FirstSolution = Literal["savings", "path_cheapest_arc", "parallel_cheapest_insertion", "christofides"]
Search = Literal["auto", "iterated_local_search", "guided_local_search"]
Backend = Literal["ortools", "pyvrp"]
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

    @property
    def needs_time(self) -> bool:
        """Whether a time dimension is modelled (service times, time windows or a span limit)."""
        return self.service is not None or self.time_windows is not None or self.max_span is not None

    def not_plain_cvrp(self) -> str | None:
        """Why this is not a plain CVRP (capacities, closed routes at one depot, nothing else); None when it is."""
        starts, ends = set(self.starts or (0,)), set(self.ends or (0,))
        reasons = [
            "open routes" if self.open_end else "",
            "several depots" if len(starts | ends) > 1 else "",
            "service times, time windows or a span limit" if self.needs_time else "",
            "prizes or groups" if self.prize is not None or self.groups else "",
            "a visit limit" if self.max_visits is not None else "",
        ]
        found = [r for r in reasons if r]
        return ", ".join(found) if found else None


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


# ILS settings, measured on Augerat A instances at 10 s (benchmarks/cvrp.py): SISR strings of at most 10 visits,
# 10 removed on average, annealing from 1 to 0.1 typical arcs. Nearby settings (a start of 0.5-2 arcs, an end of
# 0.025-0.2 arcs, 5 removed visits, no Lin-Kernighan, a fleet capped at k + 2) differed by less than the run-to-run
# noise (about 0.2 percentage points of mean gap on six instances). Clearly worse: OR-Tools' default annealing
# (100 to 0.01) or its automatic temperatures, no descent after each reinsertion, granular neighbourhoods
# (ls_operator_neighbors_ratio 0.2-0.3), and guided local search itself (about 1.7% against 0.2-0.7%).
_SISR_SEQUENCE = 10
_SISR_REMOVED = 10
_SISR_BYPASS = 0.01
_TEMPERATURE_START = 1.0
_TEMPERATURE_END = 0.1
_NEIGHBOURS = 10
# Operators that move nothing without pickup-delivery pairs or optional nodes, and the path LNS that the ruin and
# recreate step replaces: off under ILS, so that each descent is quicker (more ILS iterations in the time limit).
_ILS_OFF = (
    "use_relocate_pair",
    "use_light_relocate_pair",
    "use_exchange_pair",
    "use_relocate_subtrip",
    "use_exchange_subtrip",
    "use_make_active",
    "use_make_inactive",
    "use_make_chain_inactive",
    "use_swap_active",
    "use_shortest_path_swap_active",
    "use_swap_active_chain",
    "use_shortest_path_two_opt",
    "use_global_cheapest_insertion_path_lns",
    "use_local_cheapest_insertion_path_lns",
    "use_relocate_path_global_cheapest_insertion_insert_unperformed",
    "use_global_cheapest_insertion_visit_types_lns",
    "use_local_cheapest_insertion_visit_types_lns",
)


def typical_arc(travel: np.ndarray, nodes: Sequence[int] | None = None) -> float:
    """Mean travel from each of ``nodes`` (default all) to its 10 nearest other nodes: the scale of an arc."""
    t = np.asarray(travel, dtype=np.float64)
    rows = np.arange(t.shape[0]) if nodes is None else np.asarray(nodes, dtype=np.int64)
    m = min(_NEIGHBOURS, t.shape[0] - 1)
    if m < 1 or rows.size == 0:
        return 0.0
    out = t[rows].copy()
    out[np.arange(rows.size), rows] = np.inf  # not its own neighbour
    return float(np.sort(out, axis=1)[:, :m].mean())


def _use_ils(problem: RoutingProblem, search: Search, initial_routes: Sequence[Sequence[int]] | None) -> bool:
    if search == "iterated_local_search":
        if initial_routes is not None:
            raise InvalidProblemError(
                "initial_routes seed guided local search only; pass search='guided_local_search' or drop them"
            )
        return True
    if search == "guided_local_search":
        return False
    return initial_routes is None and not problem.needs_time and problem.prize is None


def _set_ils(params: routing_parameters_pb2.RoutingSearchParameters, scale: float, customers: int) -> None:
    """Iterated local search: SISR ruin, cheapest-insertion recreate, descent, simulated-annealing acceptance."""
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
    params.use_iterated_local_search = True
    for name in _ILS_OFF:
        setattr(params.local_search_operators, name, optional_boolean_pb2.BOOL_FALSE)
    ils = params.iterated_local_search_parameters
    ils.improve_perturbed_solution = True
    ruin = ils.ruin_recreate_parameters.ruin_strategies.add().sisr
    ruin.max_removed_sequence_size = _SISR_SEQUENCE
    ruin.avg_num_removed_visits = max(1, min(_SISR_REMOVED, customers // 2))
    ruin.bypass_factor = _SISR_BYPASS
    ils.ruin_recreate_parameters.recreate_strategy.heuristic = (
        routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_INSERTION
    )
    annealing = ils.reference_solution_acceptance_strategy.simulated_annealing
    scale = scale if scale > 0 else 1.0
    annealing.initial_temperature = _TEMPERATURE_START * scale
    annealing.final_temperature = _TEMPERATURE_END * scale
    ils.best_solution_acceptance_strategy.greedy_descent.SetInParent()


def solve_routing(
    problem: RoutingProblem,
    *,
    params: SolveParams | None = None,
    first_solution: FirstSolution = "path_cheapest_arc",
    initial_routes: Sequence[Sequence[int]] | None = None,
    search: Search = "auto",
    backend: Backend = "ortools",
) -> RoutingResult:
    """Solve a :class:`RoutingProblem` with OR-Tools routing (or PyVRP for a plain CVRP).

    Parameters
    ----------
    problem
        The routing problem; it is not modified.
    params
        Time limit (every search runs until it) and seed (used by PyVRP; OR-Tools' routing search has none).
    first_solution
        OR-Tools' construction heuristic; when it finds no solution, cheapest-arc extension is tried in the
        remaining time.
    initial_routes
        Node lists without start/end that seed guided local search, for example today's timetable.
    search
        ``"auto"``: iterated local search when the problem has no time dimension, no prizes and no
        ``initial_routes``, guided local search otherwise. Either can be forced.
    backend
        ``"ortools"``, or ``"pyvrp"`` for a plain CVRP only (see :meth:`RoutingProblem.not_plain_cvrp`).

    Raises
    ------
    InvalidProblemError
        ``backend="pyvrp"`` on a problem that is not a plain CVRP, or ``search="iterated_local_search"`` with
        ``initial_routes``.
    """
    params = params or SolveParams()
    if backend == "pyvrp":
        return _solve_pyvrp(problem, params)
    if backend != "ortools":
        raise InvalidProblemError(f"backend must be 'ortools' or 'pyvrp', not {backend!r}")
    use_ils = _use_ils(problem, search, initial_routes)
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
    needs_time = problem.needs_time
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
    search_params = pywrapcp.DefaultRoutingSearchParameters()
    search_params.first_solution_strategy = _FIRST[first_solution]
    search_params.time_limit.FromMilliseconds(max(1, int(params.time_limit_s * 1000)))
    if params.solution_limit is not None:
        search_params.solution_limit = int(params.solution_limit)
    customers = [i for i in range(n) if i not in endpoints]
    if use_ils:
        _set_ils(search_params, typical_arc(np.asarray(problem.travel), customers), len(customers))
        solution = routing.SolveWithIteratedLocalSearch(search_params)
    else:
        search_params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        if initial_routes is not None:
            routing.CloseModelWithParameters(search_params)
            seed = routing.ReadAssignmentFromRoutes([list(r) for r in initial_routes], True)
            solution = (
                routing.SolveFromAssignmentWithParameters(seed, search_params)
                if seed
                else routing.SolveWithParameters(search_params)
            )
        else:
            solution = routing.SolveWithParameters(search_params)

    if solution is None and first_solution != "path_cheapest_arc":
        # some constructions give up on tight instances; cheapest-arc extension rarely does
        remaining = params.time_limit_s - (time.perf_counter() - start_time)
        if remaining > 0.05:
            return solve_routing(problem, params=SolveParams(time_limit_s=remaining, seed=params.seed,
                                                             workers=params.workers),
                                 first_solution="path_cheapest_arc", initial_routes=initial_routes,
                                 search=search)  # fmt: skip

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
        stats={"solver_status": float(routing.status()), "iterated_local_search": float(use_ils)},
    )


def _solve_pyvrp(problem: RoutingProblem, params: SolveParams) -> RoutingResult:
    """Solve a plain CVRP with PyVRP's hybrid genetic search (an optional dependency)."""
    reason = problem.not_plain_cvrp()
    if reason is not None:
        raise InvalidProblemError(f"backend='pyvrp' solves plain CVRPs only; this problem has {reason}")
    try:
        import pyvrp
        from pyvrp.stop import MaxRuntime
    except ImportError as exc:
        raise ImportError("backend='pyvrp' needs PyVRP: pip install pyvrp (or pip install -e '.[bench]')") from exc
    start_time = time.perf_counter()
    n, k = problem.size, problem.n_vehicles
    depot = (problem.starts or (0,))[0]
    t = np.rint(np.asarray(problem.travel)).astype(np.int64)
    customers = [i for i in range(n) if i != depot]
    has_load = problem.demand is not None
    demand = np.rint(np.asarray(problem.demand)).astype(np.int64) if has_load else np.zeros(n, dtype=np.int64)
    cap = problem.capacity
    caps = [int(c) for c in cap] if isinstance(cap, Sequence) else [int(cap or 0)] * k
    # one vehicle type per distinct capacity, its vehicles in the problem's order
    by_capacity: dict[int, list[int]] = {}
    for v, c in enumerate(caps):
        by_capacity.setdefault(c, []).append(v)
    types = list(by_capacity)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0.0, 0.0) for _ in range(n)],  # coordinates serve plotting only
        clients=[pyvrp.Client(location=i, delivery=[int(demand[i])] if has_load else []) for i in customers],
        depots=[pyvrp.Depot(location=depot)],
        vehicle_types=[
            pyvrp.VehicleType(num_available=len(by_capacity[c]), capacity=[c] if has_load else []) for c in types
        ],
        distance_matrices=[t],
        duration_matrices=[np.zeros_like(t)],
    )
    result = pyvrp.solve(
        data, stop=MaxRuntime(params.time_limit_s), seed=params.seed, collect_stats=False, display=False
    )
    runtime = time.perf_counter() - start_time
    if not result.is_feasible():
        return RoutingResult("time_limit", math.nan, math.nan, math.inf, runtime, (), tuple(customers))
    routes: list[tuple[int, ...]] = [(depot, depot)] * k
    free = {c: list(vs) for c, vs in by_capacity.items()}
    for route in result.best.routes():
        vehicle = free[types[route.vehicle_type()]].pop(0)
        visits = [customers[a.idx] for a in route if a.is_client()]
        routes[vehicle] = (depot, *visits, depot)
    travel = sum(route_travel(t, r) for r in routes)
    return RoutingResult(
        status="feasible",
        objective=float(result.cost()),
        bound=math.nan,
        gap=math.nan,
        runtime_s=runtime,
        routes=tuple(routes),
        dropped=(),
        arrivals=tuple((0,) * len(r) for r in routes),
        travel=travel,
        stats={"iterations": float(result.num_iterations)},
    )
