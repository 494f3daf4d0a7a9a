"""Map furniture of :mod:`service.plans.mapimage`: the legend, the scale bar and the north arrow."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from pyproj import CRS, Transformer

DPI = 100
_PT = 72.0 / DPI  # points per pixel: matplotlib sizes are in points, the styles of map.html in px


@dataclass(frozen=True)
class LegendEntry:
    """One line of the legend: a ``line`` (roads, routes), a ``marker`` (points) or a ``patch`` (polygons).

    ``size`` is the line width or the marker radius in px; ``edge`` the marker's or patch's outline colour.
    """

    label: str
    kind: Literal["line", "marker", "patch"]
    color: str
    edge: str = "none"
    size: float = 1.0
    dashed: bool = False


def draw_legend(ax: Axes, entries: list[LegendEntry]) -> None:
    """Put the legend to the right of the map, one line per entry, its labels plain text wrapped to the column."""
    if not entries:
        return
    handles: list[Any] = []
    for e in entries:
        if e.kind == "line":
            handles.append(Line2D([], [], color=e.color, linewidth=max(e.size, 1.5) * _PT * 1.5,
                                  linestyle=(0, (3, 2)) if e.dashed else "-"))  # fmt: skip
        elif e.kind == "marker":
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=2 * e.size * _PT,
                                  markerfacecolor=e.color, markeredgecolor=e.edge,
                                  markeredgewidth=2.0 * _PT if e.edge != "none" else 0.0))  # fmt: skip
        else:
            handles.append(Patch(facecolor=e.color, edgecolor=e.edge, linewidth=1.0))
    labels = [textwrap.fill(e.label, 34, break_long_words=False) for e in entries]  # the column is ~350 px wide
    legend = ax.legend(handles=handles, labels=labels, loc="upper left", fontsize=10,
                       bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, labelspacing=0.6,
                       title="Legend", title_fontsize=12, alignment="left")  # fmt: skip
    legend.set_zorder(20)
    for text in legend.get_texts():
        text.set_parse_math(False)  # names are plain text: a "$" is a dollar sign


def nice_length(span_m: float) -> float:
    """The longest of 1, 2 or 5 × 10^k metres that is at most a fifth of ``span_m``."""
    target = span_m / 5
    power = 10.0 ** math.floor(math.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def draw_scale_bar(ax: Axes) -> None:
    """A bar of a round length in the lower-left corner, labelled in m or km (the axes are in metres)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    length = nice_length(x1 - x0)
    height = (y1 - y0) * 0.008
    left, bottom = x0 + (x1 - x0) * 0.025, y0 + (y1 - y0) * 0.03
    pad_x, pad_y = (x1 - x0) * 0.01, (y1 - y0) * 0.012
    ax.add_patch(Rectangle((left - pad_x, bottom - pad_y), length + 2 * pad_x, height + 6 * pad_y,
                           facecolor="white", alpha=0.85, edgecolor="none", zorder=19))  # fmt: skip
    half = length / 2
    for k, color in enumerate(("#222222", "#ffffff")):
        ax.add_patch(Rectangle((left + k * half, bottom), half, height, facecolor=color, edgecolor="#222222",
                               linewidth=1.0, zorder=20, gid="scalebar" if k == 0 else "scalebar-half"))  # fmt: skip
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(left + length / 2, bottom + height + pad_y, label, ha="center", va="bottom", fontsize=11, zorder=20,
            gid="scalebar-label")  # fmt: skip


def draw_north_arrow(ax: Axes, crs: CRS) -> None:
    """An arrow to true north at the view's centre (UTM grid north is off by the meridian convergence)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon, lat = to_geo.transform((x0 + x1) / 2, (y0 + y1) / 2)
    ax_, ay_ = to_map.transform(lon, lat)
    bx, by = to_map.transform(lon, min(lat + 0.01, 89.99))
    angle = math.atan2(bx - ax_, by - ay_)  # clockwise from grid north
    dx, dy = math.sin(angle), math.cos(angle)
    tip = (0.04, 0.93)
    ax.annotate("", xy=tip, xycoords="axes fraction", xytext=(-50 * dx, -50 * dy), textcoords="offset points",
                arrowprops={"arrowstyle": "-|>,head_width=0.5,head_length=1", "color": "#222222", "linewidth": 2.5},
                zorder=20, gid="north-arrow")  # fmt: skip
    ax.annotate("N", xy=tip, xycoords="axes fraction", xytext=(12 * dx, 12 * dy), textcoords="offset points",
                ha="center", va="center", fontsize=16, fontweight="bold", zorder=20, gid="north-label")  # fmt: skip
