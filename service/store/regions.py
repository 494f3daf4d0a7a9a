"""Store prepared regions in the data directory, atomically.

A region lives in ``<data_dir>/regions/<name>/``: ``region.json`` (metadata), ``drive.pickle`` and
``walk.pickle`` (graphs), ``demand.gpkg``, ``areas.gpkg``, ``branches.gpkg`` and ``matrix.npz``. It is written
to a hidden temporary folder and renamed into place, so a failed import leaves the previous version (or
nothing) and never a half-written region.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geodata import _cache
from geodata.region import RegionData
from service.errors import BadRequestError, ConflictError, RegionNotFoundError
from service.store.db import Region
from service.store.files import FileStore

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe region name (lower-case letters, digits, '-' and '_')."""
    if not _NAME.match(name):
        raise BadRequestError(f"region name {name!r} must be 1-63 lower-case letters, digits, '-' or '_'")
    return name


def save_region(region: RegionData, regions_dir: Path) -> Path:
    """Write ``region`` under ``regions_dir`` atomically; return its folder."""
    check_name(region.name)
    regions_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{region.name}.", dir=regions_dir))
    tmp.chmod(0o755)
    try:
        _cache.write_pickle(region.drive, tmp / "drive.pickle")
        _cache.write_pickle(region.walk, tmp / "walk.pickle")
        region.demand.to_file(tmp / "demand.gpkg", layer="demand", driver="GPKG")
        if len(region.areas):
            region.areas.to_file(tmp / "areas.gpkg", layer="areas", driver="GPKG")
        region.branches.to_file(tmp / "branches.gpkg", layer="branches", driver="GPKG")
        if region.settlements is not None and len(region.settlements):
            region.settlements.to_file(tmp / "settlements.gpkg", layer="settlements", driver="GPKG")
        np.savez_compressed(tmp / "matrix.npz", time_s=region.time_s, dist_m=region.dist_m)
        (tmp / "region.json").write_text(json.dumps(region.meta, indent=2, default=str))
        target = regions_dir / region.name
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{region.name}.old.", dir=regions_dir))
            os.replace(target, old / "region")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def list_regions(regions_dir: Path) -> list[str]:
    """Return the names of stored regions."""
    if not regions_dir.is_dir():
        return []
    return sorted(p.name for p in regions_dir.iterdir() if (p / "region.json").is_file())


def load_region(name: str, regions_dir: Path) -> RegionData:
    """Read a stored region.

    Raises
    ------
    RegionNotFoundError
        When ``name`` was never imported, listing the regions that were.
    """
    folder = regions_dir / check_name(name)
    if not (folder / "region.json").is_file():
        known = ", ".join(list_regions(regions_dir)) or "none"
        raise RegionNotFoundError(
            f"region {name!r} has not been imported (imported regions: {known}); "
            f"run `branchnet region import {name} ...` first"
        )
    meta = json.loads((folder / "region.json").read_text())
    matrices = np.load(folder / "matrix.npz")
    areas = (
        gpd.read_file(folder / "areas.gpkg")
        if (folder / "areas.gpkg").is_file()
        else gpd.GeoDataFrame({"area_id": []}, geometry=[], crs="EPSG:4326")
    )
    demand = gpd.read_file(folder / "demand.gpkg")
    branches = gpd.read_file(folder / "branches.gpkg")
    for frame in (demand, areas):
        if "area_id" in frame:
            frame["area_id"] = frame["area_id"].astype(str)
    return RegionData(
        name=name,
        drive=_cache.read_pickle(folder / "drive.pickle"),
        walk=_cache.read_pickle(folder / "walk.pickle"),
        demand=demand,
        areas=areas,
        branches=branches,
        time_s=matrices["time_s"],
        dist_m=matrices["dist_m"],
        meta=meta,
        settlements=gpd.read_file(folder / "settlements.gpkg") if (folder / "settlements.gpkg").is_file() else None,
    )


def store_region(
    session: Session, files: FileStore, org_id: str, region: RegionData, summary: dict[str, Any]
) -> Region:
    """Save ``region`` into the organisation's regions folder and insert its row; commit. 409 on a name clash.

    The region is first written to a private staging folder; the row is inserted (its unique (org, name) key
    reserves the name until the commit) before the folder is renamed into place, so two imports of one name never
    overwrite each other and a failure leaves neither a row nor a folder.
    """
    regions_dir = files.regions_dir(org_id)
    staging = regions_dir / f".staging-{uuid.uuid4().hex}"
    target = regions_dir / region.name
    placed = False
    try:
        staged = save_region(region, staging)
        path = target.relative_to(files.root).as_posix()  # like Run.result_path: relative to the file store root
        row = Region(org_id=org_id, name=region.name, path=path, summary=summary)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise ConflictError(f"a region named {region.name!r} already exists in your organisation") from None
        if target.exists():  # a leftover without a row (we hold the name): replace it
            os.replace(target, staging / "leftover")
        os.replace(staged, target)
        placed = True
        session.commit()
        return row
    except BaseException:
        session.rollback()
        if placed:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_region(
    session: Session, files: FileStore, row: Region, region: RegionData, summary: dict[str, Any]
) -> None:
    """Replace a stored region's data and summary (a re-import): the folder is swapped atomically, then the row's
    summary is committed; a failure before the swap leaves the old region whole."""
    save_region(region, files.root / Path(row.path).parent)
    row.summary = summary
    session.commit()
