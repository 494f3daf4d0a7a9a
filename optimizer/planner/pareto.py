"""Coverage against budget: a Pareto front of the joint planner, with budgets chosen adaptively."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from optimizer.errors import InfeasibleProblemError
from optimizer.params import SolveParams
from optimizer.planner.problem import PlannerProblem, PlannerResult, PlannerStatus
from optimizer.planner.search import solve_plan

Progress = Callable[[str, float], None]


def pareto_front(
    problem: PlannerProblem,
    budgets: list[float],
    *,
    params: SolveParams | None = None,
    min_points: int = 0,
    max_solves: int | None = None,
    progress: Progress | None = None,
) -> list[tuple[float, PlannerResult | None, str]]:
    """Maximise coverage at each budget, ascending; add budgets until the front has ``min_points`` points.

    Each point's credit is at least the previous (cheaper) point's, so coverage is non-decreasing in the budget.
    After the given budgets, while fewer than ``min_points`` non-dominated points are known, the widest budget
    interval between two neighbouring solved points whose plans differ is bisected (at most ``max_solves`` solves
    in all, by default twice the points asked for). Returns (budget, result or None, message) per budget,
    ascending.
    """
    params = params or SolveParams()
    budgets = sorted(float(b) for b in budgets)
    limit = max_solves if max_solves is not None else max(len(budgets), 2 * min_points)
    per = replace(params, time_limit_s=max(2.0, params.time_limit_s / max(1, limit)))
    out: dict[float, tuple[PlannerResult | None, str]] = {}
    tried: set[float] = set()

    def run(budget: float) -> None:
        tried.add(budget)
        below = [r for b, (r, _) in sorted(out.items()) if b < budget and r is not None]
        floor = max((r.objective for r in below), default=None)
        p = replace(problem, objective="max_coverage", budget=budget,
                    min_credit=None if floor is None else floor * (1 - 1e-9))  # fmt: skip
        try:
            r = solve_plan(p, params=per)
        except InfeasibleProblemError as exc:
            out[budget] = (None, str(exc))
            return
        out[budget] = (r, r.status)

    for q, budget in enumerate(budgets):
        if progress:
            progress("pareto", q / max(limit, 1))
        run(budget)
    while len(tried) < limit and len(_front(out, problem.years)) < min_points:
        gap = _widest_gap(out, tried)
        if gap is None:
            break
        if progress:
            progress("pareto", len(tried) / max(limit, 1))
        run(gap)
    if progress:
        progress("pareto", 1.0)
    return _monotone(sorted(out.items()))


def _monotone(
    rows: list[tuple[float, tuple[PlannerResult | None, str]]],
) -> list[tuple[float, PlannerResult | None, str]]:
    """Give each budget at least the credit of every cheaper budget's plan.

    A plan within a smaller budget is within a larger one too, so when a budget's own (time-limited) solve ends
    below a cheaper budget's plan, or finds none, that plan is its answer; the budget keeps its own bound (an upper
    bound on the credit of every plan within it), and the gap is recomputed.
    """
    best: PlannerResult | None = None
    out: list[tuple[float, PlannerResult | None, str]] = []
    for budget, (r, msg) in rows:
        if best is not None and (r is None or r.objective < best.objective - 1e-12):
            bound = None if r is None else r.bound
            gap = None if bound is None else abs(bound - best.objective) / max(abs(best.objective), 1e-12)
            status: PlannerStatus = "optimal" if gap is not None and gap <= 1e-9 else "feasible"
            note = (f"the search at budget {budget:,.0f} ended below the plan found for a smaller budget, which is "
                    "within this budget too and is used instead")  # fmt: skip
            r = replace(best, status=status, bound=bound, gap=gap, warnings=(*best.warnings, note))
            msg = status
        if r is not None and (best is None or r.objective > best.objective):
            best = r
        out.append((budget, r, msg))
    return out


def _worst_cost(r: PlannerResult, years: tuple[int, ...] | None = None) -> float:
    totals = r.costs["total"]
    return float(max(totals if years is None else [totals[y] for y in years]))


def _front(out: dict[float, tuple[PlannerResult | None, str]], years: tuple[int, ...]) -> list[int]:
    solved = [r for _, (r, _) in sorted(out.items()) if r is not None]
    return non_dominated([(_worst_cost(r, years), r.objective) for r in solved])


def _widest_gap(out: dict[float, tuple[PlannerResult | None, str]], tried: set[float]) -> float | None:
    """The midpoint of the budget interval, among those whose ends hold different plans (or a failure and a plan),
    where the front is least resolved: the widest in budget times coverage gained across it."""
    items = sorted(out.items())
    best: tuple[float, float] | None = None
    for (b0, (r0, _)), (b1, (r1, _)) in itertools.pairwise(items):
        if r0 is not None and r1 is not None and _same_plan(r0, r1):
            continue
        if r0 is None and r1 is None:
            continue
        mid = round(0.5 * (b0 + b1), 2)
        if mid in tried or b1 - b0 < 1e-3 * max(b1, 1.0):
            continue
        rise = abs(r1.objective - r0.objective) if r0 is not None and r1 is not None else 1.0
        score = (b1 - b0) / max(b1, 1.0) * (rise + 1e-3)
        if best is None or score > best[0] * (1 + 1e-9):
            best = (score, mid)
    return None if best is None else best[1]


def _same_plan(a: PlannerResult, b: PlannerResult) -> bool:
    return bool(
        np.array_equal(a.decision.branch_level, b.decision.branch_level)
        and np.array_equal(a.decision.stop_interval, b.decision.stop_interval)
        and np.array_equal(a.decision.desk_open, b.decision.desk_open)
        and a.decision.vehicles == b.decision.vehicles
    )


def non_dominated(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, coverage) points no other point dominates (cheaper-or-equal and better-or-equal)."""
    keep: list[int] = []
    for i, (c, v) in enumerate(points):
        dominated = any((c2 <= c and v2 >= v) and (c2 < c or v2 > v) for j, (c2, v2) in enumerate(points) if j != i)
        if not dominated and not any(points[j] == (c, v) for j in keep):
            keep.append(i)
    return keep
