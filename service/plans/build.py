"""Build the optimizer's problem from a region and a scenario: demand by year and age group, branch hours levels
and costs, the standards and credits, candidate bookmobile stops (independent of the decision, with their
capacity), outreach desks, and the branch-only study's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from geodata.matrix import travel_time_matrix
from geodata.region import RegionData
from geodata.snapping import snap_points
from geodata.stops import StopCapacity, StopRules, candidate_stops, stop_catchments
from optimizer.errors import InvalidProblemError
from optimizer.planner import BookmobileCosts, CreditRule, Credits, PlannerProblem, Standards, costs, today
from optimizer.planner.problem import VisitModel
from service.plans.bookmobile import bookmobile_graph
from service.plans.scenario import AGE_GROUPS, Scenario

Progress = Callable[[str, float], None]

MILE_M = 1609.344


@dataclass
class Built:
    """A scenario on a region: the optimizer problem and the geography behind its ids.

    ``budget`` is the scenario's annual budget (a branch-only study's, from its location section), ``today_cost``
    today's network's worst-year cost.
    """

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


def effective(sc: Scenario) -> Scenario:
    """The scenario as the planner evaluates it. A branch-only study (a ``location`` section) keeps today's hours
    and has no bookmobile, desks or home delivery; its drive standard, forced branches and closure years come
    from its location section."""
    loc = sc.location
    if loc is None:
        return sc
    forced = sc.forced.model_copy(update={
        "keep": sorted(set(sc.forced.keep) | set(loc.keep)), "close": sorted(set(sc.forced.close) | set(loc.close)),
        "no_bookmobile": True, "no_desks": True, "no_home_delivery": True,
    })  # fmt: skip
    standards = sc.standards.model_copy(update={"branch_drive_min": loc.standard_min, "coverage_target": None,
                                                "group_targets": {}, "zone_max_loss_pp": None})  # fmt: skip
    return sc.model_copy(update={
        "forced": forced, "standards": standards, "hours": sc.hours.model_copy(update={"levels": [1.0]}),
        "costs": sc.costs.model_copy(update={"closure_years": loc.closure_cost_years}),
    })  # fmt: skip


def build(region: RegionData, sc: Scenario, *, progress: Progress | None = None) -> Built:
    """Turn a region and a scenario into the optimizer's problem (checks forced ids against the region).

    The scenario kept in the result is the one given; the problem is built from :func:`effective` of it.
    """
    given = sc
    sc = effective(sc)
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
    areas = region.demand["area_id"].astype(str).to_numpy()
    area_names = tuple(sorted(set(areas.tolist())))
    area_idx = np.searchsorted(np.array(area_names), areas)
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
        population=pop, branch_ids=tuple(ids), branch_time_s=region.time_s, branch_dist_m=region.dist_m,
        area=area_idx, area_names=area_names, branch_hours=hours, branch_cost=cost,
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
        visits=VisitModel(sc.visits.per_resident, sc.visits.decay_min, sc.visits.home_delivery_per_recipient),
        min_visits_share=sc.visits.min_share,
    )  # fmt: skip
    today_cost = max(costs(problem, today(problem), bookmobile_operating=0.0)["total"])
    budget = sc.budget if sc.budget is not None else (sc.budget_share * today_cost if sc.budget_share else None)
    if sc.location is not None:
        loc = sc.location
        budget = loc.budget if loc.budget is not None else (loc.budget_share * today_cost if loc.budget_share else None)
    elif budget is not None and sc.objective != "pareto":
        problem = replace(problem, budget=budget)
    return Built(problem, given, region, stops, desks, hours, labels, depot, van, stop_nodes, stop_branch_m, budget,
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
    """Candidate outreach desks: the scenario's sites and its largest settlements away from every branch."""
    o = sc.outreach
    if sc.forced.no_desks:
        return gpd.GeoDataFrame({"desk_id": []}, geometry=[], crs="EPSG:4326"), None
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
