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
