"""A scenario's roadmap (``objective: roadmap``): the optimizer's multi-year problem, and its outputs.

:func:`roadmap_problem` turns a built scenario into :mod:`optimizer.roadmap`'s problem: one population slice per
year, interpolated linearly between the projection's today and target (constant without a projection), the budget
path as a ceiling per year (a path's amount holds from its year until the next one given), and one-off closure
costs (the branch file's ``closure_cost``, not spread over years as the single-year planner spreads it).

:func:`roadmap_document` writes ``roadmap.json``. Its layout:

- ``scenario``, ``region``, ``objective``, ``today_year``, ``target_year``, ``today_cost`` (today's network's
  annual running cost), ``savings_target``, ``savings_year``, ``ceilings`` (``{year: amount}``);
- ``years``: one entry per year: ``year``; ``decisions`` with ``branches`` (``{branch_id, name, decision,
  hours_today, hours, changed}``; ``decision`` is ``keep``, ``close``, ``reduce hours`` or ``extend hours``, the
  branch's state that year against today), ``bookmobile`` (``vehicles``, ``stops``, ``route_days``), ``desks``
  (the open desks' ids) and ``home_delivery_recipients``; ``costs`` (``total`` = ``running`` + ``one_off``,
  ``closures``, ``vehicle_purchase``, ``by_mode``); ``kpis`` (``covered_share``, ``credit_share``, ``by_group``,
  ``by_zone``, ``people_by_mode``) of that year's population; ``milestones`` (sentences);
- ``milestones``: every year's milestones, ``{year, text}``;
- ``solver``: ``status``, ``objective``, ``bound``, ``gap``, ``runtime_s`` and how the search and bound were made.

:func:`write_roadmap_outputs` adds ``timeline.md`` (the story year by year), ``roadmap.png`` (a Gantt chart of
every branch's state, the bookmobile and the running cost against the budget path) and per-year layers
(``branches_<year>``, ``demand_<year>``) to the plan's GeoPackage.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from optimizer.bookmobile import WEEKDAYS
from optimizer.planner import PlannerProblem, PlannerResult, access, costs, covered_people, kpis, today
from optimizer.roadmap import RoadmapResult, RoadmapRules
from optimizer.visits import closure_account, expected_visits
from service.plans.build import Built
from service.plans.report import branch_decisions
from service.plans.scenario import AGE_GROUPS


def roadmap_problem(b: Built) -> tuple[Built, RoadmapRules]:
    """The roadmap's problem (a copy of ``b`` whose problem has one population slice a year) and its rules."""
    sc = b.scenario
    spec = sc.roadmap
    assert spec is not None
    first = spec.first_year(sc)
    years = tuple(range(first, spec.target_year + 1))
    pop = np.asarray(b.problem.population, dtype=np.float64)
    if pop.shape[0] == 1 or sc.projection is None:
        slices = np.repeat(pop[:1], len(years), axis=0)
    else:
        pj = sc.projection
        span = max(pj.target_year - pj.today_year, 1)
        frac = np.array([(y - pj.today_year) / span for y in years])
        slices = np.clip(pop[0][None] + (pop[1] - pop[0])[None] * frac[:, None, None], 0.0, None)
    last = len(years) - 1
    problem = replace(
        b.problem, population=slices, years=(0, last) if last else (0,), year_labels=tuple(map(str, years)),
        budget=None, objective="min_cost",
    )  # fmt: skip
    base = replace(problem, closure_cost=np.zeros(len(problem.branch_ids)))
    today_cost = float(max(costs(base, today(base), bookmobile_operating=0.0)["total"][y] for y in base.years))
    ceilings: list[float | None] = [None] * len(years)
    path = {**{y: v * today_cost for y, v in spec.budget_path_share.items()}, **spec.budget_path}
    current: float | None = None
    for t, y in enumerate(years):
        if y in path:
            current = float(path[y])
        ceilings[t] = current
    one_off = np.asarray(b.problem.closure_cost, dtype=np.float64) * sc.costs.closure_years
    rules = RoadmapRules(
        years=years, objective=spec.objective, ceilings=tuple(ceilings) if any(c is not None for c in ceilings) else (),
        savings_target=spec.savings_target, savings_year=spec.savings_year,
        max_closures_per_year=spec.max_closures_per_year, notice_years=spec.notice_years,
        allow_reopen=spec.allow_reopen, no_gap=spec.no_gap, discount_rate=spec.discount_rate,
        closure_one_off=tuple(one_off.tolist()), vehicle_purchase=spec.vehicle_purchase,
    )  # fmt: skip
    built = replace(b, problem=problem, year_labels=tuple(map(str, years)), today_cost=today_cost)
    return built, rules


def _year_problem(b: Built) -> PlannerProblem:
    return replace(b.problem, closure_cost=np.zeros(len(b.problem.branch_ids)))


def _served_by(b: Built, r: PlannerResult, branch: int, t: int) -> dict[str, float]:
    """How the residents a closing branch served today are served in year ``t``: by mode (and nearest branch)."""
    p = _year_problem(b)
    time_s = np.asarray(b.region.time_s)
    mine = np.argmin(time_s, axis=1) == branch
    acc = access(p, r.decision, stop_served=r.stop_served)
    people = p.population[t].sum(axis=1)
    out: dict[str, float] = {}
    ids = np.asarray(p.branch_ids)
    open_b = r.decision.branch_open
    near = ids[open_b][np.argmin(time_s[:, open_b], axis=1)] if open_b.any() else np.full(len(people), "")
    for i in np.flatnonzero(mine):
        if acc.meets[i] and acc.mode[i] == "branch":
            key = str(near[i])
        elif acc.meets[i] and acc.mode[i] != "none":
            key = str(acc.mode[i])
        elif acc.hd_point[i]:
            key = "home delivery"
        else:
            key = "none"
        out[key] = out.get(key, 0.0) + float(people[i])
    return out


def roadmap_document(b: Built, rules: RoadmapRules, road: RoadmapResult, attribution: str) -> dict[str, Any]:
    """The ``roadmap.json`` document (module docstring)."""
    sc = b.scenario
    p = _year_problem(b)
    years_out: list[dict[str, Any]] = []
    milestones: list[dict[str, Any]] = []
    base = kpis(p, today(p))  # today's network, each year's population: the zone losses are against it
    visits_today = expected_visits(p, today(p), p.visits)
    previous: dict[str, str] = {bid: "keep" for bid in p.branch_ids}
    prev_vehicles, prev_stops = 0, 0
    built = replace(b, problem=p)
    for t, year in enumerate(road.years):
        r = year.config.result
        assert r is not None
        decisions = branch_decisions(built, r)
        # the solve evaluated its plan on the roadmap's population (one slice a year), routed bookmobile included
        k, c = r.kpis[t], r.costs
        v = expected_visits(p, r.decision, p.visits, stop_served=r.stop_served)
        lost = closure_account(p, visits_today, v, t)
        routes = r.timetable.route_days if r.timetable is not None else ()
        stops = int(np.asarray(r.stop_served).sum())
        notes: list[str] = []
        branches = []
        for d in decisions:
            state = d["decision"]
            changed = state != previous[d["branch_id"]]
            branches.append({"branch_id": d["branch_id"], "name": d["name"], "decision": state,
                             "hours_today": d["hours_today"], "hours": d["hours_plan"],
                             "changed": changed})  # fmt: skip
            if changed and state == "close":
                i = p.branch_ids.index(d["branch_id"])
                served = _served_by(b, r, i, t)
                total = sum(served.values())
                how = ", ".join(f"{k} ({v:,.0f})" for k, v in sorted(served.items(), key=lambda kv: -kv[1]) if v >= 0.5)
                notice = f" (announced {year.year - rules.notice_years})" if rules.notice_years else ""
                notes.append(f"{d['name']} closes{notice}; the {total:,.0f} residents it served are served by {how}")
                if d["branch_id"] in lost:
                    acc = lost[d["branch_id"]]
                    by = acc["recovered_by"].items()
                    back = ", ".join(f"{k.replace('_', ' ')} {x:,.0f}" for k, x in by if x >= 0.5)
                    notes.append(f"{d['name']}: its residents' {acc['today']:,.0f} expected visits a year become "
                                 f"{acc['after']:,.0f} ({back}): {acc['lost']:,.0f} lost")  # fmt: skip
            elif changed:
                notes.append(f"{d['name']}: {state}, {d['hours_today']:g} -> {d['hours_plan']:g} staffed hours a week")
            previous[d["branch_id"]] = state
        if r.decision.vehicles > prev_vehicles:
            days = ", ".join(sorted({f"{WEEKDAYS[rd.weekday]}" for rd in routes}))
            notes.append(f"the bookmobile starts: {r.decision.vehicles} vehicle(s), {stops} stops on {len(routes)} "
                         f"route-day(s) ({days})")  # fmt: skip
        elif stops != prev_stops and r.decision.vehicles:
            notes.append(f"the bookmobile serves {stops} stops (was {prev_stops})")
        prev_vehicles, prev_stops = r.decision.vehicles, stops
        if rules.savings_target is not None and year.year == rules.savings_year:
            saved = 1 - year.running / road.today_running
            notes.append(f"savings target: running cost {year.running:,.0f}, {saved:.1%} below today's "
                         f"(target {rules.savings_target:.0%})")  # fmt: skip
        milestones.extend({"year": year.year, "text": n} for n in notes)
        years_out.append({
            "year": year.year,
            "decisions": {
                "branches": branches,
                "bookmobile": {"vehicles": int(r.decision.vehicles), "stops": stops, "route_days": len(routes)},
                "desks": [d for d, o in zip(p.desk_ids, np.asarray(r.decision.desk_open, dtype=bool), strict=True)
                          if o],
                "home_delivery_recipients": float(c["recipients"][t]),
            },
            "costs": {"total": float(c["total"][t]) + year.one_off, "running": float(c["total"][t]),
                      "one_off": year.one_off, "closures": float(sum(rules.closure_one_off[i] for i in year.closures)),
                      "vehicle_purchase": year.one_off - float(sum(rules.closure_one_off[i] for i in year.closures)),
                      "planner_running": year.running,
                      "by_mode": {"branches": c["branches"], "bookmobile": c["bookmobile"], "desks": c["desks"],
                                  "home_delivery": float(c["home_delivery"][t])}},
            "kpis": {"covered_share": k["covered_share"], "credit_share": k["credit_share"],
                     "today_covered_share": base[t]["covered_share"],
                     "by_group": {AGE_GROUPS[g]: v for g, v in k["by_group"].items()},
                     "by_zone": {z: {**v, "loss_pp": 100 * (base[t]["by_zone"][z]["share"] - v["share"])}
                                 for z, v in k["by_zone"].items()},
                     "people_by_mode": k["people_by_mode"]},
            "visits": {"total": float(v.total[t]), "today": float(visits_today.total[t]),
                       "share_of_today": float(v.total[t] / visits_today.total[t]) if visits_today.total[t] else 1.0,
                       "by_mode": v.by_mode[t]},
            "milestones": notes,
        })  # fmt: skip
    return {
        "scenario": sc.name, "region": b.region.name, "objective": rules.objective,
        "today_year": rules.years[0], "target_year": rules.years[-1], "today_cost": road.today_running,
        "savings_target": rules.savings_target, "savings_year": rules.savings_year,
        "ceilings": {str(y): c for y, c in zip(rules.years, rules.ceilings, strict=True) if c is not None}
        if rules.ceilings else {},
        "limits": {"max_closures_per_year": rules.max_closures_per_year, "notice_years": rules.notice_years,
                   "no_gap": rules.no_gap, "allow_reopen": rules.allow_reopen, "discount_rate": rules.discount_rate,
                   "vehicle_purchase": rules.vehicle_purchase},
        "years": years_out, "milestones": milestones,
        "solver": {"status": road.status, "objective": road.objective, "bound": road.bound, "gap": road.gap,
                   "runtime_s": road.runtime_s, "search": road.search, "warnings": list(road.warnings),
                   "objective_meaning": _MEANING[rules.objective]},
        "attribution": attribution,
    }  # fmt: skip


_MEANING = {
    "min_cost": "discounted total cost: each year's network at its planner cost, plus one-off costs",
    "max_credit": "cumulative credit: the sum of the years' credit shares",
}


def timeline_markdown(doc: dict[str, Any]) -> str:
    """The readable timeline: per year the milestones, the network and the KPIs."""
    lines = [f"# Roadmap: {doc['scenario']} ({doc['region']}), {doc['today_year']}-{doc['target_year']}", ""]
    s = doc["solver"]
    gap = "unknown" if s["gap"] is None else f"{s['gap']:.2%}"
    lines += [f"Today's running cost {doc['today_cost']:,.0f} a year. Solver: {s['status']}, objective "
              f"{s['objective']:,.2f}, bound {s['bound'] if s['bound'] is None else format(s['bound'], ',.2f')}, "
              f"gap {gap}.", ""]  # fmt: skip
    for y in doc["years"]:
        lines.append(f"## {y['year']}")
        for m in y["milestones"] or ["no change"]:
            lines.append(f"- {m}")
        net = ", ".join(f"{b['name']} {b['decision']}" for b in y["decisions"]["branches"])
        bm = y["decisions"]["bookmobile"]
        lines.append(f"- network: {net}; bookmobile {bm['vehicles']} vehicle(s), {bm['stops']} stops")
        k, c = y["kpis"], y["costs"]
        lines.append(f"- meets the standard {k['covered_share']:.1%}, credit {k['credit_share']:.1%}; cost "
                     f"{c['total']:,.0f} (running {c['running']:,.0f}, one-off {c['one_off']:,.0f})")  # fmt: skip
        lines.append("")
    lines.append(f"Map data {doc['attribution']}")
    return "\n".join(lines) + "\n"


_STATE_COLOUR = {"keep": "#2b8cbe", "reduce hours": "#a6bddb", "extend hours": "#045a8d", "close": "#e0e0e0"}


def gantt_png(doc: dict[str, Any], path: Path) -> None:
    """A Gantt chart: each branch's state by year, the bookmobile's years, and the running cost against the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    years = [y["year"] for y in doc["years"]]
    branches = [b["name"] for b in doc["years"][0]["decisions"]["branches"]]
    rows = [*branches, "bookmobile"]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 2.2 + 0.45 * len(rows)), height_ratios=[len(rows), 3],
                                  sharex=True)  # fmt: skip
    for t, y in enumerate(doc["years"]):
        for i, b in enumerate(y["decisions"]["branches"]):
            ax.barh(i, 1, left=years[t] - 0.5, color=_STATE_COLOUR[b["decision"]], edgecolor="white")
            if b["changed"]:
                ax.text(years[t] - 0.45, i, b["decision"], va="center", fontsize=7)
        v = y["decisions"]["bookmobile"]["vehicles"]
        if v:
            ax.barh(len(branches), 1, left=years[t] - 0.5, color="#31a354", edgecolor="white")
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    handles = [Patch(color=c, label=s) for s, c in _STATE_COLOUR.items()]
    handles.append(Patch(color="#31a354", label="bookmobile running"))
    ax.legend(handles=handles, fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    ax.set_title(f"{doc['scenario']}: roadmap {doc['today_year']}-{doc['target_year']}", pad=28)
    ax2.plot(years, [y["costs"]["running"] for y in doc["years"]], marker="o", label="running cost")
    ax2.bar(years, [y["costs"]["one_off"] for y in doc["years"]], color="#fdae6b", label="one-off costs")
    if doc["ceilings"]:
        ax2.step([int(k) for k in doc["ceilings"]], list(doc["ceilings"].values()), where="mid", color="k",
                 linestyle="--", label="budget path")  # fmt: skip
    if doc["savings_target"] is not None:
        ax2.axhline(doc["today_cost"] * (1 - doc["savings_target"]), color="#d62728", linestyle=":",
                    label=f"savings target from {doc['savings_year']}")  # fmt: skip
    ax2.set_ylabel("per year")
    ax2.legend(fontsize=7)
    ax2.set_xticks(years, [str(y) for y in years])
    fig.text(0.99, 0.01, f"Map data {doc['attribution']}", ha="right", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def year_layers(b: Built, road: RoadmapResult, doc: dict[str, Any]) -> dict[str, gpd.GeoDataFrame]:
    """Per year: ``branches_<year>`` (the year's decision and hours) and ``demand_<year>`` (meets the standard,
    mode, people covered)."""
    p = _year_problem(b)
    out: dict[str, gpd.GeoDataFrame] = {}
    base = b.region.branches.drop(columns=[c for c in ("node",) if c in b.region.branches])
    demand0 = b.region.demand[["point_id", "population", "geometry"]].copy() if "point_id" in b.region.demand \
        else b.region.demand[["population", "geometry"]].copy()  # fmt: skip
    for t, (year, entry) in enumerate(zip(road.years, doc["years"], strict=True)):
        r = year.config.result
        assert r is not None
        br = base.copy()
        br["decision"] = [d["decision"] for d in entry["decisions"]["branches"]]
        br["hours"] = [d["hours"] for d in entry["decisions"]["branches"]]
        br["year"] = year.year
        out[f"branches_{year.year}"] = br
        acc = access(p, r.decision, stop_served=r.stop_served)
        dm = demand0.copy()
        dm["population"] = p.population[t].sum(axis=1)
        dm["meets"] = acc.meets | acc.hd_point
        dm["mode"] = acc.mode
        dm["covered"] = covered_people(p, acc)[t].sum(axis=1)
        dm["year"] = year.year
        out[f"demand_{year.year}"] = dm
    return out
