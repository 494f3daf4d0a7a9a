"""Branch-only studies: which branches to keep by a location model of :mod:`optimizer.location`.

A scenario with a ``location`` section is built like any other (:func:`service.plans.build.build`, with today's
hours and no bookmobile, desks or home delivery) and solved here by the model it names; the answer becomes a
:class:`optimizer.planner.PlannerResult`, so the pipeline reports and writes it exactly like a joint plan.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from optimizer.errors import InvalidProblemError
from optimizer.location import Decay, LocationProblem, LocationResult, solve_location
from optimizer.params import SolveParams
from optimizer.planner import PlanDecision, PlannerResult, costs, kpis, today
from service.plans.build import Built


def location_problem(b: Built) -> LocationProblem:
    """The location model of a branch-only study, on the first optimised year's residents."""
    loc = b.scenario.location
    if loc is None:
        raise InvalidProblemError("location: a branch-only study needs a location section")
    p = b.problem
    level = np.asarray(p.current_level)
    site_cost = np.asarray(p.branch_cost, dtype=float)[np.arange(len(level)), level]
    decay = None
    if loc.decay is not None:
        decay = Decay(loc.decay.kind, scale_s=60 * loc.decay.scale_min, exponent=loc.decay.exponent)
    return LocationProblem(
        time_s=np.asarray(p.branch_time_s, dtype=float),
        demand=np.asarray(p.population[p.years[0]], dtype=float).sum(axis=1),
        site_ids=p.branch_ids,
        site_cost=site_cost,
        radius_s=loc.standard_min * 60,
        objective=loc.objective,
        p=loc.p,
        budget=b.budget,
        coverage_target=loc.coverage_target,
        must_keep=p.keep_mask,
        forbidden=p.close_mask,
        closure_cost=np.asarray(p.closure_cost, dtype=float),
        decay=decay,
    )


def solve_branch_study(b: Built, params: SolveParams) -> tuple[PlannerResult, dict[str, Any]]:
    """Solve a branch-only study; return it as a planner result, and the model's own account for ``plan.json``."""
    started = time.perf_counter()
    loc = b.scenario.location
    assert loc is not None
    problem = location_problem(b)
    result: LocationResult = solve_location(problem, params=params)
    if result.status in ("infeasible", "time_limit") and not result.open_sites:
        raise InvalidProblemError(f"the solver found no plan ({result.status}) within {params.time_limit_s:g} s")
    p = b.problem
    open_mask = np.isin(np.asarray(p.branch_ids), result.open_sites)
    decision = PlanDecision(
        np.where(open_mask, np.asarray(p.current_level), -1).astype(np.int64),
        np.zeros(len(p.stop_ids), dtype=np.int64),
        np.zeros(len(p.desk_ids), dtype=bool),
        0,
    )
    base = today(p)
    served = np.zeros(len(p.stop_ids), dtype=bool)
    planner = PlannerResult(
        status=result.status, objective=result.objective, bound=result.bound, gap=result.gap,
        runtime_s=time.perf_counter() - started, iterations=1, decision=decision, stop_served=served,
        timetable=None, costs=costs(p, decision, bookmobile_operating=0.0),
        kpis=kpis(p, decision, stop_served=served), kpis_today=kpis(p, base),
        costs_today=costs(p, base, bookmobile_operating=0.0), history=(),
        search={"method": result.algorithm, "model": problem.objective, **result.stats},
    )  # fmt: skip
    account = {
        "model": problem.objective,
        "objective_name": result.objective_name,
        "engine": result.algorithm,
        "p": problem.p,
        "budget": problem.budget,
        "standard_min": loc.standard_min,
        "covered": result.covered,
        "covered_share": result.covered_share,
        "cost": result.cost,
    }
    return planner, account
