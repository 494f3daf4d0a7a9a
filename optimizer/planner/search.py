"""The joint planner's search: branch patterns searched against a relaxation that bounds every routed plan.

A *pattern* is the set of open branches (hours levels stay free within it). The search keeps one *master*: the
selection MIP in its bound mode (:mod:`optimizer.planner.selection`), a relaxation of the routed problem whose
dual bound is valid for every plan. Stop sets of at most :data:`EXACT_ROUTING_STOPS` stops per interval are
timetabled exactly (:func:`optimizer.bookmobile.plan_timetable_exact`), larger ones by OR-Tools
(:func:`optimizer.bookmobile.plan_timetable`) with a lower bound on their optimal routing cost
(:func:`optimizer._tours.tours_lower_bound`). Every routed set becomes a cut in the master (superset cuts, and for
exact sets per-stop cost shares). Every pattern the search meets is first planned by the *heuristic*: the
selection MIP in its estimate mode with the pattern fixed, its stops timetabled, the route-cost estimate
re-calibrated from the routed cost, a few times, always from the same start (so a pattern is planned alike whether
the search is free or forced to it).

*Branch-and-bound* (at most :data:`EXACT_PATTERN_BRANCHES` free branches). Each round the master gives the best
plan of the relaxation over what is still open, and its bound; its plan is timetabled and evaluated.

- When the master charged its plan the plan's exact routed cost and its bound meets the best plan, nothing left
  can beat it: the search ends (*proven*). A master stopped by its time limit short of its optimum proves nothing
  by charging its plan right; that selection is set aside with the bound.
- When the plan's routing cost is only bounded and the bound does not move the master, that stop selection is
  set aside with the current bound; when a pattern has had its share of rounds it is *closed* likewise.
- The search also ends when the master's bound reaches the best plan (*bound*), when nothing is left
  (*exhausted*), or on the round or time limit.

*Large-neighbourhood search* (more free branches): the master's pattern first, then, repeatedly, the pattern the
estimate MIP (calibrated on the patterns planned so far) likes best among those not yet planned; the master over
every pattern, re-solved at the end with the cuts found, gives the bound.

The reported bound is the weakest of the bounds recorded (closed patterns, selections set aside, the master's
last bound): valid for every plan, routed cost included. Every plan is evaluated on the demand points
(:mod:`optimizer.planner.evaluate`); the best one that meets every standard (and the budget, with its routed
cost) is returned.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from optimizer._tours import cost_shares, subset_tours, tours_lower_bound
from optimizer.bookmobile import BookmobileProblem, BookmobileResult, Fleet, plan_timetable, plan_timetable_exact
from optimizer.errors import BudgetTooSmallError, CoverageUnreachableError, InfeasibleProblemError
from optimizer.params import SolveParams
from optimizer.planner.evaluate import costs, evaluate_plan, kpis
from optimizer.planner.problem import (
    WEEKS_PER_YEAR,
    PlanDecision,
    PlannerProblem,
    PlannerResult,
    PlannerStatus,
    today,
)
from optimizer.planner.selection import Classes, SelectionModel, classes_of

Progress = Callable[[str, float], None]
#: Stop sets with at most this many stops per interval are timetabled exactly.
EXACT_ROUTING_STOPS = 12
#: With at most this many free branches the search branches over every keep/close pattern.
EXACT_PATTERN_BRANCHES = 12
#: Relative tolerance under which a bound is taken to meet the objective (the solvers' own tolerances).
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Routed:
    """A plan's stops timetabled: what was served, what it costs a year, and what its routing proves."""

    timetable: BookmobileResult | None
    served: np.ndarray  # (S,) stops timetabled
    operating: float  # annual operating cost: dwell and driving money
    driving_s: float  # annual driving seconds
    arc_cost: float  # annual driving money
    exact: bool  # routed by the exact method (arc_cost is the set's optimum)
    arc_lower: float  # a lower bound on the optimal annual driving money of the selected set
    complete: bool  # every selected stop was timetabled
    shares: np.ndarray | None = None  # (S,) exact sets: annual driving money per selected stop (see cost_shares)


def route_plan(problem: PlannerProblem, decision: PlanDecision, params: SolveParams,
               exact_stops: int = EXACT_ROUTING_STOPS) -> Routed:  # fmt: skip
    """Timetable the stops ``decision`` selects with its vehicles, exactly when the set is small."""
    s = len(problem.stop_ids)
    interval = np.asarray(decision.stop_interval, dtype=np.int64)
    chosen = np.flatnonzero(interval > 0)
    served = np.zeros(s, dtype=bool)
    if not len(chosen):
        return Routed(None, served, 0.0, 0.0, 0.0, True, 0.0, True)
    if decision.vehicles == 0:
        return Routed(None, served, 0.0, 0.0, 0.0, True, np.inf, False)
    bm = problem.bookmobile
    nodes = np.concatenate([[0], chosen + 1])
    travel = np.asarray(problem.stop_travel_s, dtype=np.float64)[np.ix_(nodes, nodes)]
    arc = problem.stop_arc_cost()[np.ix_(nodes, nodes)]
    dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64)[chosen]
    ids = tuple(problem.stop_ids[j] for j in chosen)
    fleet = Fleet(vehicles=decision.vehicles, weekdays=bm.weekdays, shift_start_s=bm.shift_start_s, shift_s=bm.shift_s,
                  lunch_s=bm.lunch_s)  # fmt: skip
    bp = BookmobileProblem(travel_s=travel, stop_ids=ids, prize=np.full(len(chosen), 1e6), dwell_s=dwell,
                           interval_weeks=interval[chosen], fleet=fleet)  # fmt: skip
    counts = np.bincount(interval[chosen])
    exact = int(counts.max()) <= exact_stops
    result = plan_timetable_exact(bp, arc_cost=arc, params=params) if exact else plan_timetable(bp, params=params)
    if exact:
        lower = np.inf
    else:  # a bound on the optimal routing of the whole selected set, per interval class
        lower = 0.0
        for k in sorted(set(interval[chosen].tolist())):
            sub = np.concatenate([[0], np.flatnonzero(interval[chosen] == k) + 1])
            lb, _ = tours_lower_bound(arc[np.ix_(sub, sub)], travel[np.ix_(sub, sub)], dwell[sub[1:] - 1],
                                      float(bm.shift_s - bm.lunch_s))  # fmt: skip
            lower += WEEKS_PER_YEAR / k * lb
    pos = {sid: q for q, sid in enumerate(ids)}
    dwell_money = 0.0
    arc_money = 0.0
    driving = 0.0
    for day in result.route_days:
        per_year = WEEKS_PER_YEAR / day.interval
        order = [0, *(pos[x] + 1 for x in day.stops), 0]
        arc_money += per_year * float(sum(arc[a, c] for a, c in itertools.pairwise(order)))
        dwell_money += per_year * bm.per_hour * float(sum(dwell[pos[x]] for x in day.stops)) / 3600.0
        driving += per_year * day.driving_s
        for x in day.stops:
            served[chosen[pos[x]]] = True
    complete = bool(served[chosen].all())
    shares = None
    if exact:
        lower = arc_money if complete else np.inf
        # per-stop shares that no subset's optimal routes undercut: a cut for every plan sharing some of these stops
        shares = np.zeros(s)
        for k in sorted(set(interval[chosen].tolist())):
            sub = np.concatenate([[0], np.flatnonzero(interval[chosen] == k) + 1])
            best, _ = subset_tours(arc[np.ix_(sub, sub)], travel[np.ix_(sub, sub)], dwell[sub[1:] - 1],
                                   float(bm.shift_s - bm.lunch_s))  # fmt: skip
            shares[chosen[sub[1:] - 1]] = WEEKS_PER_YEAR / k * cost_shares(best, len(sub) - 1)
    return Routed(result if result.route_days else None, served, dwell_money + arc_money, driving, arc_money, exact,
                  lower, complete, shares)  # fmt: skip


@dataclass
class _Plan:
    value: tuple[float, float]  # (objective, tie-break), see optimizer.planner.evaluate.plan_value
    decision: PlanDecision
    routed: Routed
    misses: list[str]


class _Search:
    """State of one :func:`solve_plan` call."""

    def __init__(self, problem: PlannerProblem, cls: Classes, params: SolveParams, deadline: float,
                 max_iterations: int, estimate_tolerance: float, exact_stops: int) -> None:  # fmt: skip
        self.problem = problem
        self.cls = cls
        self.params = params
        self.deadline = deadline
        self.max_iterations = max_iterations
        self.tolerance = max(params.gap_tolerance, TOLERANCE)
        self.estimate_tolerance = estimate_tolerance
        self.exact_stops = exact_stops
        self.minimise = problem.objective == "min_cost"
        self.master = SelectionModel(problem, cls, mode="bound")
        self.routes: dict[tuple[tuple[int, ...], int], Routed] = {}
        self.best: _Plan | None = None
        self.best_broken: _Plan | None = None
        self.history: list[dict[str, Any]] = []
        self.heuristic_done: set[tuple[bool, ...]] = set()
        self.patterns_seen: set[tuple[bool, ...]] = set()
        self.evaluated = 0
        self.rounds = 0
        self.closed = 0
        self.set_aside = 0
        self.master_s = 0.0  # longest master solve so far
        # today's KPIs, against which a former municipality's loss is measured (computed once, not per plan)
        self.base_kpis = kpis(problem, today(problem)) if problem.standards.zone_max_loss is not None else None

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def better(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether value ``a`` beats ``b`` (objective first, then the tie-break)."""
        if self.minimise:
            return a < b
        return (a[0], -a[1]) > (b[0], -b[1])

    def route(self, decision: PlanDecision) -> Routed:
        """Timetable a plan's stops (cached by stop set and fleet) and add its cut to the master."""
        key = (tuple(np.asarray(decision.stop_interval, dtype=np.int64).tolist()), int(decision.vehicles))
        if key in self.routes:
            return self.routes[key]
        n_chosen = int((np.asarray(decision.stop_interval) > 0).sum())
        # routing ends on a work budget (solutions), so the same inputs give the same timetable on a busy machine;
        # the time limit is a safety net
        route_s = max(1.0, min(2.0 + 0.5 * n_chosen, self.params.time_limit_s / 3, max(self.left(), 1.0)))
        rp = replace(self.params, time_limit_s=route_s, solution_limit=50 + 10 * n_chosen)
        routed = route_plan(self.problem, decision, rp, self.exact_stops)
        self.routes[key] = routed
        if np.isfinite(routed.arc_lower):
            self.master.add_route_cut(decision.stop_interval, decision.vehicles, routed.arc_lower)
        elif routed.exact and not routed.complete:
            self.master.add_unroutable_cut(decision.stop_interval, decision.vehicles)
        if routed.shares is not None:
            self.master.add_share_cut(decision.stop_interval, routed.shares)
        return routed

    def consider(self, decision: PlanDecision, routed: Routed) -> _Plan:
        """Evaluate a routed plan on the demand points and keep it if it is the best so far."""
        self.evaluated += 1
        value, misses = evaluate_plan(self.problem, decision, routed.served, routed.operating, base=self.base_kpis)
        plan = _Plan(value, decision, routed, misses)
        if not misses:
            if self.best is None or self.better(value, self.best.value):
                self.best = plan
        elif self.best_broken is None or len(misses) < len(self.best_broken.misses):
            self.best_broken = plan
        return plan

    def consider_today(self) -> None:
        """Today's network, less the branches forced closed, is a plan too: a search stopped by its limits (or a
        machine too busy for its first master solve) never returns worse than the status quo with the forced
        closures, nor "no plan found" when that plan meets every constraint. It has no bookmobile, so it costs no
        routing."""
        decision = today(self.problem)  # every branch is open today (current_level names a level of each)
        decision.branch_level[self.problem.close_mask] = -1
        self.consider(decision, self.route(decision))

    def can_improve(self, bound: float) -> bool:
        """Whether a bound leaves room for a plan better than the best one found."""
        if self.best is None:
            return True
        v = self.best.value[0]
        if self.minimise:
            return bound < v - self.tolerance * max(abs(v), 1.0)
        return bound > v + self.tolerance * max(abs(v), 1.0)

    def heuristic(self, pattern: tuple[bool, ...]) -> tuple[float, float, float]:
        """Plan one pattern with the estimate model, re-calibrating the route-cost estimate from each routing.

        Starts from the same estimate for every pattern, so a pattern is planned alike whether the search is free
        or forced to it. Returns the calibration reached: ``alpha``, ``beta`` and the usable shift seconds.
        """
        self.heuristic_done.add(pattern)
        problem = self.problem
        open_mask = np.array(pattern, dtype=bool)
        fixed = replace(problem, keep=open_mask, close=~open_mask)
        bm = problem.bookmobile
        depot = np.asarray(problem.stop_travel_s, dtype=np.float64)[0, 1:] if len(problem.stop_ids) else np.zeros(0)
        usable = max(bm.shift_s - bm.lunch_s - (2.0 * float(np.median(depot)) if len(depot) else 0.0), 0.0)
        alpha = beta = 1.0
        previous: PlanDecision | None = None
        for it in range(self.max_iterations):
            if it and self.left() < 1.0:
                break
            model = SelectionModel(fixed, self.cls, mode="estimate", alpha=alpha, beta=beta, usable_s=usable)
            sel = model.solve(time_limit_s=max(1.0, min(self.left(), self.params.time_limit_s) * 0.5),
                              gap=self.params.gap_tolerance)  # fmt: skip
            if sel.decision is None:
                break
            routed = self.route(sel.decision)
            plan = self.consider(sel.decision, routed)
            total = max(costs(problem, sel.decision, bookmobile_operating=routed.operating)["total"])
            diff = abs(routed.operating - sel.estimated_operating) / max(1.0, total)
            self.history.append({"source": "heuristic", "pattern": _label(pattern), "iteration": it + 1,
                                 "alpha": alpha, "beta": beta, "usable_h": usable / 3600,
                                 "estimated_operating": sel.estimated_operating, "routed_operating": routed.operating,
                                 "stops_selected": int((sel.decision.stop_interval > 0).sum()),
                                 "stops_routed": int(routed.served.sum()), "exact_routing": routed.exact,
                                 "objective": plan.value[0], "meets_constraints": not plan.misses,
                                 "relative_difference": diff})  # fmt: skip
            if not plan.misses and routed.complete and diff <= self.estimate_tolerance:
                break
            if not routed.complete:
                usable *= 0.85
            if previous is not None and _same(previous, sel.decision) and not plan.misses:
                break  # the estimate no longer changes the selection
            previous = sel.decision
            if routed.driving_s > 0 and sel.estimated_driving_s > 0:
                alpha = float(np.clip(alpha * routed.driving_s / sel.estimated_driving_s, 0.25, 10.0))
            if routed.operating > 0 and sel.estimated_operating > 0:
                beta = float(np.clip(beta * routed.operating / sel.estimated_operating, 0.1, 10.0))
        return alpha, beta, usable

    # --- the two searches over patterns ----------------------------------------------------------------------------
    def _master_round(self) -> Any:
        """Solve the master once (keeping the time of the solve, to know whether another one fits)."""
        started = time.perf_counter()
        sel = self.master.solve(time_limit_s=max(1.0, self.left()), gap=self.params.gap_tolerance)
        self.master_s = max(self.master_s, time.perf_counter() - started)
        self.rounds += 1
        return sel

    def _tighter(self, old: float | None, new: float) -> float:
        """The stronger of two valid bounds on the same (or a shrinking) space."""
        if old is None:
            return new
        return max(old, new) if self.minimise else min(old, new)

    def _time_for_master(self) -> bool:
        return self.left() > max(0.5, 1.5 * self.master_s)

    def _first_round(self, sel: Any) -> None:
        if sel.decision is None and sel.status == "infeasible":
            _explain_infeasible(self.problem, self.cls, self.params)

    def branch_and_bound(
        self, max_rounds: int, rounds_per_pattern: int, progress: Progress | None
    ) -> tuple[str, list[float]]:
        """Best-first over patterns by the master's bound (see the module docstring); returns how it ended and
        the bounds that together bound every plan."""
        master = self.master
        closed: list[float] = []
        remaining: float | None = None  # the master's bound over the plans still open
        per_pattern: dict[tuple[bool, ...], int] = {}
        while True:
            if self.rounds >= max_rounds:
                ended = "rounds"
                break
            if self.rounds and not self._time_for_master():
                ended = "time_limit"
                break
            if progress:
                progress("search", min(0.95, self.rounds / max_rounds))
            sel = self._master_round()
            if self.rounds == 1:
                self._first_round(sel)
            if sel.decision is None:
                if sel.status == "infeasible":
                    remaining, ended = None, "exhausted"  # every pattern is evaluated or closed
                else:
                    if np.isfinite(sel.bound):
                        remaining = self._tighter(remaining, master.bound_of(sel.bound))
                    ended = "time_limit"
                break
            remaining = self._tighter(remaining, master.bound_of(sel.bound))
            if not self.can_improve(remaining):
                ended = "bound"
                break
            pattern = tuple(bool(x) for x in sel.decision.branch_open)
            self.patterns_seen.add(pattern)
            per_pattern[pattern] = per_pattern.get(pattern, 0) + 1
            if pattern not in self.heuristic_done:
                self.heuristic(pattern)
            routed, plan = self._master_plan(sel, remaining)
            exact_fit = routed.exact and routed.complete and not plan.misses
            charged = exact_fit and routed.arc_cost <= sel.eta + 1e-7 * max(1.0, routed.arc_cost)
            if charged and not self.can_improve(remaining):
                ended = "proven"  # the master charged this plan its true cost and its bound meets the best plan
                break
            # A plan charged its true cost whose bound still leaves room (the master stopped on its time limit short
            # of its optimum) is set aside like a selection whose routing bound does not move the master.
            stalled = charged or (not routed.exact and routed.arc_lower <= sel.eta + 1e-7 * max(1.0, routed.arc_lower))
            if stalled:  # the cuts cannot move the master off it: set this stop selection aside with its bound
                closed.append(remaining)
                self.set_aside += 1
                master.exclude_selection(sel.decision.stop_interval, sel.decision.vehicles)
            if per_pattern[pattern] >= rounds_per_pattern:
                closed.append(remaining)
                self.closed += 1
                master.exclude_pattern(np.array(pattern))
        return ended, closed + ([remaining] if remaining is not None else [])

    def neighbourhood(self, max_rounds: int, progress: Progress | None) -> tuple[str, list[float]]:
        """Too many patterns to branch over: plan the master's pattern, then the pattern the calibrated estimate
        MIP likes best among those not yet planned, and so on. The master over every pattern gives the bound."""
        master = self.master
        sel = self._master_round()
        self._first_round(sel)
        if sel.decision is None:
            return "time_limit", ([master.bound_of(sel.bound)] if np.isfinite(sel.bound) else [])
        bound = master.bound_of(sel.bound)
        pattern = tuple(bool(x) for x in sel.decision.branch_open)
        self.patterns_seen.add(pattern)
        alpha, beta, usable = self.heuristic(pattern)
        self._master_plan(sel, bound)
        planned = [pattern]
        ended = "rounds"
        while True:
            if self.rounds >= max_rounds:
                break
            if self.left() < 2.0:
                ended = "time_limit"
                break
            if progress:
                progress("search", min(0.95, self.rounds / max_rounds))
            self.rounds += 1
            est = SelectionModel(self.problem, self.cls, mode="estimate", alpha=alpha, beta=beta, usable_s=usable)
            for p in planned:
                est.exclude_pattern(np.array(p))
            nxt = est.solve(time_limit_s=max(1.0, min(self.left(), self.params.time_limit_s) * 0.5),
                            gap=self.params.gap_tolerance)  # fmt: skip
            if nxt.decision is None:
                ended = "exhausted" if nxt.status == "infeasible" else "time_limit"
                break
            pattern = tuple(bool(x) for x in nxt.decision.branch_open)
            planned.append(pattern)
            self.patterns_seen.add(pattern)
            self.heuristic(pattern)
        if self._time_for_master():  # the routing cuts found meanwhile tighten the bound
            again = self._master_round()
            if again.decision is not None or np.isfinite(again.bound):
                bound = self._tighter(bound, master.bound_of(again.bound))
        return ended, [bound]

    def _master_plan(self, sel: Any, bound: float) -> tuple[Routed, _Plan]:
        """Route and evaluate the master's own plan, and record the round."""
        routed = self.route(sel.decision)
        plan = self.consider(sel.decision, routed)
        self.history.append({"source": "master", "round": self.rounds,
                             "pattern": _label(tuple(bool(x) for x in sel.decision.branch_open)), "bound": bound,
                             "charged_driving": sel.eta, "routed_driving": routed.arc_cost,
                             "exact_routing": routed.exact, "objective": plan.value[0],
                             "meets_constraints": not plan.misses, "cuts": self.master.cuts})  # fmt: skip
        return routed, plan


def _label(pattern: tuple[bool, ...]) -> str:
    return "".join("1" if x else "0" for x in pattern)


def _same(a: PlanDecision, b: PlanDecision) -> bool:
    return (
        np.array_equal(a.branch_level, b.branch_level)
        and np.array_equal(a.stop_interval, b.stop_interval)
        and np.array_equal(a.desk_open, b.desk_open)
        and a.vehicles == b.vehicles
    )


def solve_plan(
    problem: PlannerProblem,
    *,
    params: SolveParams | None = None,
    max_iterations: int = 5,
    tolerance: float = 0.02,
    max_rounds: int = 60,
    rounds_per_pattern: int = 12,
    exact_stops: int = EXACT_ROUTING_STOPS,
    exact_patterns: int = EXACT_PATTERN_BRANCHES,
    progress: Progress | None = None,
) -> PlannerResult:
    """Plan branches, bookmobile, desks and home delivery (see the module docstring).

    Parameters
    ----------
    max_iterations
        Calibration rounds of the heuristic per pattern.
    tolerance
        Relative difference between the routed and estimated bookmobile cost at which the heuristic stops.
    max_rounds, rounds_per_pattern
        Work limits of the search (master solves in all, and per pattern before it is closed), so the plan
        depends on the inputs and the seed, not on the machine's speed; the time limit is a safety net.
    exact_stops
        Stop sets with at most this many stops per interval are routed exactly.
    exact_patterns
        With at most this many branches free to open or close, the patterns are searched by branch-and-bound
        (complete unless a limit stops it); with more, by a large-neighbourhood search seeded by the MIP.

    Raises
    ------
    BudgetTooSmallError
        The budget is below the cheapest plan that honours the forced decisions (the message gives that cost).
    CoverageUnreachableError
        A standard no plan can meet (the message names it and gives the best achievable share).
    """
    params = params or SolveParams()
    t0 = time.perf_counter()
    cls = classes_of(problem)
    search = _Search(problem, cls, params, t0 + params.time_limit_s, max_iterations, tolerance, exact_stops)
    tol = search.tolerance
    search.consider_today()
    free = int((~problem.keep_mask & ~problem.close_mask).sum())
    exhaustive = free <= exact_patterns
    if exhaustive:
        ended, bounds = search.branch_and_bound(max_rounds, rounds_per_pattern, progress)
    else:
        ended, bounds = search.neighbourhood(max_rounds, progress)
    master = search.master
    rounds = search.rounds
    best = search.best
    if best is None:
        complete = ended in ("bound", "proven", "exhausted")
        if search.best_broken is None:
            raise InfeasibleProblemError(
                f"no plan found within the time limit ({params.time_limit_s:g} s) or work limit ({max_rounds} rounds)"
            )
        misses = "; ".join(search.best_broken.misses)
        if complete:
            raise InfeasibleProblemError(
                f"no plan meets every constraint once its bookmobile stops are timetabled: the closest misses {misses}"
            )
        raise InfeasibleProblemError(
            f"no plan meeting every constraint was found before the search's {ended.replace('_', ' ')}; the closest "
            f"misses {misses}"
        )
    value = best.value[0]
    if bounds:
        bound: float | None = min(bounds) if search.minimise else max(bounds)
        assert bound is not None
        if best is search.best:  # the best plan meets every constraint: it bounds the optimum too
            bound = min(bound, value) if search.minimise else max(bound, value)
        gap: float | None = abs(value - bound) / max(abs(value), 1e-12) if best is search.best else None
    else:
        bound, gap = None, None
    status: PlannerStatus
    if search.best is None:
        status = "infeasible"
    elif gap is not None and gap <= tol:
        status = "optimal"
    elif ended == "time_limit":
        status = "time_limit"
    else:
        status = "feasible"
    complete = exhaustive and ended in ("bound", "proven", "exhausted")
    stop = ended.replace("_", " ")
    if exhaustive:
        method = "best-first branch-and-bound over keep/close patterns, " + (
            "complete" if complete else f"stopped by the {stop}"
        )
    else:
        method = (
            f"large-neighbourhood search over keep/close patterns seeded by the MIP ({free} free branches: more "
            f"than {exact_patterns} to branch over), incomplete, ended by the {stop}"
        )
    warnings = [f"the best plan found misses: {why}" for why in best.misses]
    if not complete:
        warnings.append(f"the search stopped on its {ended.replace('_', ' ')} before the bound met the plan")
    if progress:
        progress("done", 1.0)
    base = today(problem)
    routed = best.routed
    return PlannerResult(
        status=status, objective=value, bound=bound, gap=gap, runtime_s=time.perf_counter() - t0,
        iterations=rounds, decision=best.decision, stop_served=routed.served, timetable=routed.timetable,
        costs=costs(problem, best.decision, bookmobile_operating=routed.operating),
        kpis=kpis(problem, best.decision, stop_served=routed.served), kpis_today=kpis(problem, base),
        costs_today=costs(problem, base, bookmobile_operating=0.0), history=tuple(search.history),
        warnings=tuple(warnings),
        search={
            "method": method, "exhaustive": exhaustive, "ended_by": ended, "rounds": rounds,
            "patterns_total": 2**free,
            "patterns_searched": len(search.patterns_seen), "patterns_closed": search.closed,
            "selections_set_aside": search.set_aside,
            "plans_evaluated": search.evaluated, "routing_cuts": master.cuts,
            "routing": f"exact (set partitioning over Held-Karp tours) for up to {exact_stops} stops per interval, "
            "else OR-Tools with a spanning-tree lower bound",
            "bound": "the selection MIP with routing lower bounds and routing cuts (a relaxation of every plan)",
        },
    )  # fmt: skip


def _explain_infeasible(problem: PlannerProblem, cls: Classes, params: SolveParams) -> None:
    """Raise an error saying why no plan exists: the budget, or a standard, with the best achievable value.

    Uses the relaxation (bound mode): when it has no plan, no routed plan exists either.
    """
    limit = max(1.0, params.time_limit_s / 4)
    if problem.budget is not None:
        relaxed = SelectionModel(problem, cls, mode="bound", goal=("min_cost", None),
                                 relax=frozenset({"budget", "standards"}))  # fmt: skip
        cheapest = relaxed.solve(time_limit_s=limit, gap=1e-6)
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
            best = SelectionModel(problem, cls, mode="bound", goal=("max_share", (kind, key, y)),
                                  relax=frozenset({"standards"})).solve(time_limit_s=limit, gap=1e-6)  # fmt: skip
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
