"""The map layers of a plan (written to ``layers.gpkg`` and drawn in ``map.html``): demand with its times and
modes before and after, branches with their decisions, catchments, census areas, roads, bookmobile stops and
routes, outreach desks.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.region import RegionData
from optimizer.planner import PlannerResult, access, covered_people, today
from service.plans import maps, outputs
from service.plans.bookmobile import stops_layer_of, timetable_outputs
from service.plans.build import Built


def study_area(region: RegionData) -> Any:
    """The region's outline (EPSG:4326): its census areas, or the demand points' hull when it has none."""
    if len(region.areas):
        return shapely.union_all(region.areas.geometry.values)
    xy = np.column_stack([region.demand.geometry.x, region.demand.geometry.y])
    return shapely.convex_hull(shapely.multipoints(xy)).buffer(0.01)


def bookmobile_outputs(b: Built, r: PlannerResult) -> tuple[pd.DataFrame | None, gpd.GeoDataFrame, gpd.GeoDataFrame]:
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


def plan_layers(b: Built, r: PlannerResult, stops: gpd.GeoDataFrame, routes: gpd.GeoDataFrame,
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
