"""travel_time_matrix against a networkx Dijkstra loop and a bare scipy kernel, measured in the same run.

Both graphs carry the car profile's junction and turn costs, so every way runs on the same edge-expanded graph
(:mod:`geodata.turns`): networkx on a DiGraph of it, scipy's single-threaded ``dijkstra`` on its CSR matrix, and
``travel_time_matrix`` with its parallel many-to-many search (:mod:`geodata._dijkstra`).

Targets (issues 2 and 14): >= 15x faster than networkx, <= 0.8x the bare single-threaded kernel once the graph is
loaded, results equal to networkx's to 1e-6 s, and a repeated identical call served from the disk cache in <= 5%
of the first call.

Usage: ``python -m benchmarks.matrix [--nodes 120000] [--origins 2000] [--sites 60] [--no-rutland]``
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra

from benchmarks._common import emit, shared_dir, timed, verdict
from geodata._dijkstra import threads
from geodata.matrix import clear_compiled, compile_graph, travel_time_matrix


def networkx_loop(G: nx.MultiDiGraph, origins: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """The best plain networkx loop: Dijkstra from each site on the reversed graph (the smaller side); on the
    edge-expanded graph when ``G`` has turn costs, from each site's end row to each origin's start row."""
    cg = compile_graph(G)
    R = nx.from_scipy_sparse_array(cg.csr_reversed, create_using=nx.DiGraph, edge_attribute="travel_time")
    rows_o = cg.source_row[cg.positions(origins, "origin")].tolist()
    rows_s = cg.target_row[cg.positions(sites, "site")].tolist()
    out = np.full((len(origins), len(sites)), np.inf)
    for j, s in enumerate(rows_s):
        dist = nx.single_source_dijkstra_path_length(R, s, weight="travel_time")
        out[:, j] = [dist.get(o, np.inf) for o in rows_o]
    return out


def bench(name: str, G: nx.MultiDiGraph, origins: np.ndarray, sites: np.ndarray, *, nx_sites: int | None) -> bool:
    """Time the four ways on one graph; print a JSON line and a verdict; return whether targets were met."""
    clear_compiled(G)
    t_first, first = timed(lambda: travel_time_matrix(G, origins, sites))
    cg = compile_graph(G)
    site_pos = np.unique(cg.target_row[cg.positions(sites, "site")])
    # interleave the two so that drift in machine load hits both alike; compare medians
    warm_times, bare_times = [], []
    for _ in range(7):
        t, warm = timed(lambda: travel_time_matrix(G, origins, sites))
        warm_times.append(t)
        bare_times.append(timed(lambda: dijkstra(cg.csr_reversed, directed=True, indices=site_pos))[0])
    t_warm, t_bare = float(np.median(warm_times)), float(np.median(bare_times))
    # networkx on a subset of sites when the full loop would take minutes; the ratio is per site
    k = len(sites) if nx_sites is None else min(nx_sites, len(sites))
    t_nx, ref = timed(lambda: networkx_loop(G, origins, sites[:k]))
    t_nx_full = t_nx * len(sites) / k
    assert np.allclose(np.where(np.isinf(ref), -1, ref), np.where(np.isinf(warm[:, :k]), -1, warm[:, :k]), atol=1e-6)
    with tempfile.TemporaryDirectory() as cache:
        G.graph.setdefault("branchnet_hash", f"bench-{name}")
        clear_compiled(G)
        t_cold_cache, _ = timed(lambda: travel_time_matrix(G, origins, sites, cache_dir=cache))
        t_hit, hit = timed(lambda: travel_time_matrix(G, origins, sites, cache_dir=cache), repeat=5)
        assert np.array_equal(hit, first)
    speedup, overhead, cache_ratio = t_nx_full / t_warm, t_warm / t_bare, t_hit / t_cold_cache
    ok = speedup >= 15 and overhead <= 0.8 and cache_ratio <= 0.05
    emit(
        {
            "bench": "matrix",
            "graph": name,
            "nodes": G.number_of_nodes(),
            "edges": G.number_of_edges(),
            "turn_costs": cg.turn_costs,
            "expanded_rows": cg.csr.shape[0],
            "threads": threads(),
            "origins": len(origins),
            "sites": len(sites),
            "first_call_s": t_first,
            "warm_call_s": t_warm,
            "bare_kernel_s": t_bare,
            "networkx_s": t_nx_full,
            "networkx_sites_timed": k,
            "cache_hit_s": t_hit,
            "speedup_vs_networkx": speedup,
            "ratio_to_bare_kernel": overhead,
            "cache_hit_ratio": cache_ratio,
        }
    )
    print(
        f"  {name}: {G.number_of_nodes():,} nodes ({cg.csr.shape[0]:,} rows edge-expanded with junction costs), "
        f"{len(origins):,} x {len(sites)}, {threads()} threads: first call {t_first:.3f} s "
        f"(with graph conversion), warm {t_warm:.3f} s, bare kernel {t_bare:.3f} s, networkx {t_nx_full:.2f} s"
        f"{'' if k == len(sites) else f' (timed on {k} sites, scaled)'}, cache hit {t_hit * 1000:.1f} ms\n"
        f"    {speedup:.1f}x networkx (target >= 15: {verdict(speedup >= 15)}); "
        f"{overhead:.2f}x bare single-threaded kernel (target <= 0.8: {verdict(overhead <= 0.8)}); "
        f"cache hit {cache_ratio:.1%} of first (target <= 5%: {verdict(cache_ratio <= 0.05)})",
        flush=True,
    )
    return ok


def rutland_case(n_origins: int, n_sites: int, seed: int) -> tuple[nx.MultiDiGraph, np.ndarray, np.ndarray] | None:
    shared = shared_dir()
    if shared is None:
        print("  rutland: skipped, ../shared is absent")
        return None
    from geodata.network import load_network

    G = load_network(shared / "data" / "rutland" / "rutland-latest.osm.pbf", mode="drive")
    rng = np.random.default_rng(seed)
    nodes = np.fromiter(G.nodes, dtype=np.int64)
    return G, rng.choice(nodes, n_origins, replace=False), rng.choice(nodes, n_sites, replace=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=120_000)
    parser.add_argument("--origins", type=int, default=2000)
    parser.add_argument("--sites", type=int, default=60)
    parser.add_argument(
        "--networkx-sites",
        type=int,
        default=20,
        help="sites timed with networkx on the big graph (scaled to all sites)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-rutland", action="store_true")
    args = parser.parse_args(argv)
    print("travel_time_matrix benchmark")
    ok = True
    if not args.no_rutland:
        case = rutland_case(args.origins, args.sites, args.seed)
        if case is not None:
            ok &= bench("rutland", *case, nx_sites=None)
    from geodata.synthetic import synthetic_road_graph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = synthetic_road_graph(args.nodes, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    nodes = np.fromiter(G.nodes, dtype=np.int64)
    ok &= bench(
        "synthetic",
        G,
        rng.choice(nodes, args.origins, replace=False),
        rng.choice(nodes, args.sites, replace=False),
        nx_sites=args.networkx_sites,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
