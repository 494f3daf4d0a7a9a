"""Helpers shared by the benchmark runners."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The ../shared folder, or None when it is absent (a fresh clone)."""
    path = Path(os.environ.get("BRANCHNET_SHARED_DIR", REPO.parent / "shared"))
    return path if (path / "data").is_dir() else None


def rutland_sources(shared: Path) -> Any:
    """The shared Rutland files as a region's sources (OSM, LSOA polygons and population, libraries, settlements)."""
    from geodata.region import RegionSources

    data = shared / "data" / "rutland"
    return RegionSources(
        osm=str(data / "rutland-latest.osm.pbf"),
        population=str(data / "rutland_lsoa21_boundaries.geojson"),
        population_table=str(data / "rutland_lsoa21_population.csv"),
        branches=str(data / "rutland_libraries.geojson"),
        settlements=str(data / "geonames_cities500_rutland_bbox.csv"),
    )


def demo_sources(out: Path) -> Any:
    """The synthetic demo region (preset "demo", seed 42) written under ``out``, as a region's sources."""
    from geodata.region import RegionSources
    from geodata.synthetic import generate_region, write_region

    files = write_region(generate_region("demo", seed=42), out)
    return RegionSources(osm=str(files["osm"]), population=str(files["areas"]), branches=str(files["branches"]),
                         settlements=str(files["settlements"]), area_field="area_id", group_field="municipality",
                         id_field="branch_id")  # fmt: skip


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Return the median wall time of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record, default=float), flush=True)


def instance_main(
    argv: list[str] | None,
    *,
    module: str,
    doc: str | None,
    files_help: str,
    default_time_limit_s: float,
    run_file: Callable[..., dict[str, Any]],
    summary: Callable[[argparse.Namespace], int],
) -> int:
    """The command line of a per-instance runner: ``FILE... [--time-limit S] [--seed N]`` prints one JSON line a
    file (exit 1 if any errs); ``summary [--json]`` runs the whole set against its published values."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", help=files_help)
    parser.add_argument("--time-limit", type=float, default=default_time_limit_s, help="seconds per instance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="summary: JSON lines instead of tables")
    args = parser.parse_args(argv)
    if args.files == ["summary"]:
        return summary(args)
    failed = False
    for name in args.files:
        record = run_file(Path(name), time_limit_s=args.time_limit, seed=args.seed)
        failed |= record["status"] == "error"
        emit(record)
    return 1 if failed else 0
