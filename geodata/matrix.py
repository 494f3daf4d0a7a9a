"""Travel-time matrices on road graphs with scipy's compiled Dijkstra.

The graph is converted once to a CSR matrix (and its transpose), kept in a weak cache keyed on the graph object,
so repeated calls pay only for the shortest-path kernel. Dijkstra runs from the smaller side: from the origins on
the graph, or from the destinations on the reversed graph. Results can be cached on disk under the graph's
content hash (``G.graph["branchnet_hash"]``, set by :func:`geodata.network.load_network`).

With a ``cutoff`` (a walk of 10 minutes, a 10-minute drive catchment) only a disc around each origin matters: a
path of cost at most ``cutoff`` is at most ``cutoff`` times the graph's fastest speed long, so it never leaves the
disc of that radius around its origin (straight lines are the shortest). :func:`local_costs` runs Dijkstra for a
few origins at a time on the subgraph of those discs, and returns only the reachable pairs: exact, and its time
and memory grow with the pairs within reach instead of origins x all nodes.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geodata import _cache


@dataclass(frozen=True)
class CompiledGraph:
    """A graph as CSR matrices for one edge weight; parallel edges keep their minimum weight."""

    index: dict[Hashable, int]
    csr: sp.csr_matrix
    csr_reversed: sp.csr_matrix
    fingerprint: tuple[int, int, str]

    def positions(self, nodes: Sequence[Hashable] | np.ndarray, side: str) -> np.ndarray:
        """Return the matrix row of each node, or raise naming the first unknown node."""
        index = self.index
        try:
            return np.fromiter((index[n] for n in np.asarray(nodes).tolist()), dtype=np.int64, count=len(nodes))
        except KeyError as exc:
            raise KeyError(f"{side} node {exc.args[0]!r} is not in the graph") from None


#: With a cutoff, :func:`local_costs` is used above this many origins x graph nodes, when a disc holds less than
#: :data:`LOCAL_SHARE` of the graph's nodes (a 10-minute drive in a small region covers most of it: no gain).
LOCAL_ABOVE = 2_000_000
LOCAL_SHARE = 0.05

# Weak cache: a compiled graph lives as long as its networkx graph. Adding or removing nodes or adjacencies
# changes its fingerprint and forces a rebuild; changing weights or parallel edges in place needs clear_compiled(G).
_COMPILED: weakref.WeakKeyDictionary[nx.Graph, dict[str, CompiledGraph]] = weakref.WeakKeyDictionary()


def _fingerprint(G: nx.Graph, weight: str) -> tuple[int, int, str]:
    # Node count and adjacent-pair count, summed at C speed: G.number_of_edges() walks every node in Python
    # and would cost more than the shortest paths on a large graph.
    return (len(G), sum(map(len, G._adj.values())), weight)


def compile_graph(G: nx.Graph, weight: str = "travel_time") -> CompiledGraph:
    """Convert ``G`` to CSR matrices of ``weight`` (cached per graph object).

    Raises
    ------
    ValueError
        When an edge lacks ``weight`` or has a negative or non-finite one.
    """
    per_graph = _COMPILED.setdefault(G, {})
    hit = per_graph.get(weight)
    if hit is not None and hit.fingerprint == _fingerprint(G, weight):
        return hit
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    m = G.number_of_edges()
    u = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int64)
    w = np.empty(m, dtype=np.float64)
    for k, (a, b, x) in enumerate(G.edges(data=weight)):
        if x is None:
            raise ValueError(f"edge ({a!r}, {b!r}) has no {weight!r} attribute")
        u[k], v[k], w[k] = index[a], index[b], x
    if m and (not np.isfinite(w).all() or w.min() < 0):
        raise ValueError(f"edge weights {weight!r} must be finite and non-negative")
    if not G.is_directed():
        u, v, w = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])
    # Keep the lightest of parallel edges: a plain COO->CSR conversion would sum them.
    order = np.lexsort((w, v, u))
    u, v, w = u[order], v[order], w[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v, w = u[first], v[first], w[first]
    n = len(nodes)
    csr = sp.csr_matrix((w, (u, v)), shape=(n, n))
    compiled = CompiledGraph(index, csr, csr.T.tocsr(), _fingerprint(G, weight))
    per_graph[weight] = compiled
    return compiled


def clear_compiled(G: nx.Graph) -> None:
    """Forget the CSR conversion of ``G`` (after changing its edge weights in place)."""
    _COMPILED.pop(G, None)


@dataclass(frozen=True)
class _Geometry:
    """A compiled graph's node coordinates (in its order), a tree over them and its fastest speed (length per
    unit of weight; ``inf`` when unknown: then nothing is local)."""

    xy: np.ndarray
    tree: cKDTree
    speed: float


_GEOMETRY: weakref.WeakKeyDictionary[nx.Graph, dict[str, _Geometry]] = weakref.WeakKeyDictionary()


def _geometry(G: nx.Graph, weight: str, cg: CompiledGraph) -> _Geometry | None:
    """Coordinates and the fastest speed of ``G`` for ``weight``, or None when its nodes have no coordinates."""
    per_graph = _GEOMETRY.setdefault(G, {})
    hit = per_graph.get(weight)
    if hit is not None and len(hit.xy) == len(cg.index):
        return hit
    try:
        xy = np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in cg.index], dtype=np.float64).reshape(-1, 2)
    except KeyError:
        return None
    if weight == "length":
        speed = 1.0
    else:
        speed = 0.0
        for _, _, data in G.edges(data=True):
            length, cost = data.get("length"), data.get(weight)
            if length is None or cost is None:
                speed = math.inf
                break
            if length > 0:
                speed = max(speed, length / cost) if cost > 0 else math.inf
    geometry = _Geometry(xy, cKDTree(xy), speed)
    per_graph[weight] = geometry
    return geometry


def _local_pays(G: nx.Graph, weight: str, cg: CompiledGraph, o_pos: np.ndarray, cutoff: float) -> bool:
    """Whether :func:`local_costs` beats Dijkstra on the whole graph: many origins, and small discs (sampled)."""
    if len(o_pos) * len(cg.index) <= LOCAL_ABOVE:
        return False
    geo = _geometry(G, weight, cg)
    if geo is None or not math.isfinite(cutoff * geo.speed):
        return False
    sample = o_pos[:: max(1, len(o_pos) // 32)]
    inside = geo.tree.query_ball_point(geo.xy[sample], r=cutoff * geo.speed, return_length=True)
    return bool(np.mean(inside) < LOCAL_SHARE * len(cg.index))


def local_costs(
    G: nx.Graph,
    origins: Sequence[Hashable] | np.ndarray,
    destinations: Sequence[Hashable] | np.ndarray,
    *,
    cutoff: float,
    weight: str = "travel_time",
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest-path costs of at most ``cutoff`` from origins to destinations, as the sparse triplets
    ``(origin index, destination index, cost)`` (module docstring: exact, on discs around the origins).

    Needs node coordinates ``x``, ``y`` in a metric CRS and an edge ``length`` beside ``weight``; without them it
    computes on the whole graph (same result, slower).
    """
    o = np.asarray(origins)
    d = np.asarray(destinations)
    if not cutoff >= 0:
        raise ValueError(f"cutoff must be a non-negative number, not {cutoff!r}")
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    if len(o) == 0 or len(d) == 0:
        return empty
    cg = compile_graph(G, weight)
    o_pos = cg.positions(o, "origin")
    d_pos = cg.positions(d, "destination")
    geo = _geometry(G, weight, cg)
    n = cg.csr.shape[0]
    radius = cutoff * geo.speed if geo is not None else math.inf
    # destinations grouped by graph node: a chunk looks up the destinations at the nodes of its discs
    d_order = np.argsort(d_pos, kind="stable")
    d_sorted = d_pos[d_order]
    rows, cols, costs = [], [], []
    if geo is not None and math.isfinite(radius):
        cell = max(radius, 1.0)
        gx, gy = np.floor(geo.xy[o_pos, 0] / cell), np.floor(geo.xy[o_pos, 1] / cell)
        o_order = np.lexsort((gx, gy))  # neighbouring origins together: their discs overlap
    else:
        o_order = np.arange(len(o))
    local = np.full(n, -1, dtype=np.int64)
    for lo in range(0, len(o), chunk):
        block = o_order[lo : lo + chunk]
        src = o_pos[block]
        if geo is not None and math.isfinite(radius):
            near = geo.tree.query_ball_point(geo.xy[src], r=radius * (1 + 1e-9) + 1e-6)
            sub = np.unique(np.concatenate([src, *[np.asarray(x, dtype=np.int64) for x in near]]))
        else:
            sub = np.arange(n)
        local[sub] = np.arange(len(sub))
        dist = dijkstra(cg.csr[sub][:, sub], directed=True, indices=local[src], limit=float(cutoff))
        start, stop = np.searchsorted(d_sorted, sub, side="left"), np.searchsorted(d_sorted, sub, side="right")
        has = stop > start
        if has.any():
            counts = (stop - start)[has]
            at = np.repeat(np.flatnonzero(has), counts)  # column of dist (subgraph node) per destination
            first = np.repeat(start[has] - np.cumsum(counts) + counts, counts)  # the ranges start:stop, joined
            which = d_order[first + np.arange(int(counts.sum()))]
            sub_costs = dist[:, at]
            r, c = np.nonzero(np.isfinite(sub_costs) & (sub_costs <= cutoff))
            rows.append(block[r])
            cols.append(which[c])
            costs.append(sub_costs[r, c])
        local[sub] = -1
    if not rows:
        return empty
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(costs)


def _digest(a: np.ndarray) -> str:
    if a.dtype.kind in "iuf":
        return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.dtype).encode()).hexdigest()
    return hashlib.sha256(repr(a.tolist()).encode()).hexdigest()


def travel_time_matrix(
    G: nx.Graph,
    origins: Sequence[Hashable] | np.ndarray,
    destinations: Sequence[Hashable] | np.ndarray,
    *,
    weight: str = "travel_time",
    cutoff: float | None = None,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """Return shortest-path costs from each origin node to each destination node.

    Parameters
    ----------
    G
        A networkx graph (directed or not); osmnx graphs carry ``travel_time`` in seconds and ``length`` in m.
    origins, destinations
        Node ids of ``G``; repeats are allowed.
    weight
        Edge attribute to sum.
    cutoff
        Paths longer than this are reported as ``np.inf`` (a coverage radius); ``None`` for no limit.
    cache_dir
        Directory for an on-disk cache of results. Used only when ``G.graph["branchnet_hash"]`` identifies the
        graph's content.

    Returns
    -------
    numpy.ndarray
        Float64 array of shape ``(len(origins), len(destinations))``, ``np.inf`` where unreachable.
    """
    o = np.asarray(origins)
    d = np.asarray(destinations)
    if o.ndim != 1 or d.ndim != 1:
        raise ValueError("origins and destinations must be one-dimensional sequences of node ids")
    if cutoff is not None and not cutoff >= 0:
        raise ValueError(f"cutoff must be a non-negative number, not {cutoff!r}")
    graph_hash = G.graph.get("branchnet_hash")
    cache_file = None
    if cache_dir is not None and graph_hash:
        key = _cache.params_digest(graph_hash, weight, cutoff, _digest(o), _digest(d), "matrix")
        cache_file = Path(cache_dir) / "matrices" / f"{key}.npy"
        if cache_file.is_file():
            return np.asarray(np.load(cache_file), dtype=np.float64)
    if len(o) == 0 or len(d) == 0:
        return np.zeros((len(o), len(d)))

    cg = compile_graph(G, weight)
    o_pos = cg.positions(o, "origin")
    d_pos = cg.positions(d, "destination")
    if cutoff is not None and _local_pays(G, weight, cg, o_pos, float(cutoff)):  # only the discs around the origins
        r, c, v = local_costs(G, o, d, cutoff=float(cutoff), weight=weight)
        result = np.full((len(o), len(d)), np.inf)
        result[r, c] = v
        if cache_file is not None:
            with _cache.atomic_path(cache_file) as tmp, open(tmp, "wb") as f:
                np.save(f, result)
        return result
    o_uniq, o_inv = np.unique(o_pos, return_inverse=True)
    d_uniq, d_inv = np.unique(d_pos, return_inverse=True)
    limit = np.inf if cutoff is None else float(cutoff)
    if len(o_uniq) <= len(d_uniq):
        dist = dijkstra(cg.csr, directed=True, indices=o_uniq, limit=limit)
        result = dist[:, d_uniq][o_inv][:, d_inv]
    else:
        # Dijkstra on the reversed graph from each destination gives costs *to* it from every node.
        dist = dijkstra(cg.csr_reversed, directed=True, indices=d_uniq, limit=limit)
        result = dist[:, o_uniq].T[o_inv][:, d_inv]
    result = np.ascontiguousarray(result, dtype=np.float64)
    if cache_file is not None:
        with _cache.atomic_path(cache_file) as tmp, open(tmp, "wb") as f:
            np.save(f, result)
    return result
