"""solve_covering_tour against brute force on tiny random instances, feasibility, and infeasible input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.covering_tour import CoveringTourProblem, route_length, solve_covering_tour
from optimizer.errors import InfeasibleProblemError
from optimizer.params import SolveParams

FAST = SolveParams(time_limit_s=0.5, seed=0)


def random_problem(seed: int, n: int = 6, customers: int = 6, p: int = 2) -> CoveringTourProblem:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, size=(n, 2))
    cost = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2)))
    cover = rng.random((n, customers)) < 0.35
    cover[0] = False
    for k in range(customers):  # every customer coverable
        if not cover[1:, k].any():
            cover[1 + k % (n - 1), k] = True
    q = float(2 * cost[0].max() + 60)
    return CoveringTourProblem(cost=cost, cover=cover, mandatory=(0, 1), max_visits=p, max_length=q)


def brute_force(problem: CoveringTourProblem) -> float:
    """Cheapest cover: every vertex set, every order, every split into consecutive routes."""
    cost, n, p, q = problem.cost, problem.cost.shape[0], problem.max_visits, problem.max_length
    best = np.inf
    others = [v for v in range(1, n) if v not in problem.mandatory]
    forced = [v for v in problem.mandatory if v != 0]
    for k in range(len(others) + 1):
        for extra in itertools.combinations(others, k):
            visited = [*forced, *extra]
            if not problem.cover[[0, *visited]].any(axis=0).all():
                continue
            for order in itertools.permutations(visited):
                for cuts in itertools.product((False, True), repeat=max(len(order) - 1, 0)):
                    routes, current = [], [order[0]]
                    for v, cut in zip(order[1:], cuts, strict=True):
                        if cut:
                            routes.append(current)
                            current = [v]
                        else:
                            current.append(v)
                    routes.append(current)
                    lengths = [route_length(cost, [0, *r, 0]) for r in routes]
                    if all(len(r) <= p for r in routes) and max(lengths) <= q:
                        best = min(best, sum(lengths))
    return float(best)


@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force(seed: int) -> None:
    problem = random_problem(seed)
    result = solve_covering_tour(problem, params=FAST)
    assert result.objective == pytest.approx(brute_force(problem))
    visited = {v for r in result.routes for v in r}
    assert set(problem.mandatory) <= visited
    assert problem.cover[sorted(visited)].any(axis=0).all()
    for r in result.routes:
        assert r[0] == r[-1] == 0
        assert len(r) - 2 <= problem.max_visits
        assert route_length(problem.cost, r) <= problem.max_length
    assert result.objective == pytest.approx(sum(route_length(problem.cost, r) for r in result.routes))


def test_uncoverable_customer_is_infeasible() -> None:
    problem = random_problem(0)
    cover = problem.cover.copy()
    cover[:, 0] = False
    with pytest.raises(InfeasibleProblemError, match="covered by no vertex"):
        CoveringTourProblem(problem.cost, cover, problem.mandatory, problem.max_visits, problem.max_length)


def test_unreachable_mandatory_vertex_is_infeasible() -> None:
    problem = random_problem(1)
    with pytest.raises(InfeasibleProblemError, match="cannot reach it"):
        CoveringTourProblem(problem.cost, problem.cover, problem.mandatory, problem.max_visits, 1.0)


def test_the_search_ends_within_the_time_limit() -> None:
    """The final routing of the best set is part of the budget, not an extra after it."""
    problem = random_problem(4, n=12, customers=10, p=3)
    result = solve_covering_tour(problem, params=SolveParams(time_limit_s=1.0, seed=0))
    assert result.runtime_s <= 1.0
