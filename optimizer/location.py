"""Which sites to keep, close or open: one location problem type, several objectives, with bounds and gaps.

Symbols: clients i with demand d_i (persons, visits); sites j; t_ij travel time (s) or distance; x_j = 1 if site j
is open; y_ij the share of client i served by site j. Site types: must-keep (x_j = 1), forbidden (x_j = 0),
existing and closable (closing saves its running cost c_j and incurs a one-off closure cost), candidate (opening
costs c_j plus a one-off opening cost). The cost of a plan is ``C0 + sum_j kappa_j x_j`` with
``kappa_j = c_j + opening_j`` for candidates, ``c_j - closure_j`` for existing sites and ``C0`` the closure cost of
closing every existing site; a budget B bounds it.

Objectives (``LocationProblem.objective``):

``p_median``
    min sum_ij d_i t_ij y_ij, with p open sites (and optionally the budget).
``attendance``
    max expected visits sum_ij d_i g(t_ij) y_ij, with g a distance decay (:class:`Decay`), p sites or a budget.
``fixed_charge``
    min C0 + sum_j kappa_j x_j + sum_ij a_ij y_ij with a_ij the cost of serving client i wholly from j
    (default d_i t_ij); uncapacitated, or capacitated (sum_i d_i y_ij <= Q_j x_j) with splittable demand
    (``single_source=True``: y_ij in {0, 1}).
``max_coverage`` (MCLP)
    max sum_i d_i z_i, z_i <= sum_{j: t_ij <= R} x_j, with p sites and/or the budget.
``min_cost`` (LSCP and partial cover)
    min C0 + sum_j kappa_j x_j so that a share ``coverage_target`` of demand is within R (1.0 covers everyone;
    unit costs give the minimum number of sites).
``p_center``
    min max_i t_i (over clients with demand) with p sites.

Algorithms. The p-median, attendance and uncapacitated fixed-charge models share one engine: greedy, a
best-improvement swap/add/drop local search and variable neighbourhood search give the plan; Lagrangian
relaxation of the assignment constraints gives the bound; reduced-cost fixing then shrinks the problem and a
Lagrangian branch and bound over the remaining sites (:mod:`optimizer._pmedian`) proves the plan or raises the
bound (with a budget: HiGHS, mixed-integer via scipy, on the radius formulation truncated by reduced costs).
Capacitated fixed charge (:mod:`optimizer._capacitated`): Lagrangian relaxation of the assignment constraints with
knapsack subproblems gives the bound, a Lagrangian heuristic with open/close/swap local search and
transportation (min-cost flow) re-assignment gives the plan, and HiGHS solves what reduced-cost fixing leaves when
it is small enough.
Coverage models go to OR-Tools CP-SAT with ``linearization_level=2`` (LP relaxations, proven bounds), clients with
identical coverage merged. p-center bisects on the radius with a CP-SAT set-cover test. Every result carries status,
objective, bound, gap and runtime; a gap of 0 proves optimality; the same inputs and seed give the same plan.
Infeasible inputs are explained before solving, with the best achievable value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ortools.sat.python import cp_model

from optimizer import _assign, _capacitated, _pmedian
from optimizer.errors import (
    BudgetTooSmallError,
    CapacityShortfallError,
    CoverageUnreachableError,
    InvalidCostError,
    InvalidProblemError,
    InvalidSiteCountError,
    NoAllowedSitesError,
    RadiusUnreachableError,
    ShapeMismatchError,
)
from optimizer.params import SolveParams

Objective = Literal["p_median", "attendance", "fixed_charge", "max_coverage", "min_cost", "p_center"]
Status = Literal["optimal", "feasible", "time_limit", "infeasible"]
OBJECTIVES: tuple[str, ...] = ("p_median", "attendance", "fixed_charge", "max_coverage", "min_cost", "p_center")
_MAXIMISE = frozenset({"attendance", "max_coverage"})
#: Largest number of (client, site) pairs in the truncated radius formulation handed to HiGHS after reduced-cost
#: fixing (uncapacitated models).
MIP_MAX_NONZEROS = 600_000


@dataclass(frozen=True)
class Decay:
    """Share of potential visits made at travel time t (seconds).

    ``exponential``: exp(-t / scale_s); ``power``: (1 + t / scale_s) ** -exponent; ``linear``: max(0, 1 - t / scale_s)
    (a linear fall to zero at ``scale_s``).
    """

    kind: Literal["exponential", "power", "linear"] = "exponential"
    scale_s: float = 900.0
    exponent: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("exponential", "power", "linear"):
            raise InvalidProblemError(f"decay kind must be exponential, power or linear, not {self.kind!r}")
        if not (math.isfinite(self.scale_s) and self.scale_s > 0):
            raise InvalidProblemError(f"decay scale_s must be a positive number of seconds, not {self.scale_s!r}")
        if not (math.isfinite(self.exponent) and self.exponent > 0):
            raise InvalidProblemError(f"decay exponent must be positive, not {self.exponent!r}")

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.kind == "exponential":
                g = np.exp(-t / self.scale_s)
            elif self.kind == "power":
                g = (1.0 + t / self.scale_s) ** -self.exponent
            else:
                g = np.maximum(0.0, 1.0 - t / self.scale_s)
        return np.where(np.isfinite(t), g, 0.0)


def _vector(value: np.ndarray | None, n: int, name: str, *, dtype: type = bool, fill: float = 0.0) -> np.ndarray:
    if value is None:
        return np.full(n, fill, dtype=dtype)
    arr: np.ndarray = np.asarray(value, dtype=dtype)
    if arr.shape != (n,):
        raise ShapeMismatchError(f"{name} has shape {arr.shape}; it needs one entry per site ({n})")
    return arr


@dataclass(frozen=True)
class LocationProblem:
    """A site-selection problem (see the module docstring for every objective's formulation).

    Parameters
    ----------
    time_s
        (clients, sites) travel time in seconds (or any distance); ``np.inf`` where unreachable.
    demand
        (clients,) persons or visits, non-negative.
    site_ids
        One unique id per site (column).
    site_cost
        (sites,) annual running cost of an open site.
    objective
        One of :data:`OBJECTIVES`.
    radius_s
        Coverage standard for ``max_coverage`` and ``min_cost``.
    p
        Exact number of open sites (``p_median``, ``p_center``; optional for ``max_coverage``, ``attendance``,
        ``fixed_charge``).
    budget
        Bound on the plan's cost (running costs of open sites plus one-off opening and closure costs).
    coverage_target
        ``min_cost``: share of demand to cover, in (0, 1].
    must_keep, forbidden, candidate
        (sites,) booleans. Sites that are not candidates are existing sites.
    closure_cost, opening_cost
        (sites,) one-off costs of closing an existing site or opening a candidate.
    capacity
        (sites,) capacity in demand units (``fixed_charge``); ``None`` for uncapacitated.
    assign_cost
        (clients, sites) cost of serving a client wholly from a site (``fixed_charge``); default demand x time.
    decay
        Distance decay for ``attendance``.
    single_source
        Capacitated ``fixed_charge`` only: each client is served wholly by one site (default: demand may split).
    """

    time_s: np.ndarray
    demand: np.ndarray
    site_ids: tuple[str, ...]
    site_cost: np.ndarray
    objective: Objective = "max_coverage"
    radius_s: float | None = None
    p: int | None = None
    budget: float | None = None
    coverage_target: float | None = None
    must_keep: np.ndarray | None = None
    forbidden: np.ndarray | None = None
    candidate: np.ndarray | None = None
    closure_cost: np.ndarray | None = None
    opening_cost: np.ndarray | None = None
    capacity: np.ndarray | None = None
    assign_cost: np.ndarray | None = None
    decay: Decay | None = None
    single_source: bool = False

    def __post_init__(self) -> None:
        t = np.asarray(self.time_s, dtype=np.float64)
        d = np.asarray(self.demand, dtype=np.float64)
        if t.ndim != 2:
            raise ShapeMismatchError(f"time_s must be a (clients, sites) matrix, got {t.ndim} dimension(s)")
        n, m = t.shape
        if d.shape != (n,):
            raise ShapeMismatchError(
                f"demand has {d.shape[0] if d.ndim else 0} entries but time_s has {n} rows; "
                "give one demand per client (matrix row)"
            )
        if len(self.site_ids) != m:
            raise ShapeMismatchError(f"time_s has {m} columns but there are {len(self.site_ids)} site ids")
        if len(set(self.site_ids)) != m:
            raise InvalidProblemError("site_ids repeat; give every site a unique id")
        if self.objective not in OBJECTIVES:
            raise InvalidProblemError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if np.isnan(t).any() or (t < 0).any():
            raise InvalidCostError("time_s holds NaN or negative times; use np.inf for unreachable pairs")
        if not np.isfinite(d).all() or (d < 0).any():
            raise InvalidCostError("demand must be finite and non-negative")
        arrays: dict[str, np.ndarray] = {"time_s": t, "demand": d}
        for name in ("site_cost", "closure_cost", "opening_cost"):
            v = _vector(getattr(self, name), m, name, dtype=float)
            if not np.isfinite(v).all() or (v < 0).any():
                raise InvalidCostError(f"{name} must be finite and non-negative (site {self._first_bad(v)!r})")
            arrays[name] = v
        for name in ("must_keep", "forbidden", "candidate"):
            arrays[name] = _vector(getattr(self, name), m, name)
        if self.capacity is not None:
            cap = _vector(self.capacity, m, "capacity", dtype=float)
            if not np.isfinite(cap).all() or (cap < 0).any():
                raise InvalidCostError("capacity must be finite and non-negative")
            arrays["capacity"] = cap
        if self.assign_cost is not None:
            a = np.asarray(self.assign_cost, dtype=np.float64)
            if a.shape != (n, m):
                raise ShapeMismatchError(f"assign_cost has shape {a.shape}; it must match time_s {t.shape}")
            if np.isnan(a).any() or (a < 0).any():
                raise InvalidCostError("assign_cost holds NaN or negative costs")
            arrays["assign_cost"] = a
        keep, forbid = arrays["must_keep"], arrays["forbidden"]
        if (keep & forbid).any():
            j = int(np.flatnonzero(keep & forbid)[0])
            raise InvalidProblemError(f"site {self.site_ids[j]!r} is both must_keep and forbidden; choose one")
        if m == 0 or forbid.all():
            raise NoAllowedSitesError("every site is forbidden; allow at least one site")
        allowed = int((~forbid).sum())
        if self.p is not None and not (int(keep.sum()) <= self.p <= allowed and self.p >= 1):
            raise InvalidSiteCountError(
                f"p = {self.p} is not possible: there are {allowed} allowed site(s) and {int(keep.sum())} must_keep; "
                f"choose p between {max(1, int(keep.sum()))} and {allowed}"
            )
        if self.objective in ("p_median", "p_center") and self.p is None:
            raise InvalidProblemError(f"{self.objective} needs p, the number of sites to open")
        if self.objective in ("max_coverage", "min_cost") and (
            self.radius_s is None or not (math.isfinite(self.radius_s) and self.radius_s >= 0)
        ):
            raise InvalidProblemError(f"{self.objective} needs radius_s, a non-negative coverage standard in seconds")
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise InvalidProblemError(f"budget must be a positive number, not {self.budget!r}")
        if self.objective == "min_cost" and (self.coverage_target is None or not 0 < self.coverage_target <= 1):
            raise InvalidProblemError(f"min_cost needs coverage_target in (0, 1], not {self.coverage_target!r}")
        if self.objective == "attendance" and self.decay is None:
            object.__setattr__(self, "decay", Decay())
        for name, value in arrays.items():
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def _first_bad(self, v: np.ndarray) -> str:
        bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
        return self.site_ids[int(bad[0])] if len(bad) else ""

    @property
    def coverage(self) -> np.ndarray:
        """(clients, sites) booleans: the site is within the radius of the client."""
        return np.asarray(self.time_s <= (self.radius_s if self.radius_s is not None else np.inf))

    @property
    def kappa(self) -> np.ndarray:
        """Per-site cost of being open, net of the closure cost an existing site would otherwise incur."""
        cand = np.asarray(self.candidate)
        return np.asarray(self.site_cost) + np.where(
            cand, np.asarray(self.opening_cost), -np.asarray(self.closure_cost)
        )

    @property
    def base_cost(self) -> float:
        """Cost of a plan with every site closed (the closure costs of all existing sites)."""
        return float(np.asarray(self.closure_cost)[~np.asarray(self.candidate)].sum())

    def plan_cost(self, open_mask: np.ndarray) -> float:
        return self.base_cost + float(self.kappa[open_mask].sum())


@dataclass(frozen=True)
class LocationResult:
    """The plan and the solver's account of it.

    ``objective`` is in the objective's own terms (persons covered, visits, person-seconds, cost, seconds);
    ``bound`` is the best proven bound on it (upper when maximising, lower when minimising) and
    ``gap = |objective - bound| / |objective|``. ``assignment`` gives each client's serving site index (-1 when no
    open site reaches it).
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
    assignment: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    algorithm: str = ""
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """Return a few human-readable lines."""
        return (
            f"{self.objective_name}: {self.status}, objective {self.objective:,.1f}, bound {self.bound:,.1f}, "
            f"gap {self.gap:.2%}, {self.runtime_s:.2f} s ({self.algorithm})\n"
            f"open {len(self.open_sites)}: {', '.join(self.open_sites)}\n"
            f"closed {len(self.closed_sites)}: {', '.join(self.closed_sites) or '-'}\n"
            f"covered {self.covered:,.0f} ({self.covered_share:.1%}), cost {self.cost:,.0f}"
        )


# ----------------------------------------------------------------------------------------------------------------
# infeasibility, explained before solving


def _explain_infeasible(problem: LocationProblem) -> None:
    keep, forbid = np.asarray(problem.must_keep), np.asarray(problem.forbidden)
    allowed = ~forbid
    kappa = problem.kappa
    names = np.asarray(problem.site_ids)
    if problem.budget is not None:
        keep_cost = problem.plan_cost(keep)
        if keep_cost > problem.budget + 1e-9:
            raise BudgetTooSmallError(
                f"budget {problem.budget:,.0f} cannot keep the {int(keep.sum())} must_keep site(s) "
                f"({', '.join(names[keep])}), which cost {keep_cost:,.0f}; raise the budget to at least "
                f"{keep_cost:,.0f} or release a site"
            )
        if problem.p is not None:
            extra = problem.p - int(keep.sum())
            free = np.sort(kappa[allowed & ~keep])[:extra]
            cheapest = keep_cost + float(free.sum())
            if cheapest > problem.budget + 1e-9:
                raise BudgetTooSmallError(
                    f"budget {problem.budget:,.0f} cannot pay for {problem.p} open sites: the cheapest "
                    f"{problem.p} cost {cheapest:,.0f}; lower p or raise the budget"
                )
    if problem.objective in ("max_coverage", "min_cost"):
        reach = (problem.coverage[:, allowed].any(axis=1) * problem.demand).sum()
        total = float(problem.demand.sum())
        if total > 0 and reach == 0:
            raise RadiusUnreachableError(
                f"no client has an allowed site within {float(problem.radius_s or 0) / 60:g} min; "
                f"the nearest pair is {np.min(problem.time_s[:, allowed]) / 60:.1f} min apart: widen the radius"
            )
        if problem.objective == "min_cost":
            best = reach / total if total else 1.0
            target = float(problem.coverage_target or 0.0)
            if best + 1e-12 < target:
                raise CoverageUnreachableError(
                    f"no set of sites covers {target:.1%} of demand within {float(problem.radius_s or 0) / 60:g} "
                    f"min; the maximum is {best:.1%}, with all {int(allowed.sum())} allowed sites open"
                )
    if problem.objective == "fixed_charge" and problem.capacity is not None:
        room = float(np.asarray(problem.capacity)[allowed].sum())
        if room + 1e-9 < float(problem.demand.sum()):
            raise CapacityShortfallError(
                f"the allowed sites hold {room:,.0f} in all but demand is {float(problem.demand.sum()):,.0f}; "
                "add capacity or sites"
            )


# ----------------------------------------------------------------------------------------------------------------
# result assembly


def _finish(
    problem: LocationProblem,
    open_mask: np.ndarray,
    objective: float,
    bound: float,
    *,
    proven: bool,
    start: float,
    params: SolveParams,
    algorithm: str,
    stats: dict[str, float],
    assignment: np.ndarray | None = None,
    limit_hit: bool = False,
) -> LocationResult:
    """The result; ``limit_hit``: a phase stopped on its time limit before the whole solve's (which is otherwise
    told by the runtime, at least 95% of the limit)."""
    runtime = time.perf_counter() - start
    denom = max(abs(objective), 1e-9)
    gap = 0.0 if proven else abs(objective - bound) / denom
    if gap <= params.gap_tolerance:
        gap, proven = 0.0, True
    timed_out = limit_hit or runtime >= 0.95 * params.time_limit_s
    status: Status = "optimal" if proven else ("time_limit" if timed_out else "feasible")
    t = problem.time_s
    if assignment is None:
        if open_mask.any():
            sub = np.where(np.isfinite(t[:, open_mask]), t[:, open_mask], np.inf)
            idx = np.flatnonzero(open_mask)[np.argmin(sub, axis=1)]
            assignment = np.where(np.isfinite(sub.min(axis=1)), idx, -1)
        else:
            assignment = np.full(len(t), -1)
    radius = problem.radius_s if problem.radius_s is not None else np.inf
    covered_mask = (t[:, open_mask] <= radius).any(axis=1) if open_mask.any() else np.zeros(len(t), bool)
    covered = float(problem.demand[covered_mask].sum())
    total = float(problem.demand.sum())
    ids = np.asarray(problem.site_ids)
    return LocationResult(
        status=status,
        objective=float(objective),
        bound=float(bound),
        gap=float(gap),
        runtime_s=runtime,
        open_sites=tuple(ids[open_mask].tolist()),
        closed_sites=tuple(ids[~open_mask].tolist()),
        covered=covered,
        covered_share=covered / total if total else 1.0,
        cost=problem.plan_cost(open_mask),
        objective_name=problem.objective,
        assignment=np.asarray(assignment, dtype=np.int64),
        algorithm=algorithm,
        stats=stats,
    )


# ----------------------------------------------------------------------------------------------------------------
# the assignment family: p-median, attendance, fixed charge (heuristic + Lagrangian + HiGHS)


def _service_cost(problem: LocationProblem) -> np.ndarray:
    t = problem.time_s
    d = problem.demand[:, None]
    if problem.objective == "attendance":
        assert problem.decay is not None
        return np.asarray(d * (1.0 - problem.decay(t)))  # lost visits
    if problem.objective == "fixed_charge" and problem.assign_cost is not None:
        c = np.asarray(problem.assign_cost, dtype=np.float64).copy()
    else:
        c = d * t
    finite = np.isfinite(c)
    if not finite.all():
        # unreachable pairs: a penalty above any plan that reaches everyone, so they are used only if unavoidable
        penalty = (float(c[finite].max()) if finite.any() else 1.0) * (len(c) + 1) + 1.0
        c = np.where(finite, c, penalty)
    return np.asarray(c)


def _solve_assignment(problem: LocationProblem, params: SolveParams, start: float) -> LocationResult:
    C = _service_cost(problem)
    fixed = problem.objective == "fixed_charge"
    F = problem.kappa if fixed else np.zeros(len(problem.site_ids))
    budget = None if problem.budget is None else problem.budget - problem.base_cost
    data = _assign.AssignData(
        C=C, F=np.asarray(F, dtype=np.float64), keep=np.asarray(problem.must_keep),
        allowed=~np.asarray(problem.forbidden), p=problem.p, kappa=problem.kappa, budget=budget,
    )  # fmt: skip
    T = params.time_limit_s
    deadline = start + T
    rng = np.random.default_rng(params.seed)
    mask, value = _assign.local_search(data, _assign.greedy(data), deadline)
    state = _assign.SearchState(mask, value)
    _assign.lagrangian(data, state, start + 0.25 * T)

    def closed() -> bool:
        return state.best_value - state.bound <= params.gap_tolerance * max(1.0, abs(state.best_value))

    mip_nodes, proven = 0, closed()
    mip_nonzeros = tree_nodes = 0
    if not proven:
        fixed_open, fixed_closed = _assign.fix_sites(data, state)
        columns = data.allowed & ~fixed_closed
        if budget is None:
            # Lagrangian branch and bound over the sites left after fixing, VNS with what time is left
            tree = _pmedian.branch_and_bound(
                C, data.F, columns=columns, force_open=data.keep | fixed_open, p=data.p, lam=np.asarray(state.lam),
                incumbent=state.best_value, deadline=time.perf_counter() + 0.95 * (deadline - time.perf_counter()),
                integral=data.integral, workers=params.workers,
            )  # fmt: skip
            tree_nodes = tree.nodes
            if tree.open_mask is not None and tree.value < state.best_value - 1e-9 * max(1.0, abs(state.best_value)):
                state.best_mask, state.best_value = tree.open_mask, _assign.evaluate(data, tree.open_mask)
            bound = min(state.best_value, tree.bound)
            state.bound = max(state.bound, math.ceil(bound - 1e-6) if data.integral else bound)
            proven = tree.proven or closed()
        else:
            radius = _assign.useful_radius(data, state)
            if _pmedian.radius_model_size(C, columns, radius) <= MIP_MAX_NONZEROS:
                # small enough to prove: the truncated radius formulation with HiGHS, VNS with what time is left
                out = _pmedian.radius_mip(
                    C, data.F, columns=columns, force_open=data.keep | fixed_open, radius=radius, p=data.p,
                    kappa=data.kappa, budget=budget, incumbent=state.best_value,
                    deadline=time.perf_counter() + 0.85 * (deadline - time.perf_counter()), gap=params.gap_tolerance,
                )  # fmt: skip
                mip_nodes, mip_nonzeros = out.nodes, out.nonzeros
                if out.open_mask is not None and out.value < state.best_value - 1e-9 * max(1.0, abs(state.best_value)):
                    state.best_mask, state.best_value = out.open_mask, _assign.evaluate(data, out.open_mask)
                # any strictly better plan lies in the reduced problem, so min(best, its bound) bounds the original
                bound = min(state.best_value, out.bound)
                state.bound = max(state.bound, math.ceil(bound - 1e-6) if data.integral else bound)
                proven = out.proven or closed()
    if not proven and time.perf_counter() < deadline:
        _assign.vns(data, state, deadline, rng)
        proven = closed()
    total_d = float(problem.demand.sum())
    const = problem.base_cost if fixed else 0.0
    if problem.objective == "attendance":
        objective, bound = total_d - state.best_value, total_d - state.bound
    else:
        objective, bound = state.best_value + const, state.bound + const
    stats = {"lagrangian_iterations": float(state.lr_iterations), "vns_iterations": float(state.vns_iterations),
             "mip_nodes": float(mip_nodes), "mip_nonzeros": float(mip_nonzeros),
             "tree_nodes": float(tree_nodes)}  # fmt: skip
    return _finish(
        problem,
        state.best_mask,
        objective,
        bound,
        proven=proven,
        start=start,
        params=params,
        algorithm="local search + VNS, Lagrangian bound, Lagrangian branch and bound (HiGHS radius MIP with a budget)",
        stats=stats,
    )


def _solve_capacitated(problem: LocationProblem, params: SolveParams, start: float) -> LocationResult:
    C = _service_cost(problem)
    budget = None if problem.budget is None else problem.budget - problem.base_cost
    data = _capacitated.CapData(
        C=C, demand=np.asarray(problem.demand), capacity=np.asarray(problem.capacity), F=problem.kappa,
        keep=np.asarray(problem.must_keep), allowed=~np.asarray(problem.forbidden), p=problem.p, kappa=problem.kappa,
        budget=budget, single_source=problem.single_source,
    )  # fmt: skip
    out = _capacitated.solve_capacitated(
        data, time_limit_s=params.time_limit_s, gap=params.gap_tolerance, seed=params.seed, start=start
    )
    split = "single source" if problem.single_source else "splittable demand"
    algorithm = f"Lagrangian bound, Lagrangian heuristic + local search, HiGHS on the reduced problem ({split})"
    if out.open_mask is None or out.assignment is None:
        status: Status = "infeasible" if out.proven else "time_limit"
        return _no_plan(problem, status, start, algorithm)
    const = problem.base_cost
    return _finish(problem, out.open_mask, out.value + const, out.bound + const, proven=out.proven, start=start,
                   params=params, algorithm=algorithm, stats=out.stats, assignment=out.assignment,
                   limit_hit=out.stats.get("mip_time_limit", 0.0) > 0)  # fmt: skip


def _no_plan(problem: LocationProblem, status: Status, start: float, algorithm: str) -> LocationResult:
    ids = tuple(problem.site_ids)
    return LocationResult(status, math.nan, math.nan, math.inf, time.perf_counter() - start, (), ids, 0.0, 0.0,
                          0.0, problem.objective, algorithm=algorithm)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# coverage models with CP-SAT


def _integer_scale(values: np.ndarray) -> int:
    """Return 1 if ``values`` are whole numbers, else a power of ten that makes them nearly so."""
    if np.allclose(values, np.rint(values), atol=1e-9):
        return 1
    return 1000


def _cp_solver(params: SolveParams, time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, time_limit_s)
    solver.parameters.random_seed = params.seed
    solver.parameters.num_workers = params.workers
    solver.parameters.linearization_level = 2
    solver.parameters.relative_gap_limit = params.gap_tolerance
    return solver


def _solve_coverage(problem: LocationProblem, params: SolveParams, start: float) -> LocationResult:
    keep, forbid = np.asarray(problem.must_keep), np.asarray(problem.forbidden)
    n_sites = len(problem.site_ids)
    cov = problem.coverage & ~forbid[None, :]
    reachable = cov.any(axis=1)
    signatures, inverse = np.unique(cov[reachable], axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=problem.demand[reachable], minlength=len(signatures))
    scale = _integer_scale(weights)
    w_int = np.rint(weights * scale).astype(np.int64)
    kappa_int = np.ceil(problem.kappa - 1e-9).astype(np.int64)

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
    cost_expr = sum(int(c) * xj for c, xj in zip(kappa_int, x, strict=True))
    if problem.p is not None:
        model.add(sum(x) == problem.p)
    if problem.budget is not None:
        model.add(cost_expr <= math.floor(problem.budget - problem.base_cost + 1e-9))
    if problem.objective == "max_coverage":
        model.maximize(covered_expr)
    else:
        need = math.ceil(float(problem.coverage_target or 0.0) * float(problem.demand.sum()) * scale - 1e-6)
        model.add(covered_expr >= need)
        model.minimize(cost_expr)

    solver = _cp_solver(params, params.time_limit_s)
    code = solver.solve(model)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _no_plan(problem, "infeasible" if code == cp_model.INFEASIBLE else "time_limit", start, "CP-SAT")
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
            solver = _cp_solver(params, remaining)
            second = solver.solve(model)
            if second not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                raise RuntimeError("CP-SAT lost a feasible solution in the tie-break phase")  # cannot happen
    is_open = np.array([solver.boolean_value(v) for v in x])
    covered = float(problem.demand[(cov[:, is_open]).any(axis=1)].sum())
    if problem.objective == "max_coverage":
        objective, bound = covered, max(bound_value / scale, covered)
    else:
        objective = problem.plan_cost(is_open)
        bound = min(bound_value + problem.base_cost, objective)
    stats = {"client_groups": float(len(signatures)), "branches_explored": float(solver.num_branches)}
    return _finish(problem, is_open, objective, bound, proven=code == cp_model.OPTIMAL, start=start, params=params,
                   algorithm="CP-SAT (linearization level 2), lexicographic tie-break", stats=stats)  # fmt: skip


def _min_sites_to_cover(
    problem: LocationProblem, radius: float, params: SolveParams, time_limit_s: float
) -> tuple[np.ndarray | None, bool]:
    """Fewest allowed sites (must-keep included) within ``radius`` of every client with demand; (mask, proven)."""
    keep, forbid = np.asarray(problem.must_keep), np.asarray(problem.forbidden)
    need = problem.demand > 0
    cov = (problem.time_s[need] <= radius) & ~forbid[None, :]
    if not cov.any(axis=1).all():
        return None, True
    rows = np.unique(cov, axis=0)
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"open_{j}") for j in range(cov.shape[1])]
    for j in np.flatnonzero(keep):
        model.add(x[int(j)] == 1)
    for j in np.flatnonzero(forbid):
        model.add(x[int(j)] == 0)
    for row in rows:
        model.add_bool_or([x[int(j)] for j in np.flatnonzero(row)])
    model.minimize(sum(x))
    solver = _cp_solver(params, time_limit_s)
    code = solver.solve(model)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, code == cp_model.INFEASIBLE
    mask = np.array([solver.boolean_value(v) for v in x])
    if code != cp_model.OPTIMAL and solver.best_objective_bound > (problem.p or 0):
        return None, True  # even the bound needs more than p sites
    return mask, code == cp_model.OPTIMAL


def _solve_center(problem: LocationProblem, params: SolveParams, start: float) -> LocationResult:
    p = int(problem.p or 0)
    need = problem.demand > 0
    allowed = ~np.asarray(problem.forbidden)
    t = problem.time_s[need][:, allowed]
    if not np.isfinite(t).any(axis=1).all():
        raise RadiusUnreachableError("some clients reach no allowed site at all, so no radius covers them")
    values = np.unique(t[np.isfinite(t)])
    lo = int(np.searchsorted(values, float(np.max(np.min(t, axis=1)))))  # no radius below the farthest nearest
    hi = len(values) - 1
    best_mask: np.ndarray | None = None
    best_r = math.inf
    proven = True
    while lo <= hi:
        if time.perf_counter() - start > params.time_limit_s:
            proven = False
            break
        mid = (lo + hi) // 2
        remaining = params.time_limit_s - (time.perf_counter() - start)
        mask, exact = _min_sites_to_cover(problem, float(values[mid]), params, remaining)
        if mask is not None and int(mask.sum()) <= p:
            best_mask, best_r, hi = mask, float(values[mid]), mid - 1
        else:
            proven &= exact
            lo = mid + 1
    if best_mask is None:
        return _no_plan(problem, "time_limit", start, "bisection + CP-SAT set cover")
    # pad to exactly p sites (extra sites never raise the maximum): add the allowed sites that help most
    mask = best_mask.copy()
    while mask.sum() < p:
        cand = np.flatnonzero(allowed & ~mask)
        j = cand[np.argmin([np.minimum(problem.time_s[:, mask].min(axis=1), problem.time_s[:, c]).sum()
                            for c in cand])]  # fmt: skip
        mask[j] = True
    lower = float(values[lo - 1]) if proven and lo > 0 and values[lo - 1] < best_r else best_r
    bound = best_r if proven else min(best_r, lower)
    return _finish(
        problem,
        mask,
        best_r,
        bound,
        proven=proven,
        start=start,
        params=params,
        algorithm="bisection on the radius, CP-SAT set cover",
        stats={"radii_tested": float(len(values))},
    )


def solve_location(problem: LocationProblem, *, params: SolveParams | None = None) -> LocationResult:
    """Solve a location problem (see the module docstring for the models and algorithms).

    Raises
    ------
    BudgetTooSmallError, CoverageUnreachableError, RadiusUnreachableError, CapacityShortfallError
        Before solving, when no plan can meet the constraints; the message gives the best achievable value.
    """
    params = params or SolveParams()
    start = time.perf_counter()
    _explain_infeasible(problem)
    if problem.objective in ("max_coverage", "min_cost"):
        return _solve_coverage(problem, params, start)
    if problem.objective == "p_center":
        return _solve_center(problem, params, start)
    if problem.objective == "fixed_charge" and problem.capacity is not None:
        return _solve_capacitated(problem, params, start)
    return _solve_assignment(problem, params, start)
