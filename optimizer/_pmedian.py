"""An exact MIP for the assignment family (p-median, attendance, uncapacitated fixed charge) on the reduced problem:
the radius formulation, truncated by Lagrangian reduced costs.

Formulation (Elloumi 2010; García, Labbé and Marín 2011). For client i, let ``D_i^1 < D_i^2 < ... < D_i^K`` be
the distinct costs C_ij over the sites j that may serve it, and ``z_i^k = 1`` when no open site costs at most
``D_i^k``. Then client i costs ``D_i^1 + sum_k (D_i^{k+1} - D_i^k) z_i^k`` and the model is::

    min  sum_i D_i^1 + sum_ik (D_i^{k+1} - D_i^k) z_i^k + sum_j F_j x_j
    s.t. z_i^1 + sum_{j: C_ij = D_i^1} x_j >= 1
         z_i^k - z_i^{k-1} + sum_{j: C_ij = D_i^k} x_j >= 0        (k >= 2; a chain, one entry per pair)
         sum_j x_j = p (when given), sum_j k_j x_j <= B (when given), x_j fixed where forced,
         x in {0, 1}, z >= 0.

Summing the chain gives ``z_i^k >= 1 - sum_{j: C_ij <= D_i^k} x_j``, so its LP relaxation is at least as strong
as the classic one, with one nonzero per (client, site) pair instead of a ``y_ij <= x_j`` row per pair.

Truncation. With Lagrangian multipliers lambda, their bound LB and the best plan's value UB, a client i can only be
served from a site with ``C_ij <= lambda_i + UB - LB`` in a strictly better plan (the reduced-cost test of
:func:`optimizer._assign.useful_radius`). Levels above that radius are dropped: the last level's step goes to the
smallest cost beyond the radius, ``T_i``, so the model charges ``min(true cost, T_i)``, never more than the truth.
Every strictly better plan is charged exactly, so ``min(UB, MIP bound)`` is a valid bound; when the MIP's plan is
charged exactly its value is its true value. Clients the MIP's plan serves beyond their radius get their levels
back and the MIP runs again (at most a few rounds, while time remains).

Limits. The model grows with the pairs that survive the test: a weak Lagrangian bound (a large UB - LB) gives a
large model, which HiGHS may not solve in the time; the caller then keeps the Lagrangian bound.
"""

from __future__ import annotations

import heapq
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer import _lagrange_kernel


@dataclass(frozen=True)
class RadiusOutcome:
    open_mask: np.ndarray | None
    value: float  # the true value of the MIP's plan (inf without one)
    bound: float  # valid for every plan strictly better than the incumbent given
    proven: bool  # the MIP was solved to optimality with an exactly charged plan
    nodes: int
    rounds: int
    nonzeros: int


def _levels(costs: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
    """Distinct costs up to ``radius`` and the first cost beyond it (inf when none)."""
    inside = costs[costs <= radius]
    beyond = costs[costs > radius]
    return np.unique(inside), float(beyond.min()) if beyond.size else math.inf


def radius_model_size(C: np.ndarray, columns: np.ndarray, radius: np.ndarray) -> int:
    """Nonzeros the truncated model would have (pairs within each client's radius)."""
    return int((C[:, columns] <= radius[:, None]).sum())


def radius_mip(
    C: np.ndarray,
    F: np.ndarray,
    *,
    columns: np.ndarray,
    force_open: np.ndarray,
    radius: np.ndarray,
    p: int | None,
    kappa: np.ndarray | None,
    budget: float | None,
    incumbent: float,
    deadline: float,
    gap: float,
    max_rounds: int = 4,
) -> RadiusOutcome:
    """Solve the truncated radius formulation over the sites in ``columns`` (see the module docstring).

    ``radius`` (n,) is each client's largest useful cost (``inf`` keeps every level); ``incumbent`` is the best
    known value, used as an objective cut-off (HiGHS prunes what cannot beat it).
    """
    n, m = C.shape
    cols = np.flatnonzero(columns)
    k = len(cols)
    radius = np.asarray(radius, dtype=np.float64).copy()
    best_mask: np.ndarray | None = None
    best_value = math.inf
    nodes = rounds = nnz = 0
    bound = -math.inf
    while rounds < max_rounds and time.perf_counter() < deadline - 0.05:
        rounds += 1
        sub = C[:, cols]
        # per client: the levels, the z variables and the chain rows
        z_cost: list[float] = []
        r_idx: list[np.ndarray] = []
        c_idx: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        rlb: list[float] = []
        const = 0.0
        row = 0
        nz = k  # z variables start after the k site variables
        for i in range(n):
            levels, beyond = _levels(sub[i], radius[i])
            if levels.size == 0:  # nothing within the radius: charge the first cost beyond it
                const += beyond if math.isfinite(beyond) else 0.0
                continue
            const += float(levels[0])
            steps = np.diff(np.append(levels, beyond))  # step after each level; inf-free below
            K = len(levels) if math.isfinite(beyond) else len(levels) - 1
            if K == 0:
                continue
            lev_of = np.searchsorted(levels, sub[i])  # level index of each site (== len for beyond)
            inside = np.flatnonzero(sub[i] <= radius[i])
            inside = inside[lev_of[inside] < K]  # sites at the last level of an untruncated client add nothing
            z = nz + np.arange(K)
            z_cost += steps[:K].tolist()
            # site entries: x_j in the row of its level
            r_idx.append(row + lev_of[inside])
            c_idx.append(inside)
            vals.append(np.ones(len(inside)))
            # z entries: +z_k in row k, -z_{k-1} in row k (k >= 1)
            r_idx.append(row + np.arange(K))
            c_idx.append(z)
            vals.append(np.ones(K))
            if K > 1:
                r_idx.append(row + np.arange(1, K))
                c_idx.append(z[:-1])
                vals.append(-np.ones(K - 1))
            rlb += [1.0] + [0.0] * (K - 1)
            row += K
            nz += K
        n_vars = nz
        obj = np.concatenate([F[cols], np.asarray(z_cost)])
        A = sp.csr_matrix(
            (np.concatenate(vals) if vals else np.zeros(0),
             (np.concatenate(r_idx) if r_idx else np.zeros(0, np.int64),
              np.concatenate(c_idx) if c_idx else np.zeros(0, np.int64))),
            shape=(row, n_vars),
        )  # fmt: skip
        nnz = int(A.nnz)
        constraints = [LinearConstraint(A, np.asarray(rlb), np.full(row, np.inf))] if row else []
        x_row = sp.csr_matrix((np.ones(k), (np.zeros(k, np.int64), np.arange(k))), shape=(1, n_vars))
        constraints.append(LinearConstraint(x_row, p if p is not None else 1, p if p is not None else np.inf))
        if budget is not None and kappa is not None:
            b_row = sp.csr_matrix((kappa[cols], (np.zeros(k, np.int64), np.arange(k))), shape=(1, n_vars))
            constraints.append(LinearConstraint(b_row, -np.inf, budget))
        lower = np.zeros(n_vars)
        lower[:k] = force_open[cols].astype(float)
        upper = np.concatenate([np.ones(k), np.full(n_vars - k, np.inf)])
        integrality = np.concatenate([np.ones(k), np.zeros(n_vars - k)])
        res = milp(
            obj,
            constraints=constraints,
            integrality=integrality,
            bounds=Bounds(lower, upper),
            options={"time_limit": max(0.05, deadline - time.perf_counter()), "disp": False, "mip_rel_gap": gap},
        )
        nodes += int(getattr(res, "mip_node_count", 0) or 0)
        raw = getattr(res, "mip_dual_bound", None)
        round_bound = float(raw) + const if raw is not None and np.isfinite(raw) else -math.inf
        if res.status == 2:  # no plan beats the incumbent, even charged at most its truth
            return RadiusOutcome(best_mask, best_value, math.inf, True, nodes, rounds, nnz)
        if res.x is None:
            return RadiusOutcome(best_mask, best_value, max(bound, round_bound), False, nodes, rounds, nnz)
        mask = np.zeros(m, dtype=bool)
        mask[cols] = res.x[:k] > 0.5
        charged = float(res.fun) + const
        nearest = C[:, mask].min(axis=1)
        value = float(nearest.sum() + F[mask].sum())
        if value < best_value:
            best_mask, best_value = mask, value
        if res.status == 0 and not np.isfinite(round_bound):
            round_bound = charged
        bound = max(bound, min(round_bound, charged))
        over = nearest > radius + 1e-9
        if res.status != 0 or not over.any() or value <= charged + 1e-9 * max(1.0, abs(value)):
            return RadiusOutcome(best_mask, best_value, bound, res.status == 0, nodes, rounds, nnz)
        # the plan uses truncated levels: give those clients the levels up to their true cost and solve again
        radius[over] = nearest[over]
    return RadiusOutcome(best_mask, best_value, bound, False, nodes, rounds, nnz)


# ----------------------------------------------------------------------------------------------------------------
# Lagrangian branch and bound over the sites


#: memory for the open nodes of the best-first tree (each keeps its parent's multipliers as a warm start)
OPEN_NODES_BYTES = 400 * 2**20
#: nodes per worker in a round of the parallel tree: the threads share a round's nodes as they finish, so a round
#: of 8 per worker keeps both busy where a round of 1 each waits for the slower node (pmed39-like before
#: pseudocosts, 2 workers: 15-16 s against 20 s; 1 worker: 23 s)
ROUND_PER_WORKER = 8
#: deflection of the nodes' subgradient steps (pmed32/36-like: a third of the nodes and of the time with 1.5
#: against none; the root Lagrangian of :mod:`optimizer._assign`, started cold, does better without)
DEFLECTION = 1.5


@dataclass
class _Node:
    keep: np.ndarray  # (k,) forced open, over the active columns
    allowed: np.ndarray  # (k,) not forced closed
    lam: np.ndarray  # warm start
    bound: float  # the parent's bound on this node (valid)
    depth: int = 0
    root: bool = False
    site: int = -1  # the site its parent branched on (-1 for the root)
    opened: bool = False  # ... forced open (else closed)
    parent_lb: float = -math.inf  # the parent's Lagrangian bound, before rounding


@dataclass(frozen=True)
class TreeOutcome:
    open_mask: np.ndarray | None  # a plan better than the incumbent given, if found
    value: float
    bound: float  # valid for every plan strictly better than the incumbent given
    proven: bool
    nodes: int


@dataclass(frozen=True)
class _Done:
    """What solving one node gives: a plan that beats the incumbent it was given (if any) and its children."""

    plan: float
    plan_x: np.ndarray | None
    children: tuple[_Node, ...]  # in the order they are pushed (the more promising one last, on top of a dive)
    lb: float  # the node's Lagrangian bound, before rounding (how far its branching raised its parent's)


def _choose(rho: np.ndarray, keep: np.ndarray, allowed: np.ndarray, p: int | None) -> np.ndarray:
    """The Lagrangian subproblem over sites (the kernel's own): the (p - |keep|) cheapest free sites, or every
    negative free one."""
    x = np.zeros(len(rho), dtype=np.bool_)
    _lagrange_kernel._choose(rho, keep, allowed, -1 if p is None else int(p), x)
    return x


@dataclass(frozen=True)
class _Tree:
    """The data every node reads: the active columns' costs, sorted per client, and the settings."""

    sc: np.ndarray
    order: np.ndarray
    ct: np.ndarray  # the costs transposed, a row per site
    F: np.ndarray
    p: int | None
    integral: bool
    node_iterations: int
    root_iterations: int

    def slack(self, ub: float) -> float:
        return 1.0 - 1e-6 if self.integral else 1e-9 * max(1.0, abs(ub) if math.isfinite(ub) else 1.0)

    def solve(self, node: _Node, ub: float, gains: tuple[np.ndarray, np.ndarray] | None = None) -> _Done:
        """Bound ``node`` against the incumbent value ``ub``, fix what its reduced costs fix, and branch.

        Reads nothing but its arguments and the tree's data, so nodes can be solved side by side."""
        p, integral = self.p, self.integral
        slack = self.slack(ub)
        plan, plan_x = math.inf, None
        keep, allowed = node.keep, node.allowed
        best_lb, best_lam, rho, xbar, value, x_value, *_ = _lagrange_kernel.subgradient(
            self.sc, self.order, self.ct, self.F, node.lam, keep, allowed, -1 if p is None else int(p), ub, slack,
            self.root_iterations if node.root else self.node_iterations, 1.0 if node.root else 0.5, 8, 5e-3, 0,
            -math.inf, DEFLECTION,
        )  # fmt: skip
        if _better(value, ub):
            ub, plan, plan_x, slack = value, value, x_value.copy(), self.slack(value)
        raw_lb = best_lb  # what the reduced costs add to: adding them to a rounded bound could exceed the truth
        if integral:
            best_lb = math.ceil(best_lb - 1e-6)
        if best_lb > ub - slack:
            return _Done(plan, plan_x, (), raw_lb)
        # reduced-cost fixing at this node, then branch
        x = _choose(rho, keep, allowed, p)
        free = allowed & ~keep
        k = len(rho)
        if p is not None:
            chosen, other = free & x, free & ~x
            worst_in = float(rho[chosen].max()) if chosen.any() else 0.0
            best_out = float(rho[other].min()) if other.any() else math.inf
            lb_open = raw_lb + np.where(x, 0.0, rho - worst_in)
            lb_close = raw_lb + np.where(x, best_out - rho, 0.0)
        elif keep.any() or (rho[free] < 0).any():
            lb_open = raw_lb + np.maximum(rho, 0.0) * ~x
            lb_close = raw_lb + np.maximum(-rho, 0.0) * x
        else:  # the one site opened only because one must be: forcing another may replace it, so fix nothing
            lb_open = lb_close = np.full(k, raw_lb)
        if integral:  # a bound on integers rounds up, after the reduced cost is added
            lb_open, lb_close = np.ceil(lb_open - 1e-6), np.ceil(lb_close - 1e-6)
        allowed = allowed & ~(free & (lb_open > ub - slack))
        keep = keep | (free & (lb_close > ub - slack))
        free = allowed & ~keep
        if p is not None and (int(keep.sum()) > p or int(allowed.sum()) < p):
            return _Done(plan, plan_x, (), raw_lb)
        if not free.any() or (p is not None and int(keep.sum()) == p):
            leaf = keep.copy() if p is not None else _choose(rho, keep, allowed, p)
            if leaf.any():
                value = _lagrange_kernel.plan_value(self.sc, self.order, self.F, leaf)
                if _better(value, ub):
                    plan, plan_x = value, leaf.copy()
            if p is not None or not free.any():
                return _Done(plan, plan_x, (), raw_lb)
        if gains is None:
            score = np.where(free, -np.abs(xbar - 0.5), -math.inf)
        else:
            up, down = gains
            score = np.maximum((1.0 - xbar) * up, 1e-6) * np.maximum(xbar * down, 1e-6)
            score = np.where(free, score, -math.inf)
        j = int(np.argmax(score))
        a_keep = keep.copy()
        a_keep[j] = True
        b_allowed = allowed.copy()
        b_allowed[j] = False
        depth = node.depth + 1
        child_open = _Node(a_keep, allowed.copy(), best_lam, float(max(best_lb, lb_open[j])), depth, False, j, True,
                           raw_lb)  # fmt: skip
        child_close = _Node(keep.copy(), b_allowed, best_lam, float(max(best_lb, lb_close[j])), depth, False, j, False,
                            raw_lb)  # fmt: skip
        if child_open.bound <= child_close.bound:
            return _Done(plan, plan_x, (child_close, child_open), raw_lb)
        return _Done(plan, plan_x, (child_open, child_close), raw_lb)


def branch_and_bound(
    C: np.ndarray,
    F: np.ndarray,
    *,
    columns: np.ndarray,
    force_open: np.ndarray,
    p: int | None,
    lam: np.ndarray,
    incumbent: float,
    deadline: float,
    integral: bool,
    workers: int = 1,
    node_iterations: int = 60,
    root_iterations: int = 600,
) -> TreeOutcome:
    """Prove (or improve) an incumbent by best-first branch and bound on the sites in ``columns``.

    Each node fixes some sites open or closed and bounds its plans by the Lagrangian relaxation of the assignment
    constraints (warm-started subgradient steps on the compiled kernel of :mod:`optimizer._lagrange_kernel`,
    Polyak's step towards the incumbent): ``L(lambda) = sum_i lambda_i + min {sum_j rho_j x_j}`` with
    ``rho_j = F_j + sum_i min(C_ij - lambda_i, 0)`` over the node's sites (p of them, or those with rho_j < 0 when p
    is free). A node is pruned when its bound reaches the incumbent (less 1 for integral data, the bound rounded up
    only after any reduced cost is added); reduced costs fix further sites at each node (forcing j open costs at
    least ``rho_j - max chosen rho``, closing a chosen one ``min other rho - rho_j``). The subproblem's sites are a
    plan at every node (a Lagrangian heuristic). Branching uses pseudocosts: each site keeps the mean rise of
    the bound when it was forced open and when it was forced closed, measured on the children solved so far (sites
    not yet branched on take the mean over all), and the branching site maximises ``max((1 - f) up, eps) x
    max(f down, eps)``, where ``f`` is an exponential average of the site in the subproblem's recent solutions (a
    primal estimate). Until the first child is solved, the site with ``f`` nearest 0.5 is taken. Pseudocosts against
    that rule alone: pmed39-like 4,777 nodes instead of 5,891, pmed32-like 405 instead of 543. Nodes are taken
    lowest bound first (deepest first among equals), so the bound returned at the time limit is the smallest over
    the open nodes.

    With ``workers`` > 1, nodes are solved side by side on threads (the kernel releases the GIL) in rounds: a round
    takes the :data:`ROUND_PER_WORKER` x ``workers`` best open nodes, solves them against the same incumbent, then
    merges their plans and children in the order taken. The tree, and the plan, depend on the worker count but not
    on the timing; a round's later nodes may be ones the sequential order would have pruned, which costs nodes only
    when the incumbent improves during the round.

    Limits: the bound is the LP bound at each node and no cuts are added, so an instance with a large integrality
    gap (about 1% or more, pmed39-like: 1.5%) can need more nodes than the time allows.
    """
    m = C.shape[1]
    cols = np.flatnonzero(columns)
    sub = np.ascontiguousarray(C[:, cols], dtype=np.float64)
    sc, order = _lagrange_kernel.sorted_rows(sub)
    Fs = np.ascontiguousarray(F[cols], dtype=np.float64)
    tree = _Tree(sc, order, np.array(sub.T, order="C"), Fs, p, integral, node_iterations, root_iterations)
    del sub
    k = len(cols)
    ub = incumbent
    best_mask: np.ndarray | None = None
    # best bound first, so that the bound reported at a time limit is the smallest over the open nodes and rises
    # as they are solved; deeper nodes first among equal bounds. Past ``max_open`` nodes (their multipliers take
    # 8 n bytes each) the children of a node are explored depth first, to the end of its subtree.
    root = _Node(force_open[cols].copy(), np.ones(k, dtype=bool), np.asarray(lam, dtype=np.float64).copy(),
                 -math.inf, 0, True)  # fmt: skip
    heap: list[tuple[float, int, int, _Node]] = [(-math.inf, 0, 0, root)]
    dive: list[_Node] = []
    max_open = max(1000, int(OPEN_NODES_BYTES // (8 * max(1, C.shape[0]))))
    counter = 0
    nodes = 0

    def push(child: _Node) -> None:
        nonlocal counter
        counter += 1
        if dive or len(heap) >= max_open:
            dive.append(child)
        else:
            heapq.heappush(heap, (child.bound, -child.depth, counter, child))

    def take(ub: float) -> list[_Node]:
        batch: list[_Node] = []
        slack = tree.slack(ub)
        while (heap or dive) and len(batch) < (1 if workers == 1 else ROUND_PER_WORKER * workers):
            node = dive.pop() if dive else heapq.heappop(heap)[3]
            if node.bound > ub - slack:
                continue
            if p is not None and (int(node.keep.sum()) > p or int(node.allowed.sum()) < p):
                continue
            batch.append(node)
        return batch

    # pseudocosts: the mean rise of the bound when a site was forced open (0) or closed (1)
    rise_sum = np.zeros((2, k))
    rise_n = np.zeros((2, k))

    def gains() -> tuple[np.ndarray, np.ndarray] | None:
        if not rise_n.any():
            return None
        mean_all = rise_sum.sum(axis=1) / np.maximum(rise_n.sum(axis=1), 1)
        mean = np.where(rise_n > 0, rise_sum / np.maximum(rise_n, 1), mean_all[:, None])
        return mean[0], mean[1]

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        while heap or dive:
            if time.perf_counter() > deadline:
                bound = min([ub] + [nd.bound for nd in dive] + [h[0] for h in heap[:1]])
                return TreeOutcome(_full(best_mask, cols, m), ub, bound, False, nodes)
            batch = take(ub)
            pc = gains()
            if pool is None or len(batch) < 2:
                done = [tree.solve(node, ub, pc) for node in batch]
            else:
                done = list(pool.map(tree.solve, batch, [ub] * len(batch), [pc] * len(batch)))
            nodes += len(batch)
            for node, result in zip(batch, done, strict=True):
                if node.site >= 0 and math.isfinite(node.parent_lb):
                    side = 0 if node.opened else 1
                    rise_sum[side, node.site] += max(0.0, min(result.lb, ub) - node.parent_lb)
                    rise_n[side, node.site] += 1
                if result.plan_x is not None and _better(result.plan, ub):
                    ub, best_mask = result.plan, result.plan_x
                for child in result.children:
                    push(child)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return TreeOutcome(_full(best_mask, cols, m), ub, ub, True, nodes)


def _better(value: float, ub: float) -> bool:
    """``value`` improves on ``ub`` by more than a relative 1e-9 (any finite value improves on inf)."""
    return math.isfinite(value) and (not math.isfinite(ub) or value < ub - 1e-9 * max(1.0, abs(ub)))


def _full(mask: np.ndarray | None, cols: np.ndarray, m: int) -> np.ndarray | None:
    if mask is None:
        return None
    out = np.zeros(m, dtype=bool)
    out[cols[mask]] = True
    return out
