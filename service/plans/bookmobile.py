"""Bookmobile service for the people closed branches leave behind: stops, a periodic timetable and its layers.

Composition only: candidate stops from :mod:`geodata.stops`, bookmobile travel times on the road network
(:data:`geodata.network.BOOKMOBILE` speeds), the periodic model of :mod:`optimizer.bookmobile`, and the results
as a Libraries Hacked timetable and map layers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geodata.matrix import travel_time_matrix
from geodata.network import BOOKMOBILE, add_travel_times
from geodata.region import RegionData
from geodata.stops import StopRules, candidate_stops
from optimizer.bookmobile import WEEKDAYS, BookmobileProblem, BookmobileResult, Fleet, dwell_time, plan_timetable
from optimizer.kpis import nearest_open
from optimizer.params import SolveParams

#: Columns of the Libraries Hacked mobile-library-stops schema.
TIMETABLE_COLUMNS = (
    "organisation", "mobile", "route", "community", "stop", "address", "postcode", "geox", "geoy", "day", "type",
    "arrival", "departure", "frequency", "start", "end", "exceptions", "timetable",
)  # fmt: skip


@dataclass(frozen=True)
class BookmobileRequest:
    """The bookmobile section of a plan.

    Residents farther than ``standard_min`` by car from every kept branch are offered stops within ``walk_min``
    on foot; a stop is visited weekly when it serves ``weekly_from`` people or more, fortnightly from
    ``fortnightly_from``, else every four weeks. ``uptake`` is the share of residents expected at each visit
    (for the dwell time).
    """

    vehicles: int = 1
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    standard_min: float = 10.0
    walk_min: float = 10.0
    min_population: float = 40.0
    min_branch_distance_m: float = 3218.688
    weekly_from: float = 600.0
    fortnightly_from: float = 200.0
    uptake: float = 0.03
    value_per_person_s: float = 30.0
    shift_start_h: float = 9.0
    shift_h: float = 8.0
    lunch_min: float = 30.0
    organisation: str = "branchnet plan"
    start_date: str = "2027-01-04"
    extra: dict[str, Any] = field(default_factory=dict)


def bookmobile_graph(drive: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of the drive graph with bookmobile speeds (capped and slower than a car)."""
    return add_travel_times(drive.copy(), BOOKMOBILE)


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def plan_bookmobile(
    region: RegionData, open_mask: np.ndarray, request: BookmobileRequest, *, params: SolveParams
) -> tuple[BookmobileResult, gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Plan stops and a periodic timetable for residents the kept branches leave beyond the standard.

    Returns the timetable result, the stops layer (with their route-day or drop reason), the route lines layer
    and the timetable rows (Libraries Hacked schema).
    """
    unserved = nearest_open(region.time_s, open_mask) > request.standard_min * 60
    kept = region.branches[open_mask]
    stops, _ = candidate_stops(
        region.drive, region.walk, region.demand, unserved, branches=kept, settlements=region.settlements,
        rules=StopRules(walk_min=request.walk_min, min_population=request.min_population,
                        min_branch_distance_m=request.min_branch_distance_m),
    )  # fmt: skip
    van = bookmobile_graph(region.drive)
    # the depot: the kept branch with the longest hours (the main library)
    depot_row = kept.sort_values(["staffed_hours_week", "branch_id"], ascending=[False, True]).iloc[0]
    nodes = np.array([int(depot_row["node"]), *stops["node"].astype(int).tolist()], dtype=np.int64)
    travel = travel_time_matrix(van, nodes, nodes) if len(stops) else np.zeros((1, 1))
    pop = stops["population"].to_numpy(dtype=float) if len(stops) else np.zeros(0)
    interval = np.where(pop >= request.weekly_from, 1, np.where(pop >= request.fortnightly_from, 2, 4))
    fleet = Fleet(
        vehicles=request.vehicles, weekdays=tuple(request.weekdays), shift_start_s=round(request.shift_start_h * 3600),
        shift_s=round(request.shift_h * 3600), lunch_s=round(request.lunch_min * 60),
    )  # fmt: skip
    problem = BookmobileProblem(
        travel_s=travel, stop_ids=tuple(stops["stop_id"]) if len(stops) else (), prize=pop,
        dwell_s=dwell_time(pop * request.uptake), interval_weeks=interval, fleet=fleet,
        community=tuple(stops["community"].astype(str)) if len(stops) else None,
        value_per_person_s=request.value_per_person_s,
    )  # fmt: skip
    result = plan_timetable(problem, params=params)

    timetable, routes_layer, where = timetable_outputs(
        result, van, int(depot_row["node"]), stops, organisation=request.organisation, start_monday=request.start_date
    )
    stops_layer = stops_layer_of(stops, where, interval, result.dropped)
    return result, stops_layer, routes_layer, timetable


Visit = tuple[str, int, int, int]  # route name, weekday, arrival s, departure s


def timetable_outputs(
    result: BookmobileResult,
    van: nx.MultiDiGraph,
    depot_node: int,
    stops: gpd.GeoDataFrame,
    *,
    organisation: str,
    start_monday: str,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame, dict[str, Visit]]:
    """The timetable rows (Libraries Hacked schema), the route lines along the roads (depot, stops, depot) and, per
    served stop, its visit.

    ``stops`` has ``stop_id``, ``node`` (a node of ``van``), ``community`` and ``area_id``; ``start_monday`` is
    the Monday of the first week of the cycle (each row starts on its first visit).
    """
    where: dict[str, Visit] = {}
    lines, rows = [], []
    lon = nx.get_node_attributes(van, "lon")
    lat = nx.get_node_attributes(van, "lat")
    stop_node = dict(zip(stops["stop_id"], stops["node"].astype(int), strict=True)) if len(stops) else {}
    by_id = stops.set_index("stop_id") if len(stops) else stops
    monday = pd.Timestamp(start_monday)
    for n, day in enumerate(result.route_days, start=1):
        route_name = f"Mobile {day.vehicle + 1} {WEEKDAYS[day.weekday]} week {day.phase + 1} ({day.interval}-weekly)"
        path_nodes = [depot_node, *(stop_node[s] for s in day.stops), depot_node]
        coords: list[tuple[float, float]] = []
        for a, b in itertools.pairwise(path_nodes):
            leg = nx.shortest_path(van, a, b, weight="travel_time")
            coords += [(lon[v], lat[v]) for v in leg[1 if coords else 0 :]]
        lines.append({"route_day": n, "route": route_name, "vehicle": day.vehicle + 1,
                      "weekday": WEEKDAYS[day.weekday], "interval_weeks": day.interval, "stops": len(day.stops),
                      "driving_min": day.driving_s / 60,
                      "geometry": shapely.LineString(coords) if len(coords) > 1 else None})  # fmt: skip
        first = (monday + pd.Timedelta(days=7 * day.phase + day.weekday)).date().isoformat()
        for s, a, d in zip(day.stops, day.arrivals_s, day.departures_s, strict=True):
            where[s] = (route_name, day.weekday, a, d)
            row = by_id.loc[s]
            rows.append({
                "organisation": organisation, "mobile": f"Mobile {day.vehicle + 1}", "route": route_name,
                "community": row["community"] or f"area {row['area_id']}", "stop": s, "address": "", "postcode": "",
                "geox": round(float(row.geometry.x), 6), "geoy": round(float(row.geometry.y), 6),
                "day": WEEKDAYS[day.weekday], "type": "Public", "arrival": _hhmm(a), "departure": _hhmm(d),
                "frequency": f"FREQ=WEEKLY;INTERVAL={day.interval}" if day.interval > 1 else "FREQ=WEEKLY",
                "start": first, "end": "", "exceptions": "", "timetable": "",
            })  # fmt: skip
    routes_layer = (
        gpd.GeoDataFrame(pd.DataFrame(lines), geometry="geometry", crs="EPSG:4326")
        if lines
        else (gpd.GeoDataFrame({"route": []}, geometry=[], crs="EPSG:4326"))
    )
    return pd.DataFrame(rows, columns=list(TIMETABLE_COLUMNS)), routes_layer, where


def stops_layer_of(
    stops: gpd.GeoDataFrame, where: dict[str, Visit], interval: np.ndarray, dropped: dict[str, str]
) -> gpd.GeoDataFrame:
    """The stops layer: each stop's interval, route, day and arrival, whether it is served, and why not."""
    layer = stops.copy()
    if len(layer):
        ids = layer["stop_id"]
        layer["interval_weeks"] = interval
        layer["route"] = [where.get(s, ("", 0, 0, 0))[0] for s in ids]
        layer["day"] = [WEEKDAYS[where[s][1]] if s in where else "" for s in ids]
        layer["arrival"] = [_hhmm(where[s][2]) if s in where else "" for s in ids]
        layer["served"] = ids.isin(where)
        layer["dropped_reason"] = [dropped.get(s, "") for s in ids]
    return layer
