"""The joint network planner: branches, bookmobile, outreach desks and home delivery weighed in one decision.

Numbers and ids only; the service layer turns a region and a scenario into a :class:`PlannerProblem`.

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
is hours-aware, ``weight * min(1, hours_per_week / full_hours) ** exponent``. Credit is weighted by each age
group's *need*, one minus its digital uptake. A resident *meets the standard* with a branch within the drive
standard, a stop within the walk standard visited at least every ``stop_max_interval`` weeks, a desk (when desks
count), or home delivery (eligible seniors).

Objectives: ``min_cost`` (the worst optimised year's annual cost, subject to the standards) and ``max_coverage``
(the worst year's need-weighted credit share, subject to the standards and the budget in every year). A plan's
cost includes its **routed** bookmobile: the selected stops are timetabled (:mod:`optimizer.bookmobile`) and the
plan pays the routes' hours and kilometres.

Modules
-------
- :mod:`~optimizer.planner.problem`: the problem, decision and result types;
- :mod:`~optimizer.planner.evaluate`: access, costs, KPIs and shortfalls of a decision on the demand points;
- :mod:`~optimizer.planner.selection`: the selection MIP (its variables and constraints in the docstring), as a
  relaxation that bounds every routed plan and as the heuristic's estimate;
- :mod:`~optimizer.planner.search`: the search (best-first branch-and-bound over branch patterns with routing
  cuts) and the explanation of infeasible scenarios;
- :mod:`~optimizer.planner.pareto`: coverage against budget.

The result's ``bound`` is valid for every plan of the model, routed bookmobile cost included; ``gap`` compares
it with the returned plan, and ``status`` is ``optimal`` only when that gap is within the tolerance.
"""

from optimizer.planner.evaluate import (
    Access,
    access,
    costs,
    covered_people,
    credited_need,
    kpis,
    plan_value,
    shortfalls,
    standard_shortfalls,
)
from optimizer.planner.pareto import non_dominated, pareto_front
from optimizer.planner.problem import (
    WEEKS_PER_YEAR,
    BookmobileCosts,
    CreditRule,
    Credits,
    PlanDecision,
    PlannerObjective,
    PlannerProblem,
    PlannerResult,
    PlannerStatus,
    Standards,
    today,
)
from optimizer.planner.search import EXACT_ROUTING_STOPS, Routed, route_plan, solve_plan

__all__ = [
    "EXACT_ROUTING_STOPS",
    "WEEKS_PER_YEAR",
    "Access",
    "BookmobileCosts",
    "CreditRule",
    "Credits",
    "PlanDecision",
    "PlannerObjective",
    "PlannerProblem",
    "PlannerResult",
    "PlannerStatus",
    "Routed",
    "Standards",
    "access",
    "costs",
    "covered_people",
    "credited_need",
    "kpis",
    "non_dominated",
    "pareto_front",
    "plan_value",
    "route_plan",
    "shortfalls",
    "solve_plan",
    "standard_shortfalls",
    "today",
]
