"""Scenario files (YAML or JSON), validated with pydantic; every error names its field.

One schema for every study. A scenario holds the region, the objective (``min_cost``, ``max_coverage`` or
``pareto`` for the joint planner of branches, bookmobile, outreach desks and home delivery), the budget, the
service standards, the coverage credit per mode, the costs, the fleet, opening hours as a decision, a
demographic projection, digital uptake, forced decisions and equity constraints (see
``examples/rutland_network.yaml``). A ``location`` section makes it a *branch-only study* instead: which branches
to keep by one of the location models of :mod:`optimizer.location` (p-median, attendance, maximal covering,
minimum cost, p-center, fixed charge; see ``examples/rutland_location.yaml``), with ``objective: location``.
Both produce the same ``plan.json`` layout and layers (:mod:`service.plans.pipeline`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimizer.errors import InvalidProblemError
from service.config import REPO_ROOT

AGE_GROUPS = ("age_0_17", "age_18_64", "age_65_plus")
#: Longest scenario name (it titles reports and maps).
MAX_NAME_CHARS = 200
AgeGroup = Literal["age_0_17", "age_18_64", "age_65_plus"]


class _Strict(BaseModel):
    # no infinities or NaN: YAML's .inf and .nan would pass every bound (inf > 0) and break the solvers
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CreditSpec(_Strict):
    """``weight * min(1, hours_per_week / full_hours) ** exponent``."""

    weight: float = Field(default=1.0, ge=0, le=1)
    full_hours: float = Field(default=40.0, gt=0)
    exponent: float = Field(default=0.5, gt=0)


class CreditsSpec(_Strict):
    branch: CreditSpec = CreditSpec(weight=1.0, full_hours=40.0)
    bookmobile: CreditSpec = CreditSpec(weight=0.6, full_hours=2.0)
    desk: CreditSpec = CreditSpec(weight=0.5, full_hours=20.0)
    home_delivery: float = Field(default=0.5, ge=0, le=1)


class StandardsSpec(_Strict):
    """What "served" means, and the targets the plan must meet."""

    branch_drive_min: float = Field(default=15.0, gt=0)
    stop_walk_min: float = Field(default=10.0, gt=0)
    stop_max_interval_weeks: int = Field(default=2, ge=1, le=4)
    desk_counts: bool = False
    home_delivery_beyond_min: float | None = Field(default=20.0, gt=0)
    coverage_target: float | None = Field(default=None, ge=0, le=1)
    group_targets: dict[AgeGroup, float] = Field(default_factory=dict)
    zone_max_loss_pp: float | None = Field(default=None, ge=0, le=100)

    @field_validator("group_targets")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not 0 <= x <= 1:
                raise ValueError(f"{k}: a share in [0, 1], not {x}")
        return v


class BookmobileCostSpec(_Strict):
    vehicle_annual: float = Field(default=60_000.0, ge=0)
    per_hour: float = Field(default=45.0, ge=0)
    per_km: float = Field(default=0.9, ge=0)


class CostsSpec(_Strict):
    closure_years: float = Field(default=5.0, gt=0)
    per_staffed_hour: float = Field(default=60.0, ge=0, description="annual cost of one weekly staffed hour is x 52")
    bookmobile: BookmobileCostSpec = BookmobileCostSpec()
    desk_per_hour: float = Field(default=40.0, ge=0, description="per staffed desk hour (x 52 weeks)")
    home_delivery_per_recipient: float = Field(default=350.0, ge=0)


class HoursSpec(_Strict):
    """Opening hours as a decision: each kept branch may run at today's hours times one of these factors."""

    levels: list[float] = Field(default_factory=lambda: [0.75, 1.0, 1.25])
    min_hours: float = Field(default=8.0, ge=0)
    max_hours: float = Field(default=70.0, gt=0)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if not v or any(x <= 0 for x in v):
            raise ValueError("hours levels must be positive factors of today's hours, e.g. [0.75, 1.0, 1.25]")
        if 1.0 not in v:
            v = sorted([*v, 1.0])
        return sorted(set(v))


class FleetSpec(_Strict):
    max_vehicles: int = Field(default=1, ge=0, le=20)
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    shift_start_h: float = Field(default=9.0, ge=0, lt=24)
    shift_hours: float = Field(default=8.0, gt=0, le=14)
    lunch_min: float = Field(default=30.0, ge=0)
    intervals_weeks: list[int] = Field(default_factory=lambda: [1, 2, 4])

    @field_validator("weekdays")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if not v or any(d not in range(7) for d in v) or len(set(v)) != len(v):
            raise ValueError("distinct weekdays 0 (Monday) to 6 (Sunday)")
        return v

    @field_validator("intervals_weeks")
    @classmethod
    def _intervals(cls, v: list[int]) -> list[int]:
        if not v or any(k not in (1, 2, 3, 4) for k in v):
            raise ValueError("visit intervals among 1, 2, 3, 4 weeks")
        return sorted(set(v))


class StopsSpec(_Strict):
    """Candidate bookmobile stops, generated for every resident some plan could leave beyond the branch standard
    (see :class:`geodata.stops.StopCapacity` for the capacity defaults and their sources)."""

    max_candidates: int = Field(default=200, ge=0, le=2000, description="cap on the greedy cover's candidates")
    min_population: float = Field(default=60.0, ge=0)
    uptake: float = Field(default=0.04, gt=0, le=1, description="share of the catchment visiting per visit")
    min_visitors: float = Field(
        default=2.0, ge=0, description="stops with at most this many expected visitors are withdrawn"
    )
    min_branch_distance_miles: float = Field(default=2.0, ge=0, description="no stop this close to a kept branch")
    visitors_per_hour: float = Field(default=40.0, ge=1, description="visitors the van serves an hour")
    setup_min: float = Field(default=10.0, ge=0, description="fixed minutes per visit (park, open, close)")
    max_dwell_min: float = Field(default=120.0, gt=0, le=480, description="longest visit, minutes")

    @model_validator(mode="after")
    def _dwell(self) -> StopsSpec:
        if self.setup_min >= self.max_dwell_min:
            raise ValueError(f"max_dwell_min ({self.max_dwell_min:g}) must exceed setup_min ({self.setup_min:g})")
        return self


class DeskSite(_Strict):
    id: str
    name: str = ""
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    hours_per_week: float = Field(default=6.0, gt=0, le=80)


class OutreachSpec(_Strict):
    """Outreach desks at candidate sites (listed, or the largest settlements without a branch)."""

    sites: list[DeskSite] = Field(default_factory=list)
    from_settlements: int = Field(default=0, ge=0, le=200, description="also consider the N largest settlements")
    hours_per_week: float = Field(default=6.0, gt=0, le=80)
    catchment: Literal["drive", "walk"] = "drive"
    catchment_min: float = Field(default=10.0, gt=0)


class HomeDeliverySpec(_Strict):
    eligible_share: float = Field(default=0.05, ge=0, le=1, description="share of 65+ residents eligible")


class ProjectionSpec(_Strict):
    """Population multipliers for the target year, by age group; ``by_zone`` overrides them per former
    municipality and ``by_area`` per census area (area wins over zone)."""

    target_year: int = 2035
    today_year: int = 2025
    multipliers: dict[AgeGroup, float] = Field(default_factory=dict)
    by_zone: dict[str, dict[AgeGroup, float]] = Field(default_factory=dict)
    by_area: dict[str, dict[AgeGroup, float]] = Field(default_factory=dict)
    optimise_for: Literal["today", "target", "both"] = "both"

    @model_validator(mode="after")
    def _check(self) -> ProjectionSpec:
        parts = [("multipliers", self.multipliers), *((f"by_zone.{z}", m) for z, m in self.by_zone.items()),
                 *((f"by_area.{a}", m) for a, m in self.by_area.items())]  # fmt: skip
        for where, mult in parts:
            for k, x in mult.items():
                if not x >= 0:
                    raise ValueError(f"{where}.{k}: a non-negative multiplier, not {x}")
        if self.target_year <= self.today_year:
            raise ValueError(f"target_year {self.target_year} must come after today_year {self.today_year}")
        return self


class ForcedSpec(_Strict):
    keep: list[str] = Field(default_factory=list)
    close: list[str] = Field(default_factory=list)
    no_bookmobile: bool = False
    no_desks: bool = False
    no_home_delivery: bool = False

    @model_validator(mode="after")
    def _contradiction(self) -> ForcedSpec:
        both = sorted(set(self.keep) & set(self.close))
        if both:
            raise ValueError(f"branch(es) {both} are both in keep and in close")
        return self


class ParetoSpec(_Strict):
    """Budgets to sweep: explicit, or ``steps`` shares of today's cost from ``from_share`` to ``to_share``."""

    budgets: list[float] = Field(default_factory=list)
    from_share: float = Field(default=0.6, gt=0)
    to_share: float = Field(default=1.1, gt=0)
    steps: int = Field(default=6, ge=2, le=30)
    min_points: int = Field(default=8, ge=0, le=50, description="bisect budgets until the front has this many points")
    max_solves: int | None = Field(default=None, ge=1, le=100, description="most budgets solved (default 2 x points)")

    @field_validator("budgets")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not b > 0 for b in v):
            raise ValueError("budgets must be positive")
        return v


class DecaySpec(_Strict):
    """Distance decay of expected visits: ``exponential`` exp(-t / scale), ``power`` (1 + t / scale) ** -exponent,
    ``linear`` max(0, 1 - t / scale)."""

    kind: Literal["exponential", "power", "linear"] = "exponential"
    scale_min: float = Field(default=15.0, gt=0)
    exponent: float = Field(default=2.0, gt=0)


LocationObjective = Literal["max_coverage", "min_cost", "p_median", "attendance", "p_center", "fixed_charge"]


class LocationSpec(_Strict):
    """A branch-only study: which branches to keep by a location model (no bookmobile, desks or home delivery).

    ``max_coverage`` keeps the branches that put the most residents within ``standard_min`` of one for at most
    ``budget`` (or ``budget_share`` of today's cost) and/or ``p`` branches; ``min_cost`` the cheapest set keeping
    ``coverage_target`` within the standard; ``p_median``, ``attendance`` (with ``decay``), ``p_center`` and
    ``fixed_charge`` keep ``p`` branches or stay within the budget. ``keep`` and ``close`` force branches (with
    ``forced.keep``/``forced.close``); one-off closure costs are spread over ``closure_cost_years``.
    """

    objective: LocationObjective = "max_coverage"
    p: int | None = Field(default=None, ge=1)
    budget: float | None = Field(default=None, gt=0)
    budget_share: float | None = Field(default=None, gt=0)
    standard_min: float = Field(default=15.0, gt=0)
    coverage_target: float | None = Field(default=None, ge=0, le=1)
    decay: DecaySpec | None = None
    keep: list[str] = Field(default_factory=list)
    close: list[str] = Field(default_factory=list)
    closure_cost_years: float = Field(default=5.0, gt=0)
    bookmobile: dict[str, Any] | None = Field(default=None, description="not supported: see the error it gives")

    @model_validator(mode="after")
    def _check(self) -> LocationSpec:
        if self.bookmobile is not None:
            raise ValueError(
                "bookmobile: a branch-only study has no bookmobile any more; plan branches and bookmobile together "
                "with the joint planner: drop the location section, give objective: max_coverage with budget_share "
                "(or min_cost with standards.coverage_target), standards.branch_drive_min, fleet.max_vehicles and "
                "forced.close for the branches to close (see examples/demo_bookmobile.yaml)"
            )
        if self.budget is not None and self.budget_share is not None:
            raise ValueError("give budget or budget_share, not both")
        if self.objective == "min_cost" and self.coverage_target is None:
            raise ValueError("min_cost needs coverage_target (for example 0.95)")
        both = sorted(set(self.keep) & set(self.close))
        if both:
            raise ValueError(f"branch(es) {both} are both in keep and in close")
        return self


class VisitsSpec(_Strict):
    """Expected visits (:mod:`optimizer.visits`): visits a resident makes a year to a library on the doorstep open
    full hours (CIPFA 2019/20: about 3.2 a head in England), the decay scale in minutes, home deliveries a recipient
    a year; ``min_share`` keeps at least that share of today's visits in every optimised year."""

    per_resident: float = Field(default=3.0, ge=0)
    decay_min: float = Field(default=15.0, gt=0)
    home_delivery_per_recipient: float = Field(default=12.0, ge=0)
    min_share: float | None = Field(default=None, gt=0, le=1)


class RoadmapSpec(_Strict):
    """A multi-year roadmap (``objective: roadmap``; :mod:`optimizer.roadmap`): the network of every year from
    ``today_year`` to ``target_year`` under a budget path and organisational limits.

    ``budget_path`` caps a year's total cost (running and one-off) by year, as an amount; ``budget_path_share`` as a
    share of today's annual cost. ``savings_target`` (a share of today's running cost) must be reached by
    ``savings_year`` and held after it. ``notice_years``: a closure for year t is announced in t - notice_years.
    ``vehicle_purchase`` is charged in the year the fleet grows by a vehicle; closures cost their one-off closure
    cost in their year. The population of each year is interpolated from the projection (constant without one).
    """

    today_year: int | None = Field(default=None, description="default: the projection's today_year, else 2025")
    target_year: int
    objective: Literal["min_cost", "max_credit"] = "min_cost"
    budget_path: dict[int, float] = Field(default_factory=dict)
    budget_path_share: dict[int, float] = Field(default_factory=dict)
    savings_target: float | None = Field(default=None, gt=0, lt=1)
    savings_year: int | None = None
    max_closures_per_year: int | None = Field(default=1, ge=0)
    notice_years: int = Field(default=1, ge=0)
    allow_reopen: bool = False
    no_gap: bool = True
    discount_rate: float = Field(default=0.0, ge=0, lt=1)
    vehicle_purchase: float = Field(default=0.0, ge=0)

    def first_year(self, sc: Scenario) -> int:
        if self.today_year is not None:
            return self.today_year
        return sc.projection.today_year if sc.projection is not None else 2025

    def check(self, sc: Scenario) -> None:
        """The checks that need the whole scenario (the first year comes from the projection)."""
        first = self.first_year(sc)
        if self.target_year < first:
            raise ValueError(f"roadmap.target_year: {self.target_year} is before today_year {first}")
        years = range(first, self.target_year + 1)
        if self.target_year - first > 40:
            raise ValueError(f"roadmap.target_year: a horizon of at most 40 years, not {self.target_year - first}")
        for name in ("budget_path", "budget_path_share"):
            outside = sorted(y for y in getattr(self, name) if y not in years)
            if outside:
                raise ValueError(f"roadmap.{name}: year(s) {outside} outside the horizon {first}-{self.target_year}")
            if any(not v > 0 for v in getattr(self, name).values()):
                raise ValueError(f"roadmap.{name}: every amount must be positive")
        if self.savings_target is not None and self.savings_year not in years:
            raise ValueError(
                f"roadmap.savings_year: {self.savings_year!r} is not a year of the horizon {first}-{self.target_year}"
            )
        if self.notice_years >= len(years):
            raise ValueError(
                f"roadmap.notice_years: a notice of {self.notice_years} year(s) is not shorter than the horizon "
                f"({len(years)} year(s), {first}-{self.target_year})"
            )
        if (
            self.objective == "max_credit"
            and self.savings_target is None
            and not (self.budget_path or self.budget_path_share)
        ):
            raise ValueError("roadmap.objective: max_credit needs a budget_path, budget_path_share or savings_target")


class SolveSpec(_Strict):
    time_limit_s: float = Field(default=60.0, gt=0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="the solvers take a 32-bit seed")
    max_iterations: int = Field(default=5, ge=1, le=50)


class Scenario(_Strict):
    """A planner scenario."""

    name: str = "scenario"
    region: str = Field(min_length=1, max_length=63)
    objective: Literal["min_cost", "max_coverage", "pareto", "location", "roadmap"] = "max_coverage"
    budget: float | None = Field(default=None, gt=0)
    budget_share: float | None = Field(default=None, gt=0, description="budget as a share of today's annual cost")
    standards: StandardsSpec = StandardsSpec()
    credits: CreditsSpec = CreditsSpec()
    costs: CostsSpec = CostsSpec()
    hours: HoursSpec = HoursSpec()
    fleet: FleetSpec = FleetSpec()
    stops: StopsSpec = StopsSpec()
    outreach: OutreachSpec = OutreachSpec()
    home_delivery: HomeDeliverySpec = HomeDeliverySpec()
    projection: ProjectionSpec | None = None
    digital_uptake: dict[AgeGroup, float] = Field(default_factory=dict)
    forced: ForcedSpec = ForcedSpec()
    pareto: ParetoSpec = ParetoSpec()
    location: LocationSpec | None = None
    roadmap: RoadmapSpec | None = None
    visits: VisitsSpec = VisitsSpec()
    solve: SolveSpec = SolveSpec()

    @model_validator(mode="before")
    @classmethod
    def _location_mode(cls, data: Any) -> Any:
        """A file with a ``location`` section and no objective is a branch-only study (``objective: location``)."""
        if isinstance(data, dict) and data.get("location") is not None and "objective" not in data:
            return {**data, "objective": "location"}
        if isinstance(data, dict) and data.get("roadmap") is not None and "objective" not in data:
            return {**data, "objective": "roadmap"}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > MAX_NAME_CHARS:
            raise ValueError(f"at most {MAX_NAME_CHARS} characters, not {len(v)}")
        return v

    @property
    def branch_only(self) -> bool:
        """Whether this is a branch-only study (a ``location`` section)."""
        return self.location is not None

    @field_validator("digital_uptake")
    @classmethod
    def _uptake(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not 0 <= x < 1:
                raise ValueError(f"{k}: a share in [0, 1), not {x}")
        return v

    @model_validator(mode="after")
    def _budget(self) -> Scenario:
        if self.budget is not None and self.budget_share is not None:
            raise ValueError("give budget or budget_share, not both")
        if self.objective == "max_coverage" and self.budget is None and self.budget_share is None:
            raise ValueError("max_coverage needs a budget (or budget_share)")
        if self.objective == "location" and self.location is None:
            raise ValueError("objective location needs a location section (the branch-only study's model and settings)")
        if self.objective == "roadmap":
            if self.roadmap is None:
                raise ValueError("objective roadmap needs a roadmap section (target_year, budget path, limits)")
            self.roadmap.check(self)
        elif self.roadmap is not None:
            raise ValueError(f"roadmap: a roadmap section needs objective: roadmap, not {self.objective!r}")
        if self.location is not None and self.objective != "location":
            raise ValueError(
                f"location: a location section makes a branch-only study, but objective is {self.objective!r}; put the "
                "model in location.objective and drop the top-level objective (or set it to location)"
            )
        return self

    @classmethod
    def parse(cls, data: Any, *, source: str = "scenario") -> Scenario:
        """Validate a mapping; raise :class:`ScenarioError` naming every bad field."""
        if not isinstance(data, dict):
            raise ScenarioError(f"{source}: a scenario is a mapping of fields, not {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(f"{source}: " + describe(exc)) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            data = path.read_bytes()
            data.decode("utf-8")
        except OSError as exc:
            raise ScenarioError(f"{path}: not a readable YAML/JSON scenario ({exc})") from None
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ScenarioError(f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the scenario "
                                "as UTF-8") from None  # fmt: skip
        try:
            parsed = yaml.safe_load(data.decode("utf-8"))
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{path}: not a readable YAML/JSON scenario ({exc})") from None
        return cls.parse(parsed, source=str(path))


class ScenarioError(InvalidProblemError):
    """A scenario failed validation; the message names each field."""


def describe(exc: ValidationError) -> str:
    """One line per error: ``field.path: message``."""
    parts = []
    for err in exc.errors():
        path = [str(x) for x in err["loc"]]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if len(path) >= 2 and path[-1] == "[key]":  # a bad mapping key: name the mapping and the key
            msg = f"key {path[-2]!r}: {msg}"
            path = path[:-2]
        loc = ".".join(path)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def example(file: str, /, **changes: Any) -> dict[str, Any]:
    """The scenario mapping of ``examples/<file>.yaml`` with top-level ``changes`` applied."""
    path = REPO_ROOT / "examples" / f"{file}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: not a scenario mapping")
    return {**data, **changes}
