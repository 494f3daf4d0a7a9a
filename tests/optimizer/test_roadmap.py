"""Roadmaps against exhaustive enumeration of every year's decisions, and their properties."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from optimizer.errors import InfeasibleProblemError, InvalidProblemError
from optimizer.params import SolveParams
from optimizer.planner import PlanDecision, PlannerProblem, Standards, access, costs, kpis, solve_plan, today
from optimizer.planner.evaluate import standard_shortfalls
from optimizer.roadmap import RoadmapRules, solve_roadmap

PARAMS = SolveParams(time_limit_s=30.0, seed=0, workers=1)


def small(seed: int, *, n_years: int = 3, b: int = 3) -> PlannerProblem:
    """Branches only (no stops or desks): every year's decision is a level per branch, few enough to enumerate."""
    rng = np.random.default_rng(seed)
    n = 30
    xy = rng.uniform(0, 20_000, (n, 2))
    bxy = rng.uniform(2_000, 18_000, (b, 2))
    base = rng.integers(20, 400, (n, 3)).astype(float)
    growth = rng.uniform(0.9, 1.15, 3)
    pop = np.stack([base * (1 + (growth - 1) * t / max(n_years - 1, 1)) for t in range(n_years)])
    hours = np.array([[h * 0.75, h] for h in rng.integers(15, 45, b)], dtype=float)
    t = np.hypot(*(xy[:, None, :] - bxy[None, :, :]).transpose(2, 0, 1)) * 1.3 / (50 / 3.6)
    problem = PlannerProblem(
        population=pop, branch_ids=tuple(f"b{i}" for i in range(b)), branch_time_s=t, branch_hours=hours,
        branch_cost=20_000.0 + hours * 52 * 40, current_level=np.ones(b, dtype=np.int64),
        closure_cost=np.zeros(b), zone=(xy[:, 0] > 10_000).astype(int), zone_names=("west", "east"),
        eligible_share=0.3, home_delivery_cost=400.0, objective="min_cost",
        standards=Standards(branch_drive_s=float(rng.choice([900.0, 1200.0])), home_delivery_beyond_s=1500.0),
    )  # fmt: skip
    share = kpis(problem, today(problem))[0]["covered_share"]
    return replace(problem, standards=replace(problem.standards, coverage_target=round(share * 0.9, 3)))


def rules_for(problem: PlannerProblem, seed: int, objective: str) -> RoadmapRules:
    rng = np.random.default_rng(seed + 7)
    n_years = problem.population.shape[0]
    b = len(problem.branch_ids)
    today_cost = max(costs(problem, today(problem), bookmobile_operating=0.0)["total"])
    kw: dict[str, Any] = dict(
        years=tuple(range(2025, 2025 + n_years)), objective=objective,
        max_closures_per_year=int(rng.choice([1, 2])), notice_years=int(rng.choice([0, 1])),
        no_gap=bool(rng.random() < 0.5), discount_rate=float(rng.choice([0.0, 0.035])),
        closure_one_off=tuple(np.round(rng.uniform(0, 40_000, b)).tolist()),
    )  # fmt: skip
    if objective == "max_credit":
        kw["ceilings"] = tuple(float(today_cost * s) for s in np.sort(rng.uniform(0.6, 1.05, n_years))[::-1])
    elif rng.random() < 0.5:
        kw["savings_target"], kw["savings_year"] = 0.15, 2025 + n_years - 1
    return RoadmapRules(**kw)


def brute_force(problem: PlannerProblem, rules: RoadmapRules) -> float | None:
    """Every sequence of yearly decisions (a level or closed, per branch), evaluated from the raw arrays."""
    b = len(problem.branch_ids)
    T = rules.n_years
    base = replace(problem, closure_cost=np.zeros(b), years=(0, T - 1) if T > 1 else (0,))
    minimise = rules.objective == "min_cost"
    today_running = max(costs(base, today(base), bookmobile_operating=0.0)["total"][y] for y in base.years)
    t = np.asarray(problem.branch_time_s)
    nearest = t.argmin(axis=1)
    acc0 = access(base, today(base))
    served = acc0.meets & (t[np.arange(len(t)), nearest] <= problem.standards.branch_drive_s)
    options = []
    for levels in itertools.product([-1, 0, 1], repeat=b):
        d = PlanDecision(np.array(levels), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
        running = max(costs(base, d, bookmobile_operating=0.0)["total"][y] for y in base.years)
        credit = min(kpis(base, d)[y]["credit_share"] for y in base.years)
        ok = not standard_shortfalls(base, d)
        acc = access(base, d)
        gap_free = [bool(acc.meets[served & (nearest == k)].all()) for k in range(b)]
        options.append((np.array(levels) >= 0, running, credit, ok, gap_free))
    best: float | None = None
    one_off = np.asarray(rules.closure_one_off)
    for seq in itertools.product(range(len(options)), repeat=T):
        prev = np.ones(b, dtype=bool)
        value = 0.0
        for k, i in enumerate(seq):
            now, running, credit, ok, gap_free = options[i]
            closing = np.flatnonzero(prev & ~now)
            if not ok or ((~prev & now).any() and not rules.allow_reopen):
                break
            if len(closing) and (k < rules.notice_years or len(closing) > (rules.max_closures_per_year or b)):
                break
            if rules.no_gap and not all(gap_free[c] for c in np.flatnonzero(~now)):
                break  # every resident a closed branch served keeps the standard while it is closed
            extra = float(one_off[closing].sum())
            cap = rules.ceilings[k] if rules.ceilings else None
            if cap is not None and running + extra > cap * (1 + 1e-9):
                break
            target = rules.savings_target and rules.years[k] >= (rules.savings_year or 0)
            if target and running > (1 - (rules.savings_target or 0)) * today_running * (1 + 1e-9):
                break
            value += ((1 + rules.discount_rate) ** -k) * (running + extra) if minimise else credit
            prev = now
        else:
            if best is None or (value < best if minimise else value > best):
                best = value
    return best


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_roadmap_equals_exhaustive_enumeration(seed: int) -> None:
    objective = "min_cost" if seed % 2 == 0 else "max_credit"
    problem = small(seed)
    rules = rules_for(problem, seed, objective)
    want = brute_force(problem, rules)
    if want is None:
        with pytest.raises(InfeasibleProblemError, match="no roadmap"):
            solve_roadmap(problem, rules, params=PARAMS)
        return
    got = solve_roadmap(problem, rules, params=PARAMS)
    assert got.objective == pytest.approx(want, rel=1e-6)
    assert got.status == "optimal" and got.bound == pytest.approx(want, rel=1e-6)
    closed_before = np.zeros(len(problem.branch_ids), dtype=bool)
    for y in got.years:  # the limits hold, recounted from the years' decisions
        closed = ~y.config.result.decision.branch_open  # type: ignore[union-attr]
        assert not (closed_before & ~closed).any()
        assert (closed & ~closed_before).sum() <= (rules.max_closures_per_year or 99)
        closed_before = closed


def test_one_year_roadmap_is_the_single_year_plan() -> None:
    problem = small(3, n_years=1)
    plan = solve_plan(replace(problem, years=(0,)), params=PARAMS)
    rules = RoadmapRules(years=(2025,), notice_years=0, max_closures_per_year=None, no_gap=False,
                         closure_one_off=tuple(np.asarray(problem.closure_cost).tolist()))  # fmt: skip
    road = solve_roadmap(problem, rules, params=PARAMS)
    assert road.objective == pytest.approx(plan.objective, rel=1e-9)
    assert np.array_equal(road.years[0].config.result.decision.branch_level, plan.decision.branch_level)  # type: ignore[union-attr]


def test_a_looser_budget_path_never_lowers_cumulative_credit() -> None:
    problem = small(5, n_years=3)
    today_cost = max(costs(problem, today(problem), bookmobile_operating=0.0)["total"])
    values = []
    for share in (0.7, 0.85, 1.0):
        rules = RoadmapRules(years=(2025, 2026, 2027), objective="max_credit", notice_years=0,
                             ceilings=(today_cost, today_cost * share, today_cost * share))  # fmt: skip
        values.append(solve_roadmap(problem, rules, params=PARAMS).objective)
    assert values == sorted(values)


def test_forcing_a_decision_never_improves_the_objective() -> None:
    problem = small(8, n_years=3)
    rules = RoadmapRules(years=(2025, 2026, 2027), notice_years=1, no_gap=False)
    free = solve_roadmap(problem, rules, params=PARAMS)
    compared = 0
    for k in range(len(problem.branch_ids)):
        keep = np.zeros(len(problem.branch_ids), dtype=bool)
        keep[k] = True
        try:
            forced = solve_roadmap(replace(problem, keep=keep), rules, params=PARAMS)
        except InfeasibleProblemError:
            continue
        assert forced.objective >= free.objective - 1e-6
        compared += 1
    assert compared, "no forced roadmap was feasible: the property was not checked"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"years": (2025, 2027)}, "consecutive"),
        ({"years": (2025, 2026), "savings_target": 0.2, "savings_year": 2031}, "savings_year 2031 is not a year"),
        ({"years": (2025, 2026), "notice_years": 2}, "notice_years 2 must be shorter than the horizon"),
        ({"years": (2025, 2026), "ceilings": (1.0,)}, "one per year"),
        ({"years": (2025,), "objective": "max_credit", "notice_years": 0}, "max_credit needs a ceiling"),
        ({"years": (2025,), "savings_target": 1.5, "savings_year": 2025, "notice_years": 0}, "savings_target must lie"),
    ],
)
def test_bad_rules_name_the_field(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidProblemError, match=match):
        RoadmapRules(**kw)


def test_an_unreachable_savings_target_says_what_is_reachable() -> None:
    problem = small(2, n_years=2)
    rules = RoadmapRules(years=(2025, 2026), savings_target=0.95, savings_year=2026, notice_years=0)
    with pytest.raises(InfeasibleProblemError, match=r"saves [\d.]+% of today's running cost.*savings target is 95"):
        solve_roadmap(problem, rules, params=PARAMS)
