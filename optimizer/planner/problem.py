"""The joint planner's problem and result types: numbers and ids only (see :mod:`optimizer.planner`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from optimizer.bookmobile import BookmobileResult
from optimizer.errors import InvalidProblemError

PlannerObjective = Literal["min_cost", "max_coverage"]
#: ``optimal``: the gap to a valid bound is within the tolerance; ``feasible``: a plan meeting every constraint,
#: not proven optimal; ``time_limit``: the search stopped on its time limit with a plan; ``infeasible``: no plan
#: meeting every constraint was found (the warnings say what the best plan found misses).
PlannerStatus = Literal["optimal", "feasible", "time_limit", "infeasible"]
WEEKS_PER_YEAR = 52.0


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
class VisitModel:
    """The attendance model's parameters (:mod:`optimizer.visits`)."""

    per_resident: float = 3.0
    decay_min: float = 15.0
    home_delivery_per_recipient: float = 12.0

    def __post_init__(self) -> None:
        for name in ("per_resident", "decay_min", "home_delivery_per_recipient"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0) or (name == "decay_min" and value <= 0):
                raise InvalidProblemError(f"visits.{name} must be a positive number, not {value!r}")


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
    area: np.ndarray | None = None  # (N,) census area index, for KPIs by area
    area_names: tuple[str, ...] = ()
    branch_dist_m: np.ndarray | None = None  # (N, B) road metres, for the two-mile test in the KPIs
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
    #: (N,) residents who must meet the standard whatever else (a roadmap's no gap in service); None for none
    must_meet: np.ndarray | None = None
    #: expected visits (:mod:`optimizer.visits`) and, optionally, the share of today's a plan must keep in every
    #: optimised year (checked on every plan; the selection MIP does not model it, so its bound stays valid)
    visits: VisitModel = field(default_factory=lambda: VisitModel())
    min_visits_share: float | None = None

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
        if self.branch_dist_m is not None and np.shape(self.branch_dist_m) != (n, b):
            raise InvalidProblemError(f"branch_dist_m must be ({n}, {b}), got {np.shape(self.branch_dist_m)}")
        if self.area is not None and (
            np.shape(self.area) != (n,) or len(self.area_names) <= int(np.max(self.area, initial=-1))
        ):
            raise InvalidProblemError(f"area must be ({n},) indices into area_names")
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
        if self.min_visits_share is not None and not 0 < self.min_visits_share <= 1:
            raise InvalidProblemError(f"min_visits_share must lie in (0, 1], not {self.min_visits_share!r}")
        if self.must_meet is not None and np.shape(self.must_meet) != (n,):
            raise InvalidProblemError(f"must_meet must be ({n},), got {np.shape(self.must_meet)}")
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

    def stop_arc_cost(self) -> np.ndarray:
        """(S + 1, S + 1) operating money of driving each leg between the depot (0) and the stops: the hourly cost
        of the driving time plus the per-km cost of its road distance (from the speed when no distances)."""
        t = np.asarray(self.stop_travel_s, dtype=np.float64)
        d = (
            np.asarray(self.stop_dist_m, dtype=np.float64)
            if self.stop_dist_m is not None
            else t * self.bookmobile.speed_kmh / 3.6
        )
        bm = self.bookmobile
        return np.asarray(bm.per_hour * t / 3600.0 + bm.per_km * d / 1000.0)

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


@dataclass(frozen=True)
class PlannerResult:
    """The plan, its routed bookmobile timetable, costs, KPIs and what the search proved.

    ``objective`` is the worst optimised year's annual cost (``min_cost``) or need-weighted credit share
    (``max_coverage``) of the routed plan. ``bound`` is a valid lower bound (``min_cost``) or upper bound
    (``max_coverage``) on that objective over **every** plan of the model, routed bookmobile cost included, or
    ``None`` when none was established; ``gap`` is ``|objective - bound| / |objective|`` (``None`` without a
    bound). ``search`` says how the branch patterns were searched and how the bound was obtained.
    """

    status: PlannerStatus
    objective: float
    bound: float | None
    gap: float | None
    runtime_s: float
    iterations: int
    decision: PlanDecision
    stop_served: np.ndarray  # (S,) stops the routing actually timetabled
    timetable: BookmobileResult | None
    costs: dict[str, Any]
    kpis: list[dict[str, Any]]
    kpis_today: list[dict[str, Any]]
    costs_today: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()
    search: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph: status, objective, bound and gap, the decision and the search."""
        kept = int(self.decision.branch_open.sum())
        stops = int(np.asarray(self.stop_served).sum())
        bound = "none" if self.bound is None else f"{self.bound:,.4f}"
        gap = "unknown" if self.gap is None else f"{self.gap:.2%}"
        method = self.search.get("method", "")
        return (
            f"planner: {self.status}, objective {self.objective:,.4f}, bound {bound}, gap {gap}; "
            f"{kept} of {len(self.decision.branch_level)} branches open, {self.decision.vehicles} vehicle(s) "
            f"serving {stops} stop(s), {int(np.sum(self.decision.desk_open))} desk(s); {self.iterations} "
            f"iteration(s), {self.runtime_s:.1f} s" + (f"; search: {method}" if method else "")
        )
