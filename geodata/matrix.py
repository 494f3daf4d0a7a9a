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
from geodata._dijkstra import many_to_many
from geodata.turns import CONTROLS, ROAD_RANK, TurnCosts, concat_ranges, expand


@dataclass(frozen=True)
class CompiledGraph:
    """A graph as CSR matrices for one edge weight; parallel edges keep their minimum weight.

    With turn costs (``G.graph["turn_costs"]``, weight ``travel_time``) the matrices are those of the
    edge-expanded graph (:mod:`geodata.turns`): a trip from node ``i`` starts at row ``source_row[i]`` and one to
    node ``j`` ends at row ``target_row[j]``. Without, both are the identity and rows are nodes.
    """

    index: dict[Hashable, int]
    csr: sp.csr_matrix
    csr_reversed: sp.csr_matrix
    fingerprint: tuple[int, int, str]
    #: Row of each node's start and end of a trip, and the node each row stands at.
    source_row: np.ndarray
    target_row: np.ndarray
    row_node: np.ndarray
    turn_costs: bool = False

    def positions(self, nodes: Sequence[Hashable] | np.ndarray, side: str) -> np.ndarray:
        """Return the position of each node (in ``index``), or raise naming the first unknown node."""
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


def turn_costs_of(G: nx.Graph, weight: str) -> TurnCosts | None:
    """The junction and turn costs that apply to ``weight`` on ``G``: those of ``G.graph["turn_costs"]`` for
    ``travel_time`` on a directed graph, else none."""
    spec = G.graph.get("turn_costs")
    if not spec or weight != "travel_time" or not G.is_directed():
        return None
    return TurnCosts(**spec)


def compile_graph(G: nx.Graph, weight: str = "travel_time") -> CompiledGraph:
    """Convert ``G`` to CSR matrices of ``weight`` (cached per graph object), edge-expanded when turn costs apply.

    Raises
    ------
    ValueError
        When an edge lacks ``weight`` or has a negative or non-finite one.
    """
    per_graph = _COMPILED.setdefault(G, {})
    hit = per_graph.get(weight)
    if hit is not None and hit.fingerprint == _fingerprint(G, weight):
        return hit
    turns = turn_costs_of(G, weight)
    nodes = list(G.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    m = G.number_of_edges()
    u = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int64)
    w = np.empty(m, dtype=np.float64)
    rank = np.zeros(m, dtype=np.int64)
    roundabout = np.zeros(m, dtype=bool)
    if turns is None:
        for k, (a, b, x) in enumerate(G.edges(data=weight)):
            if x is None:
                raise ValueError(f"edge ({a!r}, {b!r}) has no {weight!r} attribute")
            u[k], v[k], w[k] = index[a], index[b], x
    else:
        for k, (a, b, d) in enumerate(G.edges(data=True)):
            x = d.get(weight)
            if x is None:
                raise ValueError(f"edge ({a!r}, {b!r}) has no {weight!r} attribute")
            u[k], v[k], w[k] = index[a], index[b], x
            rank[k] = ROAD_RANK.get(str(d.get("highway")), 0)
            roundabout[k] = d.get("junction") in ("roundabout", "circular")
    if m and (not np.isfinite(w).all() or w.min() < 0):
        raise ValueError(f"edge weights {weight!r} must be finite and non-negative")
    if not G.is_directed():
        u, v, w = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([w, w])
    # Keep the lightest of parallel edges: a plain COO->CSR conversion would sum them.
    order = np.lexsort((w, v, u))
    u, v, w, order = u[order], v[order], w[order], order
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v, w = u[first], v[first], w[first]
    n = len(nodes)
    identity = np.arange(n, dtype=np.int64)
    if turns is None:
        csr = sp.csr_matrix((w, (u, v)), shape=(n, n))
        source_row = target_row = row_node = identity
    else:
        kept = order[first]
        control = np.zeros(n, dtype=np.int64)
        for node, tag in G.nodes(data="control"):
            if tag in CONTROLS:
                control[index[node]] = 1 + CONTROLS.index(tag)
        xy = np.array([(d.get("x", 0.0), d.get("y", 0.0)) for _, d in G.nodes(data=True)], dtype=np.float64)
        xy = xy.reshape(-1, 2)
        if str(G.graph.get("crs", "")).upper() in ("EPSG:4326", "WGS84"):  # headings in degrees: scale x by cos(lat)
            xy = xy * np.array([np.cos(np.radians(np.mean(xy[:, 1]) if n else 0.0)), 1.0])
        ex = expand(turns, n=n, tail=u, head=v, weight=w, xy=xy, rank=rank[kept], roundabout=roundabout[kept],
                    control=control)  # fmt: skip
        csr = ex.csr
        source_row, target_row, row_node = ex.source_rows(identity), ex.target_rows(identity), ex.row_node
    compiled = CompiledGraph(
        index, csr, csr.T.tocsr(), _fingerprint(G, weight), source_row, target_row, row_node, turns is not None
    )
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
    d_rows = cg.target_row[cg.positions(d, "destination")]
    geo = _geometry(G, weight, cg)
    n_rows = cg.csr.shape[0]
    radius = cutoff * geo.speed if geo is not None else math.inf
    # destinations grouped by row: a chunk looks up the destinations at the rows of its discs
    d_order = np.argsort(d_rows, kind="stable")
    d_sorted = d_rows[d_order]
    # the rows standing at each node (one per node without turn costs; its in-edges and ends with them)
    by_node = np.argsort(cg.row_node, kind="stable")
    node_ptr = np.searchsorted(cg.row_node[by_node], np.arange(len(cg.index) + 1))
    rows, cols, costs = [], [], []
    if geo is not None and math.isfinite(radius):
        cell = max(radius, 1.0)
        gx, gy = np.floor(geo.xy[o_pos, 0] / cell), np.floor(geo.xy[o_pos, 1] / cell)
        o_order = np.lexsort((gx, gy))  # neighbouring origins together: their discs overlap
    else:
        o_order = np.arange(len(o))
    local = np.full(n_rows, -1, dtype=np.int64)
    for lo in range(0, len(o), chunk):
        block = o_order[lo : lo + chunk]
        src = cg.source_row[o_pos[block]]
        if geo is not None and math.isfinite(radius):
            near = geo.tree.query_ball_point(geo.xy[o_pos[block]], r=radius * (1 + 1e-9) + 1e-6)
            at = np.unique(np.concatenate([o_pos[block], *[np.asarray(x, dtype=np.int64) for x in near]]))
            sub = np.sort(by_node[concat_ranges(node_ptr[at], node_ptr[at + 1] - node_ptr[at])])
        else:
            sub = np.arange(n_rows)
        local[sub] = np.arange(len(sub))
        dist = dijkstra(cg.csr[sub][:, sub], directed=True, indices=local[src], limit=float(cutoff))
        start, stop = np.searchsorted(d_sorted, sub, side="left"), np.searchsorted(d_sorted, sub, side="right")
        has = stop > start
        if has.any():
            counts = (stop - start)[has]
            col = np.repeat(np.flatnonzero(has), counts)  # column of dist (subgraph row) per destination
            which = d_order[concat_ranges(start[has], counts)]
            sub_costs = dist[:, col]
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
    o_uniq, o_inv = np.unique(cg.source_row[o_pos], return_inverse=True)
    d_uniq, d_inv = np.unique(cg.target_row[d_pos], return_inverse=True)
    limit = np.inf if cutoff is None else float(cutoff)
    if len(o_uniq) <= len(d_uniq):
        result = many_to_many(cg.csr, o_uniq, d_uniq, limit=limit)[o_inv][:, d_inv]
    else:
        # searches on the reversed graph from each destination give costs *to* it from every node
        result = many_to_many(cg.csr_reversed, d_uniq, o_uniq, limit=limit).T[o_inv][:, d_inv]
    result = np.ascontiguousarray(result, dtype=np.float64)
    if cache_file is not None:
        with _cache.atomic_path(cache_file) as tmp, open(tmp, "wb") as f:
            np.save(f, result)
    return result
