"""A planning region: road graphs, demand points, branches, and the matrices between them.

:func:`prepare_region` runs the whole geodata pipeline on raw files. Storage of prepared regions is the
service's job; this module only builds them in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from geodata import _cache
from geodata._io import find_column, read_features
from geodata._osm import read_osm
from geodata.branches import CostModel, load_branches
from geodata.errors import MissingFieldError
from geodata.matrix import travel_time_matrix
from geodata.network import SpeedProfile, load_network
from geodata.population import AgeShares, load_population
from geodata.snapping import snap_points

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class RegionSources:
    """The raw files and field choices a region was built from."""

    osm: str
    population: str
    branches: str
    population_table: str | None = None
    join_on: str | None = None
    population_field: str | None = None
    area_field: str | None = None
    group_field: str | None = None
    id_field: str | None = None
    crs: str | None = None
    #: YAML/TOML car speed profile (see :meth:`geodata.network.SpeedProfile.from_file`); defaults otherwise.
    speeds: str | None = None
    #: Default age shares (0-17, 18-64, 65+) where the population source has totals only.
    age_shares: tuple[float, float, float] | None = None
    #: Named settlements (CSV with lon/lat or a point file with a ``name`` field): community names for stops.
    settlements: str | None = None


@dataclass(frozen=True)
class RegionData:
    """A prepared region.

    ``demand`` and ``branches`` are in EPSG:4326 with ``node``, ``snap_m`` and ``snap_s`` columns. ``time_s``
    (demand x branches) is door-to-door: walk to the road, drive, walk to the branch; ``dist_m`` likewise in
    metres. ``meta`` holds sources with their content digests, network reports and the notes of every
    assumption applied.
    """

    name: str
    drive: nx.MultiDiGraph
    walk: nx.MultiDiGraph
    demand: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    branches: gpd.GeoDataFrame
    time_s: np.ndarray
    dist_m: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    settlements: gpd.GeoDataFrame | None = None


def region_matrices(
    drive: nx.MultiDiGraph,
    demand: gpd.GeoDataFrame,
    branches: gpd.GeoDataFrame,
    cache_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return door-to-door (time s, distance m) matrices from demand points to branches."""
    o, d = demand["node"].to_numpy(), branches["node"].to_numpy()
    t = travel_time_matrix(drive, o, d, weight="travel_time", cache_dir=cache_dir)
    m = travel_time_matrix(drive, o, d, weight="length", cache_dir=cache_dir)
    t = t + demand["snap_s"].to_numpy()[:, None] + branches["snap_s"].to_numpy()[None, :]
    m = m + demand["snap_m"].to_numpy()[:, None] + branches["snap_m"].to_numpy()[None, :]
    return t, m


def prepare_region(
    name: str,
    sources: RegionSources,
    *,
    cache_dir: str | Path | None = None,
    cost_model: CostModel | None = None,
    shares: AgeShares | None = None,
    branch_max_snap_m: float = 2000.0,
    progress: Progress | None = None,
) -> RegionData:
    """Build a region from raw files: networks, demand, branches, snapping and matrices.

    Raises the geodata errors of each step; every message names the file and field at fault.
    """
    cache = Path(cache_dir) if cache_dir is not None else None
    osm_path = Path(sources.osm)
    profile = SpeedProfile.from_file(sources.speeds) if sources.speeds else None
    if shares is None and sources.age_shares is not None:
        shares = AgeShares(*sources.age_shares)
    drive = load_network(osm_path, mode="drive", profile=profile, crs=sources.crs, cache_dir=cache, progress=progress)
    crs = str(drive.graph["crs"])
    walk = load_network(osm_path, mode="walk", crs=crs, cache_dir=cache, progress=progress)
    extract = read_osm(osm_path, areas=True, progress=progress)
    population = load_population(
        sources.population,
        table=sources.population_table,
        join_on=sources.join_on,
        population_field=sources.population_field,
        area_field=sources.area_field,
        group_field=sources.group_field,
        osm=extract,
        crs=crs,
        shares=shares,
        progress=progress,
    )
    branches = load_branches(sources.branches, id_field=sources.id_field, cost_model=cost_model)
    if progress:
        progress("snap", 0.0)
    snapped = snap_points(
        drive,
        branches,
        ids=branches["branch_id"].tolist(),
        what="branch",
        source=str(sources.branches),
        max_m=branch_max_snap_m,
    )
    branches = branches.join(snapped)
    demand = population.points.join(
        snap_points(drive, population.points, what="demand point", source=str(sources.population))
    )
    if progress:
        progress("snap", 1.0)
        progress("matrix", 0.0)
    time_s, dist_m = region_matrices(drive, demand, branches, cache)
    if progress:
        progress("matrix", 1.0)
    digests = {
        key: _cache.file_digest(path)
        for key, path in asdict(sources).items()
        if key in ("osm", "population", "branches", "population_table", "speeds", "settlements") and path
    }
    meta = {
        "name": name,
        "crs": crs,
        "sources": asdict(sources),
        "digests": digests,
        "networks": {"drive": drive.graph.get("report"), "walk": walk.graph.get("report")},
        "notes": [
            *population.notes,
            f"{int((branches['cost_source'] == 'default model').sum())} branch cost(s) from the default model",
        ],
        "population": float(demand["population"].sum()),
        "demand_points": len(demand),
        "branches": len(branches),
        "max_branch_snap_m": float(branches["snap_m"].max()),
    }
    settlements = load_settlements(sources.settlements) if sources.settlements else None
    return RegionData(name, drive, walk, demand, population.areas, branches, time_s, dist_m, meta, settlements)


def load_settlements(path: str | Path) -> gpd.GeoDataFrame:
    """Read named places (GeoNames-style CSV with latitude/longitude, or a point file); keep name and population."""
    path = Path(path)
    gdf = read_features(path)
    name = find_column(gdf.columns, ("name", "community", "settlement", "asciiname"))
    if name is None:
        raise MissingFieldError(f"{path}: no 'name' field for the settlements")
    out = gpd.GeoDataFrame({"name": gdf[name].astype(str).to_numpy()}, geometry=gdf.geometry.values, crs=gdf.crs)
    pop = find_column(gdf.columns, ("population", "pop"))
    if pop is not None:
        out["population"] = pd.to_numeric(gdf[pop], errors="coerce").fillna(0).to_numpy()
    return out.to_crs("EPSG:4326")
