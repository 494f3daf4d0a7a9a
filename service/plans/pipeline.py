"""The joint planner job: region + scenario -> :class:`optimizer.planner.PlannerProblem` -> solve -> result files.

One code path for the CLI (``branchnet plan SCENARIO.yaml --out DIR``) and the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from geodata.matrix import travel_time_matrix
from geodata.region import RegionData
from geodata.snapping import snap_points
from geodata.stops import StopCapacity, StopRules, candidate_stops, stop_catchments
from geodata.timetable import timetable_from_rows, write_calendars
from optimizer.errors import CoverageUnreachableError, InvalidProblemError
from optimizer.kpis import TWO_MILES_M, access_kpis
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
    covered_people,
    non_dominated,
    pareto_front,
    solve_plan,
    today,
)
from service.plans import maps, outputs
from service.plans.bookmobile import bookmobile_graph, stops_layer_of, timetable_outputs
from service.plans.location import study_area
from service.plans.scenario import AGE_GROUPS, Scenario

Progress = Callable[[str, float], None]
MILE_M = 1609.344


@dataclass
class Built:
    """A scenario on a region: the optimizer problem and the geography behind its ids."""

    problem: PlannerProblem
    scenario: Scenario
    region: RegionData
    stops: gpd.GeoDataFrame
    desks: gpd.GeoDataFrame
    hours: np.ndarray  # (B, H)
    year_labels: tuple[str, ...]
    depot: str
    van: nx.MultiDiGraph | None
    stop_nodes: np.ndarray  # depot + stops, drive nodes
    stop_branch_m: np.ndarray | None  # (stops, branches) straight-line metres
    budget: float | None
    today_cost: float
    candidates: dict[str, Any]  # the candidate stops' cap: found, kept, cap, cap_binds


def _population(region: RegionData, sc: Scenario) -> tuple[np.ndarray, tuple[str, ...]]:
    demand = region.demand
    base = np.column_stack([demand[g].to_numpy(dtype=float) if g in demand else np.zeros(len(demand))
                            for g in AGE_GROUPS])  # fmt: skip
    total = demand["population"].to_numpy(dtype=float)
    short = base.sum(axis=1) < total - 1e-6
    if short.any():  # no age breakdown: spread with the region's overall shares (or 20/60/20)
        shares = base.sum(axis=0) / base.sum() if base.sum() > 0 else np.array([0.2, 0.6, 0.2])
        base[short] = total[short, None] * shares[None, :]
    if sc.projection is None:
        return base[None], ("today",)
    pj = sc.projection
    mult = np.array([pj.multipliers.get(g, 1.0) for g in AGE_GROUPS])  # type: ignore[call-overload]
    target = base * mult[None, :]
    zones = demand["group"].astype(str).to_numpy()
    unknown = sorted(set(pj.by_zone) - set(zones.tolist()))
    if unknown:
        raise InvalidProblemError(
            f"projection.by_zone: unknown zone(s) {unknown}; the region's are {sorted(set(zones.tolist()))}"
        )
    for z, m in pj.by_zone.items():
        zm = np.array([m.get(g, pj.multipliers.get(g, 1.0)) for g in AGE_GROUPS])  # type: ignore[call-overload]
        target[zones == z] = base[zones == z] * zm[None, :]
    areas = demand["area_id"].astype(str).to_numpy()
    unknown = sorted(set(pj.by_area) - set(areas.tolist()))
    if unknown:
        raise InvalidProblemError(f"projection.by_area: unknown census area(s) {unknown[:5]}")
    for a, m in pj.by_area.items():
        am = np.array([m.get(g, pj.multipliers.get(g, 1.0)) for g in AGE_GROUPS])  # type: ignore[call-overload]
        target[areas == a] = base[areas == a] * am[None, :]
    return np.stack([base, target]), (str(pj.today_year), str(pj.target_year))


def build(region: RegionData, sc: Scenario, *, progress: Progress | None = None) -> Built:
    """Turn a region and a scenario into the optimizer's problem (checks forced ids against the region)."""
    branches = region.branches
    ids = branches["branch_id"].astype(str).tolist()
    for name, forced in (("forced.keep", sc.forced.keep), ("forced.close", sc.forced.close)):
        unknown = sorted(set(forced) - set(ids))
        if unknown:
            raise InvalidProblemError(f"{name}: unknown branch id(s) {unknown}; the region's branches are {ids}")
    must = branches["must_keep"].to_numpy(dtype=bool) if "must_keep" in branches else np.zeros(len(ids), bool)
    keep = must | np.isin(ids, sc.forced.keep)
    close = np.isin(ids, sc.forced.close)
    clash = keep & close
    if clash.any():
        raise InvalidProblemError(
            f"forced.close: branch(es) {np.asarray(ids)[clash].tolist()} must be kept (must_keep in the branch file)"
        )
    pop, labels = _population(region, sc)
    # hours levels
    h_today = branches["staffed_hours_week"].to_numpy(dtype=float)
    cost_today = branches["annual_cost"].to_numpy(dtype=float)
    levels = np.array(sc.hours.levels)
    hours = np.round(np.clip(h_today[:, None] * levels[None, :], sc.hours.min_hours, sc.hours.max_hours) * 2) / 2
    hours[:, levels == 1.0] = h_today[:, None]
    cost = cost_today[:, None] + sc.costs.per_staffed_hour * 52 * (hours - h_today[:, None])
    current = np.full(len(ids), int(np.flatnonzero(levels == 1.0)[0]))
    # duplicate levels (clipped) are removed
    for b in range(len(ids)):
        seen: set[float] = set()
        for h in range(hours.shape[1]):
            if hours[b, h] in seen and h != current[b]:
                hours[b, h] = np.nan
            seen.add(float(hours[b, h]))
    closure = branches["closure_cost"].to_numpy(dtype=float) / sc.costs.closure_years
    st = sc.standards
    standards = Standards(
        branch_drive_s=st.branch_drive_min * 60, stop_walk_s=st.stop_walk_min * 60,
        stop_max_interval=st.stop_max_interval_weeks, desk_counts=st.desk_counts,
        home_delivery_beyond_s=None if st.home_delivery_beyond_min is None or sc.forced.no_home_delivery
        else st.home_delivery_beyond_min * 60,
        coverage_target=st.coverage_target,
        group_targets={AGE_GROUPS.index(g): v for g, v in st.group_targets.items()},
        zone_max_loss=None if st.zone_max_loss_pp is None else st.zone_max_loss_pp / 100,
    )  # fmt: skip
    c = sc.credits
    credits = Credits(
        branch=CreditRule(c.branch.weight, c.branch.full_hours, c.branch.exponent),
        mobile=CreditRule(c.bookmobile.weight, c.bookmobile.full_hours, c.bookmobile.exponent),
        desk=CreditRule(c.desk.weight, c.desk.full_hours, c.desk.exponent),
        home_delivery=c.home_delivery,
    )
    fleet = sc.fleet
    bm = BookmobileCosts(
        vehicle_annual=sc.costs.bookmobile.vehicle_annual, per_hour=sc.costs.bookmobile.per_hour,
        per_km=sc.costs.bookmobile.per_km, max_vehicles=0 if sc.forced.no_bookmobile else fleet.max_vehicles,
        weekdays=tuple(fleet.weekdays), shift_start_s=round(fleet.shift_start_h * 3600),
        shift_s=round(fleet.shift_hours * 3600), lunch_s=round(fleet.lunch_min * 60),
        intervals=tuple(fleet.intervals_weeks),
    )  # fmt: skip
    zones = region.demand["group"].astype(str).to_numpy()
    zone_names = tuple(sorted(set(zones.tolist())))
    zone_idx = np.searchsorted(np.array(zone_names), zones)
    if progress:
        progress("candidate stops", 0.0)
    stops, walk_s, van, stop_nodes, travel, dist, community, stop_branch_m, depot, cand_note = _stops(region, sc, must)
    # Cheshire East rule: no stop this close to a branch while that branch is kept
    conflict = None if stop_branch_m is None else stop_branch_m < sc.stops.min_branch_distance_miles * MILE_M
    if progress:
        progress("candidate stops", 1.0)
        progress("outreach sites", 0.0)
    desks, reach = _desks(region, sc)
    if progress:
        progress("outreach sites", 1.0)
    dwell = _capacity(sc).dwell_s(stops["population"].to_numpy(dtype=float)) if len(stops) else np.zeros(0)
    need = np.array([1 - sc.digital_uptake.get(g, 0.0) for g in AGE_GROUPS])  # type: ignore[call-overload]
    years = (
        (0,)
        if len(labels) == 1
        else {"today": (0,), "target": (1,), "both": (0, 1)}[sc.projection.optimise_for if sc.projection else "today"]
    )
    problem = PlannerProblem(
        population=pop, branch_ids=tuple(ids), branch_time_s=region.time_s, branch_hours=hours, branch_cost=cost,
        current_level=current, closure_cost=closure, need=need, zone=zone_idx, zone_names=zone_names,
        keep=keep, close=close, stop_ids=tuple(stops["stop_id"]) if len(stops) else (), stop_walk_s=walk_s,
        stop_dwell_s=dwell, stop_community=community, stop_travel_s=travel, stop_dist_m=dist,
        stop_conflict=conflict, desk_ids=tuple(desks["desk_id"]) if len(desks) else (), desk_reach=reach,
        desk_hours=desks["hours_per_week"].to_numpy(dtype=float) if len(desks) else None,
        desk_cost=(desks["hours_per_week"].to_numpy(dtype=float) * 52 * sc.costs.desk_per_hour) if len(desks)
        else None,
        senior_group=2, eligible_share=0.0 if sc.forced.no_home_delivery else sc.home_delivery.eligible_share,
        home_delivery_cost=sc.costs.home_delivery_per_recipient, credits=credits, standards=standards,
        bookmobile=bm, objective="min_cost" if sc.objective == "min_cost" else "max_coverage", years=years,
        year_labels=labels,
    )  # fmt: skip
    from optimizer.planner import costs as plan_costs

    today_cost = max(plan_costs(problem, today(problem), bookmobile_operating=0.0)["total"])
    budget = sc.budget if sc.budget is not None else (sc.budget_share * today_cost if sc.budget_share else None)
    if budget is not None and sc.objective != "pareto":
        from dataclasses import replace

        problem = replace(problem, budget=budget)
    return Built(problem, sc, region, stops, desks, hours, labels, depot, van, stop_nodes, stop_branch_m, budget,
                 today_cost, cand_note)  # fmt: skip


def _stops(
    region: RegionData, sc: Scenario, must_keep: np.ndarray
) -> tuple[gpd.GeoDataFrame, Any, Any, np.ndarray, Any, Any, Any, Any, str, dict[str, Any]]:
    """Candidate stops for every resident some admissible plan could leave beyond the branch standard.

    The candidates do not depend on the plan: they cover the residents beyond the standard of the branches that
    must stay open (the branch file's ``must_keep``; a scenario's forced decisions only fix variables), so a
    forced plan and the free search choose among the same stops. Returns the stops and their matrices, the depot,
    and a note on the candidate cap (``stops.max_candidates``): how many the greedy cover found and whether the
    cap cut it short.
    """
    branches = region.branches
    n = len(region.demand)
    empty = gpd.GeoDataFrame({"stop_id": [], "population": []}, geometry=[], crs="EPSG:4326")
    depot_row = branches.sort_values(["staffed_hours_week", "branch_id"], ascending=[False, True]).iloc[0]
    depot = str(depot_row["branch_id"])
    note: dict[str, Any] = {"cap": sc.stops.max_candidates, "found": 0, "kept": 0, "cap_binds": False}
    nothing = (empty, None, None, np.zeros(0, dtype=np.int64), None, None, None, None, depot, note)
    if sc.forced.no_bookmobile or sc.fleet.max_vehicles == 0 or sc.stops.max_candidates == 0:
        return nothing
    limit = sc.standards.branch_drive_min * 60
    t_must = region.time_s[:, must_keep].min(axis=1) if must_keep.any() else np.full(n, np.inf)
    unserved = t_must > limit
    rules = StopRules(walk_min=sc.standards.stop_walk_min, min_population=sc.stops.min_population)
    found, _ = candidate_stops(region.drive, region.walk, region.demand, unserved, branches=None,
                               settlements=region.settlements, rules=rules)  # fmt: skip
    note["found"] = len(found)
    if not len(found):
        return nothing
    # the greedy cover picks the same stops in the same order whatever the cap: the cap keeps the first ones
    note["cap_binds"] = len(found) > sc.stops.max_candidates
    found = found.iloc[: sc.stops.max_candidates].reset_index(drop=True)
    found = found.assign(stop_id=[f"stop-{k + 1:03d}" for k in range(len(found))])
    capacity = _capacity(sc)
    walk_s, catchment, counted = stop_catchments(region.walk, region.demand, found,
                                                 walk_min=sc.standards.stop_walk_min, capacity=capacity)  # fmt: skip
    found = found.assign(catchment_population=catchment, population=counted,
                         capacity_limited=counted < catchment - 1e-9)  # fmt: skip
    visitors = counted * sc.stops.uptake
    ok = visitors > sc.stops.min_visitors  # Kent rule: stops with too few expected visitors are withdrawn
    stops = gpd.GeoDataFrame(found[ok].reset_index(drop=True), geometry="geometry", crs="EPSG:4326")
    walk_s = walk_s[:, ok]
    if not len(stops):
        return nothing
    van = bookmobile_graph(region.drive)
    nodes = np.array([int(depot_row["node"]), *stops["node"].astype(int).tolist()], dtype=np.int64)
    travel = travel_time_matrix(van, nodes, nodes)
    dist = travel_time_matrix(van, nodes, nodes, weight="length")
    bad = ~np.isfinite(travel).all(axis=0) | ~np.isfinite(travel).all(axis=1)
    if bad[1:].any():  # candidates the van cannot reach both ways (one-way dead ends) are not offered
        keep_s = ~bad[1:]
        stops = stops[keep_s].reset_index(drop=True)
        walk_s = walk_s[:, keep_s]
        sel = np.concatenate([[True], keep_s])
        nodes, travel, dist = nodes[sel], travel[np.ix_(sel, sel)], dist[np.ix_(sel, sel)]
    note["kept"] = len(stops)
    names = stops["community"].astype(str).to_numpy()
    labels = {c: k for k, c in enumerate(sorted(set(names.tolist()) - {""}))}
    community = np.array([labels.get(c, -1) for c in names], dtype=np.int64)
    stop_branch_m = _straight_m(stops, branches, region.drive.graph["crs"])
    return stops, walk_s, van, nodes, travel, dist, community, stop_branch_m, depot, note


def _capacity(sc: Scenario) -> StopCapacity:
    st = sc.stops
    return StopCapacity(visitors_per_hour=st.visitors_per_hour, uptake=st.uptake, setup_min=st.setup_min,
                        max_dwell_min=st.max_dwell_min)  # fmt: skip


def _straight_m(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, crs: Any) -> np.ndarray:
    """(len(a), len(b)) straight-line distances in metres, in the projected ``crs``."""
    axy, bxy = a.to_crs(crs), b.to_crs(crs)
    dx = axy.geometry.x.to_numpy()[:, None] - bxy.geometry.x.to_numpy()[None, :]
    dy = axy.geometry.y.to_numpy()[:, None] - bxy.geometry.y.to_numpy()[None, :]
    return np.asarray(np.hypot(dx, dy))


def _desks(region: RegionData, sc: Scenario) -> tuple[gpd.GeoDataFrame, np.ndarray | None]:
    o = sc.outreach
    rows = [{"desk_id": s.id, "name": s.name or s.id, "hours_per_week": s.hours_per_week, "lon": s.lon, "lat": s.lat}
            for s in o.sites]  # fmt: skip
    if o.from_settlements and region.settlements is not None and len(region.settlements):
        st = region.settlements.copy()
        popcol = "population" if "population" in st else None
        if popcol:
            st = st.sort_values(popcol, ascending=False)
        sxy = st.to_crs(region.drive.graph["crs"])
        d = _straight_m(st, region.branches, region.drive.graph["crs"]).min(axis=1)
        from scipy.spatial import cKDTree

        dem = region.demand.to_crs(region.drive.graph["crs"])
        inside = cKDTree(np.column_stack([dem.geometry.x, dem.geometry.y])).query(
            np.column_stack([sxy.geometry.x, sxy.geometry.y])
        )[0]
        st = st[(d > 2 * MILE_M) & (inside <= 1000.0)].head(o.from_settlements)  # in the region, away from branches
        rows += [{"desk_id": f"desk-{str(r['name']).lower().replace(' ', '-')}", "name": f"{r['name']} (outreach)",
                  "hours_per_week": o.hours_per_week, "lon": r.geometry.x, "lat": r.geometry.y}
                 for _, r in st.to_crs("EPSG:4326").iterrows()]  # fmt: skip
    if not rows:
        return gpd.GeoDataFrame({"desk_id": []}, geometry=[], crs="EPSG:4326"), None
    frame = pd.DataFrame(rows).drop_duplicates("desk_id")
    desks = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
    graph = region.drive if o.catchment == "drive" else region.walk
    snapped = snap_points(graph, desks, ids=desks["desk_id"].tolist(), what="outreach site", source="scenario",
                          max_m=3000.0)  # fmt: skip
    dnodes = snapped["node"].to_numpy()
    if o.catchment == "drive":
        t = travel_time_matrix(region.drive, dnodes, region.demand["node"].to_numpy()).T
        t = t + region.demand["snap_s"].to_numpy()[:, None]
    else:
        crs = region.walk.graph["crs"]
        pts = region.demand.to_crs(crs)
        wn = snap_points(region.walk, pts, ids=[str(i) for i in range(len(pts))], what="demand point",
                         source="region", max_m=5000.0)["node"].to_numpy()  # fmt: skip
        t = travel_time_matrix(region.walk, dnodes, wn, cutoff=o.catchment_min * 60).T
    desks["node"] = dnodes
    return desks.reset_index(drop=True), t <= o.catchment_min * 60


# ---------------------------------------------------------------------------------------------------------------
# results


def _kpi_block(b: Built, decision: PlanDecision, served: np.ndarray | None, year: int) -> dict[str, Any]:
    p = b.problem
    region = b.region
    acc = access(p, decision, stop_served=served)
    cov = covered_people(p, acc)[year]  # (N, G)
    pop = p.population[year]
    people = pop.sum(axis=1)
    open_b = decision.branch_open
    drive = access_kpis(region.time_s, people, open_b, distance_m=region.dist_m)["overall"]
    from optimizer.planner import kpis as plan_kpis

    k = plan_kpis(p, decision, stop_served=served)[year]
    mins = p.standards.branch_drive_s / 60
    out: dict[str, Any] = {
        "population": k["population"],
        "covered": k["covered"],
        "covered_share": k["covered_share"],
        "credit_share": k["credit_share"],
        "mean_drive_min": drive["mean_time_min"],
        "p95_drive_min": drive["p95_time_min"],
        f"within_{mins:g}_min_drive_share": float(people[acc.nearest_branch_s <= p.standards.branch_drive_s].sum())
        / max(people.sum(), 1e-9),
        "within_20_min_drive_share": drive.get("share_within_20min"),
        "within_2_miles_share": drive.get(f"share_within_{TWO_MILES_M / 1000:.1f}km_road"),
        "unreachable": drive["unreachable"],
        "people_by_mode": k["people_by_mode"],
        "by_group": {AGE_GROUPS[g]: v for g, v in k["by_group"].items()},
        "by_zone": k["by_zone"],
    }
    areas = region.demand["area_id"].astype(str).to_numpy()
    by_area = {}
    for a in sorted(set(areas.tolist())):
        m = areas == a
        tot = float(pop[m].sum())
        by_area[a] = {"population": tot, "covered": float(cov[m].sum()), "share": float(cov[m].sum()) / tot if tot
                      else 1.0}  # fmt: skip
    out["by_area"] = by_area
    return out


def statutory_checks(
    b: Built, decision: PlanDecision, served: np.ndarray | None, year: int = 0
) -> list[dict[str, Any]]:
    """Reusable statutory-style tests: distance to a static library, drive time, and council stop rules."""
    region = b.region
    p = b.problem
    people = p.population[year].sum(axis=1)
    open_b = decision.branch_open
    total = max(float(people.sum()), 1e-9)
    d = np.where(open_b[None, :], region.dist_m, np.inf).min(axis=1) if open_b.any() else np.full(len(people), np.inf)
    t = np.where(open_b[None, :], region.time_s, np.inf).min(axis=1) if open_b.any() else d
    checks = [
        {"name": "within 2 miles of a static library (road)", "value": float(people[d <= 2 * MILE_M].sum()) / total,
         "threshold": 0.96, "rule": "share of residents; a council plan was accepted at 96%"},
        {"name": "within 20 min by car of a static library", "value": float(people[t <= 1200].sum()) / total,
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
        value, threshold = float(c["value"]), float(c["threshold"])  # type: ignore[arg-type]
        c["passed"] = value >= threshold if isinstance(c["value"], float) else value <= threshold
    return checks


def _branch_decisions(b: Built, r: PlannerResult) -> list[dict[str, Any]]:
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


def _winners_losers(b: Built, r: PlannerResult) -> list[dict[str, Any]]:
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


def _bookmobile_outputs(b: Built, r: PlannerResult) -> tuple[pd.DataFrame | None, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Timetable rows (Libraries Hacked schema), stops layer and route lines along the roads."""
    if not len(b.stops):
        return None, b.stops.copy(), gpd.GeoDataFrame({"route": []}, geometry=[], crs="EPSG:4326")
    interval = np.asarray(r.decision.stop_interval)
    dropped = {s: ("selected but did not fit the shifts" if k > 0 else "not selected by the plan")
               for s, k, ok in zip(b.stops["stop_id"], interval, r.stop_served, strict=True) if not ok}  # fmt: skip
    if r.timetable is None or b.van is None:
        empty = gpd.GeoDataFrame({"route": []}, geometry=[], crs="EPSG:4326")
        return None, stops_layer_of(b.stops, {}, interval, dropped), empty
    rows, routes, where = timetable_outputs(r.timetable, b.van, int(b.stop_nodes[0]), b.stops,
                                            organisation=b.region.name, start_monday="2027-01-04")  # fmt: skip
    return (rows if len(rows) else None), stops_layer_of(b.stops, where, interval, dropped), routes


def _layers(b: Built, r: PlannerResult, stops: gpd.GeoDataFrame, routes: gpd.GeoDataFrame,
            branches_dec: list[dict[str, Any]]) -> dict[str, gpd.GeoDataFrame]:  # fmt: skip
    p, region = b.problem, b.region
    before = access(p, today(p))
    after = access(p, r.decision, stop_served=r.stop_served)
    demand = region.demand.drop(columns=[c for c in ("node",) if c in region.demand]).copy()
    t0, t1 = before.nearest_branch_s, after.nearest_branch_s
    demand["time_before_min"] = np.where(np.isfinite(t0), t0 / 60, np.nan)
    demand["time_after_min"] = np.where(np.isfinite(t1), t1 / 60, np.nan)
    demand["meets_before"] = before.meets | before.hd_point
    demand["meets_after"] = after.meets | after.hd_point
    # people meeting the standard here (home delivery counts only its recipients), as in the KPIs
    demand["covered_before"] = covered_people(p, before)[0].sum(axis=1)
    demand["covered_after"] = covered_people(p, after)[0].sum(axis=1)
    demand["mode_after"] = after.mode
    demand["credit_before"] = before.credit
    demand["credit_after"] = after.credit
    demand["home_delivery"] = p.population[0][:, 2] * p.eligible_share * after.hd_point
    ids = np.asarray(p.branch_ids)
    open_b = r.decision.branch_open
    nearest = (np.where(np.isfinite(t1), ids[open_b][np.argmin(region.time_s[:, open_b], axis=1)], "")
               if open_b.any() else np.full(len(t1), ""))  # fmt: skip
    demand["nearest_branch"] = nearest
    branches = region.branches.drop(columns=[c for c in ("node",) if c in region.branches]).copy()
    for key in ("decision", "hours_plan", "annual_cost_plan", "annual_saving"):
        branches[key] = [d[key] for d in branches_dec]
    study = study_area(region)
    layers = {
        "demand": demand,
        "branches": branches,
        "catchments": outputs.catchments(region.demand, nearest, study, str(region.drive.graph["crs"])),
        "areas": region.areas,
        "roads": maps.roads_frame(region.drive),
    }
    if len(stops):
        layers["bookmobile_stops"] = stops.drop(columns=[c for c in ("node",) if c in stops])
        layers["bookmobile_routes"] = routes
    if len(b.desks):
        desks = b.desks.drop(columns=[c for c in ("node", "lon", "lat") if c in b.desks]).copy()
        desks["open"] = np.asarray(r.decision.desk_open, dtype=bool)
        layers["outreach_desks"] = desks
    return layers


def _decision_json(b: Built, r: PlannerResult) -> dict[str, Any]:
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


def run_network_plan(
    region: RegionData,
    scenario: Scenario,
    out_dir: Path,
    *,
    leaflet_dir: Path,
    progress: Progress | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Solve a planner scenario and write plan.json, timetable.csv, calendars/, layers.gpkg, map.html (and, for
    ``pareto``, pareto.csv and pareto.png) to ``out_dir``, atomically."""
    started = time.perf_counter()
    if scenario.region != region.name:
        raise InvalidProblemError(f"region: the scenario is for {scenario.region!r}, not {region.name!r}")
    maps.check_assets(leaflet_dir)  # before solving: a missing Leaflet should not waste a solve
    b = build(region, scenario, progress=progress)
    params = SolveParams(time_limit_s=scenario.solve.time_limit_s, seed=scenario.solve.seed, workers=workers)
    pareto_rows: list[dict[str, Any]] = []
    if scenario.objective == "pareto":
        budgets = scenario.pareto.budgets or list(np.linspace(scenario.pareto.from_share, scenario.pareto.to_share,
                                                              scenario.pareto.steps) * b.today_cost)  # fmt: skip
        front = pareto_front(b.problem, [float(x) for x in budgets], params=params, progress=progress,
                             min_points=scenario.pareto.min_points, max_solves=scenario.pareto.max_solves)  # fmt: skip
        solved = [(bud, res) for bud, res, _ in front if res is not None]
        if not solved:
            raise InvalidProblemError(f"pareto: no budget in the sweep admits a plan ({front[0][2]})")
        pts = [(max(res.costs["total"][y] for y in b.problem.years), res.objective) for _, res in solved]
        nd = set(non_dominated(pts))
        for q, (bud, res, msg) in enumerate(front):
            pos = next((k for k, (bb, _) in enumerate(solved) if bb == bud), None)
            pareto_rows.append({"budget": bud, "cost": pts[pos][0] if pos is not None else None,
                                "credit_share": res.objective if res else None,
                                "covered_share": _worst_covered(res, b.problem.years) if res else None,
                                "branches_kept": int(res.decision.branch_open.sum()) if res else None,
                                "stops": int(res.stop_served.sum()) if res else None,
                                "desks": int(np.sum(res.decision.desk_open)) if res else None,
                                "non_dominated": pos in nd if pos is not None else False,
                                "status": msg})  # fmt: skip
            del q
        # the recommended plan: the cheapest non-dominated point within 1 pp of the best coverage
        best_cov = max(v for _, v in pts)
        rec = min((k for k in nd if pts[k][1] >= best_cov - 0.01), key=lambda k: pts[k][0])
        result = solved[rec][1]
        budget_used: float | None = solved[rec][0]
    else:
        if progress:
            progress("solve", 0.0)
        try:
            result = solve_plan(b.problem, params=params, max_iterations=scenario.solve.max_iterations,
                                progress=progress)  # fmt: skip
        except CoverageUnreachableError as exc:
            if not b.candidates["cap_binds"]:
                raise
            raise CoverageUnreachableError(
                f"{exc}; stops.max_candidates={b.candidates['cap']} kept only {b.candidates['cap']} of the "
                f"{b.candidates['found']} candidate stops: raise it"
            ) from None
        budget_used = b.budget
    timetable, stops_layer, routes = _bookmobile_outputs(b, result)
    branches_dec = _branch_decisions(b, result)
    years = b.year_labels
    kpis = {}
    for y, label in enumerate(years):
        kpis[label] = {"today": _kpi_block(b, today(b.problem), None, y),
                       "plan": _kpi_block(b, result.decision, result.stop_served, y)}  # fmt: skip
    plan: dict[str, Any] = {
        "scenario": scenario.name,
        "region": region.name,
        "objective": scenario.objective,
        "budget": budget_used,
        "years": list(years),
        "optimised_for": [years[y] for y in b.problem.years],
        "decisions": {"branches": branches_dec, **_decision_json(b, result)},
        "kpis": kpis,
        "costs": {"today": _cost_json(result.costs_today, years), "plan": _cost_json(result.costs, years)},
        "winners_losers": _winners_losers(b, result),
        "statutory_checks": statutory_checks(b, result.decision, result.stop_served),
        "assumptions": {
            "digital_uptake": {g: scenario.digital_uptake.get(g, 0.0) for g in AGE_GROUPS},  # type: ignore[call-overload]
            "need_weight": dict(zip(AGE_GROUPS, b.problem.need_weights.tolist(), strict=True)),
            "projection": scenario.projection.model_dump() if scenario.projection else None,
            "credits": scenario.credits.model_dump(),
            "standards": scenario.standards.model_dump(),
            "hours_levels": scenario.hours.levels,
        },
        "solver": {
            "engine": "HiGHS selection MIP with routing cuts + exact or OR-Tools routing (branch-and-bound over "
            "branch patterns)",
            "status": result.status,
            "objective_name": "worst-year annual cost"
            if b.problem.objective == "min_cost"
            else "worst-year need-weighted credit share",
            "objective": result.objective,
            "bound": result.bound,
            "gap": result.gap,
            "bound_meaning": "a lower bound on the objective of every plan of the model, routed bookmobile included"
            if b.problem.objective == "min_cost"
            else "an upper bound on the objective of every plan of the model, routed bookmobile included",
            "iterations": result.iterations,
            "runtime_s": result.runtime_s,
            "search": result.search,
            "history": list(result.history),
            "warnings": [*result.warnings, *_candidate_warnings(b)],
            "candidates": {
                "stops": len(b.stops),
                "desks": len(b.desks),
                "stops_found": b.candidates["found"],
                "max_candidates": b.candidates["cap"],
                "cap_binds": b.candidates["cap_binds"],
                "stops_capacity_limited": int(b.stops["capacity_limited"].sum()) if len(b.stops) else 0,
            },
        },
        "attribution": region.meta.get("attribution", maps.OSM_ATTRIBUTION),
        "scenario_file": scenario.model_dump(),
    }
    if pareto_rows:
        plan["pareto"] = {"points": pareto_rows, "file": "pareto.csv", "plot": "pareto.png"}
    layers = _layers(b, result, stops_layer, routes, branches_dec)
    if progress:
        progress("write results", 0.0)
    with outputs.atomic_dir(out_dir) as tmp:
        if timetable is not None:
            timetable.to_csv(tmp / "timetable.csv", index=False)
            text = timetable.fillna("").astype(str)
            rows = [dict(zip(text.columns.map(str), v, strict=True)) for v in text.to_numpy()]
            write_calendars(timetable_from_rows(rows, source="timetable.csv"), tmp / "calendars")
        if len(routes):
            routes.to_file(tmp / "bookmobile_routes.geojson", driver="GeoJSON")
        if pareto_rows:
            pd.DataFrame(pareto_rows).to_csv(tmp / "pareto.csv", index=False)
            _pareto_plot(pareto_rows, tmp / "pareto.png", scenario.name)
        outputs.write_layers(tmp / "layers.gpkg", layers)
        k0 = kpis[years[0]]
        summary = (
            f"<table><tr><td>Branches kept</td><td>{int(result.decision.branch_open.sum())} of "
            f"{len(b.problem.branch_ids)}</td></tr><tr><td>Meeting the standard</td><td>"
            f"{k0['plan']['covered_share']:.1%} (today {k0['today']['covered_share']:.1%})</td></tr>"
            f"<tr><td>Annual cost</td><td>{max(result.costs['total']):,.0f} (today "
            f"{max(result.costs_today['total']):,.0f})</td></tr><tr><td>Bookmobile</td><td>{result.decision.vehicles}"
            f" vehicle(s), {int(result.stop_served.sum())} stops</td></tr><tr><td>Solver</td><td>{result.status}, "
            f"gap {'unknown' if result.gap is None else f'{result.gap:.2%}'}, {result.iterations} round(s)</td></tr>"
            "</table>"
        )
        maps.write_map(tmp / "map.html", layers, leaflet_dir=leaflet_dir, title=f"branchnet: {scenario.name}",
                       summary_html=summary, attribution=plan["attribution"])  # fmt: skip
        plan["runtime_s"] = time.perf_counter() - started
        outputs.write_json(plan, tmp / "plan.json")
    if progress:
        progress("write results", 1.0)
    return plan


def _candidate_warnings(b: Built) -> list[str]:
    """Say when the candidate cap, not the plan, limited the bookmobile's stops."""
    c = b.candidates
    if not c["cap_binds"]:
        return []
    return [
        f"stops.max_candidates={c['cap']} kept {c['cap']} of the {c['found']} candidate stops the greedy cover "
        "found; the plan could not use the others (raise it to search them all)"
    ]


def _worst_covered(res: PlannerResult, years: tuple[int, ...]) -> float:
    return min(float(res.kpis[y]["covered_share"]) for y in years)


def _cost_json(c: dict[str, Any], years: tuple[str, ...]) -> dict[str, Any]:
    out = {k: c[k] for k in ("branches", "closures", "bookmobile", "desks")}
    out["home_delivery"] = dict(zip(years, c["home_delivery"], strict=False))
    out["total_by_year"] = dict(zip(years, c["total"], strict=False))
    out["total"] = max(c["total"])
    return out


def _pareto_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = [r for r in rows if r["cost"] is not None]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)  # no global backend switch (notebooks keep their inline plots)
    ax = fig.add_subplot()
    xs = [r["cost"] / 1000 for r in pts]
    ys = [100 * r["credit_share"] for r in pts]
    ax.plot(xs, ys, "o-", color="#2c7bb6")
    for r, x, y in zip(pts, xs, ys, strict=True):
        ax.annotate(f"{r['branches_kept']}b/{r['stops']}s", (x, y), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)  # fmt: skip
    ax.set_xlabel("annual cost (thousands)")
    ax.set_ylabel("need-weighted coverage credit (%)")
    ax.set_title(f"{title}: coverage against budget")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
