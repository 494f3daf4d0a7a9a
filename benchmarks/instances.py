"""Readers for the benchmark instances in ``../shared/benchmarks`` (pure numpy and scipy).

- ``pmedian/pmedN.txt``: uncapacitated p-median (Beasley 1985). Line 1 ``n e p``, then ``e`` undirected edges
  ``i j c`` with 1-based vertices and integer costs; when an edge repeats, its last occurrence counts. Distances are
  shortest paths in that graph, and every vertex is a client of unit demand and a candidate site.
- ``facility_location/capNN.txt``: warehouse location (Beasley 1988). ``m n``, then ``m`` pairs ``capacity
  fixed_cost``, then per customer its demand followed by ``m`` allocation costs, each the cost of serving the
  customer's whole demand from that warehouse. Numbers may wrap across lines, so the whole file is tokenised.
- ``cvrp/A/*.vrp``: CVRPLIB capacitated VRP instances in TSPLIB format (``NAME``, ``DIMENSION``, ``CAPACITY``,
  ``EDGE_WEIGHT_TYPE : EUC_2D``, then ``NODE_COORD_SECTION``, ``DEMAND_SECTION`` and ``DEPOT_SECTION``). Distances
  are Euclidean, rounded to the nearest integer (TSPLIB's ``nint``).
- ``optima.csv`` beside them: the published values.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import csgraph_from_dense, shortest_path


@dataclass(frozen=True)
class PMedianInstance:
    """An OR-Library p-median instance: choose ``p`` of the ``n`` vertices to minimise the total distance.

    ``dist`` is the (n, n) matrix of shortest-path distances (symmetric, zero diagonal).
    """

    name: str
    n: int
    p: int
    dist: np.ndarray

    def evaluate(self, sites: np.ndarray | list[int]) -> float:
        """Return the p-median objective of opening ``sites`` (0-based): each vertex served by its nearest one."""
        cols = np.asarray(sites, dtype=np.int64)
        if cols.size == 0:
            raise ValueError("open at least one site")
        return float(self.dist[:, cols].min(axis=1).sum())


@dataclass(frozen=True)
class CapInstance:
    """An OR-Library warehouse location instance with ``m`` warehouses and ``n`` customers.

    ``cost[i, j]`` is the cost of serving customer i's whole ``demand[i]`` from warehouse j; ``fixed_cost[j]`` is
    paid once per open warehouse and ``capacity[j]`` bounds the demand it serves.
    """

    name: str
    m: int
    n: int
    capacity: np.ndarray
    fixed_cost: np.ndarray
    demand: np.ndarray
    cost: np.ndarray


def _tokens(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc})") from exc


def _numbers(path: Path, tokens: list[str], what: str) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise ValueError(f"{path}: {what} holds {bad!r}, which is not a number") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _count(path: Path, token: str, what: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise ValueError(f"{path}: the header's {what} is {token!r}, not a whole number") from None
    if value < 1:
        raise ValueError(f"{path}: the header's {what} is {value}; it must be positive")
    return value


def read_pmedian(path: str | Path) -> PMedianInstance:
    """Read an OR-Library pmed file and compute its all-pairs shortest-path distances.

    Parameters
    ----------
    path
        A ``pmedN.txt`` file: ``n e p`` then ``e`` lines ``i j c``.

    Returns
    -------
    PMedianInstance
        ``dist`` is float64 (n, n). A repeated edge keeps its last cost in both directions (the costs are not
        summed and the shorter is not taken), as the OR-Library convention requires.

    Raises
    ------
    ValueError
        The header or an edge is malformed, a vertex is out of range, ``p > n``, or the graph is disconnected.
    """
    path = Path(path)
    tokens = _tokens(path)
    if len(tokens) < 3:
        raise ValueError(f"{path}: expected a header 'n e p', found {len(tokens)} token(s)")
    n = _count(path, tokens[0], "vertex count n")
    e = _count(path, tokens[1], "edge count e")
    p = _count(path, tokens[2], "median count p")
    if p > n:
        raise ValueError(f"{path}: p = {p} medians exceeds the n = {n} vertices")
    body = tokens[3:]
    if len(body) != 3 * e:
        raise ValueError(f"{path}: the header announces {e} edges (3 numbers each) but {len(body)} numbers follow")
    edges = _numbers(path, body, "an edge").reshape(e, 3)
    ij = edges[:, :2]
    if (ij != np.round(ij)).any() or (ij < 1).any() or (ij > n).any():
        row = int(np.flatnonzero(((ij != np.round(ij)) | (ij < 1) | (ij > n)).any(axis=1))[0])
        raise ValueError(f"{path}: edge {row + 1} ({edges[row, 0]:g}, {edges[row, 1]:g}) names a vertex outside 1..{n}")
    if (edges[:, 2] < 0).any() or not np.isfinite(edges[:, 2]).all():
        row = int(np.flatnonzero((edges[:, 2] < 0) | ~np.isfinite(edges[:, 2]))[0])
        raise ValueError(f"{path}: edge {row + 1} has cost {edges[row, 2]!r}; costs must be finite and non-negative")
    u, v = ij.min(axis=1).astype(np.int64) - 1, ij.max(axis=1).astype(np.int64) - 1
    # the last occurrence of each unordered pair: the first in the reversed list
    _, first_rev = np.unique((u * n + v)[::-1], return_index=True)
    keep = e - 1 - first_rev
    u, v, c = u[keep], v[keep], edges[keep, 2]
    # a dense matrix with inf for "no edge", so that csgraph_from_dense keeps zero-cost edges as edges
    W = np.full((n, n), np.inf)
    W[u, v] = c
    W[v, u] = c
    np.fill_diagonal(W, np.inf)
    dist = shortest_path(csgraph_from_dense(W, null_value=np.inf), method="D", directed=False)
    if not np.isfinite(dist).all():
        a, b = np.argwhere(~np.isfinite(dist))[0]
        raise ValueError(f"{path}: the graph is disconnected (no path from vertex {a + 1} to vertex {b + 1})")
    dist.setflags(write=False)
    return PMedianInstance(name=path.stem, n=n, p=p, dist=dist)


def read_cap(path: str | Path, *, capacity: float | None = None) -> CapInstance:
    """Read an OR-Library cap file (cap41–cap134, capa/b/c).

    Parameters
    ----------
    path
        ``m n``, then ``m`` pairs ``capacity fixed_cost``, then per customer ``demand`` and ``m`` allocation costs.
    capacity
        The warehouse capacity to use where the file has the literal word ``capacity`` (capa, capb, capc are
        solved for several capacities). Numeric capacities in the file are kept as they are.

    Raises
    ------
    ValueError
        The file is malformed or short, or it has the ``capacity`` placeholder and no ``capacity`` was given.
    """
    path = Path(path)
    tokens = _tokens(path)
    if len(tokens) < 2:
        raise ValueError(f"{path}: expected a header 'm n', found {len(tokens)} token(s)")
    m, n = _count(path, tokens[0], "warehouse count m"), _count(path, tokens[1], "customer count n")
    expected = 2 + 2 * m + n * (1 + m)
    if len(tokens) != expected:
        raise ValueError(
            f"{path}: m = {m} warehouses and n = {n} customers need {expected} numbers in all, found {len(tokens)}"
        )
    pairs = tokens[2 : 2 + 2 * m]
    cap_tokens = pairs[0::2]
    placeholder = [k for k, t in enumerate(cap_tokens) if t.lower() == "capacity"]
    if placeholder:
        if capacity is None:
            raise ValueError(
                f"{path}: warehouse capacities are the placeholder 'capacity'; pass capacity=... (--capacity N)"
            )
        if not (np.isfinite(capacity) and capacity > 0):
            raise ValueError(f"{path}: capacity must be a positive number, not {capacity!r}")
        cap_tokens = [repr(float(capacity)) if k in set(placeholder) else t for k, t in enumerate(cap_tokens)]
    cap = _numbers(path, cap_tokens, "a warehouse capacity")
    fixed = _numbers(path, pairs[1::2], "a fixed cost")
    rows = _numbers(path, tokens[2 + 2 * m :], "a customer row").reshape(n, 1 + m)
    demand, cost = rows[:, 0].copy(), rows[:, 1:].copy()
    for what, arr in (("capacity", cap), ("fixed cost", fixed), ("demand", demand), ("allocation cost", cost)):
        if (arr < 0).any() or not np.isfinite(arr).all():
            raise ValueError(f"{path}: a {what} is negative or not finite")
        arr.setflags(write=False)
    return CapInstance(name=path.stem, m=m, n=n, capacity=cap, fixed_cost=fixed, demand=demand, cost=cost)


@dataclass(frozen=True)
class CvrpInstance:
    """A CVRPLIB capacitated vehicle routing instance on ``n`` nodes (the depot included).

    ``dist`` is the (n, n) integer matrix of rounded Euclidean distances, ``demand`` the load of each node (0 at
    the depot), ``depot`` its 0-based index and ``k`` the fleet named in the file name (``A-n32-k5``: 5), which is
    the minimum fleet, ceil(total demand / capacity), on every Augerat instance.
    """

    name: str
    n: int
    capacity: int
    depot: int
    coords: np.ndarray
    demand: np.ndarray
    dist: np.ndarray
    k: int | None

    @property
    def customers(self) -> np.ndarray:
        """The 0-based indices of the nodes other than the depot."""
        return np.delete(np.arange(self.n), self.depot)

    def route_cost(self, routes: list[list[int]] | tuple[tuple[int, ...], ...]) -> int:
        """Total distance of closed routes given as customer lists (depot legs added here)."""
        total = 0
        for route in routes:
            if len(route) == 0:
                continue
            nodes = [self.depot, *route, self.depot]
            total += int(self.dist[nodes[:-1], nodes[1:]].sum())
        return total


_SECTION = re.compile(r"^[A-Z_]+_SECTION$")


def read_cvrp(path: str | Path) -> CvrpInstance:
    """Read a CVRPLIB ``.vrp`` file with ``EUC_2D`` coordinates.

    Parameters
    ----------
    path
        A TSPLIB-format file: ``KEY : value`` header lines, then ``NODE_COORD_SECTION`` (``id x y``),
        ``DEMAND_SECTION`` (``id demand``) and ``DEPOT_SECTION`` (depot ids ending with ``-1``), then ``EOF``.

    Returns
    -------
    CvrpInstance
        Nodes keep the file's order (id 1 is index 0). ``dist[i, j] = floor(sqrt((xi-xj)^2 + (yi-yj)^2) + 0.5)``.

    Raises
    ------
    ValueError
        A header field is missing or not a number, the edge weight type is not ``EUC_2D``, a section is short or
        names a node outside ``1..DIMENSION``, a demand is negative or exceeds the capacity, or there is not
        exactly one depot.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc})") from exc
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: str | None = None
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "EOF":
            break
        if _SECTION.match(line):
            current = line
            sections[current] = []
        elif current is None:
            if ":" not in line:
                raise ValueError(f"{path}: line {lineno} {line!r} is neither 'KEY : value' nor a section name")
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
        else:
            sections[current].append(line.split())

    def integer(key: str) -> int:
        if key not in header:
            raise ValueError(f"{path}: the header has no {key}")
        try:
            return int(header[key])
        except ValueError:
            raise ValueError(f"{path}: {key} is {header[key]!r}, not a whole number") from None

    n, capacity = integer("DIMENSION"), integer("CAPACITY")
    if n < 2 or capacity < 1:
        raise ValueError(f"{path}: DIMENSION ({n}) must be at least 2 and CAPACITY ({capacity}) positive")
    weight = header.get("EDGE_WEIGHT_TYPE", "")
    if weight != "EUC_2D":
        raise ValueError(f"{path}: EDGE_WEIGHT_TYPE is {weight!r}; only EUC_2D is supported")

    def table(section: str, width: int) -> np.ndarray:
        rows = sections.get(section)
        if rows is None:
            raise ValueError(f"{path}: no {section}")
        if len(rows) != n or any(len(r) != width for r in rows):
            raise ValueError(f"{path}: {section} needs {n} rows of {width} numbers")
        values = _numbers(path, [t for r in rows for t in r], section).reshape(n, width)
        ids = values[:, 0]
        if sorted(ids.tolist()) != list(range(1, n + 1)):
            raise ValueError(f"{path}: {section} must name each node 1..{n} once")
        out = np.empty((n, width - 1))
        out[ids.astype(np.int64) - 1] = values[:, 1:]
        return out

    coords = table("NODE_COORD_SECTION", 3)
    raw_demand = table("DEMAND_SECTION", 2)[:, 0]
    if (raw_demand < 0).any() or (raw_demand != np.round(raw_demand)).any():
        raise ValueError(f"{path}: DEMAND_SECTION must hold non-negative whole numbers")
    demand = raw_demand.astype(np.int64)
    if demand.max() > capacity:
        node = int(np.argmax(demand)) + 1
        raise ValueError(f"{path}: node {node} has demand {demand.max()} above the capacity {capacity}")
    depot_tokens = [t for r in sections.get("DEPOT_SECTION", []) for t in r]
    depots = [int(t) for t in depot_tokens if t.lstrip("-").isdigit() and int(t) > 0]
    if len(depots) != 1 or not 1 <= depots[0] <= n:
        raise ValueError(f"{path}: DEPOT_SECTION must name exactly one node in 1..{n}, found {depot_tokens}")
    depot = depots[0] - 1
    if demand[depot] != 0:
        raise ValueError(f"{path}: the depot (node {depots[0]}) has demand {demand[depot]}; it must be 0")
    diff = coords[:, None, :] - coords[None, :, :]
    dist = np.floor(np.sqrt((diff**2).sum(axis=2)) + 0.5).astype(np.int64)
    match = re.search(r"-k(\d+)$", path.stem)
    for arr in (coords, demand, dist):
        arr.setflags(write=False)
    return CvrpInstance(
        name=header.get("NAME", path.stem),
        n=n,
        capacity=capacity,
        depot=depot,
        coords=coords,
        demand=demand,
        dist=dist,
        k=int(match.group(1)) if match else None,
    )


def read_optima(folder: str | Path) -> dict[str, dict[str, float | None]]:
    """Read ``folder/optima.csv`` into ``{instance: {column: value}}``.

    Empty cells become ``None``. A later row for an instance already read is ignored, so that the shorter
    trailing lines of the facility-location file (``cap71,932615.750``) do not overwrite the full rows.

    Examples
    --------
    ``read_optima(shared / "benchmarks" / "pmedian")["pmed1"]["optimal"] == 5819.0``
    """
    path = Path(folder) / "optima.csv"
    out: dict[str, dict[str, float | None]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0].strip() != "instance":
            raise ValueError(f"{path}: the first row must be a header starting with 'instance'")
        columns = [c.strip() for c in header[1:]]
        for lineno, row in enumerate(reader, start=2):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0] in out:
                continue
            record: dict[str, float | None] = {}
            values = (cells[1:] + [""] * len(columns))[: len(columns)]  # a short row leaves the rest empty
            for col, cell in zip(columns, values, strict=True):
                if not cell:
                    record[col] = None
                    continue
                try:
                    record[col] = float(cell)
                except ValueError:
                    raise ValueError(f"{path}: row {lineno}, field {col!r} is {cell!r}, not a number") from None
            out[cells[0]] = record
    return out


def read_cvrp_best_known(folder: str | Path) -> dict[str, float]:
    """Read the CVRPLIB ``folder/optima.csv`` (``set,instance,customers,capacity,best_known_cost,proven_optimal``).

    Returns ``{instance: best_known_cost}``; rows with an empty cost are left out.
    """
    path = Path(folder) / "optima.csv"
    out: dict[str, float] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"instance", "best_known_cost"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must name the columns 'instance' and 'best_known_cost'")
        for lineno, row in enumerate(reader, start=2):
            name, cell = (row["instance"] or "").strip(), (row["best_known_cost"] or "").strip()
            if not name or not cell:
                continue
            try:
                out[name] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: row {lineno}, field 'best_known_cost' is {cell!r}, not a number") from None
    return out
