"""The coverage location model against brute force, its properties and its explanations of infeasibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.errors import BudgetTooSmallError, CoverageUnreachableError, InvalidProblemError
from optimizer.location import LocationProblem, solve_location
from optimizer.params import SolveParams


def random_problem(seed: int, **kw: object) -> LocationProblem:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 40)), int(rng.integers(2, 8))
    t = rng.uniform(0, 2400, (n, m))
    t[rng.random((n, m)) < 0.1] = np.inf
    args: dict[str, object] = dict(
        time_s=t,
        demand=rng.integers(0, 200, n).astype(float),
        site_ids=tuple(f"s{j}" for j in range(m)),
        site_cost=rng.integers(50, 150, m).astype(float),
        radius_s=900.0,
        must_keep=rng.random(m) < 0.15,
    )
    args.update(kw)
    return LocationProblem(**args)  # type: ignore[arg-type]


def brute_force(p: LocationProblem) -> float:
    """Best objective over every subset of sites."""
    m = len(p.site_ids)
    best = -np.inf if p.objective == "max_coverage" else np.inf
    cov = p.coverage
    for mask in itertools.product([False, True], repeat=m):
        x = np.array(mask)
        if (p.must_keep & ~x).any() or (p.forbidden & x).any():
            continue
        cost = float(p.site_cost[x].sum())
        covered = float(p.demand[cov[:, x].any(axis=1)].sum())
        if p.objective == "max_coverage":
            if p.budget is None or cost <= p.budget:
                best = max(best, covered)
        elif covered >= (p.coverage_target or 0) * p.demand.sum() - 1e-9:
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_max_coverage_equals_brute_force(seed: int) -> None:
    p = random_problem(seed)
    p = random_problem(seed, budget=float(p.site_cost[p.must_keep].sum() + 180))
    r = solve_location(p)
    assert r.status == "optimal" and r.gap == 0
    assert r.objective == pytest.approx(brute_force(p))
    assert r.cost <= p.budget  # type: ignore[operator]
    assert set(np.asarray(p.site_ids)[p.must_keep]) <= set(r.open_sites)


@pytest.mark.parametrize("seed", range(30, 55))
def test_min_cost_equals_brute_force(seed: int) -> None:
    p = random_problem(seed)
    reach = float(p.demand[p.coverage.any(axis=1)].sum() / max(p.demand.sum(), 1))
    p = random_problem(seed, objective="min_cost", coverage_target=max(0.05, 0.8 * reach))
    r = solve_location(p)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(brute_force(p))
    assert r.covered_share >= p.coverage_target - 1e-9  # type: ignore[operator]


def test_coverage_is_non_decreasing_in_budget() -> None:
    p0 = random_problem(3, must_keep=None)
    last = -1.0
    for budget in np.linspace(60, p0.site_cost.sum(), 8):
        r = solve_location(random_problem(3, must_keep=None, budget=float(budget)))
        assert r.objective >= last
        last = r.objective


def test_must_keep_never_improves_the_objective() -> None:
    for seed in range(8):
        free = random_problem(seed, must_keep=None, budget=250.0)
        base = solve_location(free).objective
        for j in range(len(free.site_ids)):
            keep = np.zeros(len(free.site_ids), dtype=bool)
            keep[j] = True
            if free.site_cost[j] > 250:
                continue
            forced = random_problem(seed, must_keep=keep, budget=250.0)
            assert solve_location(forced).objective <= base + 1e-9


def test_client_order_does_not_matter_and_seed_is_deterministic() -> None:
    p = random_problem(11, budget=260.0)
    perm = np.random.default_rng(0).permutation(len(p.demand))
    q = random_problem(11, budget=260.0, time_s=p.time_s[perm], demand=p.demand[perm])
    a, b = solve_location(p, params=SolveParams(seed=1)), solve_location(q, params=SolveParams(seed=1))
    assert a.objective == b.objective
    assert solve_location(p, params=SolveParams(seed=1)).open_sites == a.open_sites


def test_budget_below_must_keep_cost_is_explained() -> None:
    p = random_problem(
        1, must_keep=np.array([True, True] + [False] * (len(random_problem(1).site_ids) - 2)), budget=10.0
    )
    with pytest.raises(BudgetTooSmallError, match=r"budget 10 cannot keep the 2 must_keep site\(s\) \(s0, s1\)"):
        solve_location(p)


def test_unreachable_coverage_target_gives_the_maximum() -> None:
    t = np.array([[100.0, np.inf], [np.inf, 100.0], [5000.0, 5000.0]])
    p = LocationProblem(
        t,
        np.array([10.0, 10.0, 80.0]),
        ("a", "b"),
        np.array([1.0, 1.0]),
        radius_s=900.0,
        objective="min_cost",
        coverage_target=0.95,
    )
    with pytest.raises(CoverageUnreachableError, match=r"covers 95\.0% .* the maximum is 20\.0%"):
        solve_location(p)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"site_cost": np.array([1.0, -1.0])}, "site_cost"),
        ({"site_cost": np.array([1.0, np.nan])}, "site_cost"),
        ({"demand": np.array([1.0])}, "demand has"),
        ({"time_s": np.array([[1.0, np.nan], [1.0, 2.0]])}, "NaN"),
        ({"budget": -5.0}, "budget"),
        ({"objective": "min_cost"}, "coverage_target"),
        (
            {"must_keep": np.array([True, False]), "forbidden": np.array([True, False])},
            "both must_keep and forbidden",
        ),
        ({"site_ids": ("a", "a")}, "repeat"),
    ],
)
def test_bad_problems_say_what_to_change(kw: dict[str, object], match: str) -> None:
    args: dict[str, object] = dict(
        time_s=np.ones((2, 2)), demand=np.ones(2), site_ids=("a", "b"), site_cost=np.ones(2), radius_s=10.0
    )
    args.update(kw)
    with pytest.raises(InvalidProblemError, match=match):
        LocationProblem(**args)  # type: ignore[arg-type]


def test_problem_is_immutable() -> None:
    p = random_problem(0)
    with pytest.raises(ValueError, match="read-only"):
        p.demand[0] = 1.0
