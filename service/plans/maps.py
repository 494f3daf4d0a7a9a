"""Self-contained offline Leaflet maps: Leaflet's JS and CSS and the web app's map code are inlined, the roads are the
base layer, no tiles."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import shapely

from service.errors import ConfigurationError
from service.plans.outputs import jsonable

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
    years: list[tuple[int, gpd.GeoDataFrame]] | None = None,
) -> Path:
    """Write an offline HTML map of ``layers``: ``roads``, ``areas``, ``catchments``, ``demand``, ``branches``,
    ``bookmobile_stops``, ``bookmobile_routes`` and ``outreach_desks``.

    Every layer is optional. Branches need ``branch_id``, ``name`` and ``decision``; demand points need
    ``population`` and ``time_after_min``. The page inlines Leaflet and the web app's map code
    (``service/web/static/map.js``, :data:`MAP_JS`), so it opens from disk without a network. The layers travel
    as a JSON data block (never executed) and reach the page as text nodes, so names from a user's files cannot
    run script; a Content-Security-Policy with the hashes of the page's own scripts and styles (:func:`map_csp`)
    blocks anything else. ``summary_html`` is trusted HTML made by the caller (numbers only); ``title`` and
    ``attribution`` are text. ``years`` (a roadmap's ``(year, branches)``) adds a year slider that shows each year's
    branches (``decision``, ``hours``).
    """
    check_assets(leaflet_dir)
    data = {name: _geojson(frame) for name, frame in layers.items() if frame is not None and len(frame)}
    parts = _page_parts(leaflet_dir)
    payload: dict[str, Any] = {"layers": data, "attribution": attribution}
    if years:
        payload["years"] = [{"year": int(y), "branches": _geojson(frame)} for y, frame in years]
    page = _TEMPLATE.format(
        csp=html.escape(map_csp(leaflet_dir), quote=True),
        title=html.escape(title),
        leaflet_css=parts["leaflet_css"],
        style=_STYLE,
        data=_json_script(payload),
        summary=summary_html,
        leaflet_js=parts["leaflet_js"],
        map_js=parts["map_js"],
        boot=_BOOT,
    )
    path.write_text(page, encoding="utf-8")
    return path


#: The web app's map code, inlined into every map.html (one source for both).
MAP_JS = Path(__file__).resolve().parent.parent / "web" / "static" / "map.js"

# The page's own style and start-up script; constant, so their hashes are too.
_STYLE = """
 html, body { margin: 0; height: 100%; font: 14px/1.4 system-ui, sans-serif; }
 #map { position: absolute; inset: 0; background: #f4f2ee; }
 .bn-panel { background: rgba(255,255,255,.93); padding: 8px 10px; border-radius: 4px;
             box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 340px; }
 .bn-panel h1 { font-size: 15px; margin: 0 0 4px; }
 .bn-panel table { border-collapse: collapse; } .bn-panel td { padding: 0 6px 0 0; }
 .bn-swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
 .bn-round { border-radius: 50%; }
 .bn-info div { white-space: nowrap; }
 .bn-years input { width: 260px; }
"""
_BOOT = """
(function () {
  var payload = JSON.parse(document.getElementById('branchnet-data').textContent);
  var heading = document.getElementById('branchnet-summary');
  heading.hidden = false;
  branchnetMap.createMap(L, document.getElementById('map'), payload.layers,
                         { attribution: payload.attribution, heading: heading, years: payload.years });
})();
"""


def _page_parts(leaflet_dir: Path) -> dict[str, str]:
    return {
        "leaflet_css": (leaflet_dir / "leaflet.css").read_text(encoding="utf-8"),
        "leaflet_js": (leaflet_dir / "leaflet.js").read_text(encoding="utf-8"),
        "map_js": MAP_JS.read_text(encoding="utf-8"),
    }


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def map_csp(leaflet_dir: Path) -> str:
    """The Content-Security-Policy of a map.html: only its own inline scripts and styles (by their SHA-256), images
    from ``data:`` URLs, nothing fetched. It travels in the page (a ``<meta>``, so it holds opened from disk too)."""
    parts = _page_parts(leaflet_dir)
    scripts = " ".join(_sha256(s) for s in (parts["leaflet_js"], parts["map_js"], _BOOT))
    styles = " ".join(_sha256(s) for s in (parts["leaflet_css"], _STYLE))
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; img-src data:; "
            "base-uri 'none'; form-action 'none'")  # fmt: skip


def _json_script(value: object) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<`` escaped, so no value can close the block."""
    text = json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# The data block comes first: its text is the user's, so it stays before every script. No script or style is
# written from a template field except the constant ones hashed by map_csp.
_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{leaflet_css}</style>
<style>{style}</style>
</head>
<body>
<script type="application/json" id="branchnet-data">{data}</script>
<div id="branchnet-summary" hidden><h1>{title}</h1>{summary}</div>
<div id="map"></div>
<script>{leaflet_js}</script>
<script>{map_js}</script>
<script>{boot}</script>
</body>
</html>
"""
