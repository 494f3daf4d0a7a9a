"""A many-to-many Dijkstra on a CSR graph, compiled with numba and run on every core.

scipy's ``dijkstra`` holds the GIL and uses one core; here each source's search is a compiled function that
releases it (``nogil``), so a thread pool runs blocks of sources side by side in one process, sharing the graph's
arrays without copying them. Each search uses a binary heap with lazy deletion, and it stops once every wanted
target is settled or the next label exceeds the limit, so it does less work than a search of the whole graph.

The costs are exact shortest-path costs (sums of float64 weights along a shortest path), equal to scipy's and
networkx's to rounding.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.sparse as sp


@numba.njit(nogil=True, cache=True)
def _search(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    source: int,
    limit: float,
    is_target: np.ndarray,
    n_targets: int,
    dist: np.ndarray,
    touched: np.ndarray,
    heap_key: np.ndarray,
    heap_node: np.ndarray,
) -> int:
    """One search from ``source``: fill ``dist`` (all ``inf`` on entry); return how many entries were touched
    (listed in ``touched``, for the caller to reset)."""
    n_touched = 0
    dist[source] = 0.0
    touched[n_touched] = source
    n_touched += 1
    size = 1
    heap_key[0] = 0.0
    heap_node[0] = source
    settled_targets = 0
    while size > 0:
        d = heap_key[0]
        u = heap_node[0]
        # pop: move the last entry to the root and sift it down
        size -= 1
        if size > 0:
            key = heap_key[size]
            node = heap_node[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and heap_key[c + 1] < heap_key[c]:
                    c += 1
                if heap_key[c] < key:
                    heap_key[i] = heap_key[c]
                    heap_node[i] = heap_node[c]
                    i = c
                else:
                    break
            heap_key[i] = key
            heap_node[i] = node
        if d > dist[u]:
            continue  # a stale entry: u was reached more cheaply since
        if d > limit:
            break
        if is_target[u]:
            settled_targets += 1
            if settled_targets == n_targets:
                break
        for k in range(indptr[u], indptr[u + 1]):
            v = indices[k]
            nd = d + weights[k]
            if nd < dist[v]:
                if dist[v] == np.inf:
                    touched[n_touched] = v
                    n_touched += 1
                dist[v] = nd
                # push and sift up
                i = size
                size += 1
                while i > 0:
                    p = (i - 1) // 2
                    if heap_key[p] > nd:
                        heap_key[i] = heap_key[p]
                        heap_node[i] = heap_node[p]
                        i = p
                    else:
                        break
                heap_key[i] = nd
                heap_node[i] = v
    return n_touched


@numba.njit(nogil=True, cache=True)
def _block(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    is_target: np.ndarray,
    n_targets: int,
    limit: float,
    out: np.ndarray,
) -> None:
    """Searches from ``sources``, writing the costs to ``targets`` into the rows of ``out``."""
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    touched = np.empty(n, dtype=np.int64)
    capacity = len(indices) + 1  # each relaxation pushes at most once
    heap_key = np.empty(capacity)
    heap_node = np.empty(capacity, dtype=np.int64)
    for r in range(len(sources)):
        n_touched = _search(
            indptr, indices, weights, sources[r], limit, is_target, n_targets, dist, touched, heap_key, heap_node
        )
        for j in range(len(targets)):
            x = dist[targets[j]]
            out[r, j] = x if x <= limit else np.inf
        for k in range(n_touched):
            dist[touched[k]] = np.inf


def threads() -> int:
    """Threads for the searches: the cores this process may use (``BRANCHNET_THREADS`` overrides)."""
    env = os.environ.get("BRANCHNET_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def many_to_many(
    csr: sp.csr_matrix,
    sources: np.ndarray,
    targets: np.ndarray,
    *,
    limit: float = np.inf,
    n_threads: int | None = None,
) -> np.ndarray:
    """Return the ``(len(sources), len(targets))`` shortest-path costs on ``csr`` (``inf`` beyond ``limit`` or
    where unreachable), searching from the sources on ``n_threads`` threads (default :func:`threads`)."""
    sources = np.ascontiguousarray(sources, dtype=np.int64)
    targets = np.ascontiguousarray(targets, dtype=np.int64)
    out = np.full((len(sources), len(targets)), np.inf)
    if len(sources) == 0 or len(targets) == 0:
        return out
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int64)
    weights = np.ascontiguousarray(csr.data, dtype=np.float64)
    is_target = np.zeros(csr.shape[0], dtype=np.bool_)
    is_target[targets] = True
    n_targets = int(is_target.sum())
    workers = min(n_threads or threads(), len(sources))
    if workers <= 1:
        _block(indptr, indices, weights, sources, targets, is_target, n_targets, float(limit), out)
        return out
    # interleaved blocks: neighbouring sources (often alike in cost) spread over the threads
    blocks = [np.arange(w, len(sources), workers) for w in range(workers)]
    parts = [np.empty((len(b), len(targets))) for b in blocks]

    def run(k: int) -> None:
        _block(indptr, indices, weights, sources[blocks[k]], targets, is_target, n_targets, float(limit), parts[k])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(workers)))
    for b, part in zip(blocks, parts, strict=True):
        out[b] = part
    return out
