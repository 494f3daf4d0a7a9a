"""Readers for the routing benchmark instances in ``../shared/benchmarks`` (pure numpy).

- ``orienteering/tsiligrides_problemK/*.txt``: Tsiligirides orienteering sets 1-3. Line 1 ``Tmax P`` (the travel
  budget and a vehicle count, always 1), then one node per line ``x y score``. The first node is the start and the
  second the end; travel is the unrounded Euclidean distance.
- ``orienteering/best_known.csv``: the best logged heuristic scores (column ``best_of_logged``), keyed by file.
- ``covering_tour/instances/*.ctp``: multi-vehicle covering tour problem (Hà et al. 2013). A name line, then the
  header ``|O| |C| |M| p q``; the upper triangle of edge costs ``i j cost`` over the V = M + O visitable vertices
  (mandatory vertices 0..M-1 first, depot 0); one coverage row per optional vertex (its index, then |C| 0/1 flags);
  a multi-cover vector (ignored); ``NODE_COORD_SECTION`` and ``EOF``.
- ``covering_tour/optima.csv``: the proven optima (``lower_bound`` = ``upper_bound``), keyed by instance.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OrienteeringInstance:
    """A single-vehicle orienteering instance: start at ``start``, end at ``end``, travel at most ``budget``.

    ``travel`` is the (n, n) unrounded Euclidean distance matrix; ``score`` the (n,) prize of each node.
    """

    name: str
    budget: float
    xy: np.ndarray
    score: np.ndarray
    travel: np.ndarray
    start: int = 0
    end: int = 1

    @property
    def n(self) -> int:
        return int(self.score.shape[0])


def read_orienteering(path: str | Path) -> OrienteeringInstance:
    """Read a Tsiligirides file (``Tmax P`` then ``x y score`` rows)."""
    path = Path(path)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows or len(rows[0]) < 1:
        raise ValueError(f"{path}: empty file, expected a 'Tmax P' header")
    bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) < 3]
    if bad:
        raise ValueError(f"{path}: line {bad[0]} needs 'x y score'")
    try:
        budget = float(rows[0][0])
        data = np.array([[float(v) for v in row[:3]] for row in rows[1:]], dtype=np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise ValueError(f"{path}: a non-numeric field ({exc})") from exc
    if data.shape[0] < 2:
        raise ValueError(f"{path}: needs at least a start and an end node, got {data.shape[0]} node(s)")
    xy = data[:, :2]
    travel = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    return OrienteeringInstance(name=path.stem, budget=budget, xy=xy, score=data[:, 2], travel=travel)


def read_best_known(path: str | Path) -> dict[str, float]:
    """Read ``best_known.csv``: relative file path (e.g. ``tsiligrides_problem1/x.txt``) -> ``best_of_logged``."""
    with Path(path).open(newline="") as fh:
        return {row["file"]: float(row["best_of_logged"]) for row in csv.DictReader(fh) if row["best_of_logged"]}


@dataclass(frozen=True)
class CoveringTourInstance:
    """An m-CTP instance on V = ``n_mandatory`` + ``n_optional`` visitable vertices (0 is the depot).

    ``cost`` is the (V, V) symmetric edge-cost matrix as given; ``cover`` the (V, C) boolean matrix of which
    customer each vertex covers (mandatory vertices' rows are all False: the file lists none); ``p`` the most
    vertices per route (depot excluded) and ``q`` the longest route.
    """

    name: str
    n_optional: int
    n_customers: int
    n_mandatory: int
    p: int
    q: float
    cost: np.ndarray
    cover: np.ndarray

    @property
    def n(self) -> int:
        return self.n_mandatory + self.n_optional


def read_covering_tour(path: str | Path) -> CoveringTourInstance:
    """Read a ``.ctp`` file (format in the module docstring)."""
    path = Path(path)
    lines = [line.split() for line in path.read_text().splitlines()]
    lines = [tokens for tokens in lines if tokens]
    if len(lines) < 2:
        raise ValueError(f"{path}: too short for a name line and a '|O| |C| |M| p q' header")
    head = 0 if len(lines[0]) == 5 else 1
    try:
        n_opt, n_cust, n_mand, p = (int(v) for v in lines[head][:4])
        q = float(lines[head][4])
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{path}: header must be '|O| |C| |M| p q', got {' '.join(lines[head])!r}") from exc
    n = n_opt + n_mand
    cost = np.zeros((n, n), dtype=np.float64)
    seen = np.zeros((n, n), dtype=bool)
    i = head + 1
    n_edges = n * (n - 1) // 2
    for k in range(n_edges):
        if i + k >= len(lines) or len(lines[i + k]) != 3:
            raise ValueError(f"{path}: expected {n_edges} edges 'i j cost', found {k}")
        a, b, c = lines[i + k]
        u, v = int(a), int(b)
        if not (0 <= u < n and 0 <= v < n) or u == v:
            raise ValueError(f"{path}: edge {u} {v} is outside the vertices 0..{n - 1}")
        cost[u, v] = cost[v, u] = float(c)
        seen[u, v] = seen[v, u] = True
    if not (seen | np.eye(n, dtype=bool)).all():
        raise ValueError(f"{path}: some vertex pairs have no edge cost")
    i += n_edges
    cover = np.zeros((n, n_cust), dtype=bool)
    for k in range(n_opt):
        row = lines[i + k] if i + k < len(lines) else []
        if len(row) != n_cust + 1:
            raise ValueError(f"{path}: coverage row {k + 1} needs an index and {n_cust} flags, got {len(row)} fields")
        vertex = int(row[0])
        if not n_mand <= vertex < n:
            raise ValueError(f"{path}: coverage row for vertex {vertex}, outside the optional {n_mand}..{n - 1}")
        cover[vertex] = np.array([int(v) for v in row[1:]], dtype=np.int64) > 0
    return CoveringTourInstance(
        name=path.stem, n_optional=n_opt, n_customers=n_cust, n_mandatory=n_mand, p=p, q=q, cost=cost, cover=cover
    )


def read_ctp_optima(path: str | Path) -> dict[str, float]:
    """Read the covering-tour ``optima.csv``: instance -> proven optimum (``upper_bound``)."""
    with Path(path).open(newline="") as fh:
        return {row["instance"]: float(row["upper_bound"]) for row in csv.DictReader(fh)}
