"""Self-contained offline Leaflet maps: Leaflet's JS and CSS are inlined, the roads are the base layer, no tiles."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from service.errors import ConfigurationError

OSM_ATTRIBUTION = "Roads © OpenStreetMap contributors (ODbL)"

_ROAD_CLASSES = {
    "major": {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"},
    "secondary": {"secondary", "secondary_link", "tertiary", "tertiary_link"},
}


class MissingAssetsError(ConfigurationError):
    """Leaflet is not installed where the settings point."""


def roads_frame(G: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Return the graph's roads as one MultiLineString per class (``major``, ``secondary``, ``minor``), EPSG:4326."""
    seen: set[tuple[int, int]] = set()
    lines: dict[str, list[list[tuple[float, float]]]] = {"major": [], "secondary": [], "minor": []}
    lon = nx.get_node_attributes(G, "lon")
    lat = nx.get_node_attributes(G, "lat")
    for u, v, hwy in G.edges(data="highway"):
        key = (u, v) if u < v else (v, u)
        if key in seen:
            continue
        seen.add(key)
        h = hwy[0] if isinstance(hwy, list) else hwy
        cls = next((c for c, members in _ROAD_CLASSES.items() if h in members), "minor")
        lines[cls].append([(lon[u], lat[u]), (lon[v], lat[v])])
    classes = [c for c in lines if lines[c]]
    geoms = [shapely.line_merge(shapely.MultiLineString(lines[c])) for c in classes]
    return gpd.GeoDataFrame({"road_class": classes}, geometry=geoms, crs="EPSG:4326")


def _geojson(frame: gpd.GeoDataFrame, precision: int = 5) -> dict[str, Any]:
    frame = frame.to_crs("EPSG:4326")
    frame = frame.set_geometry(shapely.set_precision(frame.geometry.values, 10**-precision))
    data: dict[str, Any] = json.loads(frame.to_json(drop_id=True, na="null"))
    return data


def check_assets(leaflet_dir: Path) -> None:
    """Raise :class:`MissingAssetsError` unless Leaflet's JS and CSS are in ``leaflet_dir``."""
    if not ((leaflet_dir / "leaflet.css").is_file() and (leaflet_dir / "leaflet.js").is_file()):
        raise MissingAssetsError(
            f"Leaflet not found in {leaflet_dir}; run `make setup` (npm installs it into node_modules/) "
            "or set BRANCHNET_LEAFLET_DIR"
        )


def write_map(
    path: Path,
    layers: dict[str, gpd.GeoDataFrame],
    *,
    leaflet_dir: Path,
    title: str,
    summary_html: str = "",
    attribution: str = OSM_ATTRIBUTION,
) -> Path:
    """Write an offline HTML map of ``layers``: ``roads``, ``areas``, ``catchments``, ``demand``, ``branches``.

    Every layer is optional. Branches need ``branch_id``, ``name`` and ``decision``; demand points need
    ``population`` and ``time_after_min``.
    """
    check_assets(leaflet_dir)
    css_file, js_file = leaflet_dir / "leaflet.css", leaflet_dir / "leaflet.js"
    data = {name: _geojson(frame) for name, frame in layers.items() if frame is not None and len(frame)}
    page = _TEMPLATE.format(
        title=html.escape(title),
        css=css_file.read_text(encoding="utf-8"),
        js=js_file.read_text(encoding="utf-8"),
        data=json.dumps(data, separators=(",", ":"), default=_json_default, ensure_ascii=False).replace("</", "<\\/"),
        summary=summary_html,
        attribution=json.dumps(attribution, ensure_ascii=False),
    )
    path.write_text(page, encoding="utf-8")
    return path


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<style>
 html, body {{ margin: 0; height: 100%; font: 14px/1.4 system-ui, sans-serif; }}
 #map {{ position: absolute; inset: 0; background: #f4f2ee; }}
 .panel {{ background: rgba(255,255,255,.93); padding: 8px 10px; border-radius: 4px;
          box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 340px; }}
 .panel h1 {{ font-size: 15px; margin: 0 0 4px; }}
 .panel table {{ border-collapse: collapse; }} .panel td {{ padding: 0 6px 0 0; }}
 .legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; border-radius: 50%;
             vertical-align: middle; }}
</style>
</head>
<body>
<div id="map"></div>
<script>{js}</script>
<script>
const DATA = {data};
const map = L.map('map', {{ preferCanvas: true, attributionControl: true }});
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution({attribution});
const overlays = {{}};
const bounds = L.latLngBounds([]);
function add(name, layer, on) {{ overlays[name] = layer; if (on) layer.addTo(map);
  if (layer.getBounds) {{ const b = layer.getBounds(); if (b.isValid()) bounds.extend(b); }} }}
const roadStyle = {{ major: {{ color: '#8a8a8a', weight: 3 }}, secondary: {{ color: '#a8a8a8', weight: 2 }},
                    minor: {{ color: '#c6c6c6', weight: 1 }} }};
if (DATA.roads) add('Roads', L.geoJSON(DATA.roads, {{ style: f => roadStyle[f.properties.road_class] }}), true);
if (DATA.areas) add('Census areas', L.geoJSON(DATA.areas, {{ style: {{ color: '#555', weight: 1,
  fill: false, dashArray: '3 3' }}, onEachFeature: (f, l) => l.bindTooltip(String(f.properties.area_id)) }}), false);
const palette = ['#1b9e77','#d95f02','#7570b3','#e7298a','#66a61e','#e6ab02','#a6761d','#1f78b4','#b2df8a'];
if (DATA.catchments) add('Catchments', L.geoJSON(DATA.catchments, {{ style: f => ({{ color: palette[f.properties.k % 9],
  weight: 1, fillOpacity: .18 }}), onEachFeature: (f, l) => l.bindTooltip('Catchment of ' + f.properties.branch_id +
  ': ' + Math.round(f.properties.population).toLocaleString() + ' people') }}), true);
function timeColor(t) {{ return t == null ? '#000' : t <= 5 ? '#1a9850' : t <= 10 ? '#91cf60' : t <= 15 ? '#fee08b'
  : t <= 20 ? '#fc8d59' : '#d73027'; }}
if (DATA.demand) add('Demand (drive time to nearest branch)', L.geoJSON(DATA.demand, {{ pointToLayer: (f, ll) =>
  L.circleMarker(ll, {{ radius: Math.max(2, Math.min(9, Math.sqrt(f.properties.population))), stroke: false,
  fillOpacity: .75, fillColor: timeColor(f.properties.time_after_min) }}),
  onEachFeature: (f, l) => l.bindTooltip(Math.round(f.properties.population) + ' people, ' +
  (f.properties.time_after_min == null ? 'no branch reachable' : f.properties.time_after_min.toFixed(1) + ' min') +
  ' (area ' + f.properties.area_id + ')') }}), true);
if (DATA.bookmobile_routes) add('Bookmobile routes', L.geoJSON(DATA.bookmobile_routes, {{ style: f => ({{
  color: palette[f.properties.route_day % 9], weight: 3, dashArray: '6 4' }}),
  onEachFeature: (f, l) => l.bindTooltip(f.properties.route + ': ' + f.properties.stops + ' stops, ' +
  Math.round(f.properties.driving_min) + ' min driving') }}), true);
if (DATA.bookmobile_stops) add('Bookmobile stops', L.geoJSON(DATA.bookmobile_stops, {{ pointToLayer: (f, ll) =>
  L.circleMarker(ll, {{ radius: 6, color: '#5e3c99', weight: 2, fillColor: f.properties.served ? '#b2abd2' : '#fff',
  fillOpacity: 1 }}), onEachFeature: (f, l) => l.bindPopup('<b>' + f.properties.community + '</b> (' +
  f.properties.stop_id + ')<br>' + Math.round(f.properties.population) + ' people within a walk<br>' +
  (f.properties.served ? f.properties.day + ' ' + f.properties.arrival + ', every ' + f.properties.interval_weeks +
  ' week(s)' : 'not served: ' + f.properties.dropped_reason)) }}), true);
if (DATA.outreach_desks) add('Outreach desks', L.geoJSON(DATA.outreach_desks, {{ pointToLayer: (f, ll) =>
  L.circleMarker(ll, {{ radius: 7, color: '#1b7837', weight: 2, fillColor: f.properties.open ? '#5aae61' : '#fff',
  fillOpacity: 1 }}), onEachFeature: (f, l) => l.bindPopup('<b>' + f.properties.name + '</b><br>' +
  (f.properties.open ? 'open ' + f.properties.hours_per_week + ' h/week' : 'candidate, not opened')) }}), true);
if (DATA.branches) add('Branches', L.geoJSON(DATA.branches, {{ pointToLayer: (f, ll) => L.circleMarker(ll, {{
  radius: 9, color: '#222', weight: 2, fillOpacity: 1,
  fillColor: f.properties.decision === 'close' ? '#d7191c' : '#2c7bb6' }}),
  onEachFeature: (f, l) => l.bindPopup('<b>' + f.properties.name + '</b><br>' + f.properties.decision +
  '<br>annual cost ' + Math.round(f.properties.annual_cost).toLocaleString() +
  '<br>staffed ' + f.properties.staffed_hours_week + ' h/week') }}), true);
L.control.layers(null, overlays, {{ collapsed: false }}).addTo(map);
const info = L.control({{ position: 'bottomleft' }});
info.onAdd = () => {{ const d = L.DomUtil.create('div', 'panel legend'); d.innerHTML = `<h1>{title}</h1>{summary}
  <div><i style="background:#2c7bb6"></i>branch kept <i style="background:#d7191c"></i>branch closed</div>
  <div>Drive time: <i style="background:#1a9850"></i>&le;5 <i style="background:#91cf60"></i>&le;10
  <i style="background:#fee08b"></i>&le;15 <i style="background:#fc8d59"></i>&le;20
  <i style="background:#d73027"></i>&gt;20 min</div>`; return d; }};
info.addTo(map);
L.control.scale({{ imperial: false }}).addTo(map);
if (bounds.isValid()) map.fitBounds(bounds); else map.setView([0, 0], 2);
</script>
</body>
</html>
"""
