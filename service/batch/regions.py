"""Regions in the batch: is a region's source data still what it was imported from, and re-import it once if not.

A region remembers its sources (``region.json``: ``sources`` with the import options, ``source_paths`` for files
registered on the server, ``digests`` of every file at import). Regions imported from the command line keep
absolute paths in ``sources``; regions uploaded through the API keep no file (the upload is deleted after the
import), so their recorded digests are their current content: only a new upload changes them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.runs.fingerprint import SOURCE_KEYS, DigestCache, SourceVanishedError, source_digests


@dataclass(frozen=True)
class RegionState:
    """What the batch knows of one region before it plans its scenarios."""

    region_id: str
    name: str
    org_id: str
    meta: dict[str, Any]
    digests: dict[str, str]  # current content of its sources (or those recorded, for uploads)
    changed: tuple[str, ...]  # source files whose bytes differ from the import
    error: str | None = None  # a source vanished: its scenarios fail with this reason

    @property
    def reimport(self) -> bool:
        return bool(self.changed) and self.error is None


def source_paths(meta: dict[str, Any]) -> dict[str, str] | None:
    """The files a region was imported from, or None when it keeps none (an upload)."""
    if meta.get("source_paths"):
        return dict(meta["source_paths"])
    sources = meta.get("sources") or {}
    paths = {k: str(v) for k, v in sources.items() if k in SOURCE_KEYS and v}
    if paths and all(Path(v).is_absolute() for v in paths.values()):
        return paths
    return None


def region_state(region_id: str, name: str, org_id: str, folder: Path, digests: DigestCache) -> RegionState:
    """Read a stored region's ``region.json`` and compare its source files with the digests of its import."""
    meta = json.loads((folder / "region.json").read_text())
    recorded = dict(meta.get("digests") or {})
    paths = source_paths(meta)
    if paths is None:
        return RegionState(region_id, name, org_id, meta, recorded, ())
    try:
        now = source_digests({"name": name, "sources": paths}, digests)
    except SourceVanishedError as exc:
        return RegionState(region_id, name, org_id, meta, recorded, (), str(exc))
    changed = tuple(sorted(k for k in now if recorded.get(k) != now[k]))
    return RegionState(region_id, name, org_id, meta, now, changed)


def reimport_region(region_id: str, db_url: str, data_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Import a stored region again from its source files, with the options of its first import, and replace it
    (folder and summary); return the caches it hit."""
    from sqlalchemy.orm import sessionmaker

    from geodata.region import RegionSources, prepare_region
    from service.config import Settings
    from service.plans.report import region_summary
    from service.store.db import Region, make_engine
    from service.store.files import FileStore
    from service.store.regions import replace_region

    files = FileStore(Settings.model_construct(data_dir=data_dir).files_dir)
    engine = make_engine(db_url)
    try:
        with sessionmaker(engine, expire_on_commit=False)() as session:
            row = session.get(Region, region_id)
            if row is None:
                raise LookupError(f"region {region_id!r} is gone")
            meta = json.loads((files.root / row.path / "region.json").read_text())
            paths = source_paths(meta)
            if paths is None:
                raise ValueError(f"region {row.name!r} keeps no source files to re-import")
            options = {k: v for k, v in (meta.get("sources") or {}).items() if k not in SOURCE_KEYS}
            if isinstance(options.get("age_shares"), list):
                options["age_shares"] = tuple(options["age_shares"])
            sources = RegionSources(**{**options, **paths})
            stages: list[str] = []
            before = _count(cache_dir / "matrices")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                region = prepare_region(row.name, sources, cache_dir=cache_dir, progress=lambda s, f: stages.append(s))
            made = _count(cache_dir / "matrices") - before
            region.meta["sources"] = meta.get("sources", region.meta["sources"])  # keep what clients were shown
            if meta.get("source_paths"):
                region.meta["source_paths"] = meta["source_paths"]
            for key in ("attribution",):
                if key in meta:
                    region.meta[key] = meta[key]
            replace_region(session, files, row, region, region_summary(region))
    finally:
        engine.dispose()
    graphs = sorted({s.split(" (cached)")[0] for s in stages if s.endswith("(cached)")})
    return {"graphs_from_cache": graphs, "matrices_computed": made, "matrices_from_cache": max(0, 2 - made)}


def _count(folder: Path) -> int:
    return len(list(folder.glob("*.npy"))) if folder.is_dir() else 0
