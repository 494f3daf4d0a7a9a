"""Which sites to keep: coverage location models solved with OR-Tools CP-SAT.

Two objectives share one problem type:

``max_coverage`` (budgeted maximal covering location)
    maximise  sum_i d_i y_i
    s.t.      y_i <= sum_{j in N(i)} x_j      for every client i   (covered only if a site in reach is open)
              sum_j c_j x_j <= B                                  (annual budget)
              x_j = 1 for must-keep sites, x_j = 0 for forbidden sites, x, y binary
``min_cost`` (partial set covering)
    minimise  sum_j c_j x_j
    s.t.      sum_i d_i y_i >= t * sum_i d_i   and the same covering, must-keep and forbidden constraints.

Symbols: d_i persons at client i; c_j annual cost of site j (currency units); N(i) the sites within the
standard ``radius_s`` (seconds) of i; B the budget; t the coverage target share.

Ties are broken lexicographically: among plans optimal for the objective, the cheapest (``max_coverage``) or the
one covering most (``min_cost``) is returned. Clients with the same set N(i) are merged before solving (their y_i
are interchangeable), and clients that no site reaches are dropped from the model and reported as uncovered.
CP-SAT runs with ``linearization_level=2`` so that it solves LP relaxations and proves bounds; it returns status,
objective, bound and gap, and a gap of 0 proves optimality. Costs are rounded up and the budget down to whole
currency units, so a reported plan never exceeds the real budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ortools.sat.python import cp_model

from optimizer.errors import BudgetTooSmallError, CoverageUnreachableError, InvalidProblemError
from optimizer.params import SolveParams

Objective = Literal["max_coverage", "min_cost"]
Status = Literal["optimal", "feasible", "time_limit", "infeasible"]


def _bool_vector(value: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(value, dtype=bool)
    if arr.shape != (n,):
        raise InvalidProblemError(f"{name} has shape {arr.shape}; it needs one entry per site ({n})")
    return arr


@dataclass(frozen=True)
class LocationProblem:
    """A coverage location problem (see the module docstring for the formulation).

    Parameters
    ----------
    time_s
        (clients, sites) travel time in seconds; ``np.inf`` where a site is unreachable.
    demand
        (clients,) persons (or visits) at each client, non-negative.
    site_ids
        One id per site (column of ``time_s``).
    site_cost
        (sites,) annual cost of keeping each site open.
    radius_s
        The service standard: a client is covered by an open site within this time.
    objective
        ``"max_coverage"`` (needs ``budget``) or ``"min_cost"`` (needs ``coverage_target``).
    budget
        Annual budget for open sites (``max_coverage``); ``None`` means no limit.
    coverage_target
        Share of demand to cover, in (0, 1] (``min_cost``).
    must_keep, forbidden
        (sites,) booleans: sites that must stay open, and sites that may not be open.
    """

    time_s: np.ndarray
    demand: np.ndarray
    site_ids: tuple[str, ...]
    site_cost: np.ndarray
    radius_s: float
    objective: Objective = "max_coverage"
    budget: float | None = None
    coverage_target: float | None = None
    must_keep: np.ndarray | None = None
    forbidden: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.time_s, dtype=np.float64)
        d = np.asarray(self.demand, dtype=np.float64)
        c = np.asarray(self.site_cost, dtype=np.float64)
        if t.ndim != 2:
            raise InvalidProblemError(f"time_s must be a (clients, sites) matrix, got {t.ndim} dimension(s)")
        n_clients, n_sites = t.shape
        if d.shape != (n_clients,):
            raise InvalidProblemError(
                f"demand has {d.shape} entries but time_s has {n_clients} rows; give one demand per client"
            )
        if len(self.site_ids) != n_sites or c.shape != (n_sites,):
            raise InvalidProblemError(
                f"time_s has {n_sites} columns but there are {len(self.site_ids)} site ids and "
                f"{c.shape[0] if c.ndim else 0} site costs; give one of each per site"
            )
        if len(set(self.site_ids)) != n_sites:
            raise InvalidProblemError("site_ids repeat; give every site a unique id")
        if np.isnan(t).any() or (t < 0).any():
            raise InvalidProblemError("time_s holds NaN or negative times; use np.inf for unreachable pairs")
        if not np.isfinite(d).all() or (d < 0).any():
            raise InvalidProblemError("demand must be finite and non-negative")
        if not np.isfinite(c).all() or (c < 0).any():
            raise InvalidProblemError("site_cost must be finite and non-negative")
        if not (np.isfinite(self.radius_s) and self.radius_s >= 0):
            raise InvalidProblemError(f"radius_s must be a non-negative number of seconds, not {self.radius_s!r}")
        if self.objective not in ("max_coverage", "min_cost"):
            raise InvalidProblemError(f"objective must be 'max_coverage' or 'min_cost', not {self.objective!r}")
        if self.budget is not None and not (np.isfinite(self.budget) and self.budget > 0):
            raise InvalidProblemError(f"budget must be a positive number, not {self.budget!r}")
        if self.objective == "min_cost" and (self.coverage_target is None or not 0 < self.coverage_target <= 1):
            raise InvalidProblemError(f"min_cost needs coverage_target in (0, 1], not {self.coverage_target!r}")
        keep = _bool_vector(self.must_keep, n_sites, "must_keep")
        forbid = _bool_vector(self.forbidden, n_sites, "forbidden")
        if (keep & forbid).any():
            j = int(np.flatnonzero(keep & forbid)[0])
            raise InvalidProblemError(f"site {self.site_ids[j]!r} is both must_keep and forbidden; choose one")
        for name, value in (
            ("time_s", t),
            ("demand", d),
            ("site_cost", c),
            ("must_keep", keep),
            ("forbidden", forbid),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def coverage(self) -> np.ndarray:
        """(clients, sites) booleans: the site is within the standard of the client."""
        return np.asarray(self.time_s <= self.radius_s)


@dataclass(frozen=True)
class LocationResult:
    """The plan and the solver's account of it.

    ``objective`` is persons covered (``max_coverage``) or annual cost (``min_cost``); ``bound`` is the best
    proven bound on it (upper for maximisation, lower for minimisation); ``gap = |objective - bound| / |objective|``.
    """

    status: Status
    objective: float
    bound: float
    gap: float
    runtime_s: float
    open_sites: tuple[str, ...]
    closed_sites: tuple[str, ...]
    covered: float
    covered_share: float
    cost: float
    objective_name: str
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """Return a few human-readable lines."""
        return (
            f"{self.objective_name}: {self.status}, objective {self.objective:,.1f}, bound {self.bound:,.1f}, "
            f"gap {self.gap:.2%}, {self.runtime_s:.2f} s\n"
            f"open {len(self.open_sites)}: {', '.join(self.open_sites)}\n"
            f"closed {len(self.closed_sites)}: {', '.join(self.closed_sites) or '-'}\n"
            f"covered {self.covered:,.0f} ({self.covered_share:.1%}), cost {self.cost:,.0f}"
        )


def _explain_infeasible(problem: LocationProblem) -> None:
    """Raise a specific error, with the best achievable value, when no plan can meet the constraints."""
    keep = np.asarray(problem.must_keep)
    forbid = np.asarray(problem.forbidden)
    cost = np.asarray(problem.site_cost)
    if problem.objective == "max_coverage" and problem.budget is not None:
        keep_cost = float(cost[keep].sum())
        if keep_cost > problem.budget:
            names = ", ".join(np.asarray(problem.site_ids)[keep])
            raise BudgetTooSmallError(
                f"budget {problem.budget:,.0f} cannot keep the {int(keep.sum())} must_keep site(s) ({names}), "
                f"which cost {keep_cost:,.0f}; raise the budget to at least {keep_cost:,.0f} or release a site"
            )
    if problem.objective == "min_cost":
        allowed = ~forbid
        reach = (problem.coverage[:, allowed].any(axis=1) * problem.demand).sum()
        total = float(problem.demand.sum())
        best = reach / total if total else 1.0
        target = float(problem.coverage_target or 0.0)
        if best + 1e-12 < target:
            raise CoverageUnreachableError(
                f"no set of sites covers {target:.1%} of demand within {problem.radius_s / 60:g} min; "
                f"the maximum is {best:.1%}, with all {int(allowed.sum())} allowed sites open"
            )


def _integer_scale(values: np.ndarray) -> int:
    """Return 1 if ``values`` are whole numbers, else a power of ten that makes them nearly so."""
    if np.allclose(values, np.rint(values), atol=1e-9):
        return 1
    return 1000


def solve_location(problem: LocationProblem, *, params: SolveParams | None = None) -> LocationResult:
    """Solve a coverage location problem with CP-SAT (see the module docstring).

    Raises
    ------
    BudgetTooSmallError, CoverageUnreachableError
        Before solving, when no plan can meet the constraints; the message gives the best achievable value.
    """
    params = params or SolveParams()
    start = time.perf_counter()
    _explain_infeasible(problem)
    keep, forbid = np.asarray(problem.must_keep), np.asarray(problem.forbidden)
    n_sites = len(problem.site_ids)
    cov = problem.coverage & ~forbid[None, :]
    reachable = cov.any(axis=1)
    signatures, inverse = np.unique(cov[reachable], axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=problem.demand[reachable], minlength=len(signatures))
    scale = _integer_scale(weights)
    w_int = np.rint(weights * scale).astype(np.int64)
    cost_int = np.ceil(problem.site_cost - 1e-9).astype(np.int64)

    # data -> model
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"open_{j}") for j in range(n_sites)]
    for j in range(n_sites):
        if keep[j]:
            model.add(x[j] == 1)
        elif forbid[j]:
            model.add(x[j] == 0)
    y = [model.new_bool_var(f"covered_{k}") for k in range(len(signatures))]
    for k, sig in enumerate(signatures):
        model.add(y[k] <= sum(x[j] for j in np.flatnonzero(sig)))
    covered_expr = sum(int(w) * yk for w, yk in zip(w_int, y, strict=True))
    cost_expr = sum(int(c) * xj for c, xj in zip(cost_int, x, strict=True))
    if problem.objective == "max_coverage":
        if problem.budget is not None:
            model.add(cost_expr <= math.floor(problem.budget + 1e-9))
        model.maximize(covered_expr)
    else:
        need = math.ceil(float(problem.coverage_target or 0.0) * float(problem.demand.sum()) * scale - 1e-6)
        model.add(covered_expr >= need)
        model.minimize(cost_expr)

    # search parameters -> solve
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = params.time_limit_s
    solver.parameters.random_seed = params.seed
    solver.parameters.num_workers = params.workers
    solver.parameters.linearization_level = 2
    solver.parameters.relative_gap_limit = params.gap_tolerance
    code = solver.solve(model)
    bound_value = float(solver.best_objective_bound)

    if code == cp_model.OPTIMAL:
        # Lexicographic second phase: among optimal plans take the cheapest (max_coverage) or the one that
        # covers most (min_cost), so ties are broken by what a planner would prefer, not by search order.
        best = round(solver.objective_value)
        for xj in x:
            model.add_hint(xj, solver.boolean_value(xj))
        if problem.objective == "max_coverage":
            model.add(covered_expr >= best)
            model.minimize(cost_expr)
        else:
            model.add(cost_expr <= best)
            model.maximize(covered_expr)
        remaining = params.time_limit_s - (time.perf_counter() - start)
        if remaining > 0.05:
            solver.parameters.max_time_in_seconds = remaining
            second = solver.solve(model)
            if second not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                raise RuntimeError("CP-SAT lost a feasible solution in the tie-break phase")  # cannot happen
            code = cp_model.OPTIMAL  # the first phase proved the primary objective optimal

    # extract
    runtime = time.perf_counter() - start
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        status: Status = "infeasible" if code == cp_model.INFEASIBLE else "time_limit"
        return LocationResult(
            status,
            math.nan,
            math.nan,
            math.inf,
            runtime,
            (),
            tuple(problem.site_ids),
            0.0,
            0.0,
            0.0,
            problem.objective,
        )
    is_open = np.array([solver.boolean_value(v) for v in x])
    covered = float(problem.demand[(cov[:, is_open]).any(axis=1)].sum())
    total = float(problem.demand.sum())
    cost = float(problem.site_cost[is_open].sum())
    if problem.objective == "max_coverage":
        objective, bound = covered, max(bound_value / scale, covered)
    else:
        objective, bound = cost, min(bound_value, cost)
    gap = abs(objective - bound) / max(abs(objective), 1e-9)
    proven = code == cp_model.OPTIMAL or gap <= params.gap_tolerance
    status = "optimal" if proven else ("time_limit" if runtime >= params.time_limit_s * 0.99 else "feasible")
    ids = np.asarray(problem.site_ids)
    return LocationResult(
        status=status,
        objective=objective,
        bound=bound,
        gap=0.0 if proven else gap,
        runtime_s=runtime,
        open_sites=tuple(ids[is_open].tolist()),
        closed_sites=tuple(ids[~is_open].tolist()),
        covered=covered,
        covered_share=covered / total if total else 1.0,
        cost=cost,
        objective_name=problem.objective,
        stats={
            "clients": float(len(problem.demand)),
            "client_groups": float(len(signatures)),
            "branches_explored": float(solver.num_branches),
            "wall_time_s": float(solver.wall_time),
        },
    )
