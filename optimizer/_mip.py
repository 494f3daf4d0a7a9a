"""Exact mixed-integer models solved with HiGHS (through scipy), built from sparse arrays.

HiGHS runs single-threaded here, so results are deterministic; every call has a time limit and returns the
incumbent (if any), HiGHS's dual bound and whether optimality was proven.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp


@dataclass(frozen=True)
class MipOutcome:
    open_mask: np.ndarray | None  # (m,) sites open in the incumbent
    flows: np.ndarray | None  # (n, m) assignment fractions of the incumbent
    value: float  # incumbent objective (inf without one)
    bound: float  # dual bound
    proven: bool
    nodes: int


def facility_mip(
    C: np.ndarray,
    F: np.ndarray,
    *,
    columns: np.ndarray,
    force_open: np.ndarray,
    p: int | None = None,
    kappa: np.ndarray | None = None,
    budget: float | None = None,
    demand: np.ndarray | None = None,
    capacity: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
    time_limit_s: float,
    gap: float = 1e-9,
) -> MipOutcome:
    """Solve ``min sum_ij C_ij y_ij + sum_j F_j x_j`` over the sites in ``columns``.

    Constraints: ``sum_j y_ij = 1``; ``y_ij <= x_j``; ``x_j = 1`` where ``force_open``; optionally
    ``sum_j x_j = p``, ``sum_j kappa_j x_j <= budget`` and capacities ``sum_i demand_i y_ij <= capacity_j x_j``
    (demand split across sites when capacitated). ``pairs`` (n, m) limits which assignments exist (the others are
    fixed to 0, for example by reduced costs). ``y`` is continuous in [0, 1]: with no capacities an optimal
    solution assigns each client wholly to its nearest open site.
    """
    n, m = C.shape
    cols = np.flatnonzero(columns)
    k = len(cols)
    if k == 0:
        return MipOutcome(None, None, np.inf, np.inf, True, 0)
    colpos = np.full(m, -1)
    colpos[cols] = np.arange(k)
    use = np.ones((n, m), dtype=bool) if pairs is None else pairs.copy()
    use[:, ~columns] = False
    yi, yj = np.nonzero(use)  # the assignment variables kept, client-major
    ny = len(yi)
    xcol = ny + colpos[yj]  # column of each y's site variable
    c = np.concatenate([C[yi, yj], F[cols]])
    assign = sp.csr_matrix((np.ones(ny), (yi, np.arange(ny))), shape=(n, ny + k))
    link = sp.csr_matrix(
        (
            np.concatenate([np.ones(ny), -np.ones(ny)]),
            (np.concatenate([np.arange(ny), np.arange(ny)]), np.concatenate([np.arange(ny), xcol])),
        ),
        shape=(ny, ny + k),
    )
    constraints = [LinearConstraint(assign, 1.0, 1.0), LinearConstraint(link, -np.inf, 0.0)]
    x_row = sp.csr_matrix((np.ones(k), (np.zeros(k, dtype=int), ny + np.arange(k))), shape=(1, ny + k))
    if p is not None:
        constraints.append(LinearConstraint(x_row, p, p))
    if budget is not None and kappa is not None:
        row = sp.csr_matrix((kappa[cols], (np.zeros(k, dtype=int), ny + np.arange(k))), shape=(1, ny + k))
        constraints.append(LinearConstraint(row, -np.inf, budget))
    if capacity is not None and demand is not None:
        cap_rows = np.concatenate([colpos[yj], np.arange(k)])
        cap_cols = np.concatenate([np.arange(ny), ny + np.arange(k)])
        cap_vals = np.concatenate([demand[yi], -capacity[cols]])
        constraints.append(
            LinearConstraint(sp.csr_matrix((cap_vals, (cap_rows, cap_cols)), shape=(k, ny + k)), -np.inf, 0.0)
        )
        total = float(demand.sum())
        row = sp.csr_matrix((capacity[cols], (np.zeros(k, dtype=int), ny + np.arange(k))), shape=(1, ny + k))
        constraints.append(LinearConstraint(row, total, np.inf))  # valid cut: open capacity covers demand
    lower = np.zeros(ny + k)
    lower[ny:] = force_open[cols].astype(float)
    res = milp(
        c,
        constraints=constraints,
        integrality=np.concatenate([np.zeros(ny), np.ones(k)]),
        bounds=Bounds(lower, np.ones(ny + k)),
        options={"time_limit": max(0.05, float(time_limit_s)), "disp": False, "mip_rel_gap": gap},
    )
    bound = float(getattr(res, "mip_dual_bound", np.nan))
    nodes = int(getattr(res, "mip_node_count", 0) or 0)
    if res.x is None:
        infeasible = res.status == 2
        return MipOutcome(
            None, None, np.inf, np.inf if infeasible else (bound if np.isfinite(bound) else -np.inf), infeasible, nodes
        )
    xs = np.zeros(C.shape[1], dtype=bool)
    xs[cols] = res.x[ny:] > 0.5
    flows = np.zeros(C.shape)
    flows[yi, yj] = res.x[:ny]
    value = float(res.fun)
    if not np.isfinite(bound):
        bound = value if res.status == 0 else -np.inf
    return MipOutcome(xs, flows, value, min(bound, value), res.status == 0, nodes)


@dataclass(frozen=True)
class MilpOutcome:
    """What one HiGHS solve of a :class:`SparseMilp` gave."""

    x: np.ndarray | None  # incumbent (None without one)
    status: str  # optimal, time_limit, infeasible
    value: float  # incumbent objective (inf without one)
    bound: float  # HiGHS's dual bound (valid for the model; -inf when unknown, inf when infeasible)


class SparseMilp:
    """A sparse MILP built row by row and solved (again after adding rows) with HiGHS through scipy."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.r: list[int] = []
        self.col: list[int] = []
        self.val: list[float] = []
        self.rlb: list[float] = []
        self.rub: list[float] = []

    @property
    def n_vars(self) -> int:
        return len(self.lb)

    def var(
        self, n: int, lb: float | np.ndarray = 0.0, ub: float | np.ndarray = 1.0, integer: bool = False
    ) -> np.ndarray:
        """Add ``n`` variables; returns their column indices."""
        start = len(self.lb)
        self.lb += np.broadcast_to(np.asarray(lb, dtype=float), (n,)).tolist()
        self.ub += np.broadcast_to(np.asarray(ub, dtype=float), (n,)).tolist()
        self.integer += [int(integer)] * n
        return np.arange(start, start + n)

    def row(self, idx: np.ndarray | list[int], coef: np.ndarray | list[float] | float, lb: float, ub: float) -> None:
        """Add ``lb <= sum coef * x[idx] <= ub`` (repeated indices add up)."""
        idx = np.asarray(idx, dtype=np.int64)
        coef = np.broadcast_to(np.asarray(coef, dtype=float), idx.shape)
        keep = coef != 0
        r = len(self.rlb)
        self.r += [r] * int(keep.sum())
        self.col += idx[keep].tolist()
        self.val += coef[keep].tolist()
        self.rlb.append(lb)
        self.rub.append(ub)

    def solve(self, objective: np.ndarray, time_limit_s: float, gap: float) -> MilpOutcome:
        """Minimise ``objective @ x``; a HiGHS "solve error" is retried without presolve."""
        n = len(self.lb)
        c = np.concatenate([np.asarray(objective, dtype=float), np.zeros(n - len(objective))])
        a = sp.csr_matrix((self.val, (self.r, self.col)), shape=(len(self.rlb), n))
        constraints = [LinearConstraint(a, np.array(self.rlb), np.array(self.rub))] if self.rlb else []
        options = {"time_limit": max(0.05, float(time_limit_s)), "disp": False, "mip_rel_gap": gap}
        bounds = Bounds(np.array(self.lb), np.array(self.ub))
        res = milp(c, constraints=constraints, integrality=np.array(self.integer), bounds=bounds, options=options)
        if res.status == 4:  # e.g. a postsolved optimum that misses a tolerance
            res = milp(c, constraints=constraints, integrality=np.array(self.integer), bounds=bounds,
                       options={**options, "presolve": False})  # fmt: skip
        raw = getattr(res, "mip_dual_bound", None)
        bound = float(raw) if raw is not None else np.nan
        if res.x is None:
            if res.status == 2:
                return MilpOutcome(None, "infeasible", np.inf, np.inf)
            return MilpOutcome(None, "time_limit", np.inf, bound if np.isfinite(bound) else -np.inf)
        value = float(res.fun)
        if not np.isfinite(bound):
            bound = value if res.status == 0 else -np.inf
        return MilpOutcome(np.asarray(res.x), "optimal" if res.status == 0 else "time_limit", value, min(bound, value))
