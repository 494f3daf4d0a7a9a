"""The PNG map of a plan (:mod:`service.plans.mapimage`), on hand-made layers near Oakham.

What is drawn is recounted from the pixels, not from the drawing code: the branch colours appear exactly where
the branches are and nowhere when no branch has that decision; each drive-time class present in the demand has
its colour on the map, an absent one nowhere; the scale bar's length agrees with the geodesic distance between
two branches measured in pixels; the north arrow points along a meridian (true north, not UTM grid north).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from pyproj import Geod

from service.plans import mapimage
from service.plans.mapimage import (
    BRANCH_CLOSED,
    BRANCH_KEPT,
    TIME_CLASSES,
    UNREACHABLE,
    draw_map,
    ensure_map_png,
    legend_entries,
    read_layers,
    thumbnail_uri,
    time_class,
    write_map_png,
)
from service.plans.outputs import write_layers

KEPT_AT, CLOSED_AT = (-0.66, 52.60), (-0.66, 52.665)  # the closed branch is due north of the kept one
TIMES = [3.0, 7.0, 12.0, 18.0, 25.0, math.nan]  # one demand point of each class, in turn


def _frame(rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def sample_layers(times: list[float] = TIMES, decisions: tuple[str, str] = ("keep", "close")) -> dict[str, Any]:
    """Every kind of layer ``map.html`` draws, over about 13 × 13 km around Oakham (EPSG:4326)."""
    lons, lats = np.linspace(-0.745, -0.555, 10), np.linspace(52.575, 52.685, 8)
    pts = [(x, y) for y in lats for x in lons]
    demand = _frame(
        [{"area_id": f"A{k % 4}", "population": 10.0 + 7 * (k % 11), "time_after_min": times[k % len(times)]}
         for k in range(len(pts))],
        [shapely.Point(p) for p in pts],
    )  # fmt: skip
    quads = [shapely.box(x, y, x + 0.1, y + 0.06) for x in (-0.75, -0.65) for y in (52.57, 52.63)]
    hole = shapely.box(-0.73, 52.59, -0.71, 52.61)
    west = shapely.box(-0.75, 52.57, -0.65, 52.69).difference(hole)
    return {
        "roads": _frame(
            [{"road_class": "major"}, {"road_class": "secondary"}, {"road_class": "minor"}],
            [
                shapely.LineString([(-0.80, 52.63), (-0.50, 52.63)]),
                shapely.LineString([(-0.70, 52.55), (-0.70, 52.71)]),
                shapely.MultiLineString([[(-0.76, 52.58), (-0.54, 52.58)], [(-0.76, 52.68), (-0.54, 52.68)]]),
            ],
        ),
        "areas": _frame([{"area_id": f"A{k}"} for k in range(4)], quads),
        "catchments": _frame(
            [{"branch_id": "K", "k": 0, "population": 1.0}, {"branch_id": "C", "k": 1, "population": 1.0}],
            [west, shapely.box(-0.65, 52.57, -0.55, 52.69)],
        ),
        "demand": demand,
        "branches": _frame(
            [
                {"branch_id": "K", "name": "Kept", "decision": decisions[0]},
                {"branch_id": "C", "name": "Closed", "decision": decisions[1]},
            ],
            [shapely.Point(KEPT_AT), shapely.Point(CLOSED_AT)],
        ),
        "bookmobile_routes": _frame(
            [{"route_day": 1, "route": "Route 1 (Tue)"}],
            [shapely.LineString([(-0.72, 52.59), (-0.60, 52.59), (-0.60, 52.67)])],
        ),
        "bookmobile_stops": _frame(
            [
                {"stop_id": "s1", "community": "Oakham", "served": True},
                {"stop_id": "s2", "community": "Braunston", "served": False},
            ],
            [shapely.Point(-0.72, 52.59), shapely.Point(-0.60, 52.67)],
        ),
        "outreach_desks": _frame(
            [{"desk_id": "d1", "name": "Uppingham", "open": True}, {"desk_id": "d2", "name": "Ketton", "open": False}],
            [shapely.Point(-0.70, 52.66), shapely.Point(-0.58, 52.62)],
        ),
    }


def _render(layers: dict[str, Any], title: str = "branchnet: test") -> tuple[Any, np.ndarray]:
    """The figure and its pixels (rows from the top, RGB), masked to white inside the legend's box."""
    fig, _ = draw_map(layers, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=mapimage.DPI, metadata={"Software": None})
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()
    return fig, rgb


def _without_legend(fig: Any, rgb: np.ndarray) -> np.ndarray:
    legend = fig.axes[0].get_legend()
    box = legend.get_window_extent(fig.canvas.get_renderer())
    out = rgb.copy()
    h = rgb.shape[0]
    out[int(h - box.y1) - 1 : int(h - box.y0) + 2, int(box.x0) - 1 : int(box.x1) + 2] = 255
    return out


def _mask(rgb: np.ndarray, color: str) -> np.ndarray:
    want = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return np.asarray(np.all(rgb == want, axis=2))


def _centroid(mask: np.ndarray) -> np.ndarray:
    """The pixel centroid (x right, y up, as matplotlib's display coordinates) of a mask of rows from the top."""
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean() + 0.5, mask.shape[0] - rows.mean() - 0.5])


def _legend_texts(fig: Any) -> list[str]:
    """The drawn legend's labels, unwrapped."""
    return [" ".join(t.get_text().split()) for t in fig.axes[0].get_legend().get_texts()]


def expected_class(t: float) -> int:
    """The drive-time class of ``map.html``'s ``timeColor``: <=5, <=10, <=15, <=20, >20, none."""
    if not math.isfinite(t):
        return 5
    return 0 if t <= 5 else 1 if t <= 10 else 2 if t <= 15 else 3 if t <= 20 else 4


# ---------------------------------------------------------------------------------------------------------------


def test_png_is_1600_by_1200_and_byte_identical_when_redrawn(tmp_path: Path) -> None:
    a = write_map_png(tmp_path / "a.png", sample_layers(), title="branchnet: twice")
    b = write_map_png(tmp_path / "b.png", sample_layers(), title="branchnet: twice")
    data = a.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(a) as image:
        assert image.size == (1600, 1200) and image.format == "PNG"
    assert data == b.read_bytes()
    assert b"tIME" not in data and b"Software" not in data and b"atplotlib" not in data  # no time, no version


def test_branch_colours_are_where_the_branches_are(tmp_path: Path) -> None:
    fig, rgb = _render(sample_layers())
    body = _without_legend(fig, rgb)
    blue, red = _mask(body, BRANCH_KEPT), _mask(body, BRANCH_CLOSED)
    assert 100 < blue.sum() < 400 and 100 < red.sum() < 400  # one marker face each (radius 9 px: ~200 px)
    # the closed branch lies due north: the red face is above the blue one, by the scale bar's pixels per metre
    kept, closed = _centroid(blue), _centroid(red)
    assert closed[1] > kept[1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    bar = [p for p in ax.patches if str(p.get_gid()).startswith("scalebar")]
    extents = [p.get_window_extent(renderer) for p in bar]
    bar_px = max(e.x1 for e in extents) - min(e.x0 for e in extents)
    label = next(t.get_text() for t in ax.texts if t.get_gid() == "scalebar-label")
    value, unit = re.fullmatch(r"([\d.]+) (k?m)", label).groups()  # type: ignore[union-attr]
    bar_m = float(value) * (1000 if unit == "km" else 1)
    _, _, metres = Geod(ellps="WGS84").inv(*KEPT_AT, *CLOSED_AT)
    px_per_m = np.hypot(*(closed - kept)) / metres
    assert px_per_m == pytest.approx(bar_px / bar_m, rel=0.01)
    # the arrow points along the meridian through both branches, which UTM zone 30 tilts by ~1.9 degrees here
    arrow = next(a for a in ax.texts if a.get_gid() == "north-arrow")
    ox, oy = arrow.xyann  # the tail, in points from the tip
    arrow_deg = math.degrees(math.atan2(-ox, -oy))
    meridian_deg = math.degrees(math.atan2(*(closed - kept)))
    assert abs(meridian_deg) > 1.0  # grid north would be wrong by more than the tolerance
    assert arrow_deg == pytest.approx(meridian_deg, abs=0.3)


def test_no_kept_branch_no_blue_anywhere() -> None:
    _, rgb = _render(sample_layers(decisions=("close", "close")))
    assert not _mask(rgb, BRANCH_KEPT).any() and _mask(rgb, BRANCH_CLOSED).sum() > 300
    _, rgb = _render(sample_layers(decisions=("reduce hours", "keep")))  # any decision but "close" is kept
    assert not _mask(rgb, BRANCH_CLOSED).any() and _mask(rgb, BRANCH_KEPT).sum() > 300


def test_demand_colours_recounted_from_the_times() -> None:
    colors = [c for _, c, _ in TIME_CLASSES] + [UNREACHABLE]
    fig, rgb = _render(sample_layers())
    body = _without_legend(fig, rgb)
    for k in sorted({expected_class(t) for t in TIMES}):
        if colors[k] != UNREACHABLE:  # black is also the colour of text; the legend test covers it
            assert _mask(body, colors[k]).sum() > 50, TIME_CLASSES[k][2]
    short = [3.0, 7.0, 12.0]  # nothing beyond 15 min, everything reachable
    _, rgb = _render(sample_layers(times=short))
    for k, color in enumerate(colors[:-1]):
        assert _mask(rgb, color).any() == (k in {expected_class(t) for t in short}), TIME_CLASSES[k][2]


def test_time_classes_match_the_html_map() -> None:
    times = np.array([0.0, 5.0, 5.01, 10.0, 14.9, 15.0, 20.0, 20.01, 90.0, math.nan, math.inf])
    assert time_class(times).tolist() == [expected_class(t) for t in times]


def test_legend_lists_only_what_is_drawn() -> None:
    full = sample_layers()
    labels = [e.label for e in legend_entries(full)]
    assert labels == [
        "major roads", "secondary roads", "minor roads", "census areas", "branch catchments",
        "drive ≤ 5 min", "drive 5–10 min", "drive 10–15 min", "drive 15–20 min", "drive > 20 min",
        "no branch reachable", "bookmobile Route 1 (Tue)", "bookmobile stop", "bookmobile stop, not served",
        "outreach desk", "outreach desk, not opened", "branch kept", "branch closed",
    ]  # fmt: skip
    fig, _ = draw_map(full, title="t")
    assert _legend_texts(fig) == labels  # the drawn legend is this one

    lean = {k: v for k, v in full.items() if k not in ("bookmobile_routes", "bookmobile_stops", "outreach_desks")}
    lean["areas"] = full["areas"].iloc[0:0]  # an empty layer is an absent one
    lean["roads"] = full["roads"][full["roads"]["road_class"] == "major"]
    lean["demand"] = full["demand"].assign(time_after_min=4.0)
    lean["branches"] = full["branches"].assign(decision="keep")
    fig, _ = draw_map(lean, title="t")
    drawn = _legend_texts(fig)
    assert drawn == ["major roads", "branch catchments", "drive ≤ 5 min", "branch kept"]


def test_names_are_plain_text(tmp_path: Path) -> None:
    """A name with dollar signs or backslashes is drawn as typed; as mathtext, this one would not even draw."""
    odd = r"budget $\nosuchmacro$ cut"
    layers = sample_layers()
    layers["bookmobile_routes"] = layers["bookmobile_routes"].assign(route=odd)
    path = write_map_png(tmp_path / "m.png", layers, title=odd, attribution=odd)
    assert path.stat().st_size > 0
    fig, _ = draw_map(layers, title=odd)
    assert f"bookmobile {odd}" in _legend_texts(fig)


def test_bad_layers_are_named() -> None:
    layers = sample_layers()
    with pytest.raises(ValueError, match=r"layer 'demand': the field 'time_after_min' is missing"):
        draw_map({**layers, "demand": layers["demand"].drop(columns="time_after_min")}, title="t")
    with pytest.raises(ValueError, match=r"layer 'branches' has no CRS"):
        draw_map({"branches": gpd.GeoDataFrame(layers["branches"].drop(columns="geometry"),
                                               geometry=list(layers["branches"].geometry))}, title="t")  # fmt: skip
    with pytest.raises(ValueError, match=r"no layer to draw"):
        draw_map({"demand": layers["demand"].iloc[0:0], "branches": None}, title="t")
    with pytest.raises(ValueError, match=r"unknown road_class 'path'"):
        draw_map({**layers, "roads": layers["roads"].assign(road_class="path")}, title="t")


def test_a_folder_without_map_png_gets_one_drawn_from_its_layers(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    write_layers(folder / "layers.gpkg", sample_layers())
    plan = {"scenario": "old-run", "attribution": "© OpenStreetMap contributors"}
    (folder / "plan.json").write_text(json.dumps(plan))
    path = ensure_map_png(folder)
    assert path == folder / "map.png" and {p.name for p in folder.iterdir()} == {"layers.gpkg", "plan.json", "map.png"}
    expected = write_map_png(tmp_path / "direct.png", read_layers(folder / "layers.gpkg"), title="branchnet: old-run",
                             attribution=plan["attribution"])  # fmt: skip
    assert path.read_bytes() == expected.read_bytes()  # the plan's title and attribution, the stored layers
    stamp = path.stat().st_mtime_ns
    assert ensure_map_png(folder) == path and path.stat().st_mtime_ns == stamp  # drawn once, then kept

    uri = thumbnail_uri(folder)
    assert uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as thumb:
        assert thumb.size == (400, 300)
    assert (folder / "map-thumbnail.png").is_file() and thumbnail_uri(folder) == uri

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"layers\.gpkg"):
        ensure_map_png(empty)
