"""The joint network planner: branches, bookmobile, outreach desks and home delivery weighed in one decision.

Numbers and ids only. The service layer turns a region and a scenario into a :class:`PlannerProblem`.

Decisions
---------
- each branch: closed, or open at one of its staffed-hours levels (reduced, today's, extended), each with an
  annual cost; closing costs its one-off closure cost spread over the scenario's years (annualised);
- each candidate bookmobile stop: not served, or served every ``k`` weeks (``k`` in the allowed intervals), with a
  whole number of vehicles (at most the fleet limit);
- each candidate outreach desk: open or not;
- home delivery: every eligible senior (a share of the senior age group) further than the home-delivery threshold
  from a kept branch receives it, at a cost per recipient.

Value
-----
A resident's *credit* is the best of the services within reach: a branch within the drive standard, a served stop
within the walk standard, an open desk within its catchment, or home delivery for a recipient. Each mode's credit
is hours-aware, ``weight * min(1, hours_per_week / full_hours) ** exponent``: a branch open 40 h a week earns more
than one open 20 h, and a stop visited 4-weekly for 30 minutes (0.125 h a week) earns far less than a weekly one.
Credit is weighted by each age group's *need*, one minus its digital uptake. A resident *meets the standard* with
a branch within the drive standard, a stop within the walk standard visited at least every
``stop_max_interval`` weeks, a desk (when desks count), or home delivery (eligible seniors).

Model and algorithm (decomposition)
-----------------------------------
1. *Selection* (a MIP solved by HiGHS): residents are aggregated into classes with the same reach pattern; the
   MIP picks branch levels, stops and intervals, desks and vehicles, with an assignment of each class to its best
   service for the credit. A served stop costs its dwell plus an *estimated* share of driving (the mean of its two
   nearest neighbours' travel times, times a calibration factor ``alpha``) per visit, and vehicles must have the
   hours for the weekly workload (shift minus lunch minus an estimated depot overhead per vehicle-day).
2. *Routing*: the selected stops are timetabled with :func:`optimizer.bookmobile.plan_timetable` (OR-Tools
   routing per route-day, every stop on its weekday each cycle) with the chosen number of vehicles.
3. *Agreement*: the routed bookmobile cost is compared with the estimate. If they differ by more than the
   tolerance, ``alpha`` becomes routed / estimated driving (and the usable hours shrink when the routing could not
   fit every selected stop), and step 1 runs again. The loop stops when they agree or after ``max_iterations``.

The reported objective is that of the routed plan; the bound is the MIP's dual bound of the last selection (with
its route-cost estimate), and the gap is between the two. Objectives: ``min_cost`` (subject to the standards)
and ``max_coverage`` (credit subject to the budget and the standards); with several years (today and a target
year) every standard and the budget must hold in each, ``min_cost`` minimises the worst year's cost and
``max_coverage`` the worst year's credit share.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer.bookmobile import BookmobileProblem, BookmobileResult, Fleet, plan_timetable
from optimizer.errors import BudgetTooSmallError, CoverageUnreachableError, InfeasibleProblemError, InvalidProblemError
from optimizer.params import SolveParams

PlannerObjective = Literal["min_cost", "max_coverage"]
Progress = Callable[[str, float], None]
WEEKS_PER_YEAR = 52.0
_TIE = 1e-6  # weight of the secondary objective (cheapest among equal coverage, best coverage among equal cost)


@dataclass(frozen=True)
class CreditRule:
    """Credit of one mode: ``weight * min(1, hours_per_week / full_hours) ** exponent``."""

    weight: float = 1.0
    full_hours: float = 40.0
    exponent: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 1:
            raise InvalidProblemError(f"credit weight must lie in [0, 1], not {self.weight!r}")
        if not self.full_hours > 0:
            raise InvalidProblemError(f"credit full_hours must be positive, not {self.full_hours!r}")
        if not self.exponent > 0:
            raise InvalidProblemError(f"credit exponent must be positive, not {self.exponent!r}")

    def credit(self, hours_per_week: np.ndarray | float) -> np.ndarray:
        h = np.clip(np.asarray(hours_per_week, dtype=np.float64) / self.full_hours, 0.0, 1.0)
        return np.asarray(self.weight * h**self.exponent)


@dataclass(frozen=True)
class Credits:
    """Coverage credit per mode (hours- and frequency-aware)."""

    branch: CreditRule = field(default_factory=lambda: CreditRule(1.0, 40.0, 0.5))
    mobile: CreditRule = field(default_factory=lambda: CreditRule(0.6, 2.0, 0.5))
    desk: CreditRule = field(default_factory=lambda: CreditRule(0.5, 20.0, 0.5))
    home_delivery: float = 0.5


@dataclass(frozen=True)
class Standards:
    """Service standards and the targets the plan must meet.

    ``coverage_target`` is the share of all residents who must meet the standard; ``group_targets`` maps an age
    group index to its share; ``zone_max_loss`` is the most any zone (former municipality) may lose against
    today's network, as a share (0.05 = 5 percentage points).
    """

    branch_drive_s: float = 900.0
    stop_walk_s: float = 600.0
    stop_max_interval: int = 2
    desk_counts: bool = False
    home_delivery_beyond_s: float | None = 1200.0
    coverage_target: float | None = None
    group_targets: Mapping[int, float] = field(default_factory=dict)
    zone_max_loss: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("coverage_target", self.coverage_target), ("zone_max_loss", self.zone_max_loss)):
            if value is not None and not 0 <= value <= 1:
                raise InvalidProblemError(f"standards.{name} must lie in [0, 1], not {value!r}")
        for g, value in self.group_targets.items():
            if not 0 <= value <= 1:
                raise InvalidProblemError(f"standards.group_targets[{g}] must lie in [0, 1], not {value!r}")


@dataclass(frozen=True)
class BookmobileCosts:
    """Bookmobile fleet, shift and costs."""

    vehicle_annual: float = 60_000.0
    per_hour: float = 45.0
    per_km: float = 0.9
    max_vehicles: int = 1
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    shift_start_s: int = 9 * 3600
    shift_s: int = 8 * 3600
    lunch_s: int = 1800
    intervals: tuple[int, ...] = (1, 2, 4)
    speed_kmh: float = 40.0  # for km when no distance matrix is given

    def __post_init__(self) -> None:
        if self.max_vehicles < 0:
            raise InvalidProblemError(f"fleet limit must be non-negative, not {self.max_vehicles!r}")
        if not set(self.intervals) <= {1, 2, 3, 4} or not self.intervals:
            raise InvalidProblemError(f"bookmobile intervals must be among 1, 2, 3, 4 weeks, not {self.intervals!r}")
        for name in ("vehicle_annual", "per_hour", "per_km"):
            if getattr(self, name) < 0:
                raise InvalidProblemError(f"bookmobile {name} must be non-negative, not {getattr(self, name)!r}")


@dataclass(frozen=True)
class PlannerProblem:
    """One joint planning problem (see the module docstring).

    Shapes: Y years, N demand points, G age groups, B branches, H hours levels, S candidate stops, D desks.
    """

    population: np.ndarray  # (Y, N, G)
    branch_ids: tuple[str, ...]
    branch_time_s: np.ndarray  # (N, B) door-to-door drive times
    branch_hours: np.ndarray  # (B, H) weekly staffed hours per level, NaN where no such level
    branch_cost: np.ndarray  # (B, H) annual running cost per level
    current_level: np.ndarray  # (B,) today's level
    closure_cost: np.ndarray  # (B,) annualised one-off closure cost
    need: np.ndarray | None = None  # (G,) share of each group needing physical access (1 - digital uptake)
    zone: np.ndarray | None = None  # (N,) zone index (former municipality)
    zone_names: tuple[str, ...] = ()
    keep: np.ndarray | None = None  # (B,) forced open
    close: np.ndarray | None = None  # (B,) forced closed
    stop_ids: tuple[str, ...] = ()
    stop_walk_s: np.ndarray | None = None  # (N, S) walking time to each stop (inf: out of reach)
    stop_dwell_s: np.ndarray | None = None  # (S,)
    stop_community: np.ndarray | None = None  # (S,) int, -1 for none
    stop_travel_s: np.ndarray | None = None  # (S + 1, S + 1) bookmobile travel, node 0 the depot
    stop_dist_m: np.ndarray | None = None  # (S + 1, S + 1) road metres
    stop_conflict: np.ndarray | None = None  # (S, B) stop may not run while that branch is kept
    desk_ids: tuple[str, ...] = ()
    desk_reach: np.ndarray | None = None  # (N, D) bool
    desk_hours: np.ndarray | None = None  # (D,)
    desk_cost: np.ndarray | None = None  # (D,) annual
    senior_group: int = 2
    eligible_share: float = 0.0  # share of the senior group eligible for home delivery
    home_delivery_cost: float = 0.0  # per recipient per year
    credits: Credits = field(default_factory=Credits)
    standards: Standards = field(default_factory=Standards)
    bookmobile: BookmobileCosts = field(default_factory=BookmobileCosts)
    objective: PlannerObjective = "max_coverage"
    budget: float | None = None
    years: tuple[int, ...] = (0,)
    year_labels: tuple[str, ...] = ()  # names of the years in messages (default "year 0", "year 1", ...)
    min_credit: float | None = None  # max_coverage only: credit share at least this (a Pareto sweep's previous)

    def __post_init__(self) -> None:
        pop = np.asarray(self.population, dtype=np.float64)
        if pop.ndim != 3:
            raise InvalidProblemError(f"population must be (years, points, groups), got shape {pop.shape}")
        n_years, n, g = pop.shape
        b = len(self.branch_ids)
        if (pop < 0).any() or not np.isfinite(pop).all():
            raise InvalidProblemError("population must be finite and non-negative")
        if np.shape(self.branch_time_s) != (n, b):
            raise InvalidProblemError(f"branch_time_s must be ({n}, {b}), got {np.shape(self.branch_time_s)}")
        hours = np.asarray(self.branch_hours, dtype=np.float64)
        if hours.ndim != 2 or hours.shape[0] != b or np.shape(self.branch_cost) != hours.shape:
            raise InvalidProblemError("branch_hours and branch_cost must both be (branches, levels)")
        if (np.asarray(self.closure_cost) < 0).any():
            raise InvalidProblemError("closure costs must be non-negative")
        cur = np.asarray(self.current_level)
        if (
            cur.shape != (b,)
            or not np.issubdtype(cur.dtype, np.integer)
            or ((cur < 0) | (cur >= hours.shape[1])).any()
            or not np.isfinite(hours[np.arange(b), cur]).all()
        ):
            raise InvalidProblemError("current_level must name an existing level of each branch")
        if self.objective not in ("min_cost", "max_coverage"):
            raise InvalidProblemError(f"objective must be min_cost or max_coverage, not {self.objective!r}")
        if self.budget is not None and not self.budget > 0:
            raise InvalidProblemError(f"budget must be positive, not {self.budget!r}")
        if not self.years or min(self.years) < 0 or max(self.years) >= n_years:
            raise InvalidProblemError(f"years must index the population's {n_years} year(s), not {self.years!r}")
        if not 0 <= self.senior_group < g:
            raise InvalidProblemError(f"senior_group {self.senior_group} is not one of the {g} groups")
        if not 0 <= self.eligible_share <= 1:
            raise InvalidProblemError(f"eligible_share must lie in [0, 1], not {self.eligible_share!r}")
        if self.need is not None and (
            np.shape(self.need) != (g,) or not ((np.asarray(self.need) >= 0) & (np.asarray(self.need) <= 1)).all()
        ):
            raise InvalidProblemError(f"need must be ({g},) shares in [0, 1]")
        for name in ("keep", "close"):
            if getattr(self, name) is not None and np.shape(getattr(self, name)) != (b,):
                raise InvalidProblemError(f"{name} must be ({b},), got {np.shape(getattr(self, name))}")
        keep, close = self.keep_mask, self.close_mask
        both = keep & close
        if both.any():
            raise InvalidProblemError(
                f"branch(es) {[self.branch_ids[i] for i in np.flatnonzero(both)]} are both forced open and closed"
            )
        s = len(self.stop_ids)
        if s:
            for name, shape in (("stop_walk_s", (n, s)), ("stop_dwell_s", (s,)), ("stop_travel_s", (s + 1, s + 1))):
                if np.shape(getattr(self, name)) != shape:
                    raise InvalidProblemError(f"{name} must be {shape}, got {np.shape(getattr(self, name))}")
        d = len(self.desk_ids)
        if d:
            for name, shape in (("desk_reach", (n, d)), ("desk_hours", (d,)), ("desk_cost", (d,))):
                if np.shape(getattr(self, name)) != shape:
                    raise InvalidProblemError(f"{name} must be {shape}, got {np.shape(getattr(self, name))}")
        for g_idx in self.standards.group_targets:
            if not 0 <= g_idx < g:
                raise InvalidProblemError(f"standards.group_targets: group {g_idx} is not one of the {g} groups")

    def year_name(self, y: int) -> str:
        return self.year_labels[y] if y < len(self.year_labels) else f"year {y}"

    # --- derived -------------------------------------------------------------------------------------------------
    @property
    def keep_mask(self) -> np.ndarray:
        b = len(self.branch_ids)
        return np.zeros(b, dtype=bool) if self.keep is None else np.asarray(self.keep, dtype=bool)

    @property
    def close_mask(self) -> np.ndarray:
        b = len(self.branch_ids)
        return np.zeros(b, dtype=bool) if self.close is None else np.asarray(self.close, dtype=bool)

    @property
    def need_weights(self) -> np.ndarray:
        g = self.population.shape[2]
        return np.ones(g) if self.need is None else np.asarray(self.need, dtype=np.float64)

    @property
    def zones(self) -> np.ndarray:
        n = self.population.shape[1]
        return np.zeros(n, dtype=np.int64) if self.zone is None else np.asarray(self.zone, dtype=np.int64)

    def stop_leg_estimate(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stop: seconds and metres of driving a visit adds, estimated from its two nearest neighbours."""
        s = len(self.stop_ids)
        if not s:
            return np.zeros(0), np.zeros(0)
        t = np.asarray(self.stop_travel_s, dtype=np.float64)
        sym = np.minimum(t, t.T)
        np.fill_diagonal(sym, np.inf)
        near = np.sort(sym[1:], axis=1)[:, :2]  # includes the depot as a neighbour
        near = np.where(np.isfinite(near), near, np.nan)
        leg_s = np.nan_to_num(np.nanmean(near, axis=1), nan=0.0)
        if self.stop_dist_m is not None:
            dm = np.asarray(self.stop_dist_m, dtype=np.float64)
            dsym = np.minimum(dm, dm.T)
            np.fill_diagonal(dsym, np.inf)
            order = np.argsort(sym[1:], axis=1)[:, :2]
            leg_m = np.take_along_axis(dsym[1:], order, axis=1).mean(axis=1)
        else:
            leg_m = leg_s * self.bookmobile.speed_kmh / 3.6
        return leg_s, np.nan_to_num(leg_m, nan=0.0, posinf=0.0)


@dataclass(frozen=True)
class PlanDecision:
    """A plan: the level of each branch (-1 closed), each stop's interval (0 not served), desks and vehicles."""

    branch_level: np.ndarray
    stop_interval: np.ndarray
    desk_open: np.ndarray
    vehicles: int

    @property
    def branch_open(self) -> np.ndarray:
        return np.asarray(self.branch_level) >= 0


def today(problem: PlannerProblem) -> PlanDecision:
    """Today's network: every branch at its current hours, no bookmobile stops, no desks."""
    return PlanDecision(
        np.asarray(problem.current_level, dtype=np.int64).copy(),
        np.zeros(len(problem.stop_ids), dtype=np.int64),
        np.zeros(len(problem.desk_ids), dtype=bool),
        0,
    )


# ---------------------------------------------------------------------------------------------------------------
# evaluation (shared by the solver, the KPIs and the tests)


@dataclass(frozen=True)
class Access:
    """Per demand point, for one decision: the standard met, the credit and the mode giving it."""

    meets: np.ndarray  # (N,) bool, residents other than home-delivery recipients
    hd_point: np.ndarray  # (N,) bool, eligible seniors here receive home delivery
    credit: np.ndarray  # (N,) credit of residents other than recipients
    credit_hd: np.ndarray  # (N,) credit of the recipients
    mode: np.ndarray  # (N,) 'branch', 'bookmobile', 'desk' or 'none'
    nearest_branch_s: np.ndarray  # (N,) drive time to the nearest kept branch (inf if none)


def access(problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None) -> Access:
    """Who is served how under ``decision`` (``stop_served`` overrides which stops actually run)."""
    n = problem.population.shape[1]
    st = problem.standards
    cr = problem.credits
    open_b = decision.branch_open
    level = np.asarray(decision.branch_level)
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    near = np.where(open_b[None, :], t, np.inf).min(axis=1) if open_b.any() else np.full(n, np.inf)
    reach_b = (t <= st.branch_drive_s) & open_b[None, :]
    hours = np.where(open_b, np.asarray(problem.branch_hours)[np.arange(len(open_b)), np.maximum(level, 0)], 0.0)
    b_credit = np.where(reach_b, cr.branch.credit(hours)[None, :], 0.0).max(axis=1, initial=0.0)
    meets = reach_b.any(axis=1)
    best = b_credit.copy()
    mode = np.where(b_credit > 0, "branch", "none").astype(object)
    s = len(problem.stop_ids)
    if s:
        interval = np.asarray(decision.stop_interval, dtype=np.int64)
        served = interval > 0 if stop_served is None else np.asarray(stop_served, dtype=bool) & (interval > 0)
        walk = np.asarray(problem.stop_walk_s, dtype=np.float64)
        reach_s = (walk <= st.stop_walk_s) & served[None, :]
        dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64)
        s_hours = np.where(served, dwell / 3600.0 / np.maximum(interval, 1), 0.0)
        s_credit = np.where(reach_s, cr.mobile.credit(s_hours)[None, :], 0.0).max(axis=1, initial=0.0)
        meets |= (reach_s & (interval <= st.stop_max_interval)[None, :]).any(axis=1)
        mode = np.where(s_credit > best, "bookmobile", mode)
        best = np.maximum(best, s_credit)
    d = len(problem.desk_ids)
    if d:
        opened = np.asarray(decision.desk_open, dtype=bool)
        reach_d = np.asarray(problem.desk_reach, dtype=bool) & opened[None, :]
        d_credit = np.where(reach_d, cr.desk.credit(np.asarray(problem.desk_hours))[None, :], 0.0)
        d_best = d_credit.max(axis=1, initial=0.0)
        if st.desk_counts:
            meets |= reach_d.any(axis=1)
        mode = np.where(d_best > best, "desk", mode)
        best = np.maximum(best, d_best)
    hd_point = np.zeros(n, dtype=bool)
    if st.home_delivery_beyond_s is not None and problem.eligible_share > 0:
        hd_point = near > st.home_delivery_beyond_s
    credit_hd = np.where(hd_point, np.maximum(best, cr.home_delivery), best)
    return Access(meets, hd_point, best, credit_hd, np.asarray(mode, dtype=str), near)


def _recipients(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N) home-delivery recipients."""
    sen = problem.population[:, :, problem.senior_group] * problem.eligible_share
    return np.where(acc.hd_point[None, :], sen, 0.0)


def covered_people(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N, G) residents who meet the standard (home-delivery recipients count as meeting it)."""
    pop = np.asarray(problem.population, dtype=np.float64)
    cov: np.ndarray = pop * acc.meets[None, :, None]
    rec = _recipients(problem, acc)
    g = problem.senior_group
    cov[:, :, g] = np.where(acc.meets[None, :], pop[:, :, g], rec)
    return cov


def credited_need(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N, G) need-weighted credited residents."""
    pop = np.asarray(problem.population, dtype=np.float64)
    need = problem.need_weights
    val: np.ndarray = pop * acc.credit[None, :, None]
    rec = _recipients(problem, acc)
    g = problem.senior_group
    val[:, :, g] += rec * (acc.credit_hd - acc.credit)[None, :]
    weighted: np.ndarray = val * need[None, None, :]
    return weighted


def costs(
    problem: PlannerProblem, decision: PlanDecision, *, bookmobile_operating: float | None = None
) -> dict[str, Any]:
    """Annual cost by mode for each year (home delivery varies with the population); the bookmobile's operating
    cost is the routed one when given, else the estimate."""
    level = np.asarray(decision.branch_level)
    b = len(level)
    open_b = level >= 0
    run = float(np.asarray(problem.branch_cost)[np.arange(b), np.maximum(level, 0)][open_b].sum())
    closure = float(np.asarray(problem.closure_cost)[~open_b].sum())
    if bookmobile_operating is None:
        leg_s, leg_m = problem.stop_leg_estimate()
        bookmobile_operating = float(_stop_costs(problem, leg_s, leg_m, 1.0)[_stop_choice(problem, decision)].sum())
    mobile = float(decision.vehicles * problem.bookmobile.vehicle_annual + bookmobile_operating)
    desks = (
        float(np.asarray(problem.desk_cost)[np.asarray(decision.desk_open, dtype=bool)].sum())
        if len(problem.desk_ids)
        else 0.0
    )
    acc = access(problem, decision)
    recipients = _recipients(problem, acc).sum(axis=1)
    hd = recipients * problem.home_delivery_cost
    totals = run + closure + mobile + desks + hd
    return {
        "branches": run,
        "closures": closure,
        "bookmobile": mobile,
        "desks": desks,
        "home_delivery": hd.tolist(),
        "recipients": recipients.tolist(),
        "total": totals.tolist(),
    }


def _stop_choice(problem: PlannerProblem, decision: PlanDecision) -> np.ndarray:
    """Boolean mask over the (stop, interval) options chosen by ``decision``."""
    ks = problem.bookmobile.intervals
    interval = np.asarray(decision.stop_interval, dtype=np.int64)
    return np.array([interval[s] == k for s in range(len(problem.stop_ids)) for k in ks], dtype=bool)


def _stop_costs(
    problem: PlannerProblem, leg_s: np.ndarray, leg_m: np.ndarray, alpha: float, beta: float = 1.0
) -> np.ndarray:
    """Annual operating cost of each (stop, interval) option, stop-major: ``beta`` x (hours x per-hour cost + km x
    per-km cost) per visit, with ``alpha`` x the estimated driving."""
    bm = problem.bookmobile
    dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64) if len(problem.stop_ids) else np.zeros(0)
    per_visit = beta * (bm.per_hour * (dwell + alpha * leg_s) / 3600.0 + bm.per_km * alpha * leg_m / 1000.0)
    return np.array([per_visit[s] * WEEKS_PER_YEAR / k for s in range(len(dwell)) for k in bm.intervals])


def kpis(
    problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per year: people meeting the standard (overall, by group, by zone), credit share and people by mode."""
    acc = access(problem, decision, stop_served=stop_served)
    cov = covered_people(problem, acc)
    cred = credited_need(problem, acc)
    pop = np.asarray(problem.population, dtype=np.float64)
    need_pop = pop * problem.need_weights[None, None, :]
    zones = problem.zones
    names = problem.zone_names or tuple(str(z) for z in range(int(zones.max(initial=0)) + 1))
    out = []
    for y in range(pop.shape[0]):
        total = float(pop[y].sum())
        by_zone = {}
        for z, name in enumerate(names):
            mask = zones == z
            zt = float(pop[y, mask].sum())
            by_zone[name] = {"population": zt, "covered": float(cov[y, mask].sum()),
                             "share": float(cov[y, mask].sum()) / zt if zt else 1.0}  # fmt: skip
        by_group = {
            int(g): {"population": float(pop[y, :, g].sum()), "covered": float(cov[y, :, g].sum()),
                     "share": float(cov[y, :, g].sum() / pop[y, :, g].sum()) if pop[y, :, g].sum() else 1.0}
            for g in range(pop.shape[2])
        }  # fmt: skip
        people = pop[y].sum(axis=1)
        by_mode = {m: float(people[acc.mode == m].sum()) for m in ("branch", "bookmobile", "desk", "none")}
        by_mode["home_delivery"] = float(_recipients(problem, acc)[y].sum())
        out.append({
            "population": total,
            "covered": float(cov[y].sum()),
            "covered_share": float(cov[y].sum()) / total if total else 1.0,
            "credit_share": float(cred[y].sum() / need_pop[y].sum()) if need_pop[y].sum() else 1.0,
            "by_group": by_group,
            "by_zone": by_zone,
            "people_by_mode": by_mode,
        })  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------------------------
# the selection MIP


class _Model:
    """A small sparse MILP builder over scipy.optimize.milp (HiGHS)."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.c: list[float] = []
        self.r: list[int] = []
        self.col: list[int] = []
        self.val: list[float] = []
        self.rlb: list[float] = []
        self.rub: list[float] = []

    def var(
        self, n: int, lb: float | np.ndarray = 0.0, ub: float | np.ndarray = 1.0, integer: bool = False
    ) -> np.ndarray:
        start = len(self.lb)
        self.lb += np.broadcast_to(np.asarray(lb, dtype=float), (n,)).tolist()
        self.ub += np.broadcast_to(np.asarray(ub, dtype=float), (n,)).tolist()
        self.integer += [int(integer)] * n
        self.c += [0.0] * n
        return np.arange(start, start + n)

    def row(self, idx: np.ndarray | list[int], coef: np.ndarray | list[float] | float, lb: float, ub: float) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        coef = np.broadcast_to(np.asarray(coef, dtype=float), idx.shape)
        keep = coef != 0
        r = len(self.rlb)
        self.r += [r] * int(keep.sum())
        self.col += idx[keep].tolist()
        self.val += coef[keep].tolist()
        self.rlb.append(lb)
        self.rub.append(ub)

    def solve(self, objective: np.ndarray, time_limit_s: float, gap: float) -> Any:
        n = len(self.lb)
        a = sp.csr_matrix((self.val, (self.r, self.col)), shape=(len(self.rlb), n))
        constraints = [LinearConstraint(a, np.array(self.rlb), np.array(self.rub))] if self.rlb else []
        options: dict[str, Any] = {"time_limit": max(0.05, float(time_limit_s)), "disp": False, "mip_rel_gap": gap}
        res = milp(
            objective,
            constraints=constraints,
            integrality=np.array(self.integer),
            bounds=Bounds(np.array(self.lb), np.array(self.ub)),
            options=options,
        )
        if res.status == 4:  # HiGHS "solve error", e.g. its postsolved optimum misses a tolerance: retry unpresolved
            res = milp(
                objective,
                constraints=constraints,
                integrality=np.array(self.integer),
                bounds=Bounds(np.array(self.lb), np.array(self.ub)),
                options={**options, "presolve": False},
            )
        return res


@dataclass
class _Classes:
    """Demand points aggregated by reach pattern."""

    of_point: np.ndarray  # (N,) class of each point
    pop: np.ndarray  # (Y, C, G)
    zone: np.ndarray  # (C,)
    reach_b: np.ndarray  # (C, B) branch within the drive standard
    reach_hd: np.ndarray  # (C, B) branch within the home-delivery threshold
    reach_s: np.ndarray  # (C, S) stop within the walk standard
    reach_d: np.ndarray  # (C, D)


def _classes(problem: PlannerProblem) -> _Classes:
    st = problem.standards
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    n = t.shape[0]
    parts = [t <= st.branch_drive_s]
    hd_thr = st.home_delivery_beyond_s if st.home_delivery_beyond_s is not None else np.inf
    parts.append(t <= hd_thr)
    s_reach = (
        np.asarray(problem.stop_walk_s, dtype=np.float64) <= st.stop_walk_s
        if len(problem.stop_ids)
        else np.zeros((n, 0), dtype=bool)
    )
    d_reach = np.asarray(problem.desk_reach, dtype=bool) if len(problem.desk_ids) else np.zeros((n, 0), dtype=bool)
    zone = problem.zones
    key = np.concatenate([*parts, s_reach, d_reach, (zone[:, None] >> np.arange(16)[None, :]) & 1], axis=1)
    packed = np.packbits(key.astype(np.uint8), axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    c = len(first)
    pop = np.zeros((problem.population.shape[0], c, problem.population.shape[2]))
    np.add.at(pop, cast(Any, (slice(None), inverse)), np.asarray(problem.population, dtype=np.float64))
    b = len(problem.branch_ids)
    return _Classes(inverse, pop, zone[first], key[first, :b], key[first, b : 2 * b],
                    s_reach[first], d_reach[first])  # fmt: skip


@dataclass
class _Selection:
    decision: PlanDecision | None
    status: str  # optimal, time_limit, infeasible
    value: float
    bound: float
    estimated_operating: float
    estimated_driving_s: float
    credit_share: float


def _select(
    problem: PlannerProblem,
    cls: _Classes,
    *,
    alpha: float,
    usable_s: float,
    time_limit_s: float,
    beta: float = 1.0,
    gap: float,
    goal: tuple[str, Any] | None = None,
    relax: frozenset[str] = frozenset(),
) -> _Selection:
    """Build and solve the selection MIP.

    ``goal`` replaces the objective (diagnostics): ``("min_cost", None)``, or ``("max_share", (kind, key, year))``
    maximises one standard's share; ``relax`` names constraints to leave out (``budget``, ``standards``).
    """
    m = _Model()
    bm = problem.bookmobile
    b = len(problem.branch_ids)
    hours = np.asarray(problem.branch_hours, dtype=np.float64)
    cost_bh = np.asarray(problem.branch_cost, dtype=np.float64)
    n_levels = hours.shape[1]
    keep, close = problem.keep_mask, problem.close_mask
    # branch levels
    y_idx = np.full((b, n_levels), -1, dtype=np.int64)
    for i in range(b):
        for h in range(n_levels):
            if np.isfinite(hours[i, h]) and not close[i]:
                y_idx[i, h] = m.var(1, integer=True)[0]
    open_b: list[tuple[np.ndarray, np.ndarray]] = []  # (vars, coefs) of "branch i is open"
    for i in range(b):
        v = y_idx[i][y_idx[i] >= 0]
        open_b.append((v, np.ones(len(v))))
        m.row(v, 1.0, float(keep[i]) if len(v) else 0.0, 1.0)
        if keep[i] and not len(v):
            raise InfeasibleProblemError(f"branch {problem.branch_ids[i]!r} is forced open but has no hours level")
    # stops
    ks = bm.intervals
    s = len(problem.stop_ids) if bm.max_vehicles > 0 else 0
    z_idx = m.var(s * len(ks), integer=True).reshape(s, len(ks)) if s else np.zeros((0, len(ks)), dtype=np.int64)
    leg_s, leg_m = problem.stop_leg_estimate()
    stop_cost = _stop_costs(problem, leg_s, leg_m, alpha, beta)[: s * len(ks)] if s else np.zeros(0)
    v_idx = m.var(1, 0.0, float(bm.max_vehicles if s else 0), integer=True)[0]
    if s:
        dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64)
        for j in range(s):
            m.row(z_idx[j], 1.0, 0.0, 1.0)
        comm = np.asarray(problem.stop_community) if problem.stop_community is not None else np.full(s, -1)
        for c in sorted(set(comm.tolist()) - {-1}):
            members = np.flatnonzero(comm == c)
            if len(members) > 1:
                m.row(z_idx[members].ravel(), 1.0, 0.0, 1.0)
        if problem.stop_conflict is not None:
            conflict = np.asarray(problem.stop_conflict, dtype=bool)
            for j, i in zip(*np.nonzero(conflict), strict=True):
                yv = y_idx[i][y_idx[i] >= 0]
                m.row(np.concatenate([z_idx[j], yv]), 1.0, 0.0, 1.0)
        load = np.array([(dwell[j] + alpha * leg_s[j]) / k for j in range(s) for k in ks])
        m.row(np.concatenate([z_idx.ravel(), [v_idx]]), np.concatenate([load, [-len(bm.weekdays) * usable_s]]),
              -np.inf, 0.0)  # fmt: skip
        # a visit must fit in one vehicle-day
        too_long = dwell + alpha * leg_s > usable_s
        for j in np.flatnonzero(too_long).tolist():
            m.row(z_idx[j], 1.0, 0.0, 0.0)
    # desks
    dn = len(problem.desk_ids)
    o_idx = m.var(dn, integer=True) if dn else np.zeros(0, dtype=np.int64)
    # classes
    nc = cls.pop.shape[1]
    hd_on = problem.standards.home_delivery_beyond_s is not None and problem.eligible_share > 0
    u_idx = m.var(nc, integer=True) if hd_on else np.zeros(0, dtype=np.int64)
    if hd_on:  # u_c = 1 exactly when a kept branch lies within the home-delivery threshold (no delivery there)
        for c in range(nc):
            vs = [open_b[i][0] for i in np.flatnonzero(cls.reach_hd[c])]
            cat = np.concatenate(vs) if vs else np.zeros(0, dtype=np.int64)
            m.row(np.concatenate([[u_idx[c]], cat]), np.concatenate([[1.0], -np.ones(len(cat))]), -np.inf, 0.0)
            for v in vs:  # u_c >= branch open: delivery is not optional where a branch is near
                m.row(np.concatenate([[u_idx[c]], v]), np.concatenate([[1.0], -np.ones(len(v))]), 0.0, np.inf)
    sen = problem.senior_group
    elig = cls.pop[:, :, sen] * problem.eligible_share if hd_on else np.zeros(cls.pop.shape[:2])

    # cost expression per year: constant + coefs over variables
    cost_vars: list[int] = []
    cost_coef: list[float] = []
    const = float(np.asarray(problem.closure_cost, dtype=float).sum())
    for i in range(b):
        for h in range(n_levels):
            if y_idx[i, h] >= 0:
                cost_vars.append(int(y_idx[i, h]))
                cost_coef.append(cost_bh[i, h] - float(problem.closure_cost[i]))
    cost_vars += z_idx.ravel().tolist()
    cost_coef += stop_cost.tolist()
    cost_vars.append(int(v_idx))
    cost_coef.append(bm.vehicle_annual)
    if dn:
        cost_vars += o_idx.tolist()
        cost_coef += np.asarray(problem.desk_cost, dtype=float).tolist()
    hd_cost = problem.home_delivery_cost

    def cost_row(y: int) -> tuple[np.ndarray, np.ndarray, float]:
        if not hd_on:
            return np.array(cost_vars), np.array(cost_coef), const
        # hd cost = cost * elig * (1 - u)
        return (np.concatenate([cost_vars, u_idx]), np.concatenate([cost_coef, -hd_cost * elig[y]]),
                const + hd_cost * float(elig[y].sum()))  # fmt: skip

    # standard "meets" per class
    st = problem.standards
    need_std = (
        st.coverage_target is not None or bool(st.group_targets) or st.zone_max_loss is not None or goal is not None
    )
    mc_idx = m.var(nc) if need_std else np.zeros(0, dtype=np.int64)
    me_idx = m.var(nc) if need_std and hd_on else np.zeros(0, dtype=np.int64)
    if need_std:
        for c in range(nc):
            vs = [open_b[i][0] for i in np.flatnonzero(cls.reach_b[c])]
            if s:
                ok = [q for q, k in enumerate(ks) if k <= st.stop_max_interval]
                vs += [z_idx[j, ok] for j in np.flatnonzero(cls.reach_s[c])]
            if dn and st.desk_counts:
                vs.append(o_idx[cls.reach_d[c]])
            cat = np.concatenate(vs).astype(np.int64) if vs else np.zeros(0, dtype=np.int64)
            m.row(np.concatenate([[mc_idx[c]], cat]), np.concatenate([[1.0], -np.ones(len(cat))]), -np.inf, 0.0)
            if hd_on:  # eligible seniors: met by the standard or by home delivery (1 - u)
                m.row(np.concatenate([[me_idx[c]], cat, [u_idx[c]]]),
                      np.concatenate([[1.0], -np.ones(len(cat)), [1.0]]), -np.inf, 1.0)  # fmt: skip

    def covered_expr(y: int, mask_c: np.ndarray, groups: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Variables and coefficients of the people meeting the standard in the classes and groups given."""
        p = cls.pop[y][:, groups].sum(axis=1) * mask_c
        if not hd_on:
            return mc_idx, p
        e = elig[y] * mask_c if sen in groups else np.zeros(nc)
        return np.concatenate([mc_idx, me_idx]), np.concatenate([p - e, e])

    G = cls.pop.shape[2]
    all_groups = list(range(G))
    every = np.ones(nc)
    standard_rows: list[tuple[str, Any, int, np.ndarray, np.ndarray, float]] = []  # (kind, key, year, vars, coefs, rhs)
    # today's coverage, the reference of the per-zone loss limit
    today_cov = covered_people(problem, access(problem, today(problem))) if st.zone_max_loss is not None else None
    for y in problem.years:
        if st.coverage_target is not None:
            v, cf = covered_expr(y, every, all_groups)
            standard_rows.append(("coverage", None, y, v, cf, st.coverage_target * float(cls.pop[y].sum())))
        for g, target in sorted(st.group_targets.items()):
            v, cf = covered_expr(y, every, [g])
            standard_rows.append(("group", g, y, v, cf, target * float(cls.pop[y][:, g].sum())))
        if st.zone_max_loss is not None:
            zones = problem.zones
            for z in sorted(set(cls.zone.tolist())):
                mask_n = zones == z
                tz = float(problem.population[y][mask_n].sum())
                if tz <= 0:
                    continue
                assert today_cov is not None
                share_today = float(today_cov[y][mask_n].sum()) / tz
                v, cf = covered_expr(y, (cls.zone == z).astype(float), all_groups)
                standard_rows.append(("zone", z, y, v, cf, max(0.0, share_today - st.zone_max_loss) * tz))
    if "standards" not in relax:
        for _, _, _, v, cf, rhs in standard_rows:
            m.row(v, cf, rhs - 1e-6, np.inf)

    # credit assignment (max_coverage, and the tie-break of min_cost)
    need = problem.need_weights
    cred_vars: list[int] = []
    cred_coef_y: list[np.ndarray] = []  # per year, coefficients aligned with cred_vars
    want_credit = (problem.objective == "max_coverage" or problem.min_credit is not None) and goal is None
    if want_credit:
        b_credit = problem.credits.branch.credit(np.nan_to_num(hours, nan=0.0))
        s_credit = (
            problem.credits.mobile.credit(np.asarray(problem.stop_dwell_s)[:, None] / 3600.0 / np.asarray(ks)[None, :])
            if s
            else np.zeros((0, len(ks)))
        )
        d_credit = problem.credits.desk.credit(np.asarray(problem.desk_hours)) if dn else np.zeros(0)
        w_rest = np.einsum("ycg,g->yc", cls.pop, need) - elig * need[sen]  # (Y, C)
        w_elig = elig * need[sen]
        for part, weight in (("rest", w_rest), ("elig", w_elig)):
            if part == "elig" and not hd_on:
                continue
            for c in range(nc):
                if not weight[:, c].any():
                    continue
                opts: list[tuple[int, float]] = []  # (open variable, credit)
                for i in np.flatnonzero(cls.reach_b[c]).tolist():
                    opts += [(int(y_idx[i, h]), float(b_credit[i, h])) for h in range(n_levels) if y_idx[i, h] >= 0]
                if s:
                    for j in np.flatnonzero(cls.reach_s[c]).tolist():
                        opts += [(int(z_idx[j, q]), float(s_credit[j, q])) for q in range(len(ks))]
                if dn:
                    opts += [(int(o_idx[d]), float(d_credit[d])) for d in np.flatnonzero(cls.reach_d[c])]
                if part == "elig":
                    opts.append((-1, problem.credits.home_delivery))  # available when 1 - u_c
                opts = [o for o in opts if o[1] > 0]
                if not opts:
                    continue
                x = m.var(len(opts))
                m.row(x, 1.0, 0.0, 1.0)
                for xv, (ov, _) in zip(x, opts, strict=True):
                    if ov >= 0:
                        m.row([xv, ov], [1.0, -1.0], -np.inf, 0.0)
                    else:
                        m.row([xv, u_idx[c]], [1.0, 1.0], -np.inf, 1.0)
                cred_vars += x.tolist()
                cred_coef_y.append(np.array([[o[1] * weight[y, c] for o in opts] for y in range(cls.pop.shape[0])]))

    n_var = len(m.lb)
    obj = np.zeros(n_var + 1)
    t_col = n_var
    goal_kind = goal[0] if goal is not None else problem.objective
    # the epigraph variable (worst year), last column: a cost, or a credit share
    m.var(1, 0.0, np.inf) if goal_kind == "min_cost" else m.var(1, -1.0, 2.0)
    need_tot = np.einsum("ycg,g->y", cls.pop, need)
    cred_mat = np.concatenate(cred_coef_y, axis=1) if cred_coef_y else np.zeros((cls.pop.shape[0], 0))
    budget = problem.budget if "budget" not in relax else None
    goal_kind = goal[0] if goal is not None else problem.objective
    if goal_kind in ("min_cost",):
        for y in problem.years:
            v, cf, k0 = cost_row(y)
            m.row(np.concatenate([v, [t_col]]), np.concatenate([cf, [-1.0]]), -np.inf, -k0)  # t >= cost_y
        obj[t_col] = 1.0
        if want_credit and cred_vars:
            scale = max(1.0, float(np.asarray(problem.branch_cost).max(initial=1.0)))
            obj[cred_vars] -= _TIE * scale * cred_mat[problem.years[0]] / max(need_tot[problem.years[0]], 1e-9)
    elif goal_kind == "max_coverage":
        for y in problem.years:  # t <= credit_y / need_y
            m.row(np.concatenate([cred_vars, [t_col]]), np.concatenate([-cred_mat[y] / max(need_tot[y], 1e-9),
                  [1.0]]), -np.inf, 0.0)  # fmt: skip
        obj[t_col] = -1.0
        v, cf, _ = cost_row(problem.years[0])
        scale = max(problem.budget or 0.0, 1.0) if problem.budget else max(float(np.abs(cf).sum()), 1.0)
        np.add.at(obj, v, _TIE * cf / scale)
    else:  # max_share of one standard row
        kind, key, year = goal[1] if goal is not None else (None, None, 0)
        rows = [r for r in standard_rows if (r[0], r[1], r[2]) == (kind, key, year)]
        _, v, cf, _ = rows[0][2], rows[0][3], rows[0][4], rows[0][5]
        np.add.at(obj, v, -cf)
    if problem.min_credit is not None and cred_vars and goal is None:
        for y in problem.years:
            m.row(cred_vars, cred_mat[y] / max(need_tot[y], 1e-9), problem.min_credit - 1e-7, np.inf)
    if budget is not None:
        for y in problem.years:
            v, cf, k0 = cost_row(y)
            m.row(v, cf, -np.inf, float(budget) - k0 + 1e-6)
    obj = np.concatenate([obj, np.zeros(len(m.lb) - len(obj))])
    res = m.solve(obj, time_limit_s, gap)
    if res.x is None:
        status = "infeasible" if res.status == 2 else "time_limit"
        return _Selection(None, status, np.inf, -np.inf, 0.0, 0.0, 0.0)
    xv = res.x
    level = np.full(b, -1, dtype=np.int64)
    for i in range(b):
        for h in range(n_levels):
            if y_idx[i, h] >= 0 and xv[y_idx[i, h]] > 0.5:
                level[i] = h
    interval = np.zeros(len(problem.stop_ids), dtype=np.int64)
    for j in range(s):
        for q, k in enumerate(ks):
            if xv[z_idx[j, q]] > 0.5:
                interval[j] = k
    desks = xv[o_idx] > 0.5 if dn else np.zeros(0, dtype=bool)
    decision = PlanDecision(level, interval, desks, round(float(xv[v_idx])))
    chosen = _stop_choice(problem, decision)
    operating = float(stop_cost[chosen[: len(stop_cost)]].sum()) if s else 0.0
    driving = float(sum(alpha * leg_s[j] * WEEKS_PER_YEAR / interval[j] for j in range(s) if interval[j]))
    bound = float(getattr(res, "mip_dual_bound", np.nan))
    value = float(res.fun)
    if not np.isfinite(bound):
        bound = value
    credit = float(xv[t_col]) if goal_kind == "max_coverage" else float("nan")
    return _Selection(decision, "optimal" if res.status == 0 else "time_limit", value, bound, operating, driving,
                      credit)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# routing and the decomposition loop


@dataclass(frozen=True)
class PlannerResult:
    """The plan, its routed bookmobile timetable, costs, KPIs and solver statistics."""

    status: str  # optimal (routed = estimate, MIP proven), feasible, time_limit
    objective: float  # min_cost: worst-year annual cost; max_coverage: worst-year credit share (routed plan)
    bound: float
    gap: float
    runtime_s: float
    iterations: int
    decision: PlanDecision
    stop_served: np.ndarray  # (S,) stops the routing actually timetabled
    timetable: BookmobileResult | None
    costs: dict[str, Any]
    kpis: list[dict[str, Any]]
    kpis_today: list[dict[str, Any]]
    costs_today: dict[str, Any]
    history: tuple[dict[str, float], ...]
    warnings: tuple[str, ...] = ()


def _route(
    problem: PlannerProblem, decision: PlanDecision, params: SolveParams
) -> tuple[BookmobileResult | None, np.ndarray, float, float]:
    """Timetable the selected stops; return the result, which stops were served, operating cost and driving/yr."""
    s = len(problem.stop_ids)
    chosen = np.flatnonzero(np.asarray(decision.stop_interval) > 0)
    served = np.zeros(s, dtype=bool)
    if not len(chosen) or decision.vehicles == 0:
        return None, served, 0.0, 0.0
    bm = problem.bookmobile
    nodes = np.concatenate([[0], chosen + 1])
    travel = np.asarray(problem.stop_travel_s, dtype=np.float64)[np.ix_(nodes, nodes)]
    dist = (
        None if problem.stop_dist_m is None else np.asarray(problem.stop_dist_m, dtype=np.float64)[np.ix_(nodes, nodes)]
    )
    ids = tuple(problem.stop_ids[j] for j in chosen)
    comm = None
    if problem.stop_community is not None:
        comm = tuple("" if c < 0 else f"c{c}" for c in np.asarray(problem.stop_community)[chosen])
    fleet = Fleet(vehicles=decision.vehicles, weekdays=bm.weekdays, shift_start_s=bm.shift_start_s, shift_s=bm.shift_s,
                  lunch_s=bm.lunch_s)  # fmt: skip
    bp = BookmobileProblem(
        travel_s=travel, stop_ids=ids, prize=np.full(len(chosen), 1e6),
        dwell_s=np.asarray(problem.stop_dwell_s, dtype=np.float64)[chosen],
        interval_weeks=np.asarray(decision.stop_interval)[chosen], fleet=fleet, community=comm,
    )  # fmt: skip
    result = plan_timetable(bp, params=params)
    pos = {sid: q for q, sid in enumerate(ids)}
    operating = 0.0
    driving = 0.0
    for day in result.route_days:
        per_year = WEEKS_PER_YEAR / day.interval
        order = [0, *(pos[x] + 1 for x in day.stops), 0]
        km = (
            sum(dist[a, c] for a, c in itertools.pairwise(order)) / 1000.0
            if dist is not None
            else day.driving_s * bm.speed_kmh / 3600.0
        )
        dwell = sum(bp.dwell_s[pos[x]] for x in day.stops)
        operating += per_year * (bm.per_hour * (dwell + day.driving_s) / 3600.0 + bm.per_km * km)
        driving += per_year * day.driving_s
        for x in day.stops:
            served[chosen[pos[x]]] = True
    return result, served, operating, driving


def _objective_value(problem: PlannerProblem, decision: PlanDecision, served: np.ndarray, operating: float) -> float:
    if problem.objective == "min_cost":
        c = costs(problem, decision, bookmobile_operating=operating)
        return float(max(c["total"][y] for y in problem.years))
    k = kpis(problem, decision, stop_served=served)
    return float(min(k[y]["credit_share"] for y in problem.years))


def solve_plan(
    problem: PlannerProblem,
    *,
    params: SolveParams | None = None,
    max_iterations: int = 5,
    tolerance: float = 0.02,
    progress: Progress | None = None,
) -> PlannerResult:
    """Solve the joint plan by selection, routing and re-estimation (see the module docstring).

    Raises
    ------
    BudgetTooSmallError
        The budget is below the cheapest plan that honours the forced decisions (the message gives that cost).
    CoverageUnreachableError
        A standard no plan can meet (the message names it and gives the best achievable share).
    """
    params = params or SolveParams()
    t0 = time.perf_counter()
    deadline = t0 + params.time_limit_s
    cls = _classes(problem)
    bm = problem.bookmobile
    depot = np.asarray(problem.stop_travel_s, dtype=np.float64)[0, 1:] if len(problem.stop_ids) else np.zeros(0)
    overhead = 2.0 * float(np.median(depot)) if len(depot) else 0.0
    usable = max(bm.shift_s - bm.lunch_s - overhead, 0.0)
    alpha = beta = 1.0
    history: list[dict[str, float]] = []
    best: tuple[float, PlanDecision, np.ndarray, BookmobileResult | None, float, _Selection, bool] | None = None
    iterations = 0
    warnings: list[str] = []
    previous: PlanDecision | None = None
    for it in range(max_iterations):
        remaining = deadline - time.perf_counter()
        if it and remaining < 1.0:
            warnings.append(f"stopped after {it} iteration(s): time limit")
            break
        iterations = it + 1
        if progress:
            progress("select", it / max_iterations)
        sel = _select(problem, cls, alpha=alpha, beta=beta, usable_s=usable, time_limit_s=max(1.0, 0.6 * remaining),
                      gap=params.gap_tolerance)  # fmt: skip
        if sel.decision is None:
            if best is not None:
                break
            if sel.status == "infeasible":
                _explain_infeasible(problem, cls, alpha, usable, params)
            raise InfeasibleProblemError(f"no plan found within the time limit ({params.time_limit_s:g} s)")
        if progress:
            progress("route", (it + 0.5) / max_iterations)
        # routing ends on a work budget (solutions), so the same inputs give the same timetable on a busy machine;
        # the time limit is a safety net
        n_chosen = int((np.asarray(sel.decision.stop_interval) > 0).sum())
        route_s = min(2.0 + 0.5 * n_chosen, params.time_limit_s / 3, deadline - time.perf_counter())
        route_params = replace(params, time_limit_s=max(1.0, route_s), solution_limit=50 + 10 * n_chosen)
        timetable, served, operating, driving = _route(problem, sel.decision, route_params)
        value = _objective_value(problem, sel.decision, served, operating)
        chosen = int((np.asarray(sel.decision.stop_interval) > 0).sum())
        dropped = chosen - int(served.sum())
        diff = abs(operating - sel.estimated_operating) / max(
            1.0, max(costs(problem, sel.decision, bookmobile_operating=operating)["total"])
        )
        history.append({"iteration": it + 1, "alpha": alpha, "beta": beta, "usable_h": usable / 3600,
                        "estimated_operating": sel.estimated_operating, "routed_operating": operating,
                        "stops_selected": chosen, "stops_routed": int(served.sum()), "objective": value,
                        "bound": -sel.bound if problem.objective == "max_coverage" else sel.bound,
                        "relative_difference": diff})  # fmt: skip
        broken = _violates(problem, sel.decision, served, operating)
        better = best is None or (value < best[0] if problem.objective == "min_cost" else value > best[0])
        if (better and not broken) or best is None or (best[6] and not broken):
            best = (value, sel.decision, served, timetable, operating, sel, broken)
        if not broken and dropped == 0 and diff <= tolerance:
            break
        if dropped:
            usable *= 0.85
        if previous is not None and _same(previous, sel.decision) and not broken:
            break  # the estimate no longer changes the selection
        previous = sel.decision
        if driving > 0 and sel.estimated_driving_s > 0:
            alpha = float(np.clip(alpha * driving / sel.estimated_driving_s, 0.25, 10.0))
        if operating > 0 and sel.estimated_operating > 0:
            beta = float(np.clip(beta * operating / sel.estimated_operating, 0.1, 10.0))
    assert best is not None
    value, decision, served, timetable, operating, sel, broken = best
    if broken:
        warnings.extend(f"the routed plan misses: {why}" for why in _broken(problem, decision, served, operating))
    bound = sel.bound
    if problem.objective == "max_coverage":
        bound = max(-bound, value) if np.isfinite(bound) else value  # the MIP minimised -credit
        gap = (bound - value) / bound if bound > 0 else 0.0
    else:
        bound = min(bound, value)
        gap = (value - bound) / value if value > 0 else 0.0
    agreed = history and history[-1]["relative_difference"] <= tolerance
    status = (
        "optimal"
        if sel.status == "optimal" and agreed and not broken and gap <= max(params.gap_tolerance, 1e-4)
        else ("time_limit" if sel.status == "time_limit" else "feasible")
    )
    if progress:
        progress("done", 1.0)
    base = today(problem)
    return PlannerResult(
        status=status, objective=value, bound=bound, gap=max(gap, 0.0), runtime_s=time.perf_counter() - t0,
        iterations=iterations, decision=decision, stop_served=served, timetable=timetable,
        costs=costs(problem, decision, bookmobile_operating=operating),
        kpis=kpis(problem, decision, stop_served=served), kpis_today=kpis(problem, base),
        costs_today=costs(problem, base, bookmobile_operating=0.0), history=tuple(history), warnings=tuple(warnings),
    )  # fmt: skip


def _same(a: PlanDecision, b: PlanDecision) -> bool:
    return (
        np.array_equal(a.branch_level, b.branch_level)
        and np.array_equal(a.stop_interval, b.stop_interval)
        and np.array_equal(a.desk_open, b.desk_open)
        and a.vehicles == b.vehicles
    )


def _broken(problem: PlannerProblem, decision: PlanDecision, served: np.ndarray, operating: float) -> list[str]:
    """What the routed plan misses: standards (stops the routing could not fit) and the budget (routed costs)."""
    out = standard_shortfalls(problem, decision, stop_served=served)
    if problem.budget is not None:
        total = costs(problem, decision, bookmobile_operating=operating)["total"]
        worst = max(total[y] for y in problem.years)
        if worst > problem.budget * (1 + 1e-9):
            out.append(f"annual cost {worst:,.0f} with the routed bookmobile > budget {problem.budget:,.0f}")
    return out


def _violates(problem: PlannerProblem, decision: PlanDecision, served: np.ndarray, operating: float) -> bool:
    return bool(_broken(problem, decision, served, operating))


def standard_shortfalls(
    problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None
) -> list[str]:
    """The standards ``decision`` misses, each with its target and achieved share (empty: all met)."""
    st = problem.standards
    k = kpis(problem, decision, stop_served=stop_served)
    base = kpis(problem, today(problem))
    out = []
    for y in problem.years:
        if st.coverage_target is not None and k[y]["covered_share"] < st.coverage_target - 1e-6:
            out.append(
                f"{problem.year_name(y)}: coverage {k[y]['covered_share']:.2%} < target {st.coverage_target:.2%}"
            )
        for g, target in st.group_targets.items():
            share = k[y]["by_group"][g]["share"]
            if share < target - 1e-6:
                out.append(f"{problem.year_name(y)}: group {g} coverage {share:.2%} < target {target:.2%}")
        if st.zone_max_loss is not None:
            for name, z in k[y]["by_zone"].items():
                loss = base[y]["by_zone"][name]["share"] - z["share"]
                if loss > st.zone_max_loss + 1e-6:
                    out.append(f"{problem.year_name(y)}: zone {name} loses {loss:.2%} > {st.zone_max_loss:.2%}")
    return out


def _explain_infeasible(
    problem: PlannerProblem, cls: _Classes, alpha: float, usable: float, params: SolveParams
) -> None:
    """Raise an error saying why no plan exists: the budget, or a standard, with the best achievable value."""
    limit = max(1.0, params.time_limit_s / 4)
    if problem.budget is not None:
        cheapest = _select(problem, cls, alpha=alpha, usable_s=usable, time_limit_s=limit, gap=1e-6,
                           goal=("min_cost", None), relax=frozenset({"budget", "standards"}))  # fmt: skip
        if cheapest.decision is not None and cheapest.value > problem.budget * (1 + 1e-9):
            raise BudgetTooSmallError(
                f"budget: {problem.budget:,.0f} a year is below the cheapest plan that honours the forced decisions "
                f"({cheapest.value:,.0f} a year)"
            )
    st = problem.standards
    names: list[tuple[str, Any, float, str]] = []
    if st.coverage_target is not None:
        names.append(("coverage", None, st.coverage_target, "standards.coverage_target"))
    for g, target in sorted(st.group_targets.items()):
        names.append(("group", g, target, f"standards.group_targets[{g}]"))
    for kind, key, target, label in names:
        for y in problem.years:
            relax = frozenset({"standards"})
            best = _select(problem, cls, alpha=alpha, usable_s=usable, time_limit_s=limit, gap=1e-6,
                           goal=("max_share", (kind, key, y)), relax=relax)  # fmt: skip
            if best.decision is None:
                continue
            k = kpis(problem, best.decision)[y]
            share = k["covered_share"] if kind == "coverage" else k["by_group"][key]["share"]
            if share < target - 1e-6:
                within = f" within the budget of {problem.budget:,.0f}" if problem.budget is not None else ""
                raise CoverageUnreachableError(
                    f"{label}: {target:.1%} of residents cannot meet the standard in {problem.year_name(y)}{within}; "
                    f"the best achievable is {share:.1%}"
                )
    if st.zone_max_loss is not None:
        raise CoverageUnreachableError(
            f"standards.zone_max_loss: no plan keeps every zone within {st.zone_max_loss:.1%} of today's coverage "
            "together with the other standards and the budget; relax it or raise the budget"
        )
    raise InfeasibleProblemError(
        "no plan meets the standards together (each is reachable alone); relax one of them or raise the budget"
    )


def pareto_front(
    problem: PlannerProblem,
    budgets: list[float],
    *,
    params: SolveParams | None = None,
    progress: Progress | None = None,
) -> list[tuple[float, PlannerResult | None, str]]:
    """Maximise coverage at each budget (ascending); each point's credit is at least the previous point's, so
    coverage is non-decreasing in the budget. Returns (budget, result or None, message) per budget."""
    params = params or SolveParams()
    out: list[tuple[float, PlannerResult | None, str]] = []
    floor: float | None = None
    per = replace(params, time_limit_s=max(2.0, params.time_limit_s / max(1, len(budgets))))
    for q, budget in enumerate(sorted(budgets)):
        if progress:
            progress("pareto", q / len(budgets))
        p = replace(problem, objective="max_coverage", budget=budget,
                    min_credit=None if floor is None else floor * (1 - 1e-9))  # fmt: skip
        try:
            r = solve_plan(p, params=per)
        except InfeasibleProblemError as exc:
            out.append((budget, None, str(exc)))
            continue
        floor = r.objective if floor is None else max(floor, r.objective)
        out.append((budget, r, r.status))
    if progress:
        progress("pareto", 1.0)
    return out


def non_dominated(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, coverage) points no other point dominates (cheaper-or-equal and better-or-equal)."""
    keep: list[int] = []
    for i, (c, v) in enumerate(points):
        dominated = any((c2 <= c and v2 >= v) and (c2 < c or v2 > v) for j, (c2, v2) in enumerate(points) if j != i)
        if not dominated and not any(points[j] == (c, v) for j in keep):
            keep.append(i)
    return keep
