"""solve_orienteering against brute-force enumeration on tiny random instances, the budget, determinism, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.errors import InfeasibleProblemError, InvalidCostError, ShapeMismatchError
from optimizer.orienteering import path_length, solve_orienteering
from optimizer.params import SolveParams

FAST = SolveParams(time_limit_s=0.5, seed=0)


def random_instance(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10, size=(n, 2))
    travel = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2))
    score = rng.integers(1, 10, size=n).astype(float)
    score[:2] = 0
    budget = float(travel[0, 1] + rng.uniform(5, 20))
    return travel, score, budget


def brute_force(travel: np.ndarray, score: np.ndarray, start: int, end: int, budget: float) -> float:
    """Best score over every subset and order of the middle nodes."""
    middle = [i for i in range(len(score)) if i not in (start, end)]
    best = 0.0
    for k in range(len(middle) + 1):
        for subset in itertools.combinations(middle, k):
            value = float(score[list(subset)].sum())
            if value <= best:
                continue
            if any(
                path_length(travel, [start, *perm, end]) <= budget + 1e-9 for perm in itertools.permutations(subset)
            ):
                best = value
    return best


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force(seed: int) -> None:
    n = 6 + seed % 3  # 6 to 8 nodes
    travel, score, budget = random_instance(seed, n)
    result = solve_orienteering(travel, score, 0, 1, budget, params=FAST)
    best = brute_force(travel, score, 0, 1, budget)
    assert result.objective == pytest.approx(best)
    assert result.bound >= best - 1e-9  # the bound holds for the true optimum, found here by enumeration
    assert result.tour[0] == 0 and result.tour[-1] == 1
    assert len(set(result.tour)) == len(result.tour)
    assert path_length(travel, result.tour) <= budget + 1e-9
    assert result.length == pytest.approx(path_length(travel, result.tour))
    assert result.objective == pytest.approx(score[list(result.tour)].sum())


def test_closed_tour_when_start_is_end() -> None:
    travel, score, budget = random_instance(11, 7)
    result = solve_orienteering(travel, score, 0, 0, budget, params=FAST)
    assert result.tour[0] == 0 and result.tour[-1] == 0
    assert path_length(travel, result.tour) <= budget + 1e-9
    assert result.objective == pytest.approx(brute_force(travel, score, 0, 0, budget))


def test_budget_of_the_direct_leg_visits_nothing_else() -> None:
    travel, score, _ = random_instance(3, 6)
    result = solve_orienteering(travel, score, 0, 1, float(travel[0, 1]), params=FAST)
    assert result.tour == (0, 1)
    assert result.objective == 0


def test_zero_budget_closed_tour_stays_home() -> None:
    travel, score, _ = random_instance(4, 6)
    result = solve_orienteering(travel, score, 2, 2, 0.0, params=FAST)
    assert result.tour == (2, 2)
    assert result.objective == score[2]


def test_same_seed_same_tour() -> None:
    travel, score, budget = random_instance(5, 8)
    first = solve_orienteering(travel, score, 0, 1, budget, params=FAST)
    second = solve_orienteering(travel, score, 0, 1, budget, params=FAST)
    assert first.tour == second.tour
    assert first.objective == second.objective


def test_rejects_bad_input() -> None:
    travel, score, budget = random_instance(1, 6)
    with pytest.raises(InfeasibleProblemError, match="over the budget"):
        solve_orienteering(travel, score, 0, 1, float(travel[0, 1]) / 2, params=FAST)
    with pytest.raises(ShapeMismatchError):
        solve_orienteering(travel, score[:-1], 0, 1, budget, params=FAST)
    with pytest.raises(InvalidCostError):
        solve_orienteering(travel, -score, 0, 1, budget, params=FAST)
