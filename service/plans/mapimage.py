"""PNG maps of a plan for reports, drawn on the server with matplotlib's Agg canvas (no browser, no tiles).

:func:`write_map_png` draws the layers that :func:`service.plans.maps.write_map` puts in ``map.html`` (``roads``,
``areas``, ``catchments``, ``demand``, ``bookmobile_routes``, ``bookmobile_stops``, ``outreach_desks``,
``branches``), in the same colours, projected to the UTM zone of their extent so that the scale bar is true, with a
north arrow (true north, not grid north), a legend of what is drawn, the title and the attribution. The image is
always 1600 × 1200 px and carries neither a timestamp nor a version: the same layers give the same bytes.

:func:`ensure_map_png` gives a result folder's ``map.png``, drawing it from ``layers.gpkg`` (and ``plan.json`` for
the title and attribution) for a run computed before the PNG existed and caching it there;
:func:`thumbnail_uri` gives the map downscaled, as a ``data:`` URI, for pages that must also work from disk.
"""

from __future__ import annotations

import base64
import io
import json
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PatchCollection, PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from pyproj import CRS
from shapely.geometry.polygon import orient

from service.plans._cartography import DPI, LegendEntry, draw_legend, draw_north_arrow, draw_scale_bar
from service.plans.maps import OSM_ATTRIBUTION
from service.store.files import atomic_write

WIDTH_PX, HEIGHT_PX = 1600, 1200  # at DPI (100) dots per inch
#: Drive-time classes of the demand points, as in ``map.html``: (upper bound in minutes, colour, legend label).
TIME_CLASSES: tuple[tuple[float, str, str], ...] = (
    (5.0, "#1a9850", "drive ≤ 5 min"),
    (10.0, "#91cf60", "drive 5–10 min"),
    (15.0, "#fee08b", "drive 10–15 min"),
    (20.0, "#fc8d59", "drive 15–20 min"),
    (math.inf, "#d73027", "drive > 20 min"),
)
UNREACHABLE = "#000000"
BRANCH_KEPT, BRANCH_CLOSED = "#2c7bb6", "#d7191c"
BACKGROUND = "#f4f2ee"
#: Road classes of :func:`service.plans.maps.roads_frame`: colour and width in px, drawn minor first.
ROAD_STYLE = {"minor": ("#c6c6c6", 1.0), "secondary": ("#a8a8a8", 2.0), "major": ("#8a8a8a", 3.0)}
PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a")
STOP_EDGE, STOP_SERVED, DESK_EDGE, DESK_OPEN = "#5e3c99", "#b2abd2", "#1b7837", "#5aae61"
#: Routes listed one by one in the legend up to this many; beyond, one entry stands for all.
MAX_ROUTE_ENTRIES = 6
THUMBNAIL = "map-thumbnail.png"
#: The layers drawn, bottom to top (others in the mapping are ignored).
LAYERS = ("roads", "areas", "catchments", "demand", "bookmobile_routes", "bookmobile_stops", "outreach_desks",
          "branches")  # fmt: skip

_PT = 72.0 / DPI  # points per pixel: matplotlib sizes are in points, the styles of map.html in px
# matplotlib's shared caches (fonts, text layout) are not documented as thread-safe: the API's worker threads
# render one on-demand map at a time, which also bounds the CPU a burst of requests can take.
_RENDER_LOCK = threading.Lock()


def _present(layers: Mapping[str, gpd.GeoDataFrame | None], name: str) -> gpd.GeoDataFrame | None:
    frame = layers.get(name)
    return frame if frame is not None and len(frame) else None


def _column(frame: gpd.GeoDataFrame, layer: str, field: str) -> Any:
    if field not in frame.columns:
        have = ", ".join(map(str, frame.columns))
        raise ValueError(f"layer {layer!r}: the field {field!r} is missing (it has: {have})")
    return frame[field]


def time_class(minutes: np.ndarray) -> np.ndarray:
    """The index in :data:`TIME_CLASSES` of each drive time (minutes), or ``len(TIME_CLASSES)`` when unreachable."""
    t = np.asarray(minutes, dtype=float)
    bounds = np.array([b for b, _, _ in TIME_CLASSES[:-1]])
    cls = np.searchsorted(bounds, t, side="left")  # t <= 5 -> 0, 5 < t <= 10 -> 1, ...
    return np.where(np.isfinite(t), cls, len(TIME_CLASSES))


def _closed(branches: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(_column(branches, "branches", "decision").astype(str) == "close")


def _flag(frame: gpd.GeoDataFrame, field: str) -> np.ndarray:
    """A boolean field (GeoPackage may give it back as integers); True when the layer lacks it."""
    if field not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return np.asarray(frame[field].astype("boolean").fillna(False).to_numpy(dtype=bool))


def _route_days(routes: gpd.GeoDataFrame) -> np.ndarray:
    if "route_day" in routes.columns:
        return np.asarray(routes["route_day"].fillna(0), dtype=int)
    return np.arange(1, len(routes) + 1)


def legend_entries(layers: Mapping[str, gpd.GeoDataFrame | None]) -> list[LegendEntry]:
    """The legend of the map of ``layers``: an entry for each thing drawn, nothing for an absent or empty layer.

    Road classes, drive-time classes, branch decisions, stop and desk states appear only when some feature has
    them, so the legend never explains a colour the map does not show.
    """
    out: list[LegendEntry] = []
    roads = _present(layers, "roads")
    if roads is not None:
        have = set(_column(roads, "roads", "road_class").astype(str))
        for cls in ("major", "secondary", "minor"):
            if cls in have:
                color, width = ROAD_STYLE[cls]
                out.append(LegendEntry(f"{cls} roads", "line", color, size=width))
    if _present(layers, "areas") is not None:
        out.append(LegendEntry("census areas", "line", "#555555", size=1.0, dashed=True))
    if _present(layers, "catchments") is not None:
        out.append(LegendEntry("branch catchments", "patch", _with_alpha(PALETTE[0]), edge=PALETTE[0]))
    demand = _present(layers, "demand")
    if demand is not None:
        classes = set(time_class(_column(demand, "demand", "time_after_min").to_numpy(dtype=float)).tolist())
        for k, (_, color, label) in enumerate(TIME_CLASSES):
            if k in classes:
                out.append(LegendEntry(label, "marker", color, size=5.0))
        if len(TIME_CLASSES) in classes:
            out.append(LegendEntry("no branch reachable", "marker", UNREACHABLE, size=5.0))
    routes = _present(layers, "bookmobile_routes")
    if routes is not None:
        days = _route_days(routes)
        if len(routes) <= MAX_ROUTE_ENTRIES:
            names = routes["route"].astype(str) if "route" in routes.columns else [f"route {d}" for d in days]
            for name, day in zip(names, days, strict=True):
                out.append(LegendEntry(f"bookmobile {name}", "line", PALETTE[day % 9], size=3.0, dashed=True))
        else:
            out.append(LegendEntry(f"bookmobile routes ({len(routes)})", "line", PALETTE[days[0] % 9], size=3.0,
                                   dashed=True))  # fmt: skip
    stops = _present(layers, "bookmobile_stops")
    if stops is not None:
        served = _flag(stops, "served")
        if served.any():
            out.append(LegendEntry("bookmobile stop", "marker", STOP_SERVED, edge=STOP_EDGE, size=6.0))
        if not served.all():
            out.append(LegendEntry("bookmobile stop, not served", "marker", "#ffffff", edge=STOP_EDGE, size=6.0))
    desks = _present(layers, "outreach_desks")
    if desks is not None:
        opened = _flag(desks, "open")
        if opened.any():
            out.append(LegendEntry("outreach desk", "marker", DESK_OPEN, edge=DESK_EDGE, size=7.0))
        if not opened.all():
            out.append(LegendEntry("outreach desk, not opened", "marker", "#ffffff", edge=DESK_EDGE, size=7.0))
    branches = _present(layers, "branches")
    if branches is not None:
        closed = _closed(branches)
        if not closed.all():
            out.append(LegendEntry("branch kept", "marker", BRANCH_KEPT, edge="#222222", size=9.0))
        if closed.any():
            out.append(LegendEntry("branch closed", "marker", BRANCH_CLOSED, edge="#222222", size=9.0))
    return out


def _with_alpha(color: str, alpha: float = 0.18) -> str:
    """``color`` with the catchments' fill opacity, as ``#rrggbbaa``."""
    r, g, b, _ = to_rgba(color)
    return "#" + "".join(f"{round(255 * v):02x}" for v in (r, g, b, alpha))


def map_crs(layers: Mapping[str, gpd.GeoDataFrame | None]) -> CRS:
    """The UTM zone of the layers' extent: metres, so that the scale bar is true (to 0.1 % within the zone)."""
    boxes = []
    for name in LAYERS:
        frame = _present(layers, name)
        if frame is None:
            continue
        if frame.crs is None:
            raise ValueError(f"layer {name!r} has no CRS; the map cannot place it")
        boxes.append(shapely.box(*frame.to_crs("EPSG:4326").total_bounds))
    if not boxes:
        raise ValueError("no layer to draw: every layer is absent or empty")
    crs: CRS = gpd.GeoSeries([shapely.union_all(boxes).envelope], crs="EPSG:4326").estimate_utm_crs()
    return crs


def draw_map(
    layers: Mapping[str, gpd.GeoDataFrame | None], *, title: str, attribution: str = OSM_ATTRIBUTION
) -> tuple[Figure, CRS]:
    """Draw the map of ``layers`` on a new Agg figure of 1600 × 1200 px; return it and the CRS of its axes.

    Every layer is optional; the ones present need the fields ``map.html`` needs (roads ``road_class``, demand
    ``population`` and ``time_after_min``, branches ``decision``). The view fits every layer but the roads, which
    usually reach beyond the study area; the axes' data units are metres of ``crs``.
    """
    crs = map_crs(layers)
    proj = {name: frame.to_crs(crs) for name in LAYERS if (frame := _present(layers, name)) is not None}
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)  # the Agg canvas, explicitly: no global backend switch, no display needed
    ax = fig.add_axes((0.01, 0.01, 0.76, 0.93))  # the legend goes to the right of the map, never over it
    ax.set_facecolor(BACKGROUND)
    ax.set_xticks([])
    ax.set_yticks([])
    _set_view(ax, fig, proj)
    if "roads" in proj:
        _draw_roads(ax, proj["roads"])
    if "areas" in proj:
        _draw_lines(ax, shapely.boundary(proj["areas"].geometry.values), "#555555", 1.0, zorder=2, dashes=(3, 3))
    if "catchments" in proj:
        _draw_catchments(ax, proj["catchments"])
    if "demand" in proj:
        _draw_demand(ax, proj["demand"])
    if "bookmobile_routes" in proj:
        routes = proj["bookmobile_routes"]
        paths, owner = _line_paths(routes.geometry.values)
        colors = [PALETTE[d % 9] for d in _route_days(routes)[owner]]
        ax.add_collection(LineCollection(paths, colors=colors, linewidths=3.0 * _PT, linestyles=(0, (6, 4)),
                                         zorder=5))  # fmt: skip
    if "bookmobile_stops" in proj:
        stops = proj["bookmobile_stops"]
        faces = np.where(_flag(stops, "served"), STOP_SERVED, "#ffffff")
        _points(ax, stops, faces, 6.0, edge=STOP_EDGE, zorder=6)
    if "outreach_desks" in proj:
        desks = proj["outreach_desks"]
        _points(ax, desks, np.where(_flag(desks, "open"), DESK_OPEN, "#ffffff"), 7.0, edge=DESK_EDGE, zorder=7)
    if "branches" in proj:
        branches = proj["branches"]
        _points(ax, branches, np.where(_closed(branches), BRANCH_CLOSED, BRANCH_KEPT), 9.0, edge="#222222",
                zorder=8)  # fmt: skip
    ax.set_title(title, loc="left", fontsize=18, parse_math=False)
    draw_legend(ax, legend_entries(layers))
    draw_scale_bar(ax)
    draw_north_arrow(ax, crs)
    ax.text(0.997, 0.004, attribution, transform=ax.transAxes, ha="right", va="bottom", fontsize=10, zorder=20,
            parse_math=False, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 2},
            gid="attribution")  # fmt: skip
    return fig, crs


def write_map_png(
    path: Path,
    layers: Mapping[str, gpd.GeoDataFrame | None],
    *,
    title: str,
    attribution: str = OSM_ATTRIBUTION,
) -> Path:
    """Write the map of ``layers`` (see :func:`draw_map`) to ``path`` as a 1600 × 1200 px PNG.

    The file has no timestamp and no software version in its metadata, so the same layers give the same bytes.
    """
    path.write_bytes(_png(layers, title=title, attribution=attribution))
    return path


def _png(layers: Mapping[str, gpd.GeoDataFrame | None], *, title: str, attribution: str) -> bytes:
    """The PNG bytes of :func:`draw_map`, without timestamp or software version in the metadata."""
    fig, _ = draw_map(layers, title=title, attribution=attribution)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def read_layers(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of a result GeoPackage (``layers.gpkg``), by name."""
    import pyogrio

    return {str(name): pyogrio.read_dataframe(gpkg, layer=str(name)) for name, _ in pyogrio.list_layers(gpkg)}


def ensure_map_png(folder: Path) -> Path:
    """The result folder's ``map.png``, first drawn from its ``layers.gpkg`` and ``plan.json`` when it has none.

    The drawn file is written beside the results atomically (a temporary file renamed into place), so concurrent
    requests never see half a PNG. Raises ``FileNotFoundError`` when the folder has no ``layers.gpkg``.
    """
    target = folder / "map.png"
    if target.is_file():
        return target
    gpkg = folder / "layers.gpkg"
    if not gpkg.is_file():
        raise FileNotFoundError(f"{gpkg} is missing: the map cannot be drawn")
    try:
        plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        plan = None
    if not isinstance(plan, dict):
        plan = {}
    title = f"branchnet: {plan.get('scenario', folder.name)}"
    attribution = str(plan.get("attribution") or OSM_ATTRIBUTION)
    with _RENDER_LOCK:
        if target.is_file():  # drawn by another request while this one waited
            return target
        atomic_write(target, _png(read_layers(gpkg), title=title, attribution=attribution))
    return target


def thumbnail_uri(folder: Path, width: int = 400) -> str:
    """The result folder's map downscaled to ``width`` px (256 colours) as a ``data:image/png;base64`` URI.

    The thumbnail is cached beside the map as ``map-thumbnail.png``; the map itself comes from
    :func:`ensure_map_png`.
    """
    cached = folder / THUMBNAIL
    if not cached.is_file():
        from PIL import Image

        with Image.open(ensure_map_png(folder)) as image:
            rgb = image.convert("RGB")
        small = rgb.resize((width, round(width * rgb.height / rgb.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.quantize(256).save(buf, format="PNG", optimize=True)
        atomic_write(cached, buf.getvalue())
    return "data:image/png;base64," + base64.b64encode(cached.read_bytes()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------------
# drawing


def _line_parts(geoms: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vertices of every line part of ``geoms``, each vertex's part, and each part's row in ``geoms``."""
    parts, owner = shapely.get_parts(np.asarray(geoms), return_index=True)
    keep = np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)  # LineString, LinearRing
    coords, index = shapely.get_coordinates(parts[keep], return_index=True)
    return coords, index, owner[keep]


def _line_paths(geoms: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """The vertex array of every line part of ``geoms`` (for a LineCollection), and each part's row."""
    coords, index, owner = _line_parts(geoms)
    return (np.split(coords, np.flatnonzero(np.diff(index)) + 1) if len(coords) else []), owner


def _draw_lines(ax: Axes, geoms: Any, color: str, width_px: float, *, zorder: float,
                dashes: tuple[float, float] | None = None) -> None:  # fmt: skip
    """Stroke every line of ``geoms`` as one compound path: a LineCollection makes a Path object per part, which
    costs more than rasterising them (100 000 road segments: 0.35 s against 0.01 s to build), and one path also
    draws crossings without the darker overlap of separately blended lines."""
    coords, index, _ = _line_parts(geoms)
    if not len(coords):
        return
    codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
    codes[np.r_[0, np.flatnonzero(np.diff(index)) + 1]] = MplPath.MOVETO
    style = (0, tuple(d * _PT for d in dashes)) if dashes else "solid"
    lines = PathCollection([MplPath(coords, codes)], facecolors="none", edgecolors=color, linewidths=width_px * _PT,
                           linestyles=[style], capstyle="round", joinstyle="round", zorder=zorder)  # fmt: skip
    ax.add_collection(lines, autolim=False)  # the view is set; the limits of 10^5 vertices need not be computed


def _set_view(ax: Axes, fig: Figure, proj: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Fit the view to every layer but the roads (or to the roads alone), padded, at the axes' aspect ratio."""
    frames = [f for name, f in proj.items() if name != "roads"] or list(proj.values())
    bounds = np.array([f.total_bounds for f in frames])
    x0, y0 = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
    x1, y1 = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    w, h = max(x1 - x0, 100.0), max(y1 - y0, 100.0)  # a single point still gets a view of some 100 m
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = w * 1.06, h * 1.06
    box = ax.get_position()
    aspect = (box.width * fig.get_figwidth()) / (box.height * fig.get_figheight())
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    ax.set_aspect("equal")


def _draw_roads(ax: Axes, roads: gpd.GeoDataFrame) -> None:
    """One compound path per road class, minor roads below major ones."""
    classes = np.asarray(_column(roads, "roads", "road_class").astype(str))
    unknown = sorted(set(classes) - set(ROAD_STYLE))
    if unknown:
        raise ValueError(f"layer 'roads': unknown road_class {unknown[0]!r}; expected one of {', '.join(ROAD_STYLE)}")
    for cls, (color, width) in ROAD_STYLE.items():
        mask = classes == cls
        if not mask.any():
            continue
        _draw_lines(ax, roads.geometry.values[mask], color, width, zorder=1.0 + 0.1 * list(ROAD_STYLE).index(cls))


def _draw_catchments(ax: Axes, catchments: gpd.GeoDataFrame) -> None:
    ks = np.asarray(catchments["k"], dtype=int) if "k" in catchments.columns else np.arange(len(catchments))
    patches, faces, edges = [], [], []
    for geom, k in zip(catchments.geometry.values, ks, strict=True):
        for poly in shapely.get_parts(np.asarray([geom])):
            if not isinstance(poly, shapely.Polygon) or poly.is_empty:
                continue
            poly = orient(poly, 1.0)  # holes wind against the shell: the fill skips them
            rings = [poly.exterior, *poly.interiors]
            patches.append(PathPatch(MplPath.make_compound_path(*[MplPath(np.asarray(r.coords)) for r in rings])))
            faces.append(to_rgba(PALETTE[k % 9], 0.18))
            edges.append(PALETTE[k % 9])
    ax.add_collection(PatchCollection(patches, facecolors=faces, edgecolors=edges, linewidths=1.0 * _PT, zorder=3))


def _draw_demand(ax: Axes, demand: gpd.GeoDataFrame) -> None:
    """Demand points coloured by drive time; the longest drawn last, so that the worst served stay visible."""
    cls = time_class(_column(demand, "demand", "time_after_min").to_numpy(dtype=float))
    colors = np.array([c for _, c, _ in TIME_CLASSES] + [UNREACHABLE])[cls]
    pop = np.nan_to_num(_column(demand, "demand", "population").to_numpy(dtype=float), nan=0.0)
    radius = np.clip(np.sqrt(np.maximum(pop, 0.0)), 3.0, 9.0)
    order = np.argsort(cls, kind="stable")
    xy = shapely.get_coordinates(demand.geometry.values)
    ax.scatter(xy[order, 0], xy[order, 1], s=(2 * radius[order] * _PT) ** 2, c=colors[order], linewidths=0,
               zorder=4)  # fmt: skip


def _points(ax: Axes, frame: gpd.GeoDataFrame, faces: np.ndarray, radius_px: float, *, edge: str,
            zorder: float) -> None:  # fmt: skip
    xy = shapely.get_coordinates(shapely.centroid(frame.geometry.values))
    diameter = 2 * radius_px * _PT
    ax.scatter(xy[:, 0], xy[:, 1], s=diameter**2, c=list(faces), edgecolors=edge, linewidths=2.0 * _PT,
               zorder=zorder)  # fmt: skip
