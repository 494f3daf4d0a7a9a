"""The joint network planner: Pareto sweeps, forced decisions, standards, infeasibility, credit, KPIs, determinism."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import BudgetTooSmallError, CoverageUnreachableError, InvalidProblemError
from optimizer.params import SolveParams
from optimizer.planner import (
    BookmobileCosts,
    CreditRule,
    Credits,
    PlanDecision,
    PlannerProblem,
    PlannerResult,
    Standards,
    access,
    costs,
    kpis,
    non_dominated,
    pareto_front,
    solve_plan,
    standard_shortfalls,
    today,
)
from optimizer.planner.selection import SelectionModel

PARAMS = SolveParams(time_limit_s=5.0, seed=0)
ROUTED = SolveParams(time_limit_s=3.0, seed=0)  # bookmobile cases: the routing gets a third of it
FLEET = BookmobileCosts(max_vehicles=1, vehicle_annual=20_000.0, per_hour=30.0, per_km=0.5)
B = 4


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]), dtype=np.float64)


def network(seed: int = 0, *, n: int = 60, s: int = 8, d: int = 2, vehicles: int = 0, **kw: Any) -> PlannerProblem:
    """A 20 km square with two zones and two years: 4 branches (the first with 3 hours levels, the others 4),
    8 candidate stops at demand points, 2 outreach desks; max_coverage at a budget of 250k by default."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20_000, (n, 2))
    bxy = rng.uniform(0, 20_000, (B, 2))
    sxy = xy[rng.choice(n, s, replace=False)] + 100.0
    dxy = rng.uniform(0, 20_000, (d, 2))
    pop0 = rng.integers(10, 200, (1, n, 3)).astype(float)
    pop = np.concatenate([pop0, np.round(pop0 * np.array([0.9, 1.0, 1.3]))], axis=0)
    hours = np.array([[20.0, 30.0, 40.0, np.nan]] + [[15.0, 25.0, 35.0, 45.0]] * (B - 1))
    depot_xy = np.vstack([bxy[:1], sxy])
    args: dict[str, Any] = dict(
        population=pop, branch_ids=tuple(f"b{i}" for i in range(B)), branch_time_s=_dist(xy, bxy) * 1.3 / (50 / 3.6),
        branch_hours=hours, branch_cost=50_000.0 + np.nan_to_num(hours) * 52 * 30, current_level=np.full(B, 1),
        closure_cost=np.full(B, 10_000.0), need=np.array([0.8, 0.7, 0.9]), zone=(xy[:, 0] > 10_000).astype(int),
        zone_names=("west", "east"), stop_ids=tuple(f"s{j}" for j in range(s)), stop_walk_s=_dist(xy, sxy) / 1.3,
        stop_dwell_s=np.full(s, 1800.0), stop_community=np.arange(s) // 2,
        stop_travel_s=_dist(depot_xy, depot_xy) * 1.3 / (40 / 3.6), stop_dist_m=_dist(depot_xy, depot_xy) * 1.3,
        desk_ids=tuple(f"d{k}" for k in range(d)), desk_reach=_dist(xy, dxy) < 4000, desk_hours=np.full(d, 10.0),
        desk_cost=np.full(d, 20_000.0), eligible_share=0.1, home_delivery_cost=400.0,
        bookmobile=replace(FLEET, max_vehicles=vehicles), objective="max_coverage", budget=250_000.0, years=(0, 1),
    )  # fmt: skip
    args.update(kw)
    return PlannerProblem(**args)


def hamlet(**kw: Any) -> PlannerProblem:
    """One branch and three points at 5, 17 and 33 minutes' drive, 100 adults and 100 seniors each; every senior
    is eligible for home delivery (threshold 20 minutes, drive standard 15 minutes)."""
    pop = np.zeros((1, 3, 3))
    pop[0, :, 0] = pop[0, :, 2] = 100.0
    args: dict[str, Any] = dict(
        population=pop, branch_ids=("b",), branch_time_s=np.array([[300.0], [1000.0], [2000.0]]),
        branch_hours=np.array([[20.0, 40.0]]), branch_cost=np.array([[1000.0, 2000.0]]), current_level=np.array([1]),
        closure_cost=np.array([0.0]), eligible_share=1.0, home_delivery_cost=10.0, objective="min_cost",
    )  # fmt: skip
    args.update(kw)
    return PlannerProblem(**args)


@cache
def solved(seed: int, objective: str, vehicles: int = 0) -> PlannerResult:
    """The unforced optimum of ``network(seed)`` (cached: several tests compare against it)."""
    return solve_plan(network(seed, vehicles=vehicles, **_goal(objective)), params=ROUTED if vehicles else PARAMS)


def _goal(objective: str) -> dict[str, Any]:
    if objective == "min_cost":
        return {"objective": "min_cost", "budget": None, "standards": Standards(coverage_target=0.7)}
    return {"objective": "max_coverage", "budget": 250_000.0}


def _worst_cost(r: PlannerResult, years: tuple[int, ...] = (0, 1)) -> float:
    return float(max(r.costs["total"][y] for y in years))


def _dominates(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return p[0] <= q[0] and p[1] >= q[1] and p != q


# --- Pareto sweeps and non_dominated ---------------------------------------------------------------------------


def test_non_dominated_keeps_the_front_and_one_of_each_duplicate() -> None:
    points = [(100.0, 0.5), (120.0, 0.5), (90.0, 0.4), (100.0, 0.6), (150.0, 0.9), (150.0, 0.9), (200.0, 0.85)]
    assert non_dominated(points) == [2, 3, 4]
    assert non_dominated([]) == []
    assert non_dominated([(1.0, 0.0)]) == [0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6).map(float), st.integers(0, 6).map(float)), max_size=12))
def test_non_dominated_returns_mutually_non_dominated_points_covering_the_rest(
    points: list[tuple[float, float]],
) -> None:
    front = non_dominated(points)
    assert len(set(front)) == len(front)
    kept = [points[i] for i in front]
    assert len(set(kept)) == len(kept)  # one of each duplicate
    for p in kept:
        assert not any(_dominates(q, p) for q in points)
    for i, p in enumerate(points):
        if i not in front:
            assert any(_dominates(q, p) or q == p for q in kept)


def test_a_budget_whose_search_stops_short_takes_a_cheaper_budgets_plan() -> None:
    """A time-limited solve at a larger budget that ends below a smaller budget's plan (or with none) answers that
    plan, which is within its budget too; its own upper bound stays, the gap is recomputed."""
    from optimizer.planner.pareto import _monotone

    problem = replace(network(0), objective="max_coverage", budget=280_000.0)
    good = solve_plan(problem, params=SolveParams(time_limit_s=12.0))
    short = replace(good, objective=good.objective - 0.05, status="time_limit", bound=good.objective + 0.01)
    rows = _monotone([(280_000.0, (good, "optimal")), (300_000.0, (short, "time_limit")), (320_000.0, (None, "x"))])
    assert [b for b, _, _ in rows] == [280_000.0, 300_000.0, 320_000.0]
    (_, first, _), (_, second, msg), (_, third, _) = rows
    assert first is good
    assert second is not None and second.objective == good.objective and second.decision is good.decision
    assert second.bound == short.bound and second.gap == pytest.approx(0.01 / good.objective)
    assert second.status == msg == "feasible" and "smaller budget" in second.warnings[-1]
    assert third is not None and third.objective == good.objective and third.bound is None
    assert _worst_cost(second) <= 300_000.0


def test_pareto_coverage_is_non_decreasing_in_the_budget() -> None:
    problem = network(0)
    budgets = [400_000.0, 170_000.0, 100_000.0, 280_000.0, 220_000.0, 340_000.0]
    front = pareto_front(problem, budgets, params=SolveParams(time_limit_s=12.0))
    assert [b for b, _, _ in front] == sorted(budgets)
    assert front[0][1] is None and "budget" in front[0][2]  # below the cheapest plan
    results = [(b, r) for b, r, _ in front if r is not None]
    assert len(results) == len(budgets) - 1
    shares = [r.objective for _, r in results]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(shares)), shares
    assert shares[-1] > shares[0] + 0.1  # a sweep that does not move would prove nothing
    for b, r in results:
        assert _worst_cost(r) <= b * (1 + 1e-9)
        assert r.objective == pytest.approx(min(r.kpis[y]["credit_share"] for y in (0, 1)))
    points = [(_worst_cost(r), r.objective) for _, r in results]
    front_idx = non_dominated(points)
    assert front_idx
    for i in front_idx:
        assert not any(_dominates(points[j], points[i]) for j in front_idx)


# --- forced decisions --------------------------------------------------------------------------------------------


def _forced(problem: PlannerProblem, free: PlanDecision, branch: int) -> tuple[PlannerProblem, str]:
    """Force ``branch`` the other way from the free optimum."""
    mask = np.zeros(B, dtype=bool)
    mask[branch] = True
    if free.branch_open[branch]:
        return replace(problem, close=mask), "close"
    return replace(problem, keep=mask), "keep"


@pytest.mark.parametrize("branch", range(B))
@pytest.mark.parametrize("objective", ["min_cost", "max_coverage"])
@pytest.mark.parametrize("seed", range(4))
def test_forcing_a_branch_never_improves_the_objective(seed: int, objective: str, branch: int) -> None:
    free = solved(seed, objective)
    assert free.status == "optimal"
    problem, how = _forced(network(seed, **_goal(objective)), free.decision, branch)
    try:
        r = solve_plan(problem, params=PARAMS)
    except CoverageUnreachableError:
        return  # no plan at all under the forcing: not an improvement either
    assert r.status == "optimal"
    assert r.decision.branch_open[branch] == (how == "keep")
    if objective == "min_cost":
        assert r.objective >= free.objective * (1 - 1e-6)
    else:
        assert r.objective <= free.objective + 1e-5


def test_forcing_today_or_closing_every_branch_is_no_better() -> None:
    for objective in ("min_cost", "max_coverage"):
        free = solved(0, objective)
        base = network(0, **_goal(objective))
        for kw in ({"keep": np.ones(B, dtype=bool)}, {"close": ~free.decision.branch_open}):
            try:
                r = solve_plan(replace(base, **kw), params=PARAMS)
            except BudgetTooSmallError:
                assert objective == "max_coverage" and "keep" in kw  # four branches cost more than 250k
                continue
            if objective == "min_cost":
                assert r.objective >= free.objective * (1 - 1e-6)
            else:
                assert r.objective <= free.objective + 1e-5
    # keeping everything open is strictly dearer here than the cheapest plan meeting the standard
    keep_all = solve_plan(replace(network(0, **_goal("min_cost")), keep=np.ones(B, dtype=bool)), params=PARAMS)
    assert keep_all.objective > solved(0, "min_cost").objective + 1.0
    assert keep_all.decision.branch_open.all()


def test_forcing_with_the_bookmobile_never_improves_coverage() -> None:
    free = solved(0, "max_coverage", vehicles=1)
    assert free.decision.vehicles == 1 and free.stop_served.any()  # the bookmobile is part of the optimum
    assert free.status == "optimal" and not free.warnings
    base = network(0, vehicles=1)
    for branch in range(B):
        problem, how = _forced(base, free.decision, branch)
        r = solve_plan(problem, params=ROUTED)
        assert r.decision.branch_open[branch] == (how == "keep")
        assert not r.warnings
        assert r.objective <= free.objective + 1e-5


# --- min_cost and the standards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("vehicles", "target"), [(0, 0.75), (1, 0.85)])
def test_min_cost_meets_its_standards_and_reports_its_cost(vehicles: int, target: float) -> None:
    standards = Standards(coverage_target=target, group_targets={2: 0.7}, zone_max_loss=0.05)
    problem = network(0, vehicles=vehicles, objective="min_cost", budget=None, standards=standards)
    r = solve_plan(problem, params=ROUTED if vehicles else PARAMS)
    assert r.decision.vehicles == vehicles and r.stop_served.any() == bool(vehicles)  # 85% needs the bookmobile
    assert standard_shortfalls(problem, r.decision, stop_served=r.stop_served) == []
    assert not r.warnings
    assert r.objective == pytest.approx(_worst_cost(r), rel=1e-12)
    operating = r.costs["bookmobile"] - r.decision.vehicles * problem.bookmobile.vehicle_annual
    again = costs(problem, r.decision, bookmobile_operating=operating)
    assert max(again["total"]) == pytest.approx(r.objective, rel=1e-9)
    if vehicles:
        assert operating > 0
        return
    assert operating == 0.0
    assert max(costs(problem, r.decision)["total"]) == pytest.approx(r.objective, rel=1e-9)
    assert r.status == "optimal"
    # today's network meets these standards, so the cheapest plan is no dearer than today
    assert standard_shortfalls(problem, today(problem)) == []
    assert r.objective <= max(costs(problem, today(problem))["total"]) + 1e-6
    # and the standards bind: with a lower target the plan is cheaper
    looser = solve_plan(replace(problem, standards=Standards(coverage_target=0.4)), params=PARAMS)
    assert looser.objective < r.objective


def test_home_delivery_is_not_a_choice_near_a_kept_branch() -> None:
    """Seniors 17 minutes from a kept branch neither meet the drive standard nor get home delivery, so the
    senior target of 90% is out of reach (two of three points: 66.7%)."""
    problem = hamlet(keep=np.array([True]), standards=Standards(group_targets={2: 0.9}))
    with pytest.raises(CoverageUnreachableError, match=r"standards\.group_targets\[2\].*best achievable is 66\.7%"):
        solve_plan(problem, params=PARAMS)
    # closing the branch puts every senior beyond the threshold: all receive home delivery
    r = solve_plan(hamlet(standards=Standards(group_targets={2: 0.9})), params=PARAMS)
    assert r.decision.branch_level.tolist() == [-1]
    assert r.objective == pytest.approx(300 * 10.0)
    assert r.kpis[0]["by_group"][2]["share"] == pytest.approx(1.0)


# --- infeasible and invalid inputs -------------------------------------------------------------------------------


def _number(message: str, pattern: str) -> float:
    found = re.search(pattern, message)
    assert found, message
    return float(found.group(1).replace(",", ""))


def test_budget_below_the_forced_branches_names_the_cheapest_cost() -> None:
    keep = np.ones(B, dtype=bool)
    problem = network(0, keep=keep, budget=150_000.0)
    with pytest.raises(BudgetTooSmallError) as info:
        solve_plan(problem, params=PARAMS)
    cheapest = solve_plan(replace(problem, objective="min_cost", budget=None), params=PARAMS)
    assert cheapest.decision.branch_open.all()
    assert _number(str(info.value), r"\(([\d,]+) a year\)") == pytest.approx(cheapest.objective, abs=1.0)
    assert "150,000" in str(info.value)


@pytest.mark.parametrize(
    ("standards", "label"),
    [
        (Standards(coverage_target=0.999), "standards.coverage_target"),
        (Standards(group_targets={1: 0.999}), "standards.group_targets[1]"),
    ],
)
def test_unreachable_standard_names_the_field_and_the_best_achievable(standards: Standards, label: str) -> None:
    problem = network(0, objective="min_cost", budget=None, standards=standards)
    with pytest.raises(CoverageUnreachableError) as info:
        solve_plan(problem, params=PARAMS)
    message = str(info.value)
    assert message.startswith(label + ":")
    best = _number(message, r"best achievable is ([\d.]+)%")
    every_branch = PlanDecision(np.full(B, 2), np.zeros(8, dtype=np.int64), np.zeros(2, dtype=bool), 0)
    k = kpis(problem, every_branch)
    share = min(k[y]["covered_share"] if 1 not in standards.group_targets else k[y]["by_group"][1]["share"]
                for y in (0, 1))  # fmt: skip
    assert share * 100 - 0.05 <= best < 99.9


def test_unreachable_standard_within_a_budget_says_so() -> None:
    problem = network(0, budget=200_000.0, standards=Standards(coverage_target=0.8))
    with pytest.raises(CoverageUnreachableError, match=r"standards\.coverage_target: .*within the budget of 200,000"):
        solve_plan(problem, params=PARAMS)


def _bad(kind: str) -> dict[str, Any]:
    n = 60
    cases: dict[str, dict[str, Any]] = {
        "population 2-D": {"population": np.ones((n, 3))},
        "negative population": {"population": -np.ones((2, n, 3))},
        "branch_time_s shape": {"branch_time_s": np.ones((n, B + 1))},
        "branch_cost shape": {"branch_cost": np.ones((B, 3))},
        "stop_walk_s shape": {"stop_walk_s": np.ones((n - 1, 8))},
        "desk_reach shape": {"desk_reach": np.ones((n, 3), dtype=bool)},
        "keep shape": {"keep": np.ones(B - 1, dtype=bool)},
        "close shape": {"close": np.ones(B + 1, dtype=bool)},
        "current level unknown": {"current_level": np.array([3, 1, 1, 1])},
        "current level negative": {"current_level": np.array([1, -1, 1, 1])},
        "both keep and close": {"keep": np.array([1, 0, 0, 0], bool), "close": np.array([1, 1, 0, 0], bool)},
        "negative budget": {"budget": -1.0},
        "need shape": {"need": np.ones(2)},
        "need above one": {"need": np.array([0.5, 1.5, 0.5])},
        "years": {"years": (0, 2)},
        "group target": {"standards": Standards(group_targets={3: 0.5})},
    }
    return cases[kind]


@pytest.mark.parametrize(
    "kind",
    ["population 2-D", "negative population", "branch_time_s shape", "branch_cost shape", "stop_walk_s shape",
     "desk_reach shape", "keep shape", "close shape", "current level unknown", "current level negative",
     "both keep and close", "negative budget", "need shape", "need above one", "years", "group target"],
)  # fmt: skip
def test_invalid_problems_raise(kind: str) -> None:
    with pytest.raises(InvalidProblemError) as info:
        network(0, **_bad(kind))
    if kind == "both keep and close":
        assert "'b0'" in str(info.value) and "'b1'" not in str(info.value)
    if kind == "negative budget":
        assert "budget" in str(info.value)


def test_invalid_rules_raise() -> None:
    with pytest.raises(InvalidProblemError):
        CreditRule(weight=1.5)
    with pytest.raises(InvalidProblemError):
        CreditRule(full_hours=0.0)
    with pytest.raises(InvalidProblemError):
        Standards(coverage_target=1.2)
    with pytest.raises(InvalidProblemError):
        BookmobileCosts(intervals=(1, 5))
    with pytest.raises(InvalidProblemError):
        BookmobileCosts(max_vehicles=-1)


# --- hours- and frequency-aware credit ---------------------------------------------------------------------------


def test_credit_rule_is_hours_aware() -> None:
    mobile = Credits().mobile
    weekly, four_weekly = (float(mobile.credit(0.5 / k)) for k in (1, 4))  # 30 minutes a visit
    assert weekly == pytest.approx(0.6 * 0.5)  # 0.6 * sqrt(0.5 / 2)
    assert four_weekly == pytest.approx(0.6 * 0.25)
    assert four_weekly < weekly
    branch = Credits().branch
    assert branch.credit(np.array([0.0, 20.0, 40.0, 60.0])).tolist() == pytest.approx([0.0, 0.5**0.5, 1.0, 1.0])


def test_a_four_weekly_stop_earns_less_than_a_weekly_one() -> None:
    problem = network(0, vehicles=1, stop_dwell_s=np.full(8, 1800.0))
    closed = np.full(B, -1)
    by_interval = {}
    for k in (1, 4):
        decision = PlanDecision(closed, np.array([k] + [0] * 7), np.zeros(2, dtype=bool), 1)
        acc = access(problem, decision)
        reached = np.asarray(problem.stop_walk_s)[:, 0] <= problem.standards.stop_walk_s
        assert reached.any()
        assert np.all(acc.credit[reached] == pytest.approx(0.6 * (0.5 / k / 2) ** 0.5))
        assert (acc.mode[reached] == "bookmobile").all()
        by_interval[k] = kpis(problem, decision)[0]["credit_share"]
        assert acc.meets[reached].all() == (k <= problem.standards.stop_max_interval)
    assert 0 < by_interval[4] < by_interval[1]


def test_a_branch_at_a_higher_hours_level_gives_a_higher_credit_share() -> None:
    problem = network(0)
    for i in range(B):
        shares = []
        levels = [h for h in range(4) if np.isfinite(problem.branch_hours[i, h])]
        for h in levels:
            level = np.full(B, -1)
            level[i] = h
            k = kpis(problem, PlanDecision(level, np.zeros(8, dtype=np.int64), np.zeros(2, dtype=bool), 0))
            shares.append((k[0]["credit_share"], k[0]["covered_share"]))
        assert all(b > a for a, b in itertools.pairwise([s[0] for s in shares]))
        assert len({round(s[1], 12) for s in shares}) == 1  # meeting the standard does not depend on hours


# --- KPIs ----------------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    level=st.lists(st.integers(-1, 2), min_size=B, max_size=B),
    interval=st.lists(st.sampled_from([0, 1, 2, 4]), min_size=8, max_size=8),
    desks=st.lists(st.booleans(), min_size=2, max_size=2),
    desk_counts=st.booleans(),
)
def test_kpis_add_up(level: list[int], interval: list[int], desks: list[bool], desk_counts: bool) -> None:
    problem = network(1, vehicles=1, standards=Standards(desk_counts=desk_counts))
    decision = PlanDecision(np.array(level), np.array(interval), np.array(desks), 1)
    pop = np.asarray(problem.population)
    for y, k in enumerate(kpis(problem, decision)):
        assert k["population"] == pytest.approx(pop[y].sum())
        assert sum(g["covered"] for g in k["by_group"].values()) == pytest.approx(k["covered"])
        assert sum(z["covered"] for z in k["by_zone"].values()) == pytest.approx(k["covered"])
        modes = k["people_by_mode"]
        assert sum(modes[m] for m in ("branch", "bookmobile", "desk", "none")) == pytest.approx(k["population"])
        assert 0 <= k["credit_share"] <= 1 and 0 <= k["covered_share"] <= 1
        assert k["covered_share"] == pytest.approx(k["covered"] / k["population"])


def test_home_delivery_recipients_are_eligible_seniors_beyond_the_threshold() -> None:
    problem = hamlet(eligible_share=0.25)
    for level, beyond in ((0, [False, False, True]), (-1, [True, True, True])):
        decision = PlanDecision(np.array([level]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
        k = kpis(problem, decision)[0]
        recipients = 25.0 * sum(beyond)
        assert k["people_by_mode"]["home_delivery"] == pytest.approx(recipients)
        c = costs(problem, decision)
        assert c["recipients"] == pytest.approx([recipients])
        assert c["home_delivery"] == pytest.approx([recipients * 10.0])
        meets_branch = 100.0 if level == 0 else 0.0
        assert k["by_group"][2]["covered"] == pytest.approx(meets_branch + recipients)
        assert k["by_group"][0]["covered"] == pytest.approx(meets_branch)  # adults get no home delivery
    # no eligible seniors, or no threshold: no recipients
    for p in (hamlet(eligible_share=0.0), hamlet(standards=Standards(home_delivery_beyond_s=None))):
        closed = PlanDecision(np.array([-1]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
        assert kpis(p, closed)[0]["people_by_mode"]["home_delivery"] == 0.0


def test_kpis_of_a_solved_plan_add_up_and_match_its_result() -> None:
    r = solved(0, "max_coverage", vehicles=1)
    problem = network(0, vehicles=1)
    assert r.kpis == kpis(problem, r.decision, stop_served=r.stop_served)
    for k in r.kpis:
        assert sum(g["covered"] for g in k["by_group"].values()) == pytest.approx(k["covered"])
    assert r.kpis_today == kpis(problem, today(problem))


# --- determinism ---------------------------------------------------------------------------------------------------


def test_same_inputs_and_seed_give_the_same_plan() -> None:
    problem = network(0, vehicles=1, budget=300_000.0)
    a = solve_plan(problem, params=ROUTED)
    b = solve_plan(problem, params=ROUTED)
    assert a.decision.vehicles == b.decision.vehicles == 1
    for name in ("branch_level", "stop_interval", "desk_open"):
        assert np.array_equal(getattr(a.decision, name), getattr(b.decision, name))
    assert np.array_equal(a.stop_served, b.stop_served)
    assert a.objective == b.objective
    assert a.costs == b.costs


def test_a_search_stopped_before_its_first_round_returns_today_less_the_forced_closures() -> None:
    """A machine too busy for the first master solve still gets a plan: today's network with the forced closures
    (it needs no routing), not "no plan found"."""
    close = np.zeros(B, dtype=bool)
    close[2] = True
    problem = network(0, vehicles=1, budget=1e9, close=close)
    r = solve_plan(problem, params=ROUTED, max_rounds=0)
    expected = today(problem)
    expected.branch_level[2] = -1
    assert np.array_equal(r.decision.branch_level, expected.branch_level)
    assert not r.decision.stop_interval.any() and not r.decision.desk_open.any() and r.decision.vehicles == 0
    assert r.kpis == kpis(problem, expected)
    assert r.status != "optimal" and r.bound is None  # nothing was searched, so nothing is proven


def test_a_master_stopped_short_of_its_optimum_proves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master charging its plan the exact routed cost proves that plan optimal only when the master's bound
    meets it: a master stopped by its time limit (simulated by a weaker dual bound) must not end the search as
    proven, and the bound reported stays a bound."""
    free = solved(0, "max_coverage", vehicles=1)
    assert free.status == "optimal"
    real = SelectionModel.solve

    def stopped_short(self: SelectionModel, **kw: Any) -> Any:
        sel = real(self, **kw)
        if self.mode == "bound" and sel.decision is not None:  # max_coverage: the MIP minimises minus the share
            return replace(sel, status="time_limit", bound=sel.bound - 0.5)
        return sel

    monkeypatch.setattr(SelectionModel, "solve", stopped_short)
    r = solve_plan(network(0, vehicles=1), params=ROUTED, max_rounds=8)
    assert r.search["ended_by"] != "proven"
    assert r.status != "optimal" and r.gap is not None and r.gap > 0.1
    assert r.bound is not None and r.bound >= free.objective - 1e-9
    assert r.objective <= free.objective + 1e-9


# --- need weights (digital uptake) ---------------------------------------------------------------------------------


def test_need_weights_the_credit_share_by_group() -> None:
    problem = network(0, eligible_share=0.0)  # no home delivery: the credit is access(...).credit for everyone
    decision = PlanDecision(np.array([2, -1, 0, -1]), np.zeros(8, dtype=np.int64), np.array([True, False]), 0)
    credit = access(problem, decision).credit
    pop = np.asarray(problem.population)[0]
    group_share = (pop * credit[:, None]).sum(axis=0) / pop.sum(axis=0)
    assert np.ptp(group_share) > 1e-3  # the groups are served differently

    def share(need: np.ndarray | None) -> float:
        return float(kpis(replace(problem, need=need), decision)[0]["credit_share"])

    assert share(None) == pytest.approx(share(np.full(3, 0.4)))  # only relative need matters
    for g in range(3):
        alone = np.zeros(3)
        alone[g] = 1.0
        assert share(alone) == pytest.approx(group_share[g])
    need = np.array([0.8, 0.7, 0.9])
    expected = (need * group_share * pop.sum(axis=0)).sum() / (need * pop.sum(axis=0)).sum()
    assert share(need) == pytest.approx(expected)
    # more digital uptake in the worst-served group (lower need) raises the share; in the best-served, lowers it
    worst, best = int(np.argmin(group_share)), int(np.argmax(group_share))
    for g, sign in ((worst, 1), (best, -1)):
        lower = need.copy()
        lower[g] *= 0.5
        assert sign * (share(lower) - share(need)) > 0


def test_max_coverage_optimises_the_need_weighted_share() -> None:
    problem = network(0, eligible_share=0.0, need=np.array([0.0, 0.0, 1.0]))
    r = solve_plan(problem, params=PARAMS)
    pop = np.asarray(problem.population)
    credit = access(problem, r.decision).credit
    seniors = [float((pop[y, :, 2] * credit).sum() / pop[y, :, 2].sum()) for y in (0, 1)]
    assert r.objective == pytest.approx(min(seniors))
    # no plan within the budget does better for the seniors than the one optimised for them
    other = solve_plan(replace(problem, need=None), params=PARAMS)
    assert min(kpis(problem, other.decision)[y]["credit_share"] for y in (0, 1)) <= r.objective + 1e-6
