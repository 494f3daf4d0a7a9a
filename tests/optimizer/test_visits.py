"""Expected visits: recounted point by point from the raw arrays, the closure account, and the visits floor."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from optimizer.planner import PlanDecision, solve_plan, today
from optimizer.planner.problem import VisitModel
from optimizer.visits import closure_account, expected_visits
from tests.optimizer.test_roadmap import PARAMS, small


def test_visits_recounted_point_by_point() -> None:
    problem = replace(small(1, n_years=2), eligible_share=0.0)
    model = VisitModel(per_resident=3.0, decay_min=15.0)
    d = PlanDecision(np.array([1, -1, 0]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
    got = expected_visits(problem, d, model)
    need = problem.need_weights
    want = 0.0
    for i in range(problem.population.shape[1]):
        none = 1.0  # the chance of using no branch: each is used with the probability of its pull
        for b, level in enumerate(d.branch_level):
            if level < 0:
                continue
            hours = problem.branch_hours[b, level]
            credit = min(1.0, hours / problem.credits.branch.full_hours) ** problem.credits.branch.exponent
            none *= 1.0 - credit * math.exp(-problem.branch_time_s[i, b] / 60 / 15.0)
        want += 3.0 * float(problem.population[0, i] @ need) * (1.0 - none)
    assert got.total[0] == pytest.approx(want, rel=1e-9)
    assert sum(got.by_mode[0].values()) == pytest.approx(got.total[0])
    assert sum(got.by_service.values()) == pytest.approx(got.total[0])


def test_a_closure_loses_visits_and_the_account_adds_up() -> None:
    problem = small(4, n_years=1)
    before = expected_visits(problem, today(problem), problem.visits)
    closed = PlanDecision(np.array([1, -1, 1]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), 0)
    after = expected_visits(problem, closed, problem.visits)
    account = closure_account(problem, before, after)
    assert set(account) == {"b1"}
    a = account["b1"]
    assert a["lost"] > 0 and a["today"] - a["lost"] == pytest.approx(a["after"])
    assert a["after"] == pytest.approx(sum(a["recovered_by"].values()))
    assert after.total[0] < before.total[0]


def test_a_visits_floor_is_kept_and_costs_money() -> None:
    problem = small(6, n_years=2)
    free = solve_plan(replace(problem, years=(0, 1)), params=PARAMS)
    floor = replace(problem, years=(0, 1), min_visits_share=0.97)
    held = solve_plan(floor, params=PARAMS)
    base = expected_visits(floor, today(floor), floor.visits).total
    got = expected_visits(floor, held.decision, floor.visits, stop_served=held.stop_served).total
    assert (got >= 0.97 * base - 1e-6).all()
    assert held.objective >= free.objective - 1e-6  # a floor never makes the cheapest plan cheaper
