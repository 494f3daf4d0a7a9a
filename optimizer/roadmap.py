"""Multi-year roadmaps: which network to run in each year from today to a target year.

A merged library service changes its network over years, not overnight: hours first, a bookmobile next, and only
once it serves their villages do small branches close. :func:`solve_roadmap` plans that path.

Model
-----
Years ``0..T-1`` (``RoadmapRules.years``: consecutive calendar years), the problem's population given per year
(``PlannerProblem.population`` has one slice a year). Each year runs one network: a branch *pattern* (which
branches are open) and, for it, the best configuration of the joint planner (:func:`optimizer.planner.solve_plan`
with the pattern forced: hours, bookmobile stops and fleet, desks, home delivery). The configuration of a pattern is
planned for the horizon's first and last year together; every standard (coverage, groups, zone losses) is then met in
every year between, because for a fixed network each of them is a ratio of two quantities linear in the population,
which interpolates linearly, so it is monotone over the horizon. A year's **running cost** is the configuration's
annual cost as the planner counts it, the worse of the two years (costs are linear in the population too, so this
bounds every year between); its **credit** the worse of the two years' need-weighted credit shares.

Across years:

- a closed branch stays closed (unless ``allow_reopen``), at most ``max_closures_per_year`` close in a year;
- a **notice period**: a closure in year ``t`` is announced in year ``t - notice_years``, so nothing closes before
  year ``notice_years``;
- **no gap in service**: a branch may close only if every resident it served today (who met the standard
  through it) meets the standard by another mode, from its closure on: another branch, a bookmobile stop, or a
  desk when desks count (home delivery serves only the eligible seniors of a place, so it does not count); each
  pattern's configuration is planned with those residents as a constraint (``PlannerProblem.must_meet``);
- one-off costs fall in the year they occur: a branch's closure cost, and ``vehicle_purchase`` for each bookmobile
  the fleet grows by;
- the **budget path**: a ceiling on each year's total (running plus one-off) cost, and optionally a **savings
  target**: from ``savings_year`` on, the running cost at most ``(1 - savings_target)`` times today's.

Objectives: ``min_cost``, the least discounted total cost (``discount_rate``), or ``max_credit``, the most cumulative
credit (the sum of the years' credit shares) within the budget path.

Search and bound
----------------
The years are chained by a dynamic programme over (pattern, fleet bought so far): exact for the configurations it is
given. With at most ``exact_branches`` branches free to open or close every pattern is planned, and the same
programme run on each pattern's *bound* (the planner's valid bound on its configuration) bounds every roadmap of the
model. With more, the patterns are the subsets of the closures of the unconstrained single-year plan, and the bound
is the sum over the years of the single-year bound of every plan (no chaining, no one-off costs): valid, weaker. The
result says which.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, Literal

import numpy as np

from optimizer.errors import (
    BudgetTooSmallError,
    CoverageUnreachableError,
    InfeasibleProblemError,
    InvalidProblemError,
)
from optimizer.params import SolveParams
from optimizer.planner import (
    PlannerProblem,
    PlannerResult,
    access,
    costs,
    solve_plan,
    today,
)

Progress = Callable[[str, float], None]
RoadmapObjective = Literal["min_cost", "max_credit"]
#: With at most this many free branches, every keep/close pattern is planned (2**n patterns).
EXACT_BRANCHES = 6


@dataclass(frozen=True)
class RoadmapRules:
    """The horizon, budget path and organisational limits of a roadmap (module docstring)."""

    years: tuple[int, ...]
    objective: RoadmapObjective = "min_cost"
    #: Per year, a ceiling on the year's total cost (running and one-off); ``None`` for none.
    ceilings: tuple[float | None, ...] = ()
    savings_target: float | None = None
    savings_year: int | None = None
    max_closures_per_year: int | None = 1
    notice_years: int = 1
    allow_reopen: bool = False
    no_gap: bool = True
    discount_rate: float = 0.0
    #: (B,) one-off cost of closing each branch, in its closure year.
    closure_one_off: tuple[float, ...] = ()
    vehicle_purchase: float = 0.0

    def __post_init__(self) -> None:
        ys = list(self.years)
        if not ys:
            raise InvalidProblemError("roadmap years: at least one year")
        if ys != list(range(ys[0], ys[0] + len(ys))):
            raise InvalidProblemError(f"roadmap years must be consecutive, not {ys!r}")
        if self.ceilings and len(self.ceilings) != len(ys):
            raise InvalidProblemError(f"roadmap ceilings: one per year ({len(ys)}), not {len(self.ceilings)}")
        if any(c is not None and not c > 0 for c in self.ceilings):
            raise InvalidProblemError("roadmap ceilings must be positive")
        if self.savings_target is not None:
            if not 0 < self.savings_target < 1:
                raise InvalidProblemError(f"savings_target must lie in (0, 1), not {self.savings_target!r}")
            if self.savings_year not in self.years:
                raise InvalidProblemError(
                    f"savings_year {self.savings_year!r} is not a year of the horizon {ys[0]}-{ys[-1]}"
                )
        if self.max_closures_per_year is not None and self.max_closures_per_year < 0:
            raise InvalidProblemError("max_closures_per_year must be non-negative")
        if not 0 <= self.notice_years < len(ys):
            raise InvalidProblemError(
                f"notice_years {self.notice_years} must be shorter than the horizon ({len(ys)} year(s))"
            )
        if not 0 <= self.discount_rate < 1:
            raise InvalidProblemError(f"discount_rate must lie in [0, 1), not {self.discount_rate!r}")
        if self.vehicle_purchase < 0 or any(c < 0 for c in self.closure_one_off):
            raise InvalidProblemError("one-off costs must be non-negative")
        every_year = bool(self.ceilings) and all(c is not None for c in self.ceilings)
        if self.objective == "max_credit" and not every_year and self.savings_target is None:
            raise InvalidProblemError("max_credit needs a ceiling in every year (a budget path) or a savings target")

    @property
    def n_years(self) -> int:
        return len(self.years)


@dataclass(frozen=True)
class StageConfig:
    """The planner's configuration of one pattern for one running-cost ceiling."""

    pattern: tuple[bool, ...]
    ceiling: float | None
    result: PlannerResult | None
    #: ``proven``: no configuration of the pattern meets the standards (and ceiling); ``unknown``: none was found.
    infeasible: str | None
    running: float = math.inf  # the planner's annual cost, without closure costs
    credit: float = -math.inf  # the worse endpoint year's credit share
    bound: float | None = None  # valid bound on ``running`` (min_cost) or ``credit`` (max_credit)
    vehicles: int = 0
    gap_free: tuple[bool, ...] = ()  # per branch: closing it leaves no resident it served without the standard
    #: per branch: whether any configuration of the pattern could close it without a gap (by its open branches,
    #: home delivery, and every candidate stop and desk in reach): what the bound may assume
    gap_possible: tuple[bool, ...] = ()
    #: the most vehicles the configuration could use (0: the no-bookmobile variant)
    fleet_cap: int = 0


#: The planned configurations by (pattern, running-cost ceiling): with and without a bookmobile.
Configs = dict[tuple[tuple[bool, ...], float | None], list[StageConfig]]


@dataclass(frozen=True)
class RoadmapYear:
    year: int
    config: StageConfig
    closures: tuple[int, ...]
    one_off: float
    running: float
    total: float
    credit: float


@dataclass(frozen=True)
class RoadmapResult:
    """The roadmap: a network per year, its objective, a valid bound and the gap between them."""

    status: Literal["optimal", "feasible", "infeasible"]
    objective: float
    bound: float | None
    gap: float | None
    years: tuple[RoadmapYear, ...]
    today_running: float
    runtime_s: float
    search: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _ceiling(rules: RoadmapRules, t: int, today_running: float) -> tuple[float | None, float | None]:
    """Year ``t``'s ceiling on the total cost and on the running cost (savings target)."""
    total = rules.ceilings[t] if rules.ceilings else None
    running = None
    if rules.savings_target is not None and rules.savings_year is not None and rules.years[t] >= rules.savings_year:
        running = (1.0 - rules.savings_target) * today_running
    return total, running


def _patterns(
    problem: PlannerProblem, free_limit: int, params: SolveParams
) -> tuple[list[tuple[bool, ...]], str, PlannerResult | None]:
    """The patterns to plan: every one, or the subsets of the single-year plan's closures (module docstring)."""
    keep, close = problem.keep_mask, problem.close_mask
    open_today = ~close  # forced closures are closed from the start
    free = np.flatnonzero(~keep & ~close)
    if len(free) <= free_limit:
        chosen = free
        how = "complete"
        single = None
    else:
        single = solve_plan(replace(problem, years=(0, problem.population.shape[0] - 1)), params=params)
        chosen = np.array([b for b in free if not single.decision.branch_open[b]], dtype=np.int64)
        how = "restricted"
    out = []
    for k in range(len(chosen) + 1):
        for closed in combinations(chosen.tolist(), k):
            p = open_today.copy()
            p[list(closed)] = False
            out.append(tuple(bool(x) for x in p))
    return out, how, single


def _configure(
    problem: PlannerProblem, rules: RoadmapRules, pattern: tuple[bool, ...], ceiling: float | None,
    params: SolveParams, served_today: np.ndarray, fleet_cap: int,
) -> StageConfig:  # fmt: skip
    """Plan one pattern (forced) for the horizon's endpoints, under a running-cost ceiling (``max_credit``)."""
    p = np.array(pattern, dtype=bool)
    last = problem.population.shape[0] - 1
    sub = replace(
        problem, keep=p, close=~p, closure_cost=np.zeros(len(p)), years=(0, last) if last else (0,),
        objective="min_cost" if rules.objective == "min_cost" else "max_coverage",
        budget=ceiling if rules.objective == "max_credit" else None,
        must_meet=np.asarray(served_today[:, ~p].any(axis=1)) if rules.no_gap and (~p).any() else None,
        bookmobile=replace(problem.bookmobile, max_vehicles=fleet_cap),
    )  # fmt: skip
    possible = _gap_possible(sub, p, served_today)
    if rules.no_gap and not all(possible):  # some resident of a closed branch has no other mode in reach at all
        return StageConfig(pattern, ceiling, None, "proven", gap_possible=possible, fleet_cap=fleet_cap)
    try:
        r = solve_plan(sub, params=params)
    except (BudgetTooSmallError, CoverageUnreachableError):
        return StageConfig(pattern, ceiling, None, "proven", gap_possible=possible, fleet_cap=fleet_cap)
    except InfeasibleProblemError as exc:
        why = "proven" if "once its bookmobile" in str(exc) else "unknown"
        return StageConfig(pattern, ceiling, None, why, gap_possible=possible, fleet_cap=fleet_cap)
    years = sub.years
    running = float(max(r.costs["total"][y] for y in years))
    credit = float(min(r.kpis[y]["credit_share"] for y in years))
    ok = access(sub, r.decision, stop_served=r.stop_served).meets
    gap_free = tuple(bool(ok[served_today[:, b]].all()) if not p[b] else True for b in range(len(p)))
    bound = r.bound if r.bound is None or rules.objective == "min_cost" else min(r.bound, 1.0)  # a share
    return StageConfig(
        pattern, ceiling, r, None, running, credit, bound, int(r.decision.vehicles), gap_free, possible, fleet_cap
    )


def _gap_possible(problem: PlannerProblem, open_b: np.ndarray, served_today: np.ndarray) -> tuple[bool, ...]:
    """Per closed branch: whether every resident it served could meet the standard by another mode under some
    configuration of the pattern: an open branch in reach, or any candidate stop or desk (when desks count) in reach.
    Home delivery does not count: it serves only the eligible seniors of a place."""
    st = problem.standards
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    ok = ((t <= st.branch_drive_s) & open_b[None, :]).any(axis=1)
    if len(problem.stop_ids):
        ok |= (np.asarray(problem.stop_walk_s, dtype=np.float64) <= st.stop_walk_s).any(axis=1)
    if len(problem.desk_ids) and st.desk_counts:
        ok |= np.asarray(problem.desk_reach, dtype=bool).any(axis=1)
    return tuple(bool(ok[served_today[:, b]].all()) if not open_b[b] else True for b in range(len(open_b)))


def _served_today(problem: PlannerProblem) -> np.ndarray:
    """(N, B): the residents each branch serves today, who meet the standard through it (their nearest branch)."""
    base = today(problem)
    acc = access(problem, base)
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    nearest = t.argmin(axis=1)
    through = t[np.arange(len(t)), nearest] <= problem.standards.branch_drive_s
    people = np.asarray(problem.population, dtype=np.float64).sum(axis=(0, 2)) > 0
    out = np.zeros(t.shape, dtype=bool)
    out[np.arange(len(t)), nearest] = acc.meets & through & people
    return out


def _chain(
    rules: RoadmapRules, configs: Configs, regimes: list[float | None],
    today_pattern: tuple[bool, ...], today_running: float, one_off: np.ndarray, use_bound: bool,
    tighten: Callable[[StageConfig, float], StageConfig | None] | None = None,
) -> tuple[float, list[tuple[StageConfig, tuple[int, ...], float]]] | None:  # fmt: skip
    """The dynamic programme over (pattern, fleet): the best chain of configurations, or None when none is feasible.

    With ``use_bound`` each configuration counts its bound instead of its value, and unknown ones count as
    possible (a relaxation: the result bounds every roadmap). ``tighten(config, budget)`` re-plans a configuration
    within a smaller running budget, for a year whose one-off costs leave it less than its ceiling.
    """
    minimise = rules.objective == "min_cost"
    T = rules.n_years
    patterns = sorted({p for p, _ in configs})
    start: dict[tuple[tuple[bool, ...], int], tuple[float, list[Any]]] = {(today_pattern, 0): (0.0, [])}
    states = start
    for t in range(T):
        total_cap, running_cap = _ceiling(rules, t, today_running)
        disc = (1.0 + rules.discount_rate) ** -t
        nxt: dict[tuple[tuple[bool, ...], int], tuple[float, list[Any]]] = {}
        for (prev, fleet), (value, path) in states.items():
            prev_open = np.array(prev, dtype=bool)
            for pat, cfg in ((q, c) for q in patterns for c in configs.get((q, regimes[t]), ())):
                if cfg.infeasible == "proven" or (cfg.infeasible and not use_bound):
                    continue
                now = np.array(pat, dtype=bool)
                closing = np.flatnonzero(prev_open & ~now)
                if (~prev_open & now).any() and not rules.allow_reopen:
                    continue
                if len(closing) and t < rules.notice_years:
                    continue
                if rules.max_closures_per_year is not None and len(closing) > rules.max_closures_per_year:
                    continue
                # the relaxation keeps only what holds for every configuration of the pattern: its bound, the
                # closures' one-off costs and, for min_cost, the ceilings against that bound
                gap_ok = cfg.gap_possible if use_bound else cfg.gap_free
                if rules.no_gap and not all(gap_ok[b] for b in closing):
                    continue
                if use_bound:
                    known = cfg.bound is not None
                    running = float(cfg.bound) if minimise and known else 0.0  # type: ignore[arg-type]
                    credit = float(cfg.bound) if not minimise and known else 1.0  # type: ignore[arg-type]
                    # a variant that may run a bookmobile stands for the configurations that do: they buy one
                    vehicles = max(fleet, 1) if cfg.fleet_cap and rules.vehicle_purchase else fleet
                    buy = max(0, vehicles - fleet) * rules.vehicle_purchase
                else:
                    running, credit = cfg.running, cfg.credit
                    vehicles = cfg.vehicles
                    buy = max(0, vehicles - fleet) * rules.vehicle_purchase
                extra = float(one_off[closing].sum()) + buy
                if minimise or not use_bound:
                    if running_cap is not None and running > running_cap * (1 + 1e-9):
                        continue
                    if total_cap is not None and running + extra > total_cap * (1 + 1e-9):
                        tighter = tighten(cfg, total_cap - extra) if tighten and total_cap > extra else None
                        if tighter is None or tighter.running + extra > total_cap * (1 + 1e-9):
                            continue
                        cfg, running, credit = tighter, tighter.running, tighter.credit
                        if tighter.vehicles > vehicles:
                            continue  # the purchase was priced for fewer vehicles
                step = disc * (running + extra) if minimise else credit
                key = (pat, max(fleet, vehicles))
                v = value + step
                old = nxt.get(key)
                if old is None or (v < old[0] - 1e-9 if minimise else v > old[0] + 1e-9):
                    nxt[key] = (v, [*path, (cfg, tuple(int(b) for b in closing), extra)])
        states = nxt
        if not states:
            return None
    best = min(states.values(), key=lambda x: x[0]) if minimise else max(states.values(), key=lambda x: x[0])
    return best[0], best[1]


def solve_roadmap(
    problem: PlannerProblem, rules: RoadmapRules, *, params: SolveParams | None = None,
    exact_branches: int = EXACT_BRANCHES, progress: Progress | None = None,
) -> RoadmapResult:  # fmt: skip
    """Plan a roadmap (module docstring) for ``problem``, whose population has one slice per year of ``rules``.

    Raises
    ------
    InvalidProblemError
        When the population's years do not match the rules'.
    InfeasibleProblemError
        When no roadmap meets the standards and limits; the message says what binds (for a savings target, the
        best running cost reachable and from which year).
    """
    params = params or SolveParams()
    started = time.perf_counter()
    T = rules.n_years
    if problem.population.shape[0] != T:
        raise InvalidProblemError(f"the population has {problem.population.shape[0]} year(s); the roadmap {T}")
    b = len(problem.branch_ids)
    one_off = np.asarray(rules.closure_one_off or np.zeros(b), dtype=np.float64)
    if one_off.shape != (b,):
        raise InvalidProblemError(f"closure_one_off must give one cost per branch ({b})")
    base = replace(problem, closure_cost=np.zeros(b))
    today_running = float(max(costs(base, today(base), bookmobile_operating=0.0)["total"][y] for y in (0, T - 1)))
    patterns, how, single = _patterns(base, exact_branches, replace(params, time_limit_s=params.time_limit_s / 4))
    today_pattern = tuple(bool(x) for x in ~base.close_mask)
    if rules.max_closures_per_year is not None:  # more closures than the years allow can never be reached
        most = rules.max_closures_per_year * (T - rules.notice_years)
        patterns = [q for q in patterns if sum(a and not b for a, b in zip(today_pattern, q, strict=True)) <= most]
    regimes: list[float | None] = [None] * T
    if rules.objective == "max_credit":
        for t in range(T):
            caps = [c for c in _ceiling(rules, t, today_running) if c is not None]
            regimes[t] = min(caps) if caps else None
    distinct = sorted({r for r in regimes if r is not None}) + ([None] if None in regimes else [])
    served = _served_today(base)
    # with a purchase price, also plan each network without a bookmobile: the chaining then weighs buying one
    fleet = int(base.bookmobile.max_vehicles)
    fleet_caps = sorted({fleet, 0}) if rules.vehicle_purchase > 0 else [fleet]
    n_solves = len(patterns) * len(distinct) * len(fleet_caps)
    # the time left is shared among the solves left: networks proven infeasible at once leave theirs to the others
    deadline = started + params.time_limit_s
    per = replace(params, time_limit_s=max(1.0, params.time_limit_s / max(n_solves, 1)))
    configs: Configs = {}
    done = 0
    minimise = rules.objective == "min_cost"
    skipped = 0

    def plan(pat: tuple[bool, ...]) -> None:
        """Plan a pattern's configurations, or mark them unknown once the time is up."""
        nonlocal done, skipped
        if (pat, distinct[0]) in configs:
            return
        for cap in distinct:
            for fleet_cap in fleet_caps:
                if time.perf_counter() >= deadline:
                    cfg = StageConfig(pat, cap, None, "unknown", fleet_cap=fleet_cap)
                    skipped += 1
                else:
                    left = max(1.0, (deadline - time.perf_counter()) / max(n_solves - done, 1))
                    cfg = _configure(base, rules, pat, cap, replace(per, time_limit_s=left), served, fleet_cap)
                configs.setdefault((pat, cap), []).append(cfg)
                done += 1
        if progress:
            progress("roadmap: plan each network", done / n_solves)

    def score(pat: tuple[bool, ...]) -> float | None:
        found = [c for cap in distinct for c in configs[(pat, cap)] if c.infeasible is None]
        if not found:
            return None
        return min(c.running for c in found) if minimise else max(c.credit for c in found)

    # today first, then a greedy chain of closures (each step the best one more closure), then the rest: so that a
    # time limit leaves a path of networks the limits can follow, one closure at a time
    wanted = set(patterns)
    plan(today_pattern if today_pattern in wanted else patterns[0])
    frontier = today_pattern
    while True:
        steps = [q for q in patterns if sum(a and not b for a, b in zip(frontier, q, strict=True)) == 1
                 and all(b <= a for a, b in zip(frontier, q, strict=True))]  # fmt: skip
        for q in steps:
            plan(q)
        scored = [(v, q) for q in steps if (v := score(q)) is not None]
        if not scored:
            break
        frontier = (min(scored) if minimise else max(scored))[1]
    for q in sorted(patterns, key=lambda q: -sum(not x for x in q)):
        plan(q)
    if rules.objective == "max_credit":
        _inherit_bounds(configs, distinct)
    tightened: dict[tuple[tuple[bool, ...], int, float], StageConfig | None] = {}

    def tighten(cfg: StageConfig, budget: float) -> StageConfig | None:
        """The pattern re-planned within ``budget`` (``max_credit``: a year whose one-off costs share its ceiling)."""
        if minimise:
            return None  # the configurations are already the cheapest
        key = (cfg.pattern, cfg.fleet_cap, round(budget, 6))
        if key not in tightened:
            limit = max(1.0, min(params.time_limit_s / 4, deadline - time.perf_counter()))
            got = _configure(base, rules, cfg.pattern, budget, replace(per, time_limit_s=limit), served, cfg.fleet_cap)
            tightened[key] = got if got.infeasible is None else None
        return tightened[key]

    chain = _chain(rules, configs, regimes, today_pattern, today_running, one_off, use_bound=False, tighten=tighten)
    if chain is None:
        raise InfeasibleProblemError(_why_infeasible(rules, configs, regimes, today_running, today_pattern))
    value, path = chain
    bound: float | None
    if how == "complete":
        relaxed = _chain(rules, configs, regimes, today_pattern, today_running, one_off, use_bound=True)
        bound = relaxed[0] if relaxed is not None else None
    else:
        bound = _per_year_bound(base, rules, single, regimes, per, configs.get((today_pattern, distinct[0]), []))
    if bound is not None:
        bound = min(bound, value) if minimise else max(bound, value)
    gap = abs(value - bound) / max(abs(value), 1e-12) if bound is not None else None
    status: Literal["optimal", "feasible", "infeasible"] = "optimal" if gap is not None and gap <= 1e-6 else "feasible"
    years = []
    for t, (cfg, closing, extra) in enumerate(path):
        assert cfg.result is not None
        total_t = float(cfg.result.costs["total"][t]) + extra
        years.append(RoadmapYear(rules.years[t], cfg, closing, extra, cfg.running, total_t, cfg.credit))
    unknown = sum(1 for cs in configs.values() for c in cs if c.infeasible == "unknown")
    tried = {q for (q, _), cs in configs.items() for c in cs if c.result is not None or c.infeasible == "proven"}
    planned_count = len(tried)
    if skipped:
        warnings_early = [f"the time limit left {skipped} network(s) unplanned; the bound counts them as possible"]
    else:
        warnings_early = []
    warnings = list(warnings_early)
    if unknown - skipped > 0:
        warnings.append(
            f"{unknown - skipped} network(s) had no plan within their time limit; the bound counts them as possible"
        )
    if progress:
        progress("roadmap: done", 1.0)
    return RoadmapResult(
        status=status, objective=value, bound=bound, gap=gap, years=tuple(years), today_running=today_running,
        runtime_s=time.perf_counter() - started, warnings=tuple(warnings),
        search={
            "patterns": how, "patterns_candidate": len(patterns),
            "patterns_planned": planned_count,
            "solves": n_solves - skipped, "regimes": len(distinct),
            "bound": (
                "the same chaining over every pattern with each network's planner bound (a relaxation of every roadmap)"
                if how == "complete"
                else "the sum over the years of the single-year planner's bound over every plan (no chaining)"
            ),
            "unplanned_networks": unknown,
        },
    )  # fmt: skip


def _inherit_bounds(configs: Configs, ceilings: list[float | None]) -> None:
    """``max_credit``: a network's credit under a ceiling is at most its credit under any looser one, and it is
    infeasible under a ceiling when it is under a looser one. Fill the bounds of the networks that found no plan
    in their time from the looser ceilings' (in place)."""
    loose_first = sorted(ceilings, key=lambda c: math.inf if c is None else c, reverse=True)
    patterns = {p for p, _ in configs}
    for pat in patterns:
        looser: dict[int, StageConfig] = {}
        for cap in loose_first:
            cs = configs.get((pat, cap), [])
            for k, cfg in enumerate(cs):
                prev = looser.get(cfg.fleet_cap)
                if cfg.infeasible == "unknown" and prev is not None:
                    if prev.infeasible == "proven":
                        cs[k] = replace(cfg, infeasible="proven")
                    elif prev.bound is not None:
                        cs[k] = replace(cfg, bound=prev.bound)
                looser[cfg.fleet_cap] = cs[k]


def _per_year_bound(
    problem: PlannerProblem, rules: RoadmapRules, single: PlannerResult | None, regimes: list[float | None],
    params: SolveParams, today_configs: list[StageConfig],
) -> float | None:  # fmt: skip
    """Sum over the years of a bound on any single year (restricted patterns only): valid and weak. In the notice
    years nothing can close yet: those years take today's pattern's bound."""
    if single is None or single.bound is None:
        return None
    minimise = rules.objective == "min_cost"
    if minimise:
        known = [c.bound for c in today_configs if c.bound is not None and c.infeasible is None]
        early = min(known) if len(known) == len(today_configs) and known else single.bound
        return sum(
            (1.0 + rules.discount_rate) ** -t * (early if t < rules.notice_years else single.bound)
            for t in range(rules.n_years)
        )
    total = 0.0
    cache: dict[float | None, float | None] = {}
    for t in range(rules.n_years):
        cap = regimes[t]
        if cap not in cache:
            try:
                r = solve_plan(replace(problem, objective="max_coverage", budget=cap,
                                       years=(0, problem.population.shape[0] - 1)), params=params)  # fmt: skip
                cache[cap] = r.bound
            except InfeasibleProblemError:
                cache[cap] = 1.0
        got = cache[cap]
        if got is None:
            return None
        total += got
    return total


def _why_infeasible(
    rules: RoadmapRules, configs: Configs, regimes: list[float | None],
    today_running: float, today_pattern: tuple[bool, ...],
) -> str:  # fmt: skip
    """Explain an infeasible roadmap: the savings target against the cheapest reachable network, or the limits."""
    every = [c for cs in configs.values() for c in cs]
    feasible = [c for c in every if c.infeasible is None]
    if not feasible:
        why = ["no network meets the standards in the horizon's first and last year, whichever branches stay open"]
        caps = sorted({c for c in regimes if c is not None})
        if caps:
            why.append(f"within a running cost of {caps[0]:,.0f} (today's network costs {today_running:,.0f})")
        gapped = sum(1 for c in every if rules.no_gap and c.gap_possible and not all(c.gap_possible))
        if gapped:
            why.append(
                f"and {gapped} network(s) would leave residents of a closed branch with no other mode in reach "
                "(no gap in service)"
            )
        return " ".join(why)
    cheapest = min(feasible, key=lambda c: c.running)
    closed = sum(1 for a, b in zip(today_pattern, cheapest.pattern, strict=True) if a and not b)
    per_year = rules.max_closures_per_year or len(today_pattern)
    first = rules.years[0] + rules.notice_years + max(0, math.ceil(closed / per_year) - 1)
    limit = (
        "with no limit on closures a year"
        if rules.max_closures_per_year is None
        else f"with at most {rules.max_closures_per_year} closure(s) a year"
    )
    saving = 1.0 - cheapest.running / today_running if today_running else 0.0
    parts = [
        f"the cheapest network meeting the standards saves {saving:.1%} of today's running cost "
        f"({cheapest.running:,.0f} against {today_running:,.0f}), closing {closed} branch(es); {limit} after a "
        f"{rules.notice_years}-year notice it runs from {first}"
    ]
    if rules.savings_target is not None:
        parts.append(f"the savings target is {rules.savings_target:.1%} by {rules.savings_year}")
    if rules.ceilings:
        parts.append("or a year's ceiling is below its running and one-off costs")
    if rules.no_gap:
        parts.append("or a closure would leave residents it serves without the standard (no gap in service)")
    unplanned = sum(1 for c in every if c.infeasible == "unknown")
    if unplanned:
        parts.append(f"{unplanned} network(s) found no plan within the time limit: a longer solve.time_limit_s may")
    return "no roadmap meets every year's standards and limits: " + "; ".join(parts)


__all__ = ["EXACT_BRANCHES", "RoadmapResult", "RoadmapRules", "RoadmapYear", "StageConfig", "solve_roadmap"]
