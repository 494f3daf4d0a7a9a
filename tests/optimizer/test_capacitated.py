"""Capacitated fixed-charge location and the p-median proofs against exhaustive enumeration on small instances.

Multi-source: every open set, each with its transportation problem solved exactly by scipy's linprog (not by the
min-cost flow the solver uses). Single source: every open set and every assignment of clients to open sites. The
reported bound never passes the enumerated optimum, also when the solver is stopped early.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy.optimize import linprog

from optimizer import _assign, _capacitated, _pmedian
from optimizer.errors import CapacityShortfallError
from optimizer.location import LocationProblem, solve_location
from optimizer.params import SolveParams

PARAMS = SolveParams(time_limit_s=10.0, seed=0, workers=1)


def capacitated(seed: int, *, n: int | None = None, m: int | None = None, **kw: object) -> LocationProblem:
    """A random planar instance whose capacities hold the demand with some slack."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(6, 13))
    m = m or int(rng.integers(3, 7))
    sites, clients = rng.uniform(0, 100, (m, 2)), rng.uniform(0, 100, (n, 2))
    demand = rng.integers(1, 30, n).astype(float)
    dist = np.sqrt(((clients[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    cap = np.ceil(rng.uniform(0.3, 0.7, m) * demand.sum())
    if cap.sum() < 1.3 * demand.sum():
        cap *= 1.3 * demand.sum() / cap.sum()
    args: dict[str, object] = dict(
        time_s=np.round(dist), demand=demand, site_ids=tuple(f"s{j}" for j in range(m)),
        site_cost=rng.integers(100, 600, m).astype(float), objective="fixed_charge",
        assign_cost=np.round(demand[:, None] * dist, 2), capacity=np.ceil(cap),
    )  # fmt: skip
    args.update(kw)
    return LocationProblem(**args)  # type: ignore[arg-type]


def transport_lp(a: np.ndarray, d: np.ndarray, cap: np.ndarray) -> float:
    """Cheapest split assignment to the given sites, an LP (inf when the capacity is short)."""
    n, k = a.shape
    if cap.sum() < d.sum() - 1e-9:
        return math.inf
    eq = np.kron(np.eye(n), np.ones((1, k)))
    ub = np.hstack([np.eye(k) * d[i] for i in range(n)])
    res = linprog(a.ravel(), A_ub=ub, b_ub=cap, A_eq=eq, b_eq=np.ones(n), bounds=(0, 1), method="highs")
    return float(res.fun) if res.status == 0 else math.inf


def single_source(a: np.ndarray, d: np.ndarray, cap: np.ndarray) -> float:
    """Cheapest whole assignment to the given sites, by enumerating every assignment."""
    n, k = a.shape
    best = math.inf
    for choice in itertools.product(range(k), repeat=n):
        load = np.bincount(choice, weights=d, minlength=k)
        if (load <= cap + 1e-9).all():
            best = min(best, float(a[np.arange(n), choice].sum()))
    return best


def brute(p: LocationProblem) -> float:
    assert p.capacity is not None and p.assign_cost is not None
    m = len(p.site_ids)
    best = math.inf
    for bits in itertools.product([False, True], repeat=m):
        x = np.array(bits)
        if not x.any() or (p.must_keep & ~x).any() or (p.forbidden & x).any():
            continue
        if p.p is not None and x.sum() != p.p:
            continue
        serve = single_source if p.single_source else transport_lp
        best = min(best, p.plan_cost(x) + serve(p.assign_cost[:, x], p.demand, p.capacity[x]))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_multi_source_equals_enumeration(seed: int) -> None:
    p = capacitated(seed)
    r = solve_location(p, params=PARAMS)
    optimum = brute(p)
    assert r.status == "optimal" and r.gap == 0, r.summary()
    assert r.objective == pytest.approx(optimum, rel=1e-7, abs=1e-6)
    assert r.bound <= optimum + 1e-6 * abs(optimum)


@pytest.mark.parametrize("seed", range(100, 108))
def test_single_source_equals_enumeration(seed: int) -> None:
    p = capacitated(seed, n=6, m=3, single_source=True)
    r = solve_location(p, params=PARAMS)
    optimum = brute(p)
    assert math.isfinite(optimum)
    assert r.status == "optimal" and r.gap == 0, r.summary()
    assert r.objective == pytest.approx(optimum, rel=1e-7, abs=1e-6)
    # recount the plan's cost from its assignment: each client wholly at one open site within capacity
    a = np.asarray(p.assign_cost)
    load = np.bincount(r.assignment, weights=p.demand, minlength=len(p.site_ids))
    assert (load <= np.asarray(p.capacity) + 1e-9).all()
    assert p.plan_cost(np.isin(p.site_ids, r.open_sites)) + a[np.arange(len(a)), r.assignment].sum() == (
        pytest.approx(r.objective)
    )


@pytest.mark.parametrize("seed", range(200, 206))
def test_must_keep_forbidden_and_p_are_respected(seed: int) -> None:
    m = 5
    keep, forbid = np.arange(m) == 0, np.arange(m) == 1
    p = capacitated(seed, m=m, must_keep=keep, forbidden=forbid, p=3)
    r = solve_location(p, params=PARAMS)
    assert r.objective == pytest.approx(brute(p), rel=1e-7)
    assert "s0" in r.open_sites and "s1" not in r.open_sites and len(r.open_sites) == 3


@pytest.mark.parametrize("seed", range(300, 310))
def test_lagrangian_bound_never_passes_the_optimum(seed: int) -> None:
    """The bound alone (no MIP), and the bound of a run stopped early, stay at or below the enumerated optimum."""
    p = capacitated(seed)
    optimum = brute(p)
    data = _capacitated.CapData(
        C=np.asarray(p.assign_cost), demand=np.asarray(p.demand), capacity=np.asarray(p.capacity), F=p.kappa,
        keep=np.zeros(len(p.site_ids), dtype=bool), allowed=np.ones(len(p.site_ids), dtype=bool),
    )  # fmt: skip
    state = _capacitated.CapState()
    tr = _capacitated.Transport(data)
    first = _capacitated.initial_plan(data)
    assert first is not None
    state.offer(first, tr.evaluate(first)[0])
    _capacitated.lagrangian(data, state, tr, time.perf_counter() + 0.5)
    assert state.bound <= optimum + 1e-6 * optimum
    assert state.best_value >= optimum - 1e-6 * optimum
    early = solve_location(p, params=SolveParams(time_limit_s=0.02, seed=0, workers=1))
    if early.status != "infeasible" and math.isfinite(early.bound):
        assert early.bound <= optimum + 1e-6 * optimum
        assert early.objective >= optimum - 1e-6 * optimum


def test_knapsack_columns_match_linprog() -> None:
    rng = np.random.default_rng(5)
    R = rng.normal(0, 10, (15, 4))
    d = rng.integers(1, 9, 15).astype(float)
    d[3] = 0.0  # a client without demand takes a negative entry at no capacity
    Q = np.array([5.0, 12.0, 30.0, 200.0])
    g, _, y = _capacitated.knapsack_columns(R, d, Q, want_y=True)
    assert y is not None
    for j in range(4):
        res = linprog(R[:, j], A_ub=d[None, :], b_ub=[Q[j]], bounds=(0, 1), method="highs")
        assert g[j] == pytest.approx(res.fun, abs=1e-9)
        assert float(R[:, j] @ y[:, j]) == pytest.approx(res.fun, abs=1e-9)
        assert float(d @ y[:, j]) <= Q[j] + 1e-9


def test_cover_knapsack_is_exact_by_enumeration() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        m = 7
        v = rng.normal(0, 5, m)
        Q = rng.integers(2, 9, m).astype(float)
        keep, allowed = np.zeros(m, bool), rng.random(m) < 0.9
        D = float(rng.integers(5, int(Q[allowed].sum()) + 1)) if allowed.any() else 0.0
        _, value, exact = _capacitated.cover_knapsack(v, Q, D, keep, allowed, None)
        best = min(
            (float(v[np.array(b)].sum()) for b in itertools.product([False, True], repeat=m)
             if not (np.array(b) & ~allowed).any() and Q[np.array(b)].sum() >= D),
            default=math.inf,
        )  # fmt: skip
        assert exact and value == pytest.approx(best)


def test_capacity_shortfall_is_explained_before_solving() -> None:
    p = capacitated(1, capacity=np.ones(len(capacitated(1).site_ids)))
    with pytest.raises(CapacityShortfallError, match=r"hold \d+ in all but demand is"):
        solve_location(p, params=PARAMS)


def test_same_seed_same_plan() -> None:
    p = capacitated(7, n=30, m=8)
    a, b = solve_location(p, params=PARAMS), solve_location(p, params=PARAMS)
    assert a.open_sites == b.open_sites and a.objective == b.objective


# ----------------------------------------------------------------------------------------------------------------
# p-median: the Lagrangian branch and bound and the radius MIP, each on its own, against enumeration


def pmedian_instance(seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 16))
    xy = rng.uniform(0, 100, (n, 2))
    C = np.round(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2)))
    return C, int(rng.integers(2, 5))


def enumerate_pmedian(C: np.ndarray, p: int) -> float:
    return min(float(C[:, list(s)].min(axis=1).sum()) for s in itertools.combinations(range(C.shape[1]), p))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_branch_and_bound_from_scratch_equals_enumeration(seed: int, workers: int) -> None:
    """Started with no incumbent and crude multipliers, the tree must find and prove the optimum itself, on one
    thread or solving rounds of nodes on two."""
    C, p = pmedian_instance(seed)
    n = C.shape[0]
    out = _pmedian.branch_and_bound(
        C, np.zeros(n), columns=np.ones(n, bool), force_open=np.zeros(n, bool), p=p, lam=C.mean(axis=1),
        incumbent=math.inf, deadline=time.perf_counter() + 20, integral=True, workers=workers,
    )  # fmt: skip
    assert out.proven and out.open_mask is not None
    assert out.value == enumerate_pmedian(C, p)
    assert float(C[:, out.open_mask].min(axis=1).sum()) == out.value and int(out.open_mask.sum()) == p


def enumerate_fixed_charge(C: np.ndarray, F: np.ndarray) -> float:
    m = C.shape[1]
    return min(
        float(C[:, list(s)].min(axis=1).sum() + F[list(s)].sum())
        for r in range(1, m + 1)
        for s in itertools.combinations(range(m), r)
    )


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_branch_and_bound_without_p_equals_enumeration(seed: int, workers: int) -> None:
    """Fixed charges and no site count (every site whose reduced cost is negative opens): the optimum of all
    2^m - 1 plans."""
    rng = np.random.default_rng(100 + seed)
    n, m = 14, 10
    C = rng.integers(1, 60, (n, m)).astype(float)
    F = rng.integers(20, 120, m).astype(float)
    out = _pmedian.branch_and_bound(
        C, F, columns=np.ones(m, bool), force_open=np.zeros(m, bool), p=None, lam=C.min(axis=1),
        incumbent=math.inf, deadline=time.perf_counter() + 20, integral=True, workers=workers,
    )  # fmt: skip
    assert out.proven and out.open_mask is not None
    value = float(C[:, out.open_mask].min(axis=1).sum() + F[out.open_mask].sum())
    assert value == out.value == enumerate_fixed_charge(C, F)


def test_branch_and_bound_on_two_workers_repeats_itself() -> None:
    """Rounds of nodes solved side by side merge in the order taken: the same inputs give the same plan, bound
    and node count, however the threads were scheduled; and the optimum the one-thread tree proves."""
    rng = np.random.default_rng(1)
    n, p = 80, 5
    C = rng.integers(1, 100, (n, n)).astype(float)  # random costs: a weak bound, a few hundred nodes

    def tree(workers: int) -> _pmedian.TreeOutcome:
        return _pmedian.branch_and_bound(
            C, np.zeros(n), columns=np.ones(n, bool), force_open=np.zeros(n, bool), p=p, lam=C.mean(axis=1),
            incumbent=math.inf, deadline=time.perf_counter() + 60, integral=True, workers=workers,
        )  # fmt: skip

    runs = [tree(2), tree(2), tree(1)]
    assert all(r.proven and r.open_mask is not None for r in runs)
    assert runs[0].nodes > 16, "the tree should take more than one round"
    assert runs[0].nodes == runs[1].nodes and runs[0].value == runs[1].value
    assert np.array_equal(runs[0].open_mask, runs[1].open_mask)
    assert runs[0].value == runs[2].value


@pytest.mark.parametrize("seed", range(40))
def test_branch_and_bound_improves_an_incumbent_one_above_the_optimum(seed: int) -> None:
    """On integer costs a bound is rounded up: the tree must round after adding a reduced cost, not before, or a
    child one unit below the incumbent is pruned (pmed23-like was 'proven' at 4,241 with 4,240 feasible)."""
    C, p = pmedian_instance(seed)
    n = C.shape[0]
    optimum = enumerate_pmedian(C, p)
    data = _assign.AssignData(C=C, F=np.zeros(n), keep=np.zeros(n, bool), allowed=np.ones(n, bool), p=p)
    mask, value = _assign.local_search(data, _assign.greedy(data), time.perf_counter() + 1)
    state = _assign.SearchState(mask, value)
    _assign.lagrangian(data, state, time.perf_counter() + 0.3)
    assert state.lam is not None and state.lr_value <= optimum + 1e-9
    out = _pmedian.branch_and_bound(
        C, np.zeros(n), columns=np.ones(n, bool), force_open=np.zeros(n, bool), p=p, lam=state.lam,
        incumbent=optimum + 1, deadline=time.perf_counter() + 20, integral=True,
    )  # fmt: skip
    assert out.proven and out.open_mask is not None, "a plan one below the incumbent exists"
    assert float(C[:, out.open_mask].min(axis=1).sum()) == optimum == out.value


@pytest.mark.parametrize("seed", range(20, 28))
def test_radius_mip_with_truncation_equals_enumeration(seed: int) -> None:
    """Truncated at the Lagrangian radius of a heuristic plan, the MIP proves the enumerated optimum."""
    C, p = pmedian_instance(seed)
    n = C.shape[0]
    data = _assign.AssignData(C=C, F=np.zeros(n), keep=np.zeros(n, bool), allowed=np.ones(n, bool), p=p)
    mask, value = _assign.local_search(data, _assign.greedy(data), time.perf_counter() + 1)
    state = _assign.SearchState(mask, value)
    _assign.lagrangian(data, state, time.perf_counter() + 0.3, max_iter=30)
    out = _pmedian.radius_mip(
        C, np.zeros(n), columns=np.ones(n, bool), force_open=np.zeros(n, bool),
        radius=_assign.useful_radius(data, state), p=p, kappa=None, budget=None, incumbent=state.best_value,
        deadline=time.perf_counter() + 20, gap=1e-9,
    )  # fmt: skip
    optimum = enumerate_pmedian(C, p)
    assert out.bound <= optimum + 1e-9
    assert min(state.best_value, out.value) == optimum
    assert out.proven
