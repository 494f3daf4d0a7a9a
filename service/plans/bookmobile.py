"""A plan's bookmobile on the map and in files: the van's road graph, the timetable in the Libraries Hacked schema,
the route lines along the roads, and the stops layer."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from geodata.network import BOOKMOBILE, add_travel_times
from optimizer.bookmobile import WEEKDAYS, BookmobileResult

#: Columns of the Libraries Hacked mobile-library-stops schema.
TIMETABLE_COLUMNS = (
    "organisation", "mobile", "route", "community", "stop", "address", "postcode", "geox", "geoy", "day", "type",
    "arrival", "departure", "frequency", "start", "end", "exceptions", "timetable",
)  # fmt: skip


def bookmobile_graph(drive: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of the drive graph with bookmobile speeds (capped and slower than a car)."""
    return add_travel_times(drive.copy(), BOOKMOBILE)


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


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
