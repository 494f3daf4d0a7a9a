"""Location models at national scale: p-median, maximal covering and capacitated fixed charge on a synthetic country.

Usage::

    python -m benchmarks.location_scale [--seed N] [--time-limit S] [--max-points N] [--cache-dir DIR] [--json]

The instance. ``geodata.synthetic.generate_region("national", seed=...)`` (98 former municipalities, about 5.9
million people; about a minute to generate, then cached as arrays under ``--cache-dir``, default
``$TMPDIR/branchnet-location-scale``). Its libraries are the candidate sites. Demand points are the villages and
hamlets (at their centres, with their residents) plus, per census parish, one point at the parish's representative
point with its residents who live in no village or hamlet (towns, whose quarters are parishes, and farms; scaled so
that the total is the region's population); when there are more
than ``--max-points`` (50,000) they are merged on a square grid (population-weighted centres, the cell grown until
they fit).

Travel times are a STRAIGHT-LINE APPROXIMATION, not network times: planar distance in EPSG:25832 metres x a
circuity of 1.3, at 60 km/h, plus 2 minutes to park and walk. Preparing the national road network with
``geodata.region.prepare_region`` takes far longer than the solves measured here, so this benchmark does not; the
approximation keeps the matrix's size and structure (one row per demand point, one column per library).

The models, each with ``solve_location`` (one worker) and ``--time-limit`` seconds (default 55, so that
construction and solve end within 60 s):

- p-median: keep p = 98 libraries (one per former municipality on average), minimise person-seconds;
- maximal covering: p = 98, maximise residents within 15 minutes;
- capacitated fixed charge: every library costs 2e9 person-seconds a year to keep (a stated cost model: about
  550,000 person-hours of travel), main libraries hold 150,000 residents and branches 40,000, demand may split;
  assignment cost = residents x seconds.

For each: demand points, sites, matrix size (entries, MB), status, objective, bound, bound gap, seconds (problem
construction plus solve) and the process's peak resident memory so far (``resource.getrusage``, after each solve;
the region's generation comes first, so its peak is included).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NATIONAL_P = 98
RADIUS_S = 15 * 60.0
CIRCUITY = 1.3
SPEED_MS = 60 / 3.6
ACCESS_S = 120.0
SITE_COST = 2e9
MAIN_CAPACITY, BRANCH_CAPACITY = 150_000.0, 40_000.0


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_instance(seed: int, max_points: int, cache_dir: Path) -> dict[str, np.ndarray]:
    """Demand points (metres, residents) and sites (metres, main or branch) of the national region (cached)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"national-{seed}-{max_points}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    import geopandas as gpd

    from geodata.synthetic import generate_region

    region = generate_region("national", seed=seed)
    crs = "EPSG:25832"
    # towns are covered by their quarters (parishes); villages and hamlets are points of their own
    small = region.settlements[region.settlements["kind"] != "town"]
    settle = gpd.GeoDataFrame(small, geometry=gpd.points_from_xy(small["lon"], small["lat"]), crs="EPSG:4326").to_crs(
        crs
    )
    areas = region.areas.to_crs(crs)
    joined = gpd.sjoin(settle[["population", "geometry"]], areas[["area_id", "geometry"]], predicate="within")
    inside = joined.groupby("area_id")["population"].sum()
    total = float(areas["population"].sum())
    rest = (areas.set_index("area_id")["population"] - inside.reindex(areas["area_id"]).fillna(0).values).clip(0)
    # a village that straddles parishes can leave a parish short: scale the remainders so the total is exact
    rest *= (total - float(settle["population"].sum())) / max(float(rest.sum()), 1.0)
    rep = areas.set_index("area_id").representative_point()
    xy = np.vstack(
        [
            np.column_stack([settle.geometry.x, settle.geometry.y]),
            np.column_stack([rep.x.to_numpy(), rep.y.to_numpy()]),
        ]
    )
    pop = np.concatenate([settle["population"].to_numpy(float), rest.to_numpy(float)])
    keep = pop > 0
    xy, pop = xy[keep], pop[keep]
    raw_points = len(pop)
    cell = 500.0
    while len(pop) > max_points:
        key = np.floor(xy / cell).astype(np.int64)
        _, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.ravel()
        w = np.bincount(inv, weights=pop)
        xy = np.column_stack([np.bincount(inv, weights=pop * xy[:, 0]), np.bincount(inv, weights=pop * xy[:, 1])])
        xy /= w[:, None]
        pop = w
        cell *= 1.5
    branches = region.branches.to_crs(crs)
    sxy = np.column_stack([branches.geometry.x, branches.geometry.y])
    days = branches[[c for c in branches.columns if "staffed hours" in str(c)]].notna().sum(axis=1).to_numpy()
    main = days >= 5  # main libraries open every weekday, branches two to four days
    out = {"xy": xy, "sxy": sxy, "demand": np.rint(pop), "main": main, "raw_points": np.array([raw_points])}
    np.savez(path, **out)
    return out


def travel_times(inst: dict[str, np.ndarray]) -> np.ndarray:
    """The straight-line approximation: planar metres x circuity at the stated speed, plus the access time."""
    xy, sxy = inst["xy"], inst["sxy"]
    dist = np.sqrt(((xy[:, None, :] - sxy[None, :, :]) ** 2).sum(axis=2))
    return np.asarray(np.rint(dist * CIRCUITY / SPEED_MS + ACCESS_S))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from optimizer.location import LocationProblem, solve_location
    from optimizer.params import SolveParams

    t0 = time.perf_counter()
    inst = build_instance(args.seed, args.max_points, Path(args.cache_dir))
    t = travel_times(inst)
    build_s = time.perf_counter() - t0
    demand, main = inst["demand"], inst["main"].astype(bool)
    n, m = t.shape
    ids = tuple(f"lib{j}" for j in range(m))
    params = SolveParams(time_limit_s=args.time_limit, seed=args.seed, workers=1)
    head: dict[str, Any] = {
        "demand_points": n, "raw_demand_points": int(inst["raw_points"][0]), "sites": m,
        "population": float(demand.sum()), "matrix_entries": n * m, "matrix_mb": t.nbytes / 2**20,
        "build_s": build_s, "peak_mb_after_build": peak_mb(),
    }  # fmt: skip
    records: list[dict[str, Any]] = []
    cap = np.where(main, MAIN_CAPACITY, BRANCH_CAPACITY)
    models = [
        ("p-median", dict(objective="p_median", p=min(NATIONAL_P, m), site_cost=np.zeros(m))),
        ("max coverage", dict(objective="max_coverage", p=min(NATIONAL_P, m), radius_s=RADIUS_S,
                              site_cost=np.zeros(m))),
        ("capacitated", dict(objective="fixed_charge", site_cost=np.full(m, SITE_COST), capacity=cap,
                             assign_cost=demand[:, None] * t)),
    ]  # fmt: skip
    for label, kw in models:
        s0 = time.perf_counter()
        problem = LocationProblem(time_s=t, demand=demand, site_ids=ids, **kw)  # type: ignore[arg-type]
        result = solve_location(problem, params=params)
        seconds = time.perf_counter() - s0
        records.append({
            "model": label, **head, "status": result.status, "objective": result.objective, "bound": result.bound,
            "gap": result.gap, "open_sites": len(result.open_sites), "seconds": seconds, "peak_mb": peak_mb(),
            "algorithm": result.algorithm,
        })  # fmt: skip
        if not args.json:
            r = records[-1]
            print(f"  {label:<13} {r['status']:<10} objective {r['objective']:>18,.1f} bound {r['bound']:>18,.1f} "
                  f"gap {r['gap']:7.3%}  {r['open_sites']:4d} open  {seconds:6.1f} s  peak {r['peak_mb']:7.0f} MB",
                  flush=True)  # fmt: skip
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.location_scale", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--time-limit", type=float, default=55.0, help="seconds per solve")
    parser.add_argument("--max-points", type=int, default=50_000, help="most demand points after merging")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "branchnet-location-scale"))
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args(argv)
    if not args.json:
        print("national synthetic region: building the instance (cached after the first run) ...", flush=True)
    records = run(args)
    if args.json:
        for r in records:
            print(json.dumps(r, default=float))
    else:
        r = records[0]
        print(f"\n{r['demand_points']:,} demand points ({r['raw_demand_points']:,} before merging), "
              f"{r['sites']} sites, {r['population']:,.0f} residents; matrix {r['matrix_entries']:,} entries "
              f"({r['matrix_mb']:.0f} MB, straight-line x {CIRCUITY} at {SPEED_MS * 3.6:g} km/h); instance built in "
              f"{r['build_s']:.1f} s")  # fmt: skip
        worst = max(x["seconds"] for x in records)
        ok = all(x["seconds"] <= 60 and math.isfinite(x["bound"]) for x in records)
        print(f"every model with a bound within 60 s: {'PASS' if ok else 'FAIL'} (slowest {worst:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
