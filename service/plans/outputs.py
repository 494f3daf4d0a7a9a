"""Result files: ``plan.json``, ``layers.gpkg`` (for QGIS) and the offline ``map.html``."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` and swap it into place if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; results are for sharing
    try:
        try:
            yield tmp
        except Exception as exc:
            if _filled(exc, target.parent):  # GDAL and SQLite report a full disk as anything but ENOSPC
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from exc
            raise
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "x")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


#: After a failed write, less free space than this means the disk filled (whatever the writer reported).
FULL_BELOW_BYTES = 1024 * 1024


def _filled(exc: BaseException, folder: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return False  # already says so
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW_BYTES
    except OSError:
        return False


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python values and non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False))
    return path


def catchments(
    demand: gpd.GeoDataFrame, assigned: np.ndarray, study_area: shapely.Geometry, crs: str
) -> gpd.GeoDataFrame:
    """Return one polygon per branch: the Voronoi cells of the demand points it serves, clipped to the area.

    ``assigned`` holds each demand point's branch id (or ``""`` when none is reachable).
    """
    pts = demand.to_crs(crs)
    area = gpd.GeoSeries([study_area], crs="EPSG:4326").to_crs(crs).iloc[0]
    xy = np.column_stack([pts.geometry.x, pts.geometry.y])
    _, first = np.unique(np.round(xy, 1), axis=0, return_index=True)
    first = np.sort(first)
    cells = shapely.voronoi_polygons(shapely.multipoints(xy[first]), extend_to=area)
    cell_geoms = np.asarray(shapely.get_parts(cells))
    # voronoi_polygons does not keep input order; match each cell to the point inside it
    tree = shapely.STRtree(cell_geoms)
    pt_geoms = shapely.points(xy[first])
    idx_pt, idx_cell = tree.query(pt_geoms, predicate="within")
    owner = np.full(len(cell_geoms), "", dtype=object)
    owner[idx_cell] = np.asarray(assigned)[first][idx_pt]
    frame = gpd.GeoDataFrame({"branch_id": owner}, geometry=cell_geoms, crs=crs)
    frame = frame[frame["branch_id"] != ""].dissolve(by="branch_id", as_index=False)
    frame = frame.set_geometry(frame.geometry.intersection(area).buffer(0))
    pop = demand.assign(branch_id=assigned).groupby("branch_id")["population"].sum()
    frame["population"] = frame["branch_id"].map(pop).fillna(0.0)
    frame["k"] = np.arange(len(frame))
    return frame.to_crs("EPSG:4326")


def write_layers(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    """Write every non-empty layer to one GeoPackage."""
    for name, frame in layers.items():
        if frame is not None and len(frame):
            frame.to_file(path, layer=name, driver="GPKG")
    return path
