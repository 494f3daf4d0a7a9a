"""Sampling and reprojection shared by the stages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from pyproj import Transformer

from geodata.synthetic.spec import CRS, OUTPUT_CRS


def uniform_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` points drawn uniformly in ``poly`` by rejection from its bounding box."""
    shapely.prepare(poly)
    minx, miny, maxx, maxy = poly.bounds
    fill = max(poly.area / ((maxx - minx) * (maxy - miny)), 0.05)
    parts, got = [], 0
    while got < n:
        m = int(1.3 * (n - got) / fill) + 16
        x, y = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        ok = shapely.contains_xy(poly, x, y)
        parts.append(np.column_stack([x[ok], y[ok]]))
        got += int(ok.sum())
    return np.concatenate(parts)[:n]


def to_lonlat() -> Callable[[np.ndarray], np.ndarray]:
    """Return a function converting (n, 2) EPSG:25832 coordinates to (n, 2) lon/lat."""
    tr = Transformer.from_crs(CRS, OUTPUT_CRS, always_xy=True)

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return convert
