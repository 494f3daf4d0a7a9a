"""Travel-time matrices on road graphs with scipy's compiled Dijkstra.

The graph is converted once to a CSR matrix (and its transpose), kept in a weak cache keyed on the graph object,
so repeated calls pay only for the shortest-path kernel. Dijkstra runs from the smaller side: from the origins on
the graph, or from the destinations on the reversed graph. Results can be cached on disk under the graph's
content hash (``G.graph["branchnet_hash"]``, set by :func:`geodata.network.load_network`).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

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
