"""Capacitated fixed-charge location: Lagrangian bound, Lagrangian heuristic with local search, exact MIP on what is
left.

Formulation. Clients i with demand d_i >= 0, sites j with fixed cost F_j (the site's net cost of being open) and
capacity Q_j, C_ij the cost of serving client i's whole demand from site j. Variables x_j in {0, 1} (open) and
y_ij in [0, 1] (the share of client i served by j; in {0, 1} with ``single_source``)::

    min  sum_j F_j x_j + sum_ij C_ij y_ij
    s.t. sum_j y_ij = 1                      (every client served)
         sum_i d_i y_ij <= Q_j x_j           (capacity, and nothing from a closed site)
         y_ij <= x_j                         (the strong linking inequalities of the MIP)
         sum_j Q_j x_j >= sum_i d_i          (a valid cut: the open capacity holds the demand)
         x_j = 1 for must-keep sites, 0 for forbidden ones; optionally sum_j x_j = p and sum_j k_j x_j <= B.

Bound. Lagrangian relaxation of the assignment constraints with multipliers lambda_i:
``L(lambda) = sum_i lambda_i + min_x sum_j (F_j + g_j(lambda)) x_j`` over the x constraints, where
``g_j(lambda) = min {sum_i (C_ij - lambda_i) y_ij : sum_i d_i y_ij <= Q_j, 0 <= y <= 1}`` is a continuous
knapsack (sorted by (C_ij - lambda_i) / d_i) and the x problem is a covering knapsack ``sum_j Q_j x_j >= D``,
solved exactly: in closed form when the free capacities are equal, by dynamic programming over whole capacity units
otherwise (when the table is small enough), and by its LP relaxation as a last resort. With ``p`` the x problem
keeps the count and drops the knapsack (or takes the knapsack without the count, whichever is higher); a budget is
dropped. Every such relaxation still gives a valid lower bound. The multipliers follow subgradient steps
``lambda += theta (UB - L) s / |s|^2`` with s_i = 1 - sum_j y_ij x_j and theta halved after a stall. Because the
x problem lacks the integrality property the bound can beat the LP relaxation of the strong formulation.

Plan. Lagrangian heuristic: every few iterations the sites of the x problem are opened and the clients assigned
by a transportation problem (exact min-cost flow on whole demand units with OR-Tools when demands and capacities
are whole numbers, the flows then valued at the true costs; HiGHS's LP otherwise). A local search with open,
close and swap moves (ranked by estimates from the current assignment: a continuous knapsack of the savings for
the site that opens, the cost of sending the closing site's clients to their next open site; the best few are
re-assigned exactly) improves the plans. Single source: the split clients of the transportation solution are
moved whole to a site with room (a repair that may fail; the MIP decides).

Exact phase. Reduced-cost fixing with the best multipliers: a site whose forced opening (closing) lifts the
x problem's bound above the best plan is closed (opened); an assignment whose reduced cost lifts it above the best
plan gets an upper bound below 1 (multi-source) or is removed (single source). HiGHS then solves the reduced MIP
with the time left. Any plan strictly better than the incumbent lies in the reduced problem, so
``min(incumbent, MIP bound)`` bounds the original and a gap of 0 proves optimality.

Limits. The subgradient bound converges slowly near the optimum and is about the LP bound of the strong
formulation (0.1-0.5% below the optimum on capa/b/c-like instances), so a proof needs the MIP; the MIP runs only
when reduced-cost fixing leaves at most :data:`MIP_MAX_ASSIGNMENTS` assignment variables (else an iterated local
search uses the time and the Lagrangian bound stands). A budget is enforced in the plans and the MIP but not in the
Lagrangian bound. Single-source plans rely on the repair heuristic and the MIP, which can both fail on large tight
instances (no plan then, status ``time_limit``). With more than :data:`SPARSE_ARCS` (client, open site) pairs the
transportation problem first lets each client use only its :data:`NEAREST_ARCS` cheapest open sites (a valid plan,
possibly not the cheapest assignment of that open set). The dense cost matrix (n x m float64) must fit in memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from ortools.graph.python import min_cost_flow
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

_INF = math.inf
#: Largest dynamic-programming table (capacity units x items) of the covering knapsack; beyond, its LP relaxation.
DP_MAX_CELLS = 30_000_000
#: Above this many (client, open site) pairs the transportation problem first tries each client's NEAREST_ARCS
#: cheapest open sites only.
SPARSE_ARCS = 400_000
NEAREST_ARCS = 12
#: Largest number of assignment variables (clients x sites left after fixing) handed to the exact MIP.
MIP_MAX_ASSIGNMENTS = 40_000


@dataclass(frozen=True)
class CapData:
    """One capacitated instance (arrays read-only); see the module docstring for the symbols."""

    C: np.ndarray  # (n, m) cost of serving client i wholly from site j, finite
    demand: np.ndarray  # (n,)
    capacity: np.ndarray  # (m,)
    F: np.ndarray  # (m,) fixed cost of an open site
    keep: np.ndarray  # (m,) bool
    allowed: np.ndarray  # (m,) bool, keep included
    p: int | None = None
    kappa: np.ndarray | None = None
    budget: float | None = None
    single_source: bool = False

    @property
    def total_demand(self) -> float:
        return float(self.demand.sum())


@dataclass
class CapOutcome:
    """The best plan found and the proven bound."""

    open_mask: np.ndarray | None
    assignment: np.ndarray | None  # (n,) the site serving most of each client's demand
    value: float
    bound: float
    proven: bool
    stats: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------
# continuous knapsacks, column by column


def knapsack_columns(
    R: np.ndarray, d: np.ndarray, Q: np.ndarray, *, want_y: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Minimise ``sum_i R_ij y_ij`` s.t. ``sum_i d_i y_ij <= Q_j``, ``0 <= y <= 1``, for every column j at once.

    Returns (g, mu, y): g (k,) the minima (<= 0); mu (k,) the critical ratio of each column (<= 0, the LP dual of
    its capacity, so that ``R_ij - d_i mu_j`` is the reduced cost of y_ij); y (n, k) the solution when ``want_y``.
    Clients of zero demand take every negative entry at no capacity. Only the negative entries are sorted (by
    column, then by ratio R_ij / d_i), so the work follows their number, not the matrix size.
    """
    n, k = R.shape
    ii, jj = np.nonzero(R < 0)
    r = R[ii, jj]
    di = d[ii]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(di > 0, r / np.where(di > 0, di, 1.0), -_INF)
    order = np.lexsort((ratio, jj))
    ii, jj, r, di, ratio = ii[order], jj[order], r[order], di[order], ratio[order]
    cum = np.cumsum(di)
    starts = np.searchsorted(jj, np.arange(k))  # first entry of each column
    before = np.concatenate([[0.0], cum])[starts]  # demand of the earlier columns
    prev = cum - di - before[jj]  # demand taken in this column before this entry
    take = np.where(di > 0, np.clip((Q[jj] - prev) / np.where(di > 0, di, 1.0), 0.0, 1.0), 1.0)
    g = np.bincount(jj, weights=take * r, minlength=k)
    # critical ratio: the ratio of the first entry not wholly taken (0 when the negatives all fit)
    partial = take < 1.0
    mu = np.zeros(k)
    if partial.any():
        pj = jj[partial]
        first = np.unique(pj, return_index=True)
        mu[first[0]] = ratio[partial][first[1]]
    mu = np.minimum(mu, 0.0)
    y = None
    if want_y:
        y = np.zeros((n, k))
        y[ii, jj] = take
    return g, mu, y


# ----------------------------------------------------------------------------------------------------------------
# the x problem: min sum v_j x_j with sum Q_j x_j >= D, must-keep, forbidden, and optionally exactly p sites


def _cover_dp(v: np.ndarray, q: np.ndarray, need: int) -> tuple[np.ndarray, float]:
    """Exact min-cost cover ``sum q_j x_j >= need`` over items with v_j >= 0 (whole-number q)."""
    k = len(v)
    dp = np.full(need + 1, _INF)
    dp[0] = 0.0
    choose = np.zeros((k, need + 1), dtype=bool)
    for t in range(k):
        qt = int(q[t])
        shifted = np.empty_like(dp)
        if qt >= need + 1:
            shifted[:] = dp[0]
        else:
            shifted[:qt] = dp[0]
            shifted[qt:] = dp[: need + 1 - qt]
        cand = shifted + v[t]
        better = cand < dp
        choose[t] = better
        dp = np.where(better, cand, dp)
    x = np.zeros(k, dtype=bool)
    c = need
    for t in range(k - 1, -1, -1):
        if c > 0 and choose[t, c]:
            x[t] = True
            c = max(0, c - int(q[t]))
        # when not chosen at t, dp at c came from the earlier items
    return x, float(dp[need])


def cover_knapsack(
    v: np.ndarray, Q: np.ndarray, D: float, keep: np.ndarray, allowed: np.ndarray, p: int | None
) -> tuple[np.ndarray, float, bool]:
    """Solve (or relax) the x problem. Returns (x in [0, 1], value, exact)."""
    m = len(v)
    x = keep.astype(np.float64)
    value = float(v[keep].sum())
    free = allowed & ~keep
    idx = np.flatnonzero(free)
    if p is not None:
        need = p - int(keep.sum())
        order = idx[np.argsort(v[idx], kind="stable")][: max(need, 0)]
        x[order] = 1.0
        val_p = value + float(v[order].sum())
        if float(Q[x > 0.5].sum()) >= D - 1e-9:
            return x, val_p, True
        _, val_k, _ = cover_knapsack(v, Q, D, keep, allowed, None)
        return x, max(val_p, val_k), False
    neg = idx[v[idx] < 0]
    x[neg] = 1.0
    value += float(v[neg].sum())
    rest = float(D - Q[x > 0.5].sum())
    if rest <= 1e-9:
        return x, value, True
    pos = idx[v[idx] >= 0]
    if len(pos) == 0 or float(Q[pos].sum()) < rest - 1e-9:
        return x, _INF, True  # no cover
    qp = Q[pos]
    if np.all(qp == qp[0]):
        count = math.ceil(rest / qp[0] - 1e-9)
        pick = pos[np.argsort(v[pos], kind="stable")[:count]]
        x[pick] = 1.0
        return x, value + float(v[pick].sum()), True
    if np.allclose(qp, np.rint(qp)):
        g = int(np.gcd.reduce(np.rint(qp).astype(np.int64)))
        units = np.rint(qp).astype(np.int64) // g
        need_units = math.ceil(rest / g - 1e-9)
        if need_units * len(pos) <= DP_MAX_CELLS:
            pick_mask, val = _cover_dp(v[pos], units, need_units)
            x[pos[pick_mask]] = 1.0
            return x, value + val, True
    # LP relaxation (Dantzig): cheapest cost per unit of capacity first, the last one fractional
    order = pos[np.argsort(v[pos] / np.maximum(Q[pos], 1e-300), kind="stable")]
    for j in order:
        if rest <= 1e-12:
            break
        share = min(1.0, rest / Q[j])
        x[j] = share
        value += share * float(v[j])
        rest -= share * Q[j]
    del m
    return x, value, False


# ----------------------------------------------------------------------------------------------------------------
# transportation: assign clients to an open set


class Transport:
    """Exact assignment of clients to a given open set (cached), multi- or single-source."""

    def __init__(self, data: CapData) -> None:
        self.data = data
        d = data.demand
        self.active = np.flatnonzero(d > 0)
        self.integral = bool(
            np.allclose(d, np.rint(d)) and np.allclose(data.capacity, np.rint(data.capacity)) and d.max() < 2**40
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = data.C[self.active] / d[self.active][:, None]
        top = float(unit.max()) if unit.size else 1.0
        self.scale = 10.0 ** max(0, min(6, math.floor(math.log10(1e12 / max(top * max(d.sum(), 1.0), 1.0)))))
        self.unit = unit
        self.cache: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}
        self.calls = 0

    def _flows(self, cols: np.ndarray) -> np.ndarray | None:
        """(len(active), k) flow in demand units, or None when the capacity is short."""
        data = self.data
        d = data.demand[self.active]
        Q = data.capacity[cols]
        n, k = len(d), len(cols)
        if float(Q.sum()) < float(d.sum()) - 1e-9:
            return None
        if n == 0:
            return np.zeros((0, k))
        if self.integral:
            f = min_cost_flow.SimpleMinCostFlow()
            unit_all = self.unit[:, cols]
            di = np.rint(d).astype(np.int64)
            if n * k > SPARSE_ARCS and k > NEAREST_ARCS:
                # large: each client may use its NEAREST_ARCS cheapest open sites only (a heuristic assignment;
                # the full problem is solved when this one is infeasible)
                near = np.argpartition(unit_all, NEAREST_ARCS, axis=1)[:, :NEAREST_ARCS]
                tails = np.repeat(np.arange(n), NEAREST_ARCS)
                heads_k = near.ravel()
            else:
                tails = np.repeat(np.arange(n), k)
                heads_k = np.tile(np.arange(k), n)
            unit = np.rint(unit_all[tails, heads_k] * self.scale).astype(np.int64)
            heads = n + heads_k
            arcs = f.add_arcs_with_capacity_and_unit_cost(tails, heads, di[tails], unit)
            sink = n + k
            qi = np.floor(Q + 1e-9).astype(np.int64)
            f.add_arcs_with_capacity_and_unit_cost(n + np.arange(k), np.full(k, sink), qi, np.zeros(k, dtype=np.int64))
            f.set_nodes_supplies(np.arange(n + k + 1), np.concatenate([di, np.zeros(k, dtype=np.int64), [-di.sum()]]))
            if f.solve() != f.OPTIMAL:
                if len(tails) < n * k:
                    return self._flows_full(cols)
                return None
            out = np.zeros((n, k))
            out[tails, heads_k] = np.asarray(f.flows(arcs), dtype=np.float64)
            return out
        return self._flows_lp(cols)

    def _flows_full(self, cols: np.ndarray) -> np.ndarray | None:
        """Min-cost flow over every (client, open site) pair."""
        data = self.data
        d = data.demand[self.active]
        Q = data.capacity[cols]
        n, k = len(d), len(cols)
        f = min_cost_flow.SimpleMinCostFlow()
        unit = np.rint(self.unit[:, cols] * self.scale).astype(np.int64)
        tails = np.repeat(np.arange(n), k)
        heads = n + np.tile(np.arange(k), n)
        di = np.rint(d).astype(np.int64)
        arcs = f.add_arcs_with_capacity_and_unit_cost(tails, heads, np.repeat(di, k), unit.ravel())
        qi = np.floor(Q + 1e-9).astype(np.int64)
        f.add_arcs_with_capacity_and_unit_cost(n + np.arange(k), np.full(k, n + k), qi, np.zeros(k, dtype=np.int64))
        f.set_nodes_supplies(np.arange(n + k + 1), np.concatenate([di, np.zeros(k, dtype=np.int64), [-di.sum()]]))
        if f.solve() != f.OPTIMAL:
            return None
        return np.asarray(f.flows(arcs), dtype=np.float64).reshape(n, k)

    def _flows_lp(self, cols: np.ndarray) -> np.ndarray | None:
        """HiGHS's LP when demands or capacities are not whole numbers."""
        data = self.data
        d = data.demand[self.active]
        Q = data.capacity[cols]
        n, k = len(d), len(cols)
        C = data.C[self.active][:, cols]
        rows = np.repeat(np.arange(n), k)
        a_eq = sp.csr_matrix((np.ones(n * k), (rows, np.arange(n * k))), shape=(n, n * k))
        a_ub = sp.csr_matrix((np.repeat(d, k), (np.tile(np.arange(k), n), np.arange(n * k))), shape=(k, n * k))
        res = linprog(C.ravel(), A_ub=a_ub, b_ub=Q, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, 1), method="highs")
        if res.status != 0:
            return None
        flows: np.ndarray = np.asarray(res.x).reshape(n, k) * d[:, None]
        return flows

    def evaluate(self, mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(value, share (n, k) of each client's demand per open site, open columns); value inf if infeasible."""
        key = np.packbits(mask).tobytes()
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.calls += 1
        data = self.data
        cols = np.flatnonzero(mask)
        n = len(data.demand)
        share: np.ndarray | None = np.zeros((n, len(cols)))
        value = _INF
        flows = self._flows(cols) if len(cols) else None
        if flows is not None:
            d = data.demand[self.active]
            assert share is not None
            share[self.active] = flows / d[:, None]
            idle = np.setdiff1d(np.arange(n), self.active)
            if len(idle):
                share[idle, np.argmin(data.C[np.ix_(idle, cols)], axis=1)] = 1.0
            if data.single_source:
                share = self._single(share, cols)
            if share is not None:
                value = float(data.F[cols].sum() + (data.C[:, cols] * share).sum())
        out = (value, share if share is not None else np.zeros((n, len(cols))), cols)
        self.cache[key] = out
        return out

    def _single(self, share: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        """Repair split clients: each goes wholly to a site with room, cheapest first; None when one cannot."""
        data = self.data
        d = data.demand
        whole = share.max(axis=1) >= 1.0 - 1e-9
        out = np.where(whole[:, None], np.rint(share), 0.0)
        room = data.capacity[cols] - d @ out
        for i in np.flatnonzero(~whole)[np.argsort(-d[~whole], kind="stable")]:
            order = np.argsort(data.C[i, cols], kind="stable")
            fits = order[room[order] >= d[i] - 1e-9]
            if not len(fits):
                return None
            j = int(fits[0])
            out[i, j] = 1.0
            room[j] -= d[i]
        return out


# ----------------------------------------------------------------------------------------------------------------
# plans: feasibility, local search


def feasible_mask(data: CapData, mask: np.ndarray) -> bool:
    if (data.keep & ~mask).any() or (mask & ~data.allowed).any() or not mask.any():
        return False
    if float(data.capacity[mask].sum()) < data.total_demand - 1e-9:
        return False
    if data.p is not None and int(mask.sum()) != data.p:
        return False
    return not (data.budget is not None and data.kappa is not None and data.kappa[mask].sum() > data.budget + 1e-9)


@dataclass
class CapState:
    best_mask: np.ndarray | None = None
    best_value: float = _INF
    bound: float = -_INF
    lam: np.ndarray | None = None
    lr_value: float = -_INF
    lr_iterations: int = 0
    best_share: np.ndarray | None = None  # (n, m) shares when the best plan comes from the MIP

    def offer(self, mask: np.ndarray, value: float) -> bool:
        if math.isfinite(value) and (
            not math.isfinite(self.best_value) or value < self.best_value - 1e-9 * max(1.0, abs(self.best_value))
        ):
            self.best_mask, self.best_value, self.best_share = mask.copy(), value, None
            return True
        return False


def _client_costs(data: CapData, share: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.asarray((data.C[:, cols] * share).sum(axis=1))


def local_search(
    data: CapData, tr: Transport, mask: np.ndarray, deadline: float, *, tries: int = 60
) -> tuple[np.ndarray, float]:
    """Open, close and swap moves ranked by estimates, the best ``tries`` evaluated exactly; first improvement."""
    mask = mask.copy()
    value, share, cols = tr.evaluate(mask)
    if not math.isfinite(value):
        return mask, value
    C, F, d, Q = data.C, data.F, data.demand, data.capacity
    D = data.total_demand
    while time.perf_counter() < deadline:
        a = _client_costs(data, share, cols)  # what each client costs now
        closed = np.flatnonzero(data.allowed & ~mask)
        removable = [int(j) for j in cols if not data.keep[j]]
        moves: list[tuple[float, int, int]] = []  # (estimate, close r or -1, open u or -1)
        if len(closed):
            g_add, _, _ = knapsack_columns(C[:, closed] - a[:, None], d, Q[closed])
            if data.p is None:
                moves += [(float(e), -1, int(c)) for c, e in zip(closed, F[closed] + g_add, strict=True)]
        cap_open = float(Q[mask].sum())
        if removable:
            sub = C[:, cols]
            for r in removable:
                k = int(np.flatnonzero(cols == r)[0])
                others = np.delete(np.arange(len(cols)), k)
                flows_r = share[:, k]
                moved = flows_r > 0
                if len(others):
                    alt = sub[:, others].min(axis=1)
                    inc = float((flows_r[moved] * (alt[moved] - sub[moved, k])).sum())
                else:
                    alt, inc = np.full(len(a), _INF), _INF
                if data.p is None and cap_open - Q[r] >= D - 1e-9 and math.isfinite(inc):
                    moves.append((inc - float(F[r]), r, -1))
                if len(closed) and len(others):
                    a_r = np.where(moved, a + flows_r * (alt - sub[:, k]), a)
                    g_sw, _, _ = knapsack_columns(C[:, closed] - a_r[:, None], d, Q[closed])
                    est = F[closed] - F[r] + inc + g_sw
                    ok = cap_open - Q[r] + Q[closed] >= D - 1e-9
                    moves += [(float(e), r, int(c)) for c, e in zip(closed[ok], est[ok], strict=True)]
        moves.sort()
        improved = False
        for est, r, u in moves[:tries]:
            if time.perf_counter() >= deadline:
                break
            trial = mask.copy()
            if r >= 0:
                trial[r] = False
            if u >= 0:
                trial[u] = True
            if not feasible_mask(data, trial):
                continue
            tv, tshare, tcols = tr.evaluate(trial)
            if tv < value - 1e-9 * max(1.0, abs(value)):
                mask, value, share, cols, improved = trial, tv, tshare, tcols, True
                break
            del est
        if not improved:
            break
    return mask, value


def initial_plan(data: CapData) -> np.ndarray | None:
    """Open sites by cost per unit of capacity won, net of what they save, until the capacity holds the demand."""
    mask = data.keep.copy()
    D = data.total_demand
    n = len(data.demand)
    best = data.C[:, mask].min(axis=1) if mask.any() else np.full(n, float(data.C.max()) * 2 + 1)
    while True:
        enough = float(data.capacity[mask].sum()) >= D - 1e-9
        if enough and (data.p is None or int(mask.sum()) >= data.p):
            break
        cand = np.flatnonzero(data.allowed & ~mask)
        if data.budget is not None and data.kappa is not None:
            spent = float(data.kappa[mask].sum())
            cand = cand[data.kappa[cand] + spent <= data.budget + 1e-9]
        if data.p is not None and int(mask.sum()) >= data.p:
            return None
        if not len(cand):
            return None
        g, _, _ = knapsack_columns(data.C[:, cand] - best[:, None], data.demand, data.capacity[cand])
        score = (data.F[cand] + g) / np.maximum(data.capacity[cand], 1e-9)
        j = int(cand[int(np.argmin(score))])
        mask[j] = True
        best = np.minimum(best, data.C[:, j])
    return mask if feasible_mask(data, mask) else None


# ----------------------------------------------------------------------------------------------------------------
# Lagrangian relaxation


def _x_problem(data: CapData, v: np.ndarray, keep: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, float]:
    x, value, _ = cover_knapsack(v, data.capacity, data.total_demand, keep, allowed, data.p)
    return x, value


def lagrangian(
    data: CapData,
    state: CapState,
    tr: Transport,
    deadline: float,
    *,
    patience: int = 25,
    heuristic_every: int = 15,
    search_deadline: float | None = None,
) -> None:
    """Raise ``state.bound`` by subgradient steps; offer the x problem's sites as plans (Lagrangian heuristic)."""
    C, F, d, Q = data.C, data.F, data.demand, data.capacity
    if state.best_mask is not None:
        _, share, cols = tr.evaluate(state.best_mask)
        lam = _client_costs(data, share, cols) * 1.0
    else:
        lam = np.sort(C, axis=1)[:, min(1, C.shape[1] - 1)].copy()
    theta, stall, best_lb = 1.0, 0, -_INF
    tried: set[bytes] = set()
    it = 0
    while time.perf_counter() < deadline:
        it += 1
        g, _, y = knapsack_columns(C - lam[:, None], d, Q, want_y=True)
        assert y is not None
        v = F + g
        x, xval = _x_problem(data, v, data.keep, data.allowed)
        if not math.isfinite(xval):
            break
        lb = float(lam.sum() + xval)
        if best_lb == -_INF or lb > best_lb + 1e-9 * max(1.0, abs(best_lb)):
            best_lb, stall = lb, 0
            state.lam, state.lr_value = lam.copy(), lb
            state.bound = max(state.bound, lb)
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2, 0
        state.lr_iterations += 1
        ub = state.best_value
        if ub - state.bound <= 1e-9 * max(1.0, abs(ub)) or theta < 1e-4:
            break
        if it % heuristic_every == 1:
            mask = x > 0.5
            key = np.packbits(mask).tobytes()
            if key not in tried and feasible_mask(data, mask):
                tried.add(key)
                value = tr.evaluate(mask)[0]
                if math.isfinite(value) and value < state.best_value * 1.02:
                    mask, value = local_search(data, tr, mask, search_deadline or deadline, tries=20)
                state.offer(mask, value)
        s = 1.0 - (y * x[None, :]).sum(axis=1)
        norm = float(s @ s)
        if norm <= 1e-12:
            break
        target = state.best_value if math.isfinite(state.best_value) else abs(lb) * 1.05 + 1.0
        lam = lam + theta * max(target - lb, 1e-9 * max(1.0, abs(lb))) / norm * s


def fix_sites(data: CapData, state: CapState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduced-cost fixing at the best multipliers.

    Returns (fixed open, fixed closed, lb_open (m,), mu (m,), R (n, m)): ``lb_open[j]`` is the Lagrangian bound with
    site j forced open, so that ``lb_open[j] + max(R_ij - d_i mu_j, 0)`` bounds every plan that serves client i
    wholly from j.
    """
    m = data.C.shape[1]
    none = np.zeros(m, dtype=bool)
    if state.lam is None:
        return none, none.copy(), np.full(m, -_INF), np.zeros(m), np.zeros_like(data.C)
    lam = state.lam
    R = data.C - lam[:, None]
    g, mu, _ = knapsack_columns(R, data.demand, data.capacity)
    v = data.F + g
    base = float(lam.sum())
    free = data.allowed & ~data.keep
    lb_open = np.full(m, -_INF)
    lb_close = np.full(m, -_INF)
    x, _, _ = cover_knapsack(v, data.capacity, data.total_demand, data.keep, data.allowed, data.p)
    xval_all = _x_problem(data, v, data.keep, data.allowed)[1]
    for j in np.flatnonzero(free):
        if x[j] > 0.5:
            keep = data.keep.copy()
            keep[j] = True
            lb_open[j] = base + xval_all
            allowed = data.allowed.copy()
            allowed[j] = False
            lb_close[j] = base + _x_problem(data, v, data.keep, allowed)[1]
        else:
            keep = data.keep.copy()
            keep[j] = True
            lb_open[j] = base + _x_problem(data, v, keep, data.allowed)[1]
            lb_close[j] = base + xval_all
    lb_open[data.keep] = base + xval_all
    ub = state.best_value
    slack = 1e-9 * max(1.0, abs(ub))
    fixed_closed = free & (lb_open > ub - slack)
    fixed_open = free & (lb_close > ub - slack)
    return fixed_open, fixed_closed, lb_open, mu, R


# ----------------------------------------------------------------------------------------------------------------
# exact MIP on the reduced problem


def reduced_mip(
    data: CapData, state: CapState, deadline: float, gap: float
) -> tuple[np.ndarray | None, np.ndarray | None, float, float, bool, dict[str, float]]:
    """Fix by reduced costs and solve the rest with HiGHS by ``deadline`` (a ``time.perf_counter()`` value; the
    fixing and the model's construction count against it). Returns (mask, share (n, m), value, bound, proven, stats).

    ``bound`` is valid for every plan strictly better than ``state.best_value`` (so min(best, bound) bounds all).
    """
    fixed_open, fixed_closed, lb_open, mu, R = fix_sites(data, state)
    n, m = data.C.shape
    cols = np.flatnonzero(data.allowed & ~fixed_closed)
    stats = {"sites_fixed_open": float(fixed_open.sum()), "sites_fixed_closed": float(fixed_closed.sum())}
    ub = state.best_value
    if len(cols) == 0:
        return None, None, _INF, _INF, True, stats
    d = data.demand
    rc = R[:, cols] - d[:, None] * mu[None, cols]
    head = ub - lb_open[cols]  # room for an assignment's reduced cost
    with np.errstate(divide="ignore", invalid="ignore"):
        y_ub = np.where(rc > 1e-12, np.clip(head[None, :] / rc, 0.0, 1.0), 1.0)
    if not math.isfinite(ub):
        y_ub[:] = 1.0
    use = y_ub >= 1.0 - 1e-9 if data.single_source else y_ub > 1e-9
    # every client keeps at least its cheapest pair among the columns, so the model stays well posed
    use[np.arange(n), np.argmin(data.C[:, cols], axis=1)] = True
    yi, yk = np.nonzero(use)
    ny, k = len(yi), len(cols)
    stats["mip_assignments"] = float(ny)
    stats["mip_sites"] = float(k)
    c = np.concatenate([data.C[yi, cols[yk]], data.F[cols]])
    rows: list[sp.csr_matrix] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    rows.append(sp.csr_matrix((np.ones(ny), (yi, np.arange(ny))), shape=(n, ny + k)))
    lo.append(np.ones(n))
    hi.append(np.ones(n))
    link = sp.csr_matrix(
        (np.concatenate([np.ones(ny), -np.ones(ny)]),
         (np.concatenate([np.arange(ny), np.arange(ny)]), np.concatenate([np.arange(ny), ny + yk]))),
        shape=(ny, ny + k),
    )  # fmt: skip
    rows.append(link)
    lo.append(np.full(ny, -_INF))
    hi.append(np.zeros(ny))
    capm = sp.csr_matrix(
        (np.concatenate([d[yi], -data.capacity[cols]]),
         (np.concatenate([yk, np.arange(k)]), np.concatenate([np.arange(ny), ny + np.arange(k)]))),
        shape=(k, ny + k),
    )  # fmt: skip
    rows.append(capm)
    lo.append(np.full(k, -_INF))
    hi.append(np.zeros(k))
    one = np.zeros(k, dtype=np.int64)
    rows.append(sp.csr_matrix((data.capacity[cols], (one, ny + np.arange(k))), shape=(1, ny + k)))
    lo.append(np.array([data.total_demand]))
    hi.append(np.array([_INF]))
    if data.p is not None:
        rows.append(sp.csr_matrix((np.ones(k), (one, ny + np.arange(k))), shape=(1, ny + k)))
        lo.append(np.array([float(data.p)]))
        hi.append(np.array([float(data.p)]))
    if data.budget is not None and data.kappa is not None:
        rows.append(sp.csr_matrix((data.kappa[cols], (one, ny + np.arange(k))), shape=(1, ny + k)))
        lo.append(np.array([-_INF]))
        hi.append(np.array([data.budget]))
    A = sp.vstack(rows, format="csr")
    lower = np.zeros(ny + k)
    lower[ny:] = (data.keep | fixed_open)[cols].astype(float)
    upper = np.ones(ny + k)
    upper[:ny] = 1.0 if data.single_source else y_ub[yi, yk]
    integrality = np.concatenate([np.full(ny, 1 if data.single_source else 0), np.ones(k)])
    res = milp(
        c,
        constraints=[LinearConstraint(A, np.concatenate(lo), np.concatenate(hi))],
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"time_limit": _highs_limit(deadline), "disp": False, "mip_rel_gap": gap},
    )
    raw = getattr(res, "mip_dual_bound", None)
    bound = float(raw) if raw is not None and np.isfinite(raw) else -_INF
    stats["mip_nodes"] = float(getattr(res, "mip_node_count", 0) or 0)
    stats["mip_time_limit"] = float(res.status == 1)  # stopped by its (held back) time limit
    if res.status == 2:  # infeasible: no plan beats the incumbent
        return None, None, _INF, _INF, True, stats
    if res.x is None:
        return None, None, _INF, bound, False, stats
    xs = np.zeros(m, dtype=bool)
    xs[cols] = res.x[ny:] > 0.5
    share = np.zeros((n, m))
    share[yi, cols[yk]] = res.x[:ny]
    value = float(res.fun)
    proven = res.status == 0
    if proven:
        bound = max(bound, value * (1 - gap)) if not np.isfinite(bound) else bound
    return xs, share, value, min(bound, value), proven, stats


# ----------------------------------------------------------------------------------------------------------------
# the driver


def perturb(data: CapData, mask: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` random moves that keep the plan feasible: swap an open site for a closed one among its 10 nearest
    (by the clients they would serve), or, with a free count, open or close one."""
    out = mask.copy()
    for _ in range(k):
        opened = np.flatnonzero(out & ~data.keep)
        closed = np.flatnonzero(data.allowed & ~out)
        kind = rng.integers(3) if data.p is None else 0
        trial = out.copy()
        if kind == 0 and len(opened) and len(closed):
            r = int(rng.choice(opened))
            near = closed[np.argsort(np.abs(data.C[:, closed] - data.C[:, [r]]).sum(axis=0), kind="stable")[:10]]
            trial[r], trial[int(rng.choice(near))] = False, True
        elif kind == 1 and len(closed):
            trial[int(rng.choice(closed))] = True
        elif kind == 2 and len(opened) > 1:
            trial[int(rng.choice(opened))] = False
        if feasible_mask(data, trial):
            out = trial
    return out


def iterated_search(
    data: CapData, state: CapState, tr: Transport, deadline: float, rng: np.random.Generator, *, patience: int = 200
) -> int:
    """Iterated local search from the best plan: perturb by 1-3 random moves, local search, keep improvements;
    stop at the deadline or after ``patience`` rounds without one."""
    rounds = idle = 0
    while state.best_mask is not None and time.perf_counter() < deadline and idle < patience:
        if state.best_value - state.bound <= 1e-9 * max(1.0, abs(state.best_value)):
            break
        rounds += 1
        trial = perturb(data, state.best_mask, rng, int(rng.integers(1, 4)))
        mask, value = local_search(data, tr, trial, deadline, tries=30)
        idle = 0 if state.offer(mask, value) else idle + 1
    return rounds


def _highs_limit(deadline: float) -> float:
    """The time limit to give HiGHS so that it returns by ``deadline``: it reads its clock only between LP solves
    and heuristic calls, and a root LP of the 100 x 1,000 stand-ins takes seconds (capa-like-12000: HiGHS returned
    1.1 s past an 11.2 s limit). 15% and 0.3 s are held back."""
    return max(0.05, 0.85 * (deadline - time.perf_counter()) - 0.3)


def solve_capacitated(
    data: CapData,
    *,
    time_limit_s: float,
    gap: float,
    seed: int = 0,
    start: float | None = None,
    mip_max_assignments: int | None = MIP_MAX_ASSIGNMENTS,
) -> CapOutcome:
    """Plan and bound a capacitated instance within ``time_limit_s`` (see the module docstring).

    The heuristic phases take fixed shares of ``min(time_limit_s, 30)`` seconds (Lagrangian to 40%, local search to
    50%, iterated local search to 60%); the exact MIP gets the rest when the reduced problem has at most
    ``mip_max_assignments`` assignment variables (``None``: any size), else the iterated search does.
    """
    t0 = time.perf_counter() if start is None else start
    T = min(time_limit_s, 30.0)
    deadline = t0 + time_limit_s
    rng = np.random.default_rng(seed)
    tr = Transport(data)
    state = CapState()
    first = initial_plan(data)
    if first is not None:
        state.offer(*local_search(data, tr, first, t0 + 0.1 * T))
    lagrangian(data, state, tr, t0 + 0.4 * T)
    if state.best_mask is not None:
        state.offer(*local_search(data, tr, state.best_mask, t0 + 0.5 * T, tries=120))

    def closed() -> bool:
        best = state.best_value
        return math.isfinite(best) and best - state.bound <= gap * max(1.0, abs(best))

    proven = closed()
    stats: dict[str, float] = {}
    # the last phase stops early enough for what follows it (a transport solve of the MIP's plan, one of a local
    # search move in flight, the final assignment) to end within the limit
    wrap_s = min(1.5, 0.3 + 0.01 * time_limit_s)
    if not proven and time.perf_counter() < deadline - 0.05:
        _, fixed_closed, *_ = fix_sites(data, state)
        size = len(data.demand) * int((data.allowed & ~fixed_closed).sum())
        if mip_max_assignments is not None and size > mip_max_assignments:
            # too large to prove in the time: search for plans, keep the Lagrangian bound
            stats["ils_rounds"] = float(iterated_search(data, state, tr, deadline - wrap_s, rng))
            stats["sites_fixed_closed"] = float(fixed_closed.sum())
        else:
            stats["ils_rounds"] = float(iterated_search(data, state, tr, t0 + 0.6 * T, rng))
            proven = closed()
            if not proven:
                mask, share, value, bound, exact, mstats = reduced_mip(data, state, deadline - wrap_s, gap)
                stats |= mstats
                if mask is not None and share is not None and value < state.best_value - 1e-9 * abs(value):
                    tv = tr.evaluate(mask)[0]
                    if math.isfinite(tv) and tv <= value + 1e-6 * max(1.0, abs(value)):
                        state.offer(mask, tv)
                    else:  # keep the MIP's own assignment (single source, or a repair that fails)
                        state.best_mask, state.best_value, state.best_share = mask, value, share
                state.bound = max(state.bound, min(state.best_value, bound))
                proven = exact or closed()
    if state.best_mask is None:
        return CapOutcome(None, None, _INF, state.bound, proven, stats)
    if state.best_share is not None:
        share_full = state.best_share
        assignment = np.argmax(share_full, axis=1)
    else:
        _, share_best, cols = tr.evaluate(state.best_mask)
        assignment = cols[np.argmax(share_best, axis=1)]
    stats |= {"lagrangian_iterations": float(state.lr_iterations), "transport_solves": float(tr.calls)}
    return CapOutcome(state.best_mask, assignment, state.best_value, min(state.bound, state.best_value), proven, stats)
