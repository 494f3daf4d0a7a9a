"""solve_routing on small problems: capacity, open ends, prizes, groups, service and span, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.errors import InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams
from optimizer.routing import RoutingProblem, RoutingResult, route_travel, solve_routing

FAST = SolveParams(time_limit_s=0.5)


def euclidean(points: np.ndarray) -> np.ndarray:
    """Rounded Euclidean distances between the rows of ``points``."""
    diff = points[:, None, :] - points[None, :, :]
    return np.rint(np.hypot(diff[..., 0], diff[..., 1])).astype(np.int64)


def visits(result: RoutingResult) -> list[int]:
    """Every node visited between the start and the end of a route, over all routes."""
    return [node for route in result.routes for node in route[1:-1]]


@pytest.fixture(scope="module")
def random_cvrp() -> RoutingProblem:
    """Depot 0 and 14 customers on a 100 x 100 square, demands 1-6, capacity 12, up to 14 vehicles."""
    rng = np.random.default_rng(3)
    travel = euclidean(rng.integers(0, 100, size=(15, 2)))
    demand = np.concatenate([[0], rng.integers(1, 7, size=14)])
    return RoutingProblem(travel=travel, n_vehicles=14, demand=demand, capacity=12)


def test_cvrp_routes_respect_capacity_and_visit_every_customer_once(random_cvrp: RoutingProblem) -> None:
    result = solve_routing(random_cvrp, params=FAST)
    assert result.status == "feasible" and result.dropped == ()
    assert sorted(visits(result)) == list(range(1, 15))
    assert all(route[0] == 0 and route[-1] == 0 for route in result.routes)
    demand = np.asarray(random_cvrp.demand)
    assert all(demand[list(route)].sum() <= 12 for route in result.routes)
    assert result.objective == result.travel == sum(route_travel(random_cvrp.travel, r) for r in result.routes)
    assert np.isnan(result.bound) and np.isnan(result.gap)
    assert result.stats["iterated_local_search"] == 1  # a plain CVRP gets ILS by default


def test_cvrp_guided_local_search_is_valid_too(random_cvrp: RoutingProblem) -> None:
    result = solve_routing(random_cvrp, params=FAST, search="guided_local_search", first_solution="savings")
    assert sorted(visits(result)) == list(range(1, 15))
    assert result.stats["iterated_local_search"] == 0


def test_pyvrp_backend_solves_a_plain_cvrp(random_cvrp: RoutingProblem) -> None:
    pytest.importorskip("pyvrp")
    result = solve_routing(random_cvrp, params=FAST, backend="pyvrp")
    assert sorted(visits(result)) == list(range(1, 15))
    assert len(result.routes) == random_cvrp.n_vehicles
    demand = np.asarray(random_cvrp.demand)
    assert all(demand[list(route)].sum() <= 12 for route in result.routes)
    assert result.objective == sum(route_travel(random_cvrp.travel, r) for r in result.routes)


def test_open_routes_end_at_their_last_visit() -> None:
    # nodes on a line: the depot at 0 and stops at 10, 20, 30; one open route goes out and stops at 30
    travel = np.abs(np.subtract.outer([0, 10, 20, 30], [0, 10, 20, 30]))
    result = solve_routing(RoutingProblem(travel=travel, n_vehicles=1, open_end=True), params=FAST)
    assert result.routes == ((0, 1, 2, 3),)
    assert result.objective == result.travel == 30  # no leg back to the depot


def test_a_prize_below_its_detour_is_dropped_and_one_above_is_kept() -> None:
    # node 1 is 10 away (detour 20, prize 100): kept; node 2 is 100 away (detour 200, prize 50): dropped
    travel = np.array([[0, 10, 100], [10, 0, 105], [100, 105, 0]])
    problem = RoutingProblem(travel=travel, prize=np.array([0, 100, 50]))
    result = solve_routing(problem, params=FAST)
    assert result.routes == ((0, 1, 0),)
    assert result.dropped == (2,)
    assert result.objective == 20 + 50  # travel plus the dropped prize


def test_at_most_one_node_of_a_group_is_visited() -> None:
    rng = np.random.default_rng(5)
    travel = euclidean(rng.integers(0, 50, size=(6, 2)))
    problem = RoutingProblem(travel=travel, n_vehicles=2, prize=np.full(6, 10_000), groups=((1, 2, 3),))
    result = solve_routing(problem, params=FAST)
    visited = visits(result)
    assert sum(node in visited for node in (1, 2, 3)) == 1  # the prize makes one worth visiting, the group allows one
    assert {4, 5} <= set(visited)


def test_service_times_and_the_span_limit_hold() -> None:
    # four stops 100 s from the depot and 10 s apart, 60 s of service each: a span of 390 s fits two per route
    # (100 + 60 + 10 + 60 + 100 = 330) but not three (400)
    travel = np.full((5, 5), 10)
    travel[0, 1:] = travel[1:, 0] = 100
    np.fill_diagonal(travel, 0)
    service = np.array([0, 60, 60, 60, 60])
    problem = RoutingProblem(travel=travel, n_vehicles=3, service=service, max_span=390)
    result = solve_routing(problem, params=FAST)
    assert sorted(visits(result)) == [1, 2, 3, 4]
    for route, arrivals in zip(result.routes, result.arrivals, strict=True):
        span = sum(travel[a, b] + service[a] for a, b in itertools.pairwise(route))
        assert span <= 390
        assert arrivals[-1] - arrivals[0] == span  # no waiting without time windows
    assert sum(len(r) > 2 for r in result.routes) == 2


def test_the_same_problem_and_time_limit_give_the_same_cost(random_cvrp: RoutingProblem) -> None:
    first, second = (solve_routing(random_cvrp, params=FAST) for _ in range(2))
    assert first.objective == second.objective


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"travel": np.zeros((3, 4))}, ShapeMismatchError, "square"),
        ({"travel": np.array([[0, -1], [1, 0]])}, InvalidCostError, "non-negative"),
        ({"travel": np.zeros((3, 3)), "demand": np.ones(3)}, InvalidProblemError, "capacity"),
        ({"travel": np.zeros((3, 3)), "demand": np.ones(2), "capacity": 5}, ShapeMismatchError, "one entry per node"),
        ({"travel": np.zeros((3, 3)), "groups": ((1, 2),)}, InvalidProblemError, "prize"),
    ],
)
def test_bad_input_fails_clearly(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RoutingProblem(**kwargs)  # type: ignore[arg-type]
    assert issubclass(error, ValueError)


def test_pyvrp_backend_refuses_what_is_not_a_plain_cvrp() -> None:
    problem = RoutingProblem(travel=np.zeros((3, 3)), open_end=True)
    with pytest.raises(InvalidProblemError, match="plain CVRPs only; this problem has open routes"):
        solve_routing(problem, params=FAST, backend="pyvrp")


def test_iterated_local_search_takes_no_initial_routes(random_cvrp: RoutingProblem) -> None:
    with pytest.raises(InvalidProblemError, match="initial_routes"):
        solve_routing(random_cvrp, params=FAST, search="iterated_local_search", initial_routes=[[1, 2]])
