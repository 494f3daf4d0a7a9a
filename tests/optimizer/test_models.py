"""Every location model against exhaustive enumeration on small random instances, plus model properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from optimizer.errors import (
    BudgetTooSmallError,
    CapacityShortfallError,
    InvalidCostError,
    InvalidSiteCountError,
    NoAllowedSitesError,
    RadiusUnreachableError,
    ShapeMismatchError,
)
from optimizer.location import Decay, LocationProblem, solve_location
from optimizer.params import SolveParams

PARAMS = SolveParams(time_limit_s=10.0, seed=1)


def instance(seed: int, **kw: object) -> LocationProblem:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(6, 25)), int(rng.integers(3, 8))
    site_xy, client_xy = rng.uniform(0, 10, (m, 2)), rng.uniform(0, 10, (n, 2))
    t = np.linalg.norm(client_xy[:, None, :] - site_xy[None, :, :], axis=2) * 120  # seconds
    args: dict[str, object] = dict(
        time_s=np.round(t), demand=rng.integers(1, 50, n).astype(float), site_ids=tuple(f"s{j}" for j in range(m)),
        site_cost=rng.integers(100, 400, m).astype(float),
        candidate=rng.random(m) < 0.3, closure_cost=rng.integers(0, 60, m).astype(float),
        opening_cost=rng.integers(0, 60, m).astype(float), radius_s=600.0,
    )  # fmt: skip
    args.update(kw)
    return LocationProblem(**args)  # type: ignore[arg-type]


def subsets(p: LocationProblem) -> list[np.ndarray]:
    """Every open set allowed by site types, p and budget."""
    out = []
    for bits in itertools.product([False, True], repeat=len(p.site_ids)):
        x = np.array(bits)
        if not x.any() or (p.must_keep & ~x).any() or (p.forbidden & x).any():
            continue
        if p.p is not None and x.sum() != p.p:
            continue
        if p.budget is not None and p.plan_cost(x) > p.budget + 1e-9:
            continue
        out.append(x)
    return out


def brute(p: LocationProblem) -> float:
    t, d = p.time_s, p.demand
    values = []
    for x in subsets(p):
        near = t[:, x].min(axis=1)
        if p.objective == "p_median":
            values.append(float((d * near).sum()))
        elif p.objective == "attendance":
            assert p.decay is not None
            values.append(float((d * p.decay(t[:, x]).max(axis=1)).sum()))
        elif p.objective == "max_coverage":
            values.append(float(d[near <= (p.radius_s or 0)].sum()))
        elif p.objective == "p_center":
            values.append(float(near[d > 0].max()))
        elif p.objective == "min_cost":
            if d[near <= (p.radius_s or 0)].sum() >= (p.coverage_target or 0) * d.sum() - 1e-9:
                values.append(p.plan_cost(x))
        elif p.objective == "fixed_charge":
            a = p.assign_cost if p.assign_cost is not None else d[:, None] * t
            if p.capacity is None:
                values.append(p.plan_cost(x) + float(a[:, x].min(axis=1).sum()))
            else:
                values.append(p.plan_cost(x) + transport(a[:, x], d, p.capacity[x]))
    return max(values) if p.objective in ("attendance", "max_coverage") else min(values)


def transport(a: np.ndarray, d: np.ndarray, cap: np.ndarray) -> float:
    """Cheapest split assignment of clients to the open sites (an LP), inf if capacity is short."""
    n, k = a.shape
    if cap.sum() < d.sum() - 1e-9:
        return np.inf
    eq = np.kron(np.eye(n), np.ones((1, k)))
    ub = np.hstack([np.eye(k) * d[i] for i in range(n)])  # sum_i d_i y_ij <= cap_j
    res = linprog(a.ravel(), A_ub=ub, b_ub=cap, A_eq=eq, b_eq=np.ones(n), bounds=(0, 1), method="highs")
    return float(res.fun) if res.status == 0 else np.inf


def check(p: LocationProblem) -> None:
    r = solve_location(p, params=PARAMS)
    assert r.status == "optimal", r.summary()
    assert r.objective == pytest.approx(brute(p), rel=1e-7, abs=1e-6), r.summary()
    assert r.gap == 0
    if p.budget is not None:
        assert r.cost <= p.budget + 1e-6
    if p.p is not None:
        assert len(r.open_sites) == p.p
    assert set(np.asarray(p.site_ids)[p.must_keep]) <= set(r.open_sites)
    assert not set(np.asarray(p.site_ids)[p.forbidden]) & set(r.open_sites)


@pytest.mark.parametrize("seed", range(10))
def test_p_median(seed: int) -> None:
    m = instance(seed).time_s.shape[1]
    check(instance(seed, objective="p_median", p=int(np.random.default_rng(seed).integers(1, m)),
                   must_keep=np.arange(m) == 0))  # fmt: skip


@pytest.mark.parametrize("seed", range(10, 18))
def test_p_median_with_budget(seed: int) -> None:
    base = instance(seed)
    budget = base.base_cost + float(np.sort(base.kappa)[:3].sum()) + 50
    check(instance(seed, objective="p_median", p=2, budget=budget))


@pytest.mark.parametrize("seed", range(20, 30))
def test_attendance(seed: int) -> None:
    kinds = ("exponential", "power", "linear")
    decay = Decay(kinds[seed % 3], scale_s=600.0)
    check(instance(seed, objective="attendance", p=2, decay=decay))


@pytest.mark.parametrize("seed", range(30, 40))
def test_uncapacitated_fixed_charge(seed: int) -> None:
    base = instance(seed)
    check(instance(seed, objective="fixed_charge", assign_cost=base.demand[:, None] * base.time_s / 50,
                   forbidden=np.arange(base.time_s.shape[1]) == 1))  # fmt: skip


@pytest.mark.parametrize("seed", range(40, 48))
def test_capacitated_fixed_charge(seed: int) -> None:
    base = instance(seed)
    m = base.time_s.shape[1]
    cap = np.full(m, base.demand.sum() / 2.2)
    check(instance(seed, objective="fixed_charge", capacity=cap, assign_cost=base.demand[:, None] * base.time_s / 50))


@pytest.mark.parametrize("seed", range(50, 58))
def test_max_coverage_with_p(seed: int) -> None:
    check(instance(seed, objective="max_coverage", radius_s=400.0, p=2))


@pytest.mark.parametrize("seed", range(60, 66))
def test_lscp(seed: int) -> None:
    t = instance(seed).time_s
    m, radius = t.shape[1], float(t.min(axis=1).max()) + 60  # every client can be covered
    check(instance(seed, objective="min_cost", radius_s=radius, coverage_target=1.0, site_cost=np.ones(m),
                   closure_cost=None, opening_cost=None, candidate=None))  # fmt: skip


@pytest.mark.parametrize("seed", range(70, 80))
def test_p_center(seed: int) -> None:
    check(instance(seed, objective="p_center", p=2))


def test_coverage_is_non_decreasing_in_p() -> None:
    m = instance(99).time_s.shape[1]
    covered = [solve_location(instance(99, objective="max_coverage", radius_s=500.0, p=p), params=PARAMS).objective
               for p in range(1, m + 1)]  # fmt: skip
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(covered))


def test_must_keep_never_improves_p_median() -> None:
    base = instance(3, objective="p_median", p=2)
    free = solve_location(base, params=PARAMS).objective
    for j in range(len(base.site_ids)):
        forced = instance(3, objective="p_median", p=2, must_keep=np.arange(len(base.site_ids)) == j)
        assert solve_location(forced, params=PARAMS).objective >= free - 1e-9


def test_client_order_does_not_matter() -> None:
    p = instance(8, objective="p_median", p=3)
    perm = np.random.default_rng(0).permutation(len(p.demand))
    q = instance(8, objective="p_median", p=3, time_s=p.time_s[perm], demand=p.demand[perm])
    assert solve_location(p, params=PARAMS).objective == pytest.approx(solve_location(q, params=PARAMS).objective)


def test_same_seed_same_plan() -> None:
    p = instance(4, objective="attendance", p=3)
    a, b = solve_location(p, params=PARAMS), solve_location(p, params=PARAMS)
    assert a.open_sites == b.open_sites and a.objective == b.objective


def test_closure_and_opening_costs_count_in_the_budget() -> None:
    t = np.array([[10.0, 20.0], [20.0, 10.0]])
    p = LocationProblem(
        time_s=t,
        demand=np.ones(2),
        site_ids=("old", "new"),
        site_cost=np.array([100.0, 50.0]),
        objective="p_median",
        p=1,
        candidate=np.array([False, True]),
        closure_cost=np.array([80.0, 0.0]),
        opening_cost=np.array([40.0, 0.0]),
        budget=150.0,
    )
    r = solve_location(p, params=PARAMS)
    # keeping 'old' costs 100; opening 'new' costs 50 + 40 one-off + 80 to close 'old' = 170 > 150
    assert r.open_sites == ("old",) and r.cost == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"site_cost": np.array([1.0, -1.0, 1.0])}, InvalidCostError, "site_cost"),
        ({"closure_cost": np.array([1.0, np.nan, 1.0])}, InvalidCostError, "closure_cost"),
        ({"p": 4}, InvalidSiteCountError, "choose p between"),
        ({"forbidden": np.ones(3, bool)}, NoAllowedSitesError, "every site is forbidden"),
        ({"demand": np.ones(5)}, ShapeMismatchError, "one demand per client"),
        ({"capacity": np.ones(2)}, ShapeMismatchError, "capacity"),
    ],
)
def test_bad_input_raises_specific_errors(kw: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = dict(time_s=np.ones((4, 3)), demand=np.ones(4), site_ids=("a", "b", "c"),
                                   site_cost=np.ones(3), objective="p_median", p=1)  # fmt: skip
    args.update(kw)
    with pytest.raises(error, match=match):
        LocationProblem(**args)  # type: ignore[arg-type]


def test_infeasibility_is_explained() -> None:
    t = np.full((3, 2), 5000.0)
    with pytest.raises(RadiusUnreachableError, match="widen the radius"):
        solve_location(LocationProblem(time_s=t, demand=np.ones(3), site_ids=("a", "b"), site_cost=np.ones(2),
                                       objective="max_coverage", radius_s=600.0, p=1))  # fmt: skip
    with pytest.raises(CapacityShortfallError, match="hold 2 in all but demand is 3"):
        solve_location(LocationProblem(time_s=t, demand=np.ones(3), site_ids=("a", "b"), site_cost=np.ones(2),
                                       objective="fixed_charge", capacity=np.ones(2)))  # fmt: skip
    with pytest.raises(BudgetTooSmallError, match="cannot pay for 2 open sites"):
        solve_location(LocationProblem(time_s=t, demand=np.ones(3), site_ids=("a", "b"), site_cost=np.full(2, 10.0),
                                       objective="p_median", p=2, budget=15.0))  # fmt: skip
