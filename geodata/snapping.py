"""Snap points to the nearest node of a projected road graph."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geodata.errors import OutsideNetworkError, SnapDistanceWarning


def snap_points(
    G: nx.MultiDiGraph,
    points: gpd.GeoDataFrame,
    *,
    ids: Sequence[object] | None = None,
    what: str = "point",
    source: str = "",
    walk_kph: float = 4.8,
    warn_m: float = 500.0,
    max_m: float | None = None,
) -> pd.DataFrame:
    """Return, for each point, its nearest graph node, the distance to it (m) and that distance as walk time (s).

    Parameters
    ----------
    G
        A projected graph (node ``x``/``y`` in metres, ``G.graph["crs"]``).
    points
        Points in any CRS.
    ids, what, source
        Used in messages: the point ids, what they are ("branch"), and the file they came from.
    walk_kph
        Speed at which the snap distance is walked.
    warn_m
        Snaps farther than this raise a :class:`SnapDistanceWarning`.
    max_m
        Snaps farther than this raise :class:`OutsideNetworkError`; ``None`` for no limit.
    """
    node_ids = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    proj = points.to_crs(G.graph["crs"])
    px, py = proj.geometry.x.to_numpy(), proj.geometry.y.to_numpy()
    dist, pos = cKDTree(xy).query(np.column_stack([px, py]))
    labels = list(ids) if ids is not None else list(range(len(points)))
    prefix = f"{source}: " if source else ""
    if max_m is not None and (dist > max_m).any():
        far = np.flatnonzero(dist > max_m)
        names = ", ".join(f"{labels[i]!r} ({dist[i] / 1000:.1f} km)" for i in far[:5])
        raise OutsideNetworkError(
            f"{prefix}{len(far)} {what}(s) lie outside the road network's area, more than "
            f"{max_m / 1000:g} km from any road: {names}. Check the coordinates and the OSM extract's extent"
        )
    far = np.flatnonzero(dist > warn_m)
    if len(far):
        worst = far[np.argmax(dist[far])]
        warnings.warn(
            f"{prefix}{len(far)} {what}(s) snapped more than {warn_m:g} m to the network "
            f"(farthest: {labels[worst]!r} at {dist[worst]:.0f} m); the snap distance is added as walk time",
            SnapDistanceWarning,
            stacklevel=2,
        )
    return pd.DataFrame({"node": node_ids[pos], "snap_m": dist, "snap_s": dist / (walk_kph / 3.6)}, index=points.index)
