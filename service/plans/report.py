"""What a plan says: the sections of ``plan.json`` (decisions with their reasons, KPIs today and planned, costs,
winners and losers by area, statutory-style checks, the solver's account) and the KPIs of a region.

Every KPI comes from the one engine, :func:`optimizer.planner.evaluate.kpis` (access by
:mod:`optimizer.kpis`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geodata.region import RegionData
from optimizer.kpis import access_kpis
from optimizer.planner import PlanDecision, PlannerResult, access, covered_people, kpis, today
from service.plans.build import MILE_M, Built
from service.plans.outputs import jsonable
from service.plans.scenario import AGE_GROUPS


def kpi_block(b: Built, decision: PlanDecision, served: np.ndarray | None, year: int) -> dict[str, Any]:
    """One year's KPIs of a decision, with the age groups by name."""
    k = kpis(b.problem, decision, stop_served=served)[year]
    k["by_group"] = {AGE_GROUPS[g]: v for g, v in k["by_group"].items()}
    return k


def kpi_blocks(b: Built, r: PlannerResult) -> dict[str, dict[str, Any]]:
    """Per year label: the KPIs of today's network and of the plan."""
    return {label: {"today": kpi_block(b, today(b.problem), None, y),
                    "plan": kpi_block(b, r.decision, r.stop_served, y)}
            for y, label in enumerate(b.year_labels)}  # fmt: skip


def region_kpis(region: RegionData, open_mask: np.ndarray) -> dict[str, Any]:
    """Access KPIs of a set of open branches: overall, by census area and by group (former municipality)."""
    demand = region.demand["population"].to_numpy(dtype=float)
    areas = region.demand["area_id"].astype(str).to_numpy()
    out = access_kpis(region.time_s, demand, open_mask, distance_m=region.dist_m, groups=areas)
    out["by_area"] = out.pop("by_group")
    groups = region.demand["group"].astype(str).to_numpy()
    if len(set(groups.tolist())) > 1:
        out["by_group"] = access_kpis(region.time_s, demand, open_mask, distance_m=region.dist_m,
                                      groups=groups)["by_group"]  # fmt: skip
    return out


def statutory_checks(b: Built, decision: PlanDecision, served: np.ndarray | None,
                     year: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Reusable statutory-style tests: distance to a static library, drive time, and council stop rules."""
    k = kpi_block(b, decision, served, year)
    open_b = decision.branch_open
    checks: list[dict[str, Any]] = [
        {"name": "within 2 miles of a static library (road)", "value": float(k.get("share_within_2_miles", 0.0)),
         "threshold": 0.96, "rule": "share of residents; a council plan was accepted at 96%"},
        {"name": "within 20 min by car of a static library", "value": float(k["share_within_20_min"]),
         "threshold": 0.95, "rule": "share of residents"},
    ]  # fmt: skip
    if len(b.stops) and served is not None and (served & (np.asarray(decision.stop_interval) > 0)).any():
        run = served & (np.asarray(decision.stop_interval) > 0)
        assert b.stop_branch_m is not None
        near_kept = (b.stop_branch_m[:, open_b] < 2 * MILE_M).any(axis=1)
        comm = b.stops["community"].astype(str).to_numpy()[run]
        named = comm[comm != ""]
        visitors = b.stops["population"].to_numpy(dtype=float) * b.scenario.stops.uptake
        checks += [
            {"name": "mobile stops >= 2 miles from a static library (Cheshire East)",
             "value": int((run & near_kept).sum()), "threshold": 0, "rule": "stops closer than 2 miles"},
            {"name": "one mobile stop per community (Cheshire East)", "value": int(len(named) - len(set(named))),
             "threshold": 0, "rule": "communities with more than one stop"},
            {"name": "no mobile stop with <= 2 expected visitors (Kent)", "value": int((run & (visitors <= 2)).sum()),
             "threshold": 0, "rule": "stops with at most 2 expected visitors"},
        ]  # fmt: skip
    for c in checks:
        value, threshold = float(c["value"]), float(c["threshold"])
        c["passed"] = value >= threshold if isinstance(c["value"], float) else value <= threshold
    return checks


def branch_decisions(b: Built, r: PlannerResult) -> list[dict[str, Any]]:
    region, p = b.region, b.problem
    out = []
    level = r.decision.branch_level
    acc_today = access(p, today(p))
    acc_plan = access(p, r.decision, stop_served=r.stop_served)
    t_today = np.asarray(region.time_s)
    nearest_today = np.argmin(t_today, axis=1)
    people = p.population[0].sum(axis=1)
    seniors = p.population[0][:, 2]
    # residents meeting the standard as the KPIs count them (at home-delivery points only the recipients)
    covered_today = covered_people(p, acc_today)[0].sum(axis=1)
    covered_plan = covered_people(p, acc_plan)[0].sum(axis=1)
    ids = list(p.branch_ids)
    for i, bid in enumerate(ids):
        row = region.branches.iloc[i]
        h_now = float(row["staffed_hours_week"])
        c_now = float(row["annual_cost"])
        if level[i] < 0:
            decision, hours, cost = "close", 0.0, float(p.closure_cost[i])
        else:
            hours = float(b.hours[i, level[i]])
            cost = float(p.branch_cost[i, level[i]])
            decision = "keep" if hours == h_now else ("extend hours" if hours > h_now else "reduce hours")
        entry: dict[str, Any] = {"branch_id": bid, "name": str(row.get("name", bid)), "decision": decision,
                                 "hours_today": h_now, "hours_plan": hours, "annual_cost_today": c_now,
                                 "annual_cost_plan": cost, "annual_saving": c_now - cost}  # fmt: skip
        if decision == "close":
            mine = nearest_today == i
            served = people[mine]
            modes = acc_plan.mode[mine]
            near_now = np.where(r.decision.branch_open[None, :], t_today[mine], np.inf)
            new_branch = np.argmin(near_now, axis=1) if r.decision.branch_open.any() else np.full(mine.sum(), -1)
            by_branch: dict[str, float] = {}
            for k, w in zip(new_branch, served, strict=True):
                if k >= 0:
                    by_branch[ids[k]] = by_branch.get(ids[k], 0.0) + float(w)
            t_new = acc_plan.nearest_branch_s[mine]
            entry["explanation"] = {
                "served_today": float(served.sum()),
                "seniors_today": float(seniors[mine].sum()),
                "now_nearest_branch": {k: round(v) for k, v in sorted(by_branch.items(), key=lambda kv: -kv[1])},
                "mean_drive_min_after": float(np.average(t_new[np.isfinite(t_new)], weights=served[np.isfinite(t_new)])
                                              / 60) if np.isfinite(t_new).any() and served.sum() else None,
                "served_by_mode": {m: float(served[modes == m].sum()) for m in sorted(set(modes.tolist()))},
                "home_delivery_recipients": float(
                    (seniors[mine] * p.eligible_share * acc_plan.hd_point[mine]).sum()),
                "meeting_standard_before": float(covered_today[mine].sum()),
                "meeting_standard_after": float(covered_plan[mine].sum()),
                "annual_cost_saved": c_now - cost,
            }  # fmt: skip
            ex = entry["explanation"]
            top = ", ".join(f"{k} ({v:,} people)" for k, v in list(ex["now_nearest_branch"].items())[:2])
            others = [f"{ex['served_by_mode'][m]:,.0f} are best served by {label}"
                      for m, label in (("bookmobile", "the bookmobile"), ("desk", "an outreach desk"))
                      if ex["served_by_mode"].get(m, 0) >= 0.5]  # fmt: skip
            if ex["home_delivery_recipients"] >= 0.5:
                others.append(f"{ex['home_delivery_recipients']:,.0f} receive home delivery")
            entry["explanation"]["text"] = (
                f"{entry['name']} served {ex['served_today']:,.0f} residents (nearest branch today). After closure "
                f"their nearest branch is {top or 'none'}; {ex['meeting_standard_after']:,.0f} of them still meet "
                f"the service standard (was {ex['meeting_standard_before']:,.0f})"
                + (f"; {', '.join(others)}" if others else "")
                + f". Saves {ex['annual_cost_saved']:,.0f} a year (closure cost spread over "
                f"{b.scenario.costs.closure_years:g} years)."
            )
        out.append(entry)
    return out


def winners_losers(b: Built, r: PlannerResult) -> list[dict[str, Any]]:
    """Per census area: residents who gain or lose the standard, and the change in drive time."""
    p, region = b.problem, b.region
    before = access(p, today(p))
    after = access(p, r.decision, stop_served=r.stop_served)
    people = p.population[0].sum(axis=1)
    met0 = before.meets | before.hd_point
    met1 = after.meets | after.hd_point
    areas = region.demand["area_id"].astype(str).to_numpy()
    zones = region.demand["group"].astype(str).to_numpy()
    rows = []
    for a in sorted(set(areas.tolist())):
        m = areas == a
        w = people[m]
        t0 = before.nearest_branch_s[m]
        t1 = after.nearest_branch_s[m]
        fin = np.isfinite(t0) & np.isfinite(t1)
        rows.append({
            "area_id": a, "zone": zones[m][0], "population": float(w.sum()),
            "gain_standard": float(w[~met0[m] & met1[m]].sum()), "lose_standard": float(w[met0[m] & ~met1[m]].sum()),
            "mean_drive_min_today": float(np.average(t0[fin], weights=w[fin]) / 60) if fin.any() and w[fin].sum()
            else None,
            "mean_drive_min_plan": float(np.average(t1[fin], weights=w[fin]) / 60) if fin.any() and w[fin].sum()
            else None,
            "credit_change": float(np.average(after.credit[m] - before.credit[m], weights=w)) if w.sum() else 0.0,
        })  # fmt: skip
    rows.sort(key=lambda x: (-(x["lose_standard"] - x["gain_standard"]), x["area_id"]))
    return rows


def decision_json(b: Built, r: PlannerResult) -> dict[str, Any]:
    p = b.problem
    dec = r.decision
    chosen = np.flatnonzero(np.asarray(dec.stop_interval) > 0)
    return {
        "bookmobile": {
            "vehicles": dec.vehicles,
            "stops_selected": len(chosen),
            "stops_served": int(r.stop_served.sum()),
            "stops": [
                {
                    "stop_id": p.stop_ids[j],
                    "community": str(b.stops.iloc[j]["community"]),
                    "interval_weeks": int(dec.stop_interval[j]),
                    "served": bool(r.stop_served[j]),
                    "population": float(b.stops.iloc[j]["population"]),
                }
                for j in chosen
            ],
            "cycle_weeks": r.timetable.cycle_weeks if r.timetable else 0,
            "route_days": len(r.timetable.route_days) if r.timetable else 0,
            "cycle_driving_h": r.timetable.cycle_driving_s / 3600 if r.timetable else 0.0,
            "timetable": "timetable.csv" if r.timetable and r.timetable.route_days else None,
        },
        "outreach": {
            "desks": [
                {
                    "desk_id": p.desk_ids[d],
                    "name": str(b.desks.iloc[d]["name"]),
                    "hours_per_week": float(b.desks.iloc[d]["hours_per_week"]),
                }
                for d in np.flatnonzero(np.asarray(dec.desk_open, dtype=bool))
            ],
            "home_delivery_recipients": r.costs["recipients"],
            "home_delivery_eligible_share_of_65_plus": p.eligible_share,
        },
    }


def cost_json(c: dict[str, Any], years: tuple[str, ...]) -> dict[str, Any]:
    out = {k: c[k] for k in ("branches", "closures", "bookmobile", "desks")}
    out["home_delivery"] = dict(zip(years, c["home_delivery"], strict=False))
    out["total_by_year"] = dict(zip(years, c["total"], strict=False))
    out["total"] = max(c["total"])
    return out


def candidate_warnings(b: Built) -> list[str]:
    """Say when the candidate cap, not the plan, limited the bookmobile's stops."""
    c = b.candidates
    if not c["cap_binds"]:
        return []
    return [
        f"stops.max_candidates={c['cap']} kept {c['cap']} of the {c['found']} candidate stops the greedy cover "
        "found; the plan could not use the others (raise it to search them all)"
    ]


def visits_json(b: Built, r: PlannerResult) -> dict[str, Any]:
    """Expected visits (:mod:`optimizer.visits`) of today's network and of the plan: per year the totals and modes,
    the first year's visits per service, and per closed branch the visits its residents made and what the plan keeps
    of them by mode."""
    from optimizer.visits import closure_account, expected_visits

    p = b.problem
    before = expected_visits(p, today(p), p.visits)
    after = expected_visits(p, r.decision, p.visits, stop_served=r.stop_served)
    m = p.visits
    return {
        "model": {"per_resident": m.per_resident, "decay_min": m.decay_min,
                  "home_delivery_per_recipient": m.home_delivery_per_recipient,
                  "min_share": p.min_visits_share, "meaning": "an estimate (optimizer.visits)"},
        "by_year": {label: {"today": float(before.total[y]), "plan": float(after.total[y]),
                            "share_kept": float(after.total[y] / before.total[y]) if before.total[y] else 1.0,
                            "by_mode_today": before.by_mode[y], "by_mode_plan": after.by_mode[y]}
                    for y, label in enumerate(b.year_labels)},
        "by_service_today": before.by_service, "by_service_plan": after.by_service,
        "by_closure": closure_account(p, before, after),
    }  # fmt: skip


def solver_json(b: Built, r: PlannerResult, account: dict[str, Any] | None = None) -> dict[str, Any]:
    """The solver's account: status, objective, bound, gap and what they mean; the search; the candidates."""
    p = b.problem
    if account is not None:  # a branch-only study: the location model's own objective and bound
        head = {"engine": account["engine"], "status": r.status, "objective_name": account["objective_name"],
                "objective": r.objective, "bound": r.bound, "gap": r.gap,
                "bound_meaning": "the location model's proven bound on its objective"}  # fmt: skip
    else:
        minimise = p.objective == "min_cost"
        head = {
            "engine": "HiGHS selection MIP with routing cuts + exact or OR-Tools routing (branch-and-bound over "
            "branch patterns)",
            "status": r.status,
            "objective_name": "worst-year annual cost" if minimise else "worst-year need-weighted credit share",
            "objective": r.objective,
            "bound": r.bound,
            "gap": r.gap,
            "bound_meaning": (
                "a lower bound on the objective of every plan of the model, routed bookmobile included"
                if minimise
                else "an upper bound on the objective of every plan of the model, routed bookmobile included"
            ),
        }
    return {
        **head,
        "iterations": r.iterations,
        "runtime_s": r.runtime_s,
        "search": r.search,
        "history": list(r.history),
        "warnings": [*r.warnings, *candidate_warnings(b)],
        "candidates": {
            "stops": len(b.stops),
            "desks": len(b.desks),
            "stops_found": b.candidates["found"],
            "max_candidates": b.candidates["cap"],
            "cap_binds": b.candidates["cap_binds"],
            "stops_capacity_limited": int(b.stops["capacity_limited"].sum()) if len(b.stops) else 0,
        },
    }


def summary_html(b: Built, r: PlannerResult, k0: dict[str, Any]) -> str:
    """The map's summary box: branches kept, the standard, the cost, the bookmobile and the solver."""
    gap = "unknown" if r.gap is None else f"{r.gap:.2%}"
    return (
        f"<table><tr><td>Branches kept</td><td>{int(r.decision.branch_open.sum())} of {len(b.problem.branch_ids)}"
        f"</td></tr><tr><td>Meeting the standard</td><td>{k0['plan']['covered_share']:.1%} (today "
        f"{k0['today']['covered_share']:.1%})</td></tr><tr><td>Annual cost</td><td>{max(r.costs['total']):,.0f} "
        f"(today {max(r.costs_today['total']):,.0f})</td></tr><tr><td>Bookmobile</td><td>{r.decision.vehicles} "
        f"vehicle(s), {int(r.stop_served.sum())} stops</td></tr><tr><td>Solver</td><td>{r.status}, gap {gap}, "
        f"{r.iterations} round(s)</td></tr></table>"
    )


def region_summary(region: RegionData) -> dict[str, Any]:
    """What the API shows of a region: its size, networks, notes, branches and the current network's KPIs."""
    meta = region.meta
    kpis = region_kpis(region, np.ones(len(region.branches), dtype=bool))
    branches = [{"id": str(b), "name": str(n)} for b, n in zip(region.branches["branch_id"], region.branches["name"],
                                                                strict=True)]  # fmt: skip
    out = {
        "population": meta.get("population"),
        "demand_points": meta.get("demand_points"),
        "branches": meta.get("branches"),
        "crs": meta.get("crs"),
        "networks": meta.get("networks"),
        "notes": meta.get("notes", []),
        "max_branch_snap_m": meta.get("max_branch_snap_m"),
        "sources": meta.get("sources"),  # labels for uploads; never the private ``source_paths``
        "digests": meta.get("digests"),
        "attribution": meta.get("attribution"),
        "branch_list": branches,
        "kpis": kpis,
    }
    return dict(jsonable(out))
