"""branchnet's travel times against Valhalla's, every demand point to its nearest branch, in the same run.

For Rutland (the shared real case) and the synthetic demo region, each demand point's drive to every branch is
timed by branchnet (its drive graph, speed model and junction costs) and by Valhalla (an established open-source
router, run from a Python 3.12 side venv on tiles built from the same OSM file: :mod:`benchmarks.valhalla`). Both
start and end at the road nodes branchnet snapped to, so the comparison is of the drive; door-to-door adds the same
walk legs to both. Reported, population-weighted:

- the share of residents within 5, 10, 15 and 20 minutes of their nearest branch, by each router;
- the per-point ratio branchnet / Valhalla of the time to the nearest branch (median, quartiles, share outside
  +-20%), drive-only and door-to-door;
- the same ratio by the road class that carries most of branchnet's route.

Targets (issue 14): median ratio within 0.95-1.05 both ways, at least 85% of points within +-20%, and the share
within 10 minutes within 3 percentage points of Valhalla's.

Usage: ``python -m benchmarks.travel_times [--region rutland,demo] [--root var/valhalla]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse.csgraph import dijkstra

from benchmarks import valhalla
from benchmarks._common import REPO, demo_sources, emit, rutland_sources, shared_dir, verdict
from geodata.region import RegionData

MINUTES = (5, 10, 15, 20)


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``x`` weighted by ``w`` (the smallest x whose cumulative weight reaches q)."""
    order = np.argsort(x)
    cum = np.cumsum(w[order]) / w.sum()
    return float(x[order][np.searchsorted(cum, q)])


def route_classes(region: RegionData, nearest: np.ndarray) -> list[str]:
    """The road class carrying most of each demand point's route (by time) to its nearest branch, on branchnet's
    graph without junction costs (the classes, not the times, are wanted here)."""
    G = region.drive
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    best: dict[tuple[int, int], tuple[float, str]] = {}
    for u, v, d in G.edges(data=True):
        key = (index[u], index[v])
        if key not in best or d["travel_time"] < best[key][0]:
            best[key] = (float(d["travel_time"]), str(d.get("highway")))
    import scipy.sparse as sp

    keys = np.array(list(best), dtype=np.int64).reshape(-1, 2)
    weights = np.array([t for t, _ in best.values()])
    csr = sp.csr_matrix((weights, (keys[:, 1], keys[:, 0])), shape=(len(nodes), len(nodes)))  # reversed
    branch_pos = np.array([index[n] for n in region.branches["node"].tolist()])
    _, pred = dijkstra(csr, indices=branch_pos, return_predecessors=True)
    out = []
    for i, node in enumerate(region.demand["node"].tolist()):
        j, at = int(nearest[i]), index[node]
        share: dict[str, float] = {}
        while pred[j, at] >= 0:
            nxt = int(pred[j, at])
            t, hwy = best[(at, nxt)]
            share[hwy] = share.get(hwy, 0.0) + t
            at = nxt
        out.append(max(share, key=lambda k: share[k]) if share else "none")
    return out


def summarise(ratio: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    return {
        "median": weighted_quantile(ratio, weight, 0.5),
        "q1": weighted_quantile(ratio, weight, 0.25),
        "q3": weighted_quantile(ratio, weight, 0.75),
        "outside_20pct": float(np.mean(np.abs(ratio - 1) > 0.2)),
    }


def compare(name: str, region: RegionData, pbf: Path, root: Path) -> bool:
    """Time every demand point to every branch both ways; print and emit the comparison; return the verdict."""
    drive = region.drive
    lonlat = {n: (d["lon"], d["lat"]) for n, d in drive.nodes(data=True)}
    demand, branches = region.demand, region.branches
    src = np.array([lonlat[n] for n in demand["node"].tolist()])
    dst = np.array([lonlat[n] for n in branches["node"].tolist()])
    t0 = time.perf_counter()
    theirs = valhalla.matrix(pbf, src, dst, root)
    t_valhalla = time.perf_counter() - t0
    walk = demand["snap_s"].to_numpy()[:, None] + branches["snap_s"].to_numpy()[None, :]
    ours_door = region.time_s
    ours = ours_door - walk
    reach = np.isfinite(theirs).any(axis=1) & np.isfinite(ours).any(axis=1)
    weight = demand["population"].to_numpy(dtype=float)
    dropped = int((~reach).sum())
    ours, theirs, walk, ours_door, weight = ours[reach], theirs[reach], walk[reach], ours_door[reach], weight[reach]
    theirs_door = theirs + walk
    near_ours, near_theirs = ours_door.min(axis=1), theirs_door.min(axis=1)
    drive_ours, drive_theirs = ours.min(axis=1), theirs.min(axis=1)
    moving = drive_theirs > 0
    drive_ratio = np.where(moving, drive_ours / np.where(moving, drive_theirs, 1.0), 1.0)
    door_ratio = near_ours / near_theirs
    total = weight.sum()
    within = {
        m: (float(weight[near_ours <= 60 * m].sum() / total), float(weight[near_theirs <= 60 * m].sum() / total))
        for m in MINUTES
    }
    drive_stats, door_stats = summarise(drive_ratio, weight), summarise(door_ratio, weight)
    classes = np.array(route_classes(_subset(region, reach), ours_door.argmin(axis=1)))
    by_class = {}
    for c in sorted(set(classes.tolist())):
        sel = classes == c
        by_class[c] = {"points": int(sel.sum()), **summarise(drive_ratio[sel], weight[sel])}
    gap10 = abs(within[10][0] - within[10][1])
    ok = (
        all(0.95 <= s["median"] <= 1.05 for s in (drive_stats, door_stats))
        and door_stats["outside_20pct"] <= 0.15
        and drive_stats["outside_20pct"] <= 0.15
        and gap10 <= 0.03
    )
    emit({"bench": "travel_times", "region": name, "points": int(reach.sum()), "unreached_points": dropped,
          "valhalla_s": t_valhalla, "drive": drive_stats, "door": door_stats,
          "within_minutes": {str(m): {"branchnet": a, "valhalla": b} for m, (a, b) in within.items()},
          "by_route_class": by_class, "ok": ok})  # fmt: skip
    print(f"  {name}: {int(reach.sum()):,} demand points ({dropped} unreachable by one router), "
          f"{len(branches)} branches; Valhalla matrix {t_valhalla:.1f} s")  # fmt: skip
    for label, s in (("drive-only", drive_stats), ("door-to-door", door_stats)):
        median_ok, spread_ok = 0.95 <= s["median"] <= 1.05, s["outside_20pct"] <= 0.15
        print(f"    {label:13s} ratio median {s['median']:.3f} (target 0.95-1.05: {verdict(median_ok)}), "
              f"quartiles {s['q1']:.3f}-{s['q3']:.3f}, outside +-20%: {s['outside_20pct']:.1%} "
              f"(target <= 15%: {verdict(spread_ok)})")  # fmt: skip
    print("    share within   " + "  ".join(f"{m:>2} min" for m in MINUTES))
    print("    branchnet      " + "  ".join(f"{a:6.1%}" for a, _ in within.values()))
    print("    Valhalla       " + "  ".join(f"{b:6.1%}" for _, b in within.values()))
    print(f"    10-minute gap {gap10 * 100:.1f} pp (target <= 3: {verdict(gap10 <= 0.03)})")
    for c, s in by_class.items():
        print(f"    route mostly {c:14s} {s['points']:5d} points, drive ratio median {s['median']:.3f} "
              f"({s['q1']:.3f}-{s['q3']:.3f}), outside +-20% {s['outside_20pct']:.1%}")  # fmt: skip
    return ok


def _subset(region: RegionData, keep: np.ndarray) -> RegionData:
    from dataclasses import replace

    return replace(region, demand=region.demand[keep].reset_index(drop=True))


def rutland(cache: Path) -> tuple[RegionData, Path] | None:
    from geodata.region import prepare_region

    shared = shared_dir()
    if shared is None:
        print("  rutland: skipped, ../shared is absent")
        return None
    sources = rutland_sources(shared)
    return prepare_region("rutland", sources, cache_dir=cache), Path(sources.osm)


def demo(cache: Path, out: Path) -> tuple[RegionData, Path]:
    """The synthetic demo region (seed 42), with its OSM XML converted to PBF for Valhalla."""
    import osmium

    from geodata.region import prepare_region

    sources = demo_sources(out / "demo")
    pbf = out / "demo.osm.pbf"
    if not pbf.exists():
        with osmium.SimpleWriter(str(pbf)) as writer:
            for obj in osmium.FileProcessor(sources.osm):
                writer.add(obj)
    return prepare_region("synthetic-demo-42", sources, cache_dir=cache), pbf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region", default="rutland,demo", help="comma-separated: rutland, demo")
    parser.add_argument("--root", type=Path, default=REPO / "var" / "valhalla", help="side venv and tile cache")
    args = parser.parse_args(argv)
    print("travel times: branchnet against Valhalla")
    ok = True
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = Path(tmp)
        cases: list[tuple[str, Any]] = []
        for name in args.region.split(","):
            if name == "rutland":
                cases.append(("rutland", lambda: rutland(base / "cache")))
            elif name == "demo":
                cases.append(("demo", lambda: demo(base / "cache", args.root / "demo")))
            else:
                parser.error(f"unknown region {name!r}")
        for name, make in cases:
            case = make()
            if case is not None:
                ok &= compare(name, case[0], case[1], args.root)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
