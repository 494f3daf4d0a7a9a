"""Heuristic and Lagrangian bound for the assignment family of location models.

Every model here is: choose open sites S to minimise ``sum_i min_{j in S} C_ij + sum_{j in S} F_j`` subject to
must-keep and forbidden sites and one of: ``|S| = p``, a budget ``sum_{j in S} k_j <= B``, or nothing. p-median,
attendance (lost visits), p-site maximal covering (uncovered people) and uncapacitated fixed-charge location are
all of this form with different ``C`` and ``F``.

The plan comes from greedy construction, a best-improvement swap/add/drop local search evaluated for all moves at
once (Whitaker's gain/loss decomposition, as a dense matrix product), and variable neighbourhood search. The bound
comes from Lagrangian relaxation of the assignment constraints ``sum_j y_ij = 1`` with subgradient optimisation;
its subproblem picks sites by their reduced cost. Solutions of the subproblem seed the local search (a Lagrangian
heuristic). When the data are integers the bound is rounded up.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer import _lagrange_kernel

_BIG = 1e18
#: above this many (client, site) pairs the Lagrangian runs on the dense matrix (the sorted copy would double
#: the memory: 16 bytes per pair)
SPARSE_MAX_ENTRIES = 25_000_000
#: the sorted Lagrangian stops when its step factor falls below this (the bound barely moves after)
MIN_STEP = 1e-4


@dataclass(frozen=True)
class AssignData:
    """Data of one assignment-family instance (all arrays read-only)."""

    C: np.ndarray  # (n, m) service cost, finite
    F: np.ndarray  # (m,) fixed cost of an open site in the objective
    keep: np.ndarray  # (m,) bool
    allowed: np.ndarray  # (m,) bool, keep included
    p: int | None = None  # exact number of open sites
    kappa: np.ndarray | None = None  # (m,) budget cost of an open site
    budget: float | None = None  # on sum kappa over open sites

    @property
    def integral(self) -> bool:
        return bool(np.all(np.rint(self.C) == self.C) and np.all(np.rint(self.F) == self.F))


def evaluate(data: AssignData, open_mask: np.ndarray) -> float:
    """Objective of an open set."""
    return float(data.C[:, open_mask].min(axis=1).sum() + data.F[open_mask].sum())


def feasible(data: AssignData, open_mask: np.ndarray) -> bool:
    if (data.keep & ~open_mask).any() or (open_mask & ~data.allowed).any() or not open_mask.any():
        return False
    if data.p is not None and int(open_mask.sum()) != data.p:
        return False
    return not (data.budget is not None and data.kappa is not None and data.kappa[open_mask].sum() > data.budget + 1e-9)


def _spent(data: AssignData, open_mask: np.ndarray) -> float:
    return float(data.kappa[open_mask].sum()) if data.kappa is not None else 0.0


def greedy(data: AssignData) -> np.ndarray:
    """Add the site that lowers the objective most until the count is met or nothing helps (the ADD heuristic)."""
    n, _m = data.C.shape
    open_mask = data.keep.copy()
    best = data.C[:, open_mask].min(axis=1) if open_mask.any() else np.full(n, _BIG)
    target = data.p
    while target is None or open_mask.sum() < target:
        cand = data.allowed & ~open_mask
        if data.budget is not None and data.kappa is not None:
            cand &= data.kappa + _spent(data, open_mask) <= data.budget + 1e-9
        if not cand.any():
            break
        gain = np.maximum(best[:, None] - data.C, 0.0).sum(axis=0) - data.F
        gain[~cand] = -np.inf
        j = int(np.argmax(gain))
        if target is None and open_mask.any() and gain[j] <= 1e-12:
            break
        open_mask[j] = True
        best = np.minimum(best, data.C[:, j])
    return open_mask


def _two_best(C: np.ndarray, open_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per client: best cost, its open site (index into C's columns), second-best cost (inf with one site)."""
    sub = C[:, open_idx]
    k = len(open_idx)
    pos = np.argmin(sub, axis=1)
    d1 = sub[np.arange(len(sub)), pos]
    d2 = np.partition(sub, 1, axis=1)[:, 1] if k > 1 else np.full(len(sub), np.inf)
    return d1, open_idx[pos], d2


def local_search(data: AssignData, open_mask: np.ndarray, deadline: float) -> tuple[np.ndarray, float]:
    """Best-improvement local search with swap, add and drop moves (add/drop only when the count is free)."""
    C, F = data.C, data.F
    n, _m = C.shape
    open_mask = open_mask.copy()
    scale = max(1.0, float(np.abs(C).max()))
    eps = 1e-9 * scale
    while time.perf_counter() < deadline:
        open_idx = np.flatnonzero(open_mask)
        d1, phi1, d2 = _two_best(C, open_idx)
        spent = _spent(data, open_mask)
        gain = np.maximum(d1[:, None] - C, 0.0).sum(axis=0)  # (m,) saving from adding u alone
        closed = data.allowed & ~open_mask
        removable = open_mask & ~data.keep
        best_delta, move = -eps, None
        # swap: delta(r, u) = F_u - F_r - gain_u + M[r, u]
        if closed.any() and removable.any():
            A = np.minimum(np.maximum(C, d1[:, None]), d2[:, None]) - d1[:, None]
            A = np.where(np.isfinite(A), A, _BIG)
            rows = np.searchsorted(open_idx, phi1)
            H = sp.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(len(open_idx), n))
            M = np.asarray(H @ A)  # (k, m)
            D = M + (F - gain)[None, :] - F[open_idx][:, None]
            D[:, ~closed] = np.inf
            D[~removable[open_idx], :] = np.inf
            if data.budget is not None and data.kappa is not None:
                after = spent - data.kappa[open_idx][:, None] + data.kappa[None, :]
                D[after > data.budget + 1e-9] = np.inf
            r, u = (int(v) for v in np.unravel_index(int(np.argmin(D)), D.shape))
            if D[r, u] < best_delta:
                best_delta, move = float(D[r, u]), ("swap", int(open_idx[r]), u)
        if data.p is None:
            add = F - gain
            add[~closed] = np.inf
            if data.budget is not None and data.kappa is not None:
                add[spent + data.kappa > data.budget + 1e-9] = np.inf
            u = int(np.argmin(add))
            if add[u] < best_delta:
                best_delta, move = float(add[u]), ("add", -1, u)
            if len(open_idx) > 1:
                loss = np.bincount(
                    np.searchsorted(open_idx, phi1), weights=np.minimum(d2 - d1, _BIG), minlength=len(open_idx)
                )
                drop = loss - F[open_idx]
                drop[~removable[open_idx]] = np.inf
                r = int(np.argmin(drop))
                if drop[r] < best_delta:
                    best_delta, move = float(drop[r]), ("drop", int(open_idx[r]), -1)
        if move is None:
            break
        kind, r_site, u_site = move
        if kind in ("swap", "drop"):
            open_mask[r_site] = False
        if kind in ("swap", "add"):
            open_mask[u_site] = True
    return open_mask, evaluate(data, open_mask)


def shake(data: AssignData, open_mask: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Swap ``k`` random removable open sites for random closed allowed ones (budget permitting)."""
    out = open_mask.copy()
    for _ in range(k):
        removable = np.flatnonzero(out & ~data.keep)
        closed = np.flatnonzero(data.allowed & ~out)
        if not len(removable) or not len(closed):
            break
        r, u = int(rng.choice(removable)), int(rng.choice(closed))
        trial = out.copy()
        trial[r], trial[u] = False, True
        if feasible(data, trial):
            out = trial
    return out


def _subproblem(data: AssignData, rho: np.ndarray) -> np.ndarray:
    """Minimise sum_j rho_j x_j over the x constraints (LP relaxation for a budget); return x in [0, 1]."""
    m = len(rho)
    x = data.keep.astype(np.float64)
    free = data.allowed & ~data.keep
    if data.p is not None:
        need = data.p - int(data.keep.sum())
        if need > 0:
            idx = np.flatnonzero(free)
            x[idx[np.argsort(rho[idx], kind="stable")[:need]]] = 1.0
        return x
    take = free & (rho < 0)
    if data.budget is None or data.kappa is None:
        x[take] = 1.0
        return x
    room = data.budget - float(data.kappa[data.keep].sum())
    idx = np.flatnonzero(take)
    kap = data.kappa[idx]
    ratio = np.where(kap > 0, rho[idx] / np.maximum(kap, 1e-300), -np.inf)
    for j in idx[np.argsort(ratio, kind="stable")]:
        if data.kappa[j] <= 0:
            x[j] = 1.0
        elif room > 0:
            frac = min(1.0, room / data.kappa[j])
            x[j] = frac
            room -= frac * data.kappa[j]
    del m
    return x


@dataclass
class SearchState:
    best_mask: np.ndarray
    best_value: float
    bound: float = -math.inf
    lam: np.ndarray | None = None  # multipliers at the best Lagrangian bound
    lr_value: float = -math.inf  # unrounded bound at lam
    lr_iterations: int = 0
    vns_iterations: int = 0


def lagrangian(
    data: AssignData,
    state: SearchState,
    deadline: float,
    *,
    max_iter: int = 20000,
    patience: int = 60,
    heuristic_every: int = 60,
) -> None:
    """Raise ``state.bound`` by subgradient optimisation; improve ``state.best_*`` with Lagrangian heuristics."""
    if data.budget is None and data.C.size <= SPARSE_MAX_ENTRIES:
        _lagrangian_sorted(data, state, deadline, max_iter=max_iter, patience=patience, heuristic_every=heuristic_every)
        return
    C, F = data.C, data.F
    d1 = C[:, state.best_mask].min(axis=1)
    lam = d1.copy()
    theta, stall, best_lb = 2.0, 0, -math.inf
    integral = data.integral
    for it in range(max_iter):
        if time.perf_counter() > deadline:
            break
        R = np.minimum(C - lam[:, None], 0.0)
        rho = F + R.sum(axis=0)
        x = _subproblem(data, rho)
        lb = float(lam.sum() + rho @ x)
        if best_lb == -math.inf or lb > best_lb + 1e-9 * max(1.0, abs(best_lb)):
            best_lb, stall = lb, 0
            state.lam, state.lr_value = lam.copy(), lb
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2, 0
        state.bound = max(state.bound, math.ceil(best_lb - 1e-6) if integral else best_lb)
        state.lr_iterations = it + 1
        if state.bound >= state.best_value - 1e-9 * max(1.0, abs(state.best_value)) or theta < 1e-6:
            break
        g = 1.0 - ((lam[:, None] > C) * x[None, :]).sum(axis=1)
        norm = float(g @ g)
        if norm == 0:
            break  # the relaxed solution is feasible: lb is optimal for the relaxation and the problem
        if heuristic_every and it % heuristic_every == heuristic_every - 1:
            start = x >= 0.5
            if data.p is not None:
                start = data.keep.copy()
                order = np.argsort(rho + np.where(data.allowed & ~data.keep, 0, np.inf), kind="stable")
                start[order[: data.p - int(data.keep.sum())]] = True
            if feasible(data, start):
                mask, value = local_search(data, start, deadline)
                if value < state.best_value - 1e-12:
                    state.best_mask, state.best_value = mask, value
        step = theta * (state.best_value - lb) / norm
        lam = lam + step * g


def _lagrangian_sorted(
    data: AssignData, state: SearchState, deadline: float, *, max_iter: int, patience: int, heuristic_every: int
) -> None:
    """:func:`lagrangian` without a budget, on each client's sorted costs (:mod:`optimizer._lagrange_kernel`): the
    same subgradient steps, compiled and over the pairs cheaper than the multipliers only, in rounds of
    ``5 * heuristic_every`` iterations with a Lagrangian heuristic (local search from the subproblem's sites, each
    set once) between rounds. It stops at the deadline, at a proof, or when the step factor falls below
    :data:`MIN_STEP`."""
    C = np.asarray(data.C, dtype=np.float64)
    sc, order = _lagrange_kernel.sorted_rows(C)
    # writeable copies: a read-only array is another type to numba, and another compilation
    ct = np.array(C.T, order="C")
    F = np.array(data.F, dtype=np.float64)
    keep, allowed = np.array(data.keep, dtype=np.bool_), np.array(data.allowed, dtype=np.bool_)
    p_code = -1 if data.p is None else int(data.p)
    integral = data.integral
    lam = np.asarray(data.C[:, state.best_mask].min(axis=1), dtype=np.float64)
    theta, stall, it, best_lb = 2.0, 0, 0, -math.inf
    # an iteration costs 20-50 times less than on the dense matrix: the heuristic runs every 5 rounds of
    # ``heuristic_every`` so that its local searches do not take most of the time
    chunk = 5 * heuristic_every if heuristic_every else max_iter
    tried: set[bytes] = set()  # local search from each start once
    while it < max_iter and time.perf_counter() < deadline:
        ub = state.best_value
        slack = 1.0 - 1e-6 if integral else 1e-9 * max(1.0, abs(ub))
        size = min(chunk, max_iter - it)
        lb, best_lam, rho, _, plan, plan_x, done, lam, theta, stall = _lagrange_kernel.subgradient(
            sc, order, ct, F, lam, keep, allowed, p_code, ub, slack, size, theta, patience, MIN_STEP, stall, best_lb,
            0.0,
        )  # fmt: skip
        it += done
        state.lr_iterations = it
        improved = lb > best_lb + 1e-9 * max(1.0, abs(lb))  # rho is the reduced costs at best_lam only then
        if improved:
            best_lb = lb
            state.lam, state.lr_value = best_lam.copy(), lb
        state.bound = max(state.bound, math.ceil(best_lb - 1e-6) if integral else best_lb)
        starts = [plan_x] if math.isfinite(plan) else []
        if heuristic_every and improved:  # the subproblem's sites at the best multipliers
            starts.append(_subproblem(data, rho) >= 0.5)
        for start in starts:
            if start.tobytes() in tried:
                continue
            tried.add(start.tobytes())
            if feasible(data, start):
                mask, value = local_search(data, start, deadline)
                if value < state.best_value - 1e-12:
                    state.best_mask, state.best_value = mask, value
        if state.bound >= state.best_value - 1e-9 * max(1.0, abs(state.best_value)) or done < size:
            break  # proven, or the steps vanished, or the relaxation's solution is feasible


def vns(data: AssignData, state: SearchState, deadline: float, rng: np.random.Generator, *, k_max: int = 10) -> None:
    """Variable neighbourhood search from ``state.best_mask`` until the deadline or the bound is met."""
    k = 1
    limit = max(1, min(k_max, int(state.best_mask.sum())))
    while time.perf_counter() < deadline and state.best_value - state.bound > 1e-9 * max(1.0, abs(state.best_value)):
        trial = shake(data, state.best_mask, k, rng)
        mask, value = local_search(data, trial, deadline)
        state.vns_iterations += 1
        if value < state.best_value - 1e-9 * max(1.0, abs(state.best_value)):
            state.best_mask, state.best_value, k = mask, value, 1
        else:
            k = k + 1 if k < limit else 1


def fix_sites(data: AssignData, state: SearchState) -> tuple[np.ndarray, np.ndarray]:
    """Reduced-cost fixing from the best multipliers: sites whose forced change would lift the bound to the best
    known value cannot be in a strictly better plan. Returns (fixed open, fixed closed) masks.

    Valid for the exact-count and free cases; with a budget nothing is fixed.
    """
    m = data.C.shape[1]
    none = np.zeros(m, dtype=bool)
    if state.lam is None or data.budget is not None:
        return none, none.copy()
    rho = data.F + np.minimum(data.C - state.lam[:, None], 0.0).sum(axis=0)
    x = _subproblem(data, rho) >= 0.5
    free = data.allowed & ~data.keep
    lb, ub = state.lr_value, state.best_value
    slack = 1.0 - 1e-6 if data.integral else 1e-9 * max(1.0, abs(ub))
    if data.p is not None:
        chosen, other = free & x, free & ~x
        worst_in = rho[chosen].max() if chosen.any() else 0.0
        best_out = rho[other].min() if other.any() else np.inf
        lb_open = lb + rho - worst_in  # force a closed site open, dropping the worst chosen one
        lb_close = lb - rho + best_out  # force a chosen site closed, taking the best other one
    else:
        lb_open = lb + np.maximum(rho, 0.0)
        lb_close = lb + np.maximum(-rho, 0.0)
    fixed_closed = free & ~x & (lb_open > ub - slack)
    fixed_open = free & x & (lb_close > ub - slack)
    return fixed_open, fixed_closed


def useful_radius(data: AssignData, state: SearchState) -> np.ndarray:
    """Per client, the largest cost ``C_ij`` a strictly better plan may use, ``lambda_i + UB - LB`` less the
    rounding slack: an assignment adds at least ``(C_ij - lambda_i)^+`` to the Lagrangian bound ``LB``, so one
    costing more would lift it above the best value ``UB``. ``inf`` without multipliers."""
    n = data.C.shape[0]
    if state.lam is None or not math.isfinite(state.best_value):
        return np.full(n, np.inf)
    ub = state.best_value
    slack = 1.0 - 1e-6 if data.integral else 1e-9 * max(1.0, abs(ub))
    return np.asarray(state.lam + (ub - slack - state.lr_value))
