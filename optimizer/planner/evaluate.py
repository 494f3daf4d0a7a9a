"""Evaluate a plan: who is served how, what it costs, its KPIs and which standards it misses.

One evaluation serves the solver, the reports and the tests: the selection MIP is built from the same reach and
credit rules, and every plan the search returns is re-evaluated here on the demand points, not read back from
the MIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.kpis import access_block, nearest_open
from optimizer.planner.problem import WEEKS_PER_YEAR, PlanDecision, PlannerProblem, today


@dataclass(frozen=True)
class Access:
    """Per demand point, for one decision: the standard met, the credit and the mode giving it."""

    meets: np.ndarray  # (N,) bool, residents other than home-delivery recipients
    hd_point: np.ndarray  # (N,) bool, eligible seniors here receive home delivery
    credit: np.ndarray  # (N,) credit of residents other than recipients
    credit_hd: np.ndarray  # (N,) credit of the recipients
    mode: np.ndarray  # (N,) 'branch', 'bookmobile', 'desk' or 'none'
    nearest_branch_s: np.ndarray  # (N,) drive time to the nearest kept branch (inf if none)


def access(problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None) -> Access:
    """Who is served how under ``decision`` (``stop_served`` overrides which stops actually run)."""
    n = problem.population.shape[1]
    st = problem.standards
    cr = problem.credits
    open_b = decision.branch_open
    level = np.asarray(decision.branch_level)
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    kept = np.flatnonzero(open_b)
    t_open = t[:, kept]
    near = t_open.min(axis=1) if len(kept) else np.full(n, np.inf)
    reach_b = t_open <= st.branch_drive_s
    hours = np.asarray(problem.branch_hours)[kept, level[kept]]
    b_credit = np.where(reach_b, cr.branch.credit(hours)[None, :], 0.0).max(axis=1, initial=0.0)
    meets = np.asarray(reach_b.any(axis=1))
    best = b_credit.copy()
    mode = np.where(b_credit > 0, "branch", "none").astype(object)
    s = len(problem.stop_ids)
    if s:
        interval = np.asarray(decision.stop_interval, dtype=np.int64)
        served = interval > 0 if stop_served is None else np.asarray(stop_served, dtype=bool) & (interval > 0)
        idx = np.flatnonzero(served)  # only the served stops' columns: a plan serves a few of the candidates
        reach_s = np.asarray(problem.stop_walk_s)[:, idx] <= st.stop_walk_s
        dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64)[idx]
        s_credit = np.where(reach_s, cr.mobile.credit(dwell / 3600.0 / interval[idx])[None, :], 0.0).max(
            axis=1, initial=0.0
        )
        meets |= (reach_s & (interval[idx] <= st.stop_max_interval)[None, :]).any(axis=1)
        mode = np.where(s_credit > best, "bookmobile", mode)
        best = np.maximum(best, s_credit)
    d = len(problem.desk_ids)
    if d:
        opened = np.asarray(decision.desk_open, dtype=bool)
        reach_d = np.asarray(problem.desk_reach, dtype=bool) & opened[None, :]
        d_credit = np.where(reach_d, cr.desk.credit(np.asarray(problem.desk_hours))[None, :], 0.0)
        d_best = d_credit.max(axis=1, initial=0.0)
        if st.desk_counts:
            meets |= reach_d.any(axis=1)
        mode = np.where(d_best > best, "desk", mode)
        best = np.maximum(best, d_best)
    hd_point = np.zeros(n, dtype=bool)
    if st.home_delivery_beyond_s is not None and problem.eligible_share > 0:
        hd_point = near > st.home_delivery_beyond_s
    credit_hd = np.where(hd_point, np.maximum(best, cr.home_delivery), best)
    return Access(meets, hd_point, best, credit_hd, np.asarray(mode, dtype=str), near)


def home_delivery_recipients(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N) home-delivery recipients."""
    sen = problem.population[:, :, problem.senior_group] * problem.eligible_share
    return np.where(acc.hd_point[None, :], sen, 0.0)


def covered_people(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N, G) residents who meet the standard (home-delivery recipients count as meeting it)."""
    pop = np.asarray(problem.population, dtype=np.float64)
    cov: np.ndarray = pop * acc.meets[None, :, None]
    rec = home_delivery_recipients(problem, acc)
    g = problem.senior_group
    cov[:, :, g] = np.where(acc.meets[None, :], pop[:, :, g], rec)
    return cov


def credited_need(problem: PlannerProblem, acc: Access) -> np.ndarray:
    """(Y, N, G) need-weighted credited residents."""
    pop = np.asarray(problem.population, dtype=np.float64)
    need = problem.need_weights
    val: np.ndarray = pop * acc.credit[None, :, None]
    rec = home_delivery_recipients(problem, acc)
    g = problem.senior_group
    val[:, :, g] += rec * (acc.credit_hd - acc.credit)[None, :]
    weighted: np.ndarray = val * need[None, None, :]
    return weighted


def costs(
    problem: PlannerProblem, decision: PlanDecision, *, bookmobile_operating: float | None = None
) -> dict[str, Any]:
    """Annual cost by mode for each year (home delivery varies with the population); the bookmobile's operating
    cost is the routed one when given, else the estimate."""
    level = np.asarray(decision.branch_level)
    b = len(level)
    open_b = level >= 0
    run = float(np.asarray(problem.branch_cost)[np.arange(b), np.maximum(level, 0)][open_b].sum())
    closure = float(np.asarray(problem.closure_cost)[~open_b].sum())
    if bookmobile_operating is None:
        leg_s, leg_m = problem.stop_leg_estimate()
        bookmobile_operating = float(_stop_costs(problem, leg_s, leg_m, 1.0)[_stop_choice(problem, decision)].sum())
    mobile = float(decision.vehicles * problem.bookmobile.vehicle_annual + bookmobile_operating)
    desks = (
        float(np.asarray(problem.desk_cost)[np.asarray(decision.desk_open, dtype=bool)].sum())
        if len(problem.desk_ids)
        else 0.0
    )
    acc = access(problem, decision)
    recipients = home_delivery_recipients(problem, acc).sum(axis=1)
    hd = recipients * problem.home_delivery_cost
    totals = run + closure + mobile + desks + hd
    return {
        "branches": run,
        "closures": closure,
        "bookmobile": mobile,
        "desks": desks,
        "home_delivery": hd.tolist(),
        "recipients": recipients.tolist(),
        "total": totals.tolist(),
    }


def _stop_choice(problem: PlannerProblem, decision: PlanDecision) -> np.ndarray:
    """Boolean mask over the (stop, interval) options chosen by ``decision``."""
    ks = problem.bookmobile.intervals
    interval = np.asarray(decision.stop_interval, dtype=np.int64)
    return np.array([interval[s] == k for s in range(len(problem.stop_ids)) for k in ks], dtype=bool)


def _stop_costs(
    problem: PlannerProblem, leg_s: np.ndarray, leg_m: np.ndarray, alpha: float, beta: float = 1.0
) -> np.ndarray:
    """Annual operating cost of each (stop, interval) option, stop-major: ``beta`` x (hours x per-hour cost + km x
    per-km cost) per visit, with ``alpha`` x the estimated driving."""
    bm = problem.bookmobile
    dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64) if len(problem.stop_ids) else np.zeros(0)
    per_visit = beta * (bm.per_hour * (dwell + alpha * leg_s) / 3600.0 + bm.per_km * alpha * leg_m / 1000.0)
    return np.array([per_visit[s] * WEEKS_PER_YEAR / k for s in range(len(dwell)) for k in bm.intervals])


def kpis(
    problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per year: people meeting the standard (overall, by group, by zone, by census area), credit share, people by
    mode, and the drive-time access to the open branches (:func:`optimizer.kpis.access_block`: bands, two miles,
    the standard, mean and 95th percentile), weighted by that year's population."""
    acc = access(problem, decision, stop_served=stop_served)
    cov = covered_people(problem, acc)
    cred = credited_need(problem, acc)
    pop = np.asarray(problem.population, dtype=np.float64)
    need_pop = pop * problem.need_weights[None, None, :]
    zones = problem.zones
    names = problem.zone_names or tuple(str(z) for z in range(int(zones.max(initial=0)) + 1))
    open_b = decision.branch_open
    dist = (
        nearest_open(np.asarray(problem.branch_dist_m, dtype=np.float64), open_b)
        if problem.branch_dist_m is not None
        else None
    )
    # sums per zone and census area by bincount (one pass per year), not one mask per name
    n_zones = len(names)
    people_all = pop.sum(axis=2)  # (Y, N)
    covered_all = cov.sum(axis=2)
    recipients = home_delivery_recipients(problem, acc)
    modes = ("branch", "bookmobile", "desk", "none")
    mode_code = np.full(len(acc.mode), len(modes), dtype=np.int64)
    for code, m in enumerate(modes):
        mode_code[acc.mode == m] = code
    areas = np.asarray(problem.area, dtype=np.int64) if problem.area is not None else None
    out = []
    for y in range(pop.shape[0]):
        total = float(pop[y].sum())
        zone_pop = np.bincount(zones, weights=people_all[y], minlength=n_zones)
        zone_cov = np.bincount(zones, weights=covered_all[y], minlength=n_zones)
        by_zone = {
            name: {"population": float(zone_pop[z]), "covered": float(zone_cov[z]),
                   "share": float(zone_cov[z]) / float(zone_pop[z]) if zone_pop[z] else 1.0}
            for z, name in enumerate(names)
        }  # fmt: skip
        group_pop = pop[y].sum(axis=0)
        group_cov = cov[y].sum(axis=0)
        by_group = {
            int(g): {"population": float(group_pop[g]), "covered": float(group_cov[g]),
                     "share": float(group_cov[g] / group_pop[g]) if group_pop[g] else 1.0}
            for g in range(pop.shape[2])
        }  # fmt: skip
        people = people_all[y]
        mode_pop = np.bincount(mode_code, weights=people, minlength=len(modes) + 1)
        by_mode = {m: float(mode_pop[code]) for code, m in enumerate(modes)}
        by_mode["home_delivery"] = float(recipients[y].sum())
        block: dict[str, Any] = {
            "population": total,
            "covered": float(cov[y].sum()),
            "covered_share": float(cov[y].sum()) / total if total else 1.0,
            "credit_share": float(cred[y].sum() / need_pop[y].sum()) if need_pop[y].sum() else 1.0,
        }
        drive = access_block(acc.nearest_branch_s, dist, people, standard_s=problem.standards.branch_drive_s)
        block.update({k: v for k, v in drive.items() if k != "population"})
        block.update({"by_group": by_group, "by_zone": by_zone, "people_by_mode": by_mode})
        if areas is not None:
            n_areas = len(problem.area_names)
            area_pop = np.bincount(areas, weights=people, minlength=n_areas)
            area_cov = np.bincount(areas, weights=covered_all[y], minlength=n_areas)
            block["by_area"] = {
                name: {"population": float(area_pop[a]), "covered": float(area_cov[a]),
                       "share": float(area_cov[a]) / float(area_pop[a]) if area_pop[a] else 1.0}
                for a, name in enumerate(problem.area_names)
            }  # fmt: skip
        out.append(block)
    return out


def shortfalls(
    problem: PlannerProblem, decision: PlanDecision, served: np.ndarray, operating: float, *,
    k: list[dict[str, Any]] | None = None, total: list[float] | None = None, base: list[dict[str, Any]] | None = None,
) -> list[str]:  # fmt: skip
    """What the routed plan misses: standards (stops the routing could not fit) and the budget (routed costs).

    ``k``, ``total`` and ``base`` (the plan's KPIs, its yearly costs and today's KPIs) save their recomputation.
    """
    k = kpis(problem, decision, stop_served=served) if k is None else k
    out = standard_shortfalls(problem, decision, stop_served=served, k=k, base=base)
    if problem.budget is not None:
        total = costs(problem, decision, bookmobile_operating=operating)["total"] if total is None else total
        worst = max(total[y] for y in problem.years)
        if worst > problem.budget * (1 + 1e-9):
            out.append(f"annual cost {worst:,.0f} with the routed bookmobile > budget {problem.budget:,.0f}")
    if problem.min_visits_share is not None:
        from optimizer.visits import expected_visits

        got = expected_visits(problem, decision, problem.visits, stop_served=served).total
        today_visits = expected_visits(problem, today(problem), problem.visits).total
        for y in problem.years:
            if got[y] < problem.min_visits_share * today_visits[y] - 1e-6:
                out.append(f"{problem.year_name(y)}: expected visits {got[y]:,.0f} < {problem.min_visits_share:.0%} "
                           f"of today's {today_visits[y]:,.0f}")  # fmt: skip
    if problem.min_credit is not None:
        worst_credit = min(k[y]["credit_share"] for y in problem.years)
        if worst_credit < problem.min_credit - 1e-9:
            out.append(f"credit share {worst_credit:.4%} < the required {problem.min_credit:.4%}")
    return out


def plan_value(
    problem: PlannerProblem, decision: PlanDecision, served: np.ndarray | None, operating: float
) -> tuple[float, float]:
    """The plan's objective and its tie-break: (worst-year cost, -worst-year credit share) for ``min_cost``,
    (worst-year credit share, worst-year cost) for ``max_coverage``."""
    total = costs(problem, decision, bookmobile_operating=operating)["total"]
    return _value(problem, total, kpis(problem, decision, stop_served=served))


def _value(problem: PlannerProblem, total: list[float], k: list[dict[str, Any]]) -> tuple[float, float]:
    cost = float(max(total[y] for y in problem.years))
    credit = float(min(k[y]["credit_share"] for y in problem.years))
    return (cost, -credit) if problem.objective == "min_cost" else (credit, cost)


def evaluate_plan(
    problem: PlannerProblem, decision: PlanDecision, served: np.ndarray, operating: float, *,
    base: list[dict[str, Any]] | None = None,
) -> tuple[tuple[float, float], list[str]]:  # fmt: skip
    """:func:`plan_value` and :func:`shortfalls` of a routed plan, its KPIs and costs computed once (``base``:
    today's KPIs, when the caller keeps them)."""
    total = costs(problem, decision, bookmobile_operating=operating)["total"]
    k = kpis(problem, decision, stop_served=served)
    return _value(problem, total, k), shortfalls(problem, decision, served, operating, k=k, total=total, base=base)


def standard_shortfalls(
    problem: PlannerProblem, decision: PlanDecision, *, stop_served: np.ndarray | None = None,
    k: list[dict[str, Any]] | None = None, base: list[dict[str, Any]] | None = None,
) -> list[str]:  # fmt: skip
    """The standards ``decision`` misses, each with its target and achieved share (empty: all met).

    ``k`` and ``base`` (the plan's and today's KPIs) save their recomputation.
    """
    st = problem.standards
    k = kpis(problem, decision, stop_served=stop_served) if k is None else k
    if st.zone_max_loss is not None and base is None:
        base = kpis(problem, today(problem))
    out = []
    if problem.must_meet is not None:
        must = np.asarray(problem.must_meet, dtype=bool)
        lost = must & ~access(problem, decision, stop_served=stop_served).meets
        if lost.any():
            people = float(np.asarray(problem.population, dtype=np.float64)[0][lost].sum())
            out.append(f"{people:,.0f} residents who must keep the standard (no gap in service) lose it")
    for y in problem.years:
        if st.coverage_target is not None and k[y]["covered_share"] < st.coverage_target - 1e-6:
            out.append(
                f"{problem.year_name(y)}: coverage {k[y]['covered_share']:.2%} < target {st.coverage_target:.2%}"
            )
        for g, target in st.group_targets.items():
            share = k[y]["by_group"][g]["share"]
            if share < target - 1e-6:
                out.append(f"{problem.year_name(y)}: group {g} coverage {share:.2%} < target {target:.2%}")
        if st.zone_max_loss is not None:
            assert base is not None
            for name, z in k[y]["by_zone"].items():
                loss = base[y]["by_zone"][name]["share"] - z["share"]
                if loss > st.zone_max_loss + 1e-6:
                    out.append(f"{problem.year_name(y)}: zone {name} loses {loss:.2%} > {st.zone_max_loss:.2%}")
    return out
