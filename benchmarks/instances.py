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
import math
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


def read_cap(path: str | Path, *, capacity: float | None = None, uncapacitated: bool = False) -> CapInstance:
    """Read an OR-Library cap file (cap41–cap134, capa/b/c).

    Parameters
    ----------
    path
        ``m n``, then ``m`` pairs ``capacity fixed_cost``, then per customer ``demand`` and ``m`` allocation costs.
    capacity
        The warehouse capacity to use where the file has the literal word ``capacity`` (capa, capb, capc are
        solved for several capacities). Numeric capacities in the file are kept as they are.
    uncapacitated
        The capacities will be ignored: a ``capacity`` placeholder without ``capacity`` then reads as ``inf``
        (unbounded), and the total capacity is not checked against the total demand.

    Raises
    ------
    ValueError
        The file is malformed or short; it has the ``capacity`` placeholder and no ``capacity`` was given (unless
        ``uncapacitated``); or, with capacities, the warehouses together cannot hold the customers' total demand
        (both totals are given in the file's units).
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
    placeholder = {k for k, t in enumerate(cap_tokens) if t.lower() == "capacity"}
    if placeholder:
        if capacity is None and not uncapacitated:
            raise ValueError(
                f"{path}: warehouse capacities are the placeholder 'capacity'; pass capacity=... (--capacity N), "
                "or solve it uncapacitated (--uncapacitated)"
            )
        if capacity is not None and not (np.isfinite(capacity) and capacity > 0):
            raise ValueError(f"{path}: capacity must be a positive number, not {capacity!r}")
        fill = "inf" if capacity is None else repr(float(capacity))
        cap_tokens = [fill if k in placeholder else t for k, t in enumerate(cap_tokens)]
    cap = _numbers(path, cap_tokens, "a warehouse capacity")
    fixed = _numbers(path, pairs[1::2], "a fixed cost")
    rows = _numbers(path, tokens[2 + 2 * m :], "a customer row").reshape(n, 1 + m)
    demand, cost = rows[:, 0].copy(), rows[:, 1:].copy()
    if (cap < 0).any() or np.isnan(cap).any() or (np.isinf(cap).any() and not uncapacitated):
        raise ValueError(f"{path}: a capacity is negative or not finite")
    for what, arr in (("fixed cost", fixed), ("demand", demand), ("allocation cost", cost)):
        if (arr < 0).any() or not np.isfinite(arr).all():
            raise ValueError(f"{path}: a {what} is negative or not finite")
    if not uncapacitated and float(cap.sum()) < float(demand.sum()):
        hint = f" (--capacity {math.ceil(float(demand.sum()) / m)} or more)" if placeholder else ""
        raise ValueError(
            f"{path}: the {m} warehouses hold {float(cap.sum()):,.0f} in all but the {n} customers' demand totals "
            f"{float(demand.sum()):,.0f}; no plan can serve it: raise the capacity{hint}"
        )
    for arr in (cap, fixed, demand, cost):
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


# ---------------------------------------------------------------------------------------------------------------
# seeded stand-ins for the OR-Library sets that are not available offline (capa/b/c, pmed21-40)

#: The four capacities OR-Library publishes optima for, per set (Beasley 1988).
CAP_LIKE_CAPACITIES: dict[str, tuple[int, ...]] = {
    "capa": (8000, 10000, 12000, 14000),
    "capb": (5000, 6000, 7000, 8000),
    "capc": (5000, 5750, 6500, 7250),
}
#: Total customer demand of capa (and of the generated stand-ins).
CAP_LIKE_TOTAL_DEMAND = 58268
#: (lowest, highest) fixed cost per warehouse of each generated set: capa's sites are dear, capc's cheap.
_CAP_LIKE_FIXED = {"capa": (1_400_000.0, 2_200_000.0), "capb": (800_000.0, 1_200_000.0), "capc": (500_000.0, 800_000.0)}
_CAP_LIKE_SEED = {"capa": 1, "capb": 2, "capc": 3}

#: (n, p) of OR-Library pmed21-pmed40 (Beasley 1985); each has e = n^2/50 edges with costs 1-100.
PMED_LIKE_SIZES: dict[int, tuple[int, int]] = {
    21: (500, 5), 22: (500, 10), 23: (500, 50), 24: (500, 100), 25: (500, 167),
    26: (600, 5), 27: (600, 10), 28: (600, 60), 29: (600, 120), 30: (600, 200),
    31: (700, 5), 32: (700, 10), 33: (700, 70), 34: (700, 140),
    35: (800, 5), 36: (800, 10), 37: (800, 80),
    38: (900, 5), 39: (900, 10), 40: (900, 90),
}  # fmt: skip


def generate_cap_like(kind: str, capacity: float, *, seed: int | None = None) -> CapInstance:
    """A seeded warehouse-location instance shaped like OR-Library's capa, capb or capc.

    100 warehouses and 1,000 customers at uniform random points of a 1,000 x 1,000 square. Customer demands are
    whole numbers drawn from a log-normal law and scaled so that they total :data:`CAP_LIKE_TOTAL_DEMAND` (58,268,
    capa's total). The cost of serving customer i wholly from warehouse j is ``demand_i * distance_ij / 10``,
    rounded to 0.001 (a per-unit cost proportional to distance, as in Beasley's sets). Fixed costs are uniform in a
    per-set range (:data:`_CAP_LIKE_FIXED`: capa dear, capc cheap) and every warehouse has ``capacity``, one of
    :data:`CAP_LIKE_CAPACITIES` for the published runs. The customers, warehouses and fixed costs depend only on
    ``kind`` and ``seed`` (default: one fixed seed per set), so the four capacities of a set share them, as in
    OR-Library. These are stand-ins with the published sizes and capacities, not the OR-Library data: their optima
    are not the published ones (see ``benchmarks/reference_optima.csv``).
    """
    if kind not in CAP_LIKE_CAPACITIES:
        raise ValueError(f"kind must be one of {', '.join(CAP_LIKE_CAPACITIES)}, not {kind!r}")
    if not (np.isfinite(capacity) and capacity > 0):
        raise ValueError(f"capacity must be a positive number, not {capacity!r}")
    rng = np.random.default_rng(_CAP_LIKE_SEED[kind] if seed is None else seed)
    m, n = 100, 1000
    sites, customers = rng.uniform(0, 1000, (m, 2)), rng.uniform(0, 1000, (n, 2))
    raw = rng.lognormal(0.0, 0.6, n)
    demand = np.maximum(1.0, np.floor(raw / raw.sum() * CAP_LIKE_TOTAL_DEMAND))
    short = CAP_LIKE_TOTAL_DEMAND - int(demand.sum())
    demand[rng.choice(n, abs(short), replace=False)] += np.sign(short)  # the total exactly
    dist = np.sqrt(((customers[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    cost = np.round(demand[:, None] * dist, 3)
    lo, hi = _CAP_LIKE_FIXED[kind]
    fixed = np.round(rng.uniform(lo, hi, m), 3)
    cap = np.full(m, float(capacity))
    for arr in (cap, fixed, demand, cost):
        arr.setflags(write=False)
    name = f"{kind}-like-{capacity:g}"
    return CapInstance(name=name, m=m, n=n, capacity=cap, fixed_cost=fixed, demand=demand, cost=cost)


def write_cap(inst: CapInstance, path: str | Path, *, placeholder: bool = False) -> Path:
    """Write ``inst`` in the OR-Library cap format; ``placeholder`` writes the word ``capacity`` for each capacity
    (as the capa, capb and capc files do), so that the reader needs ``capacity=``."""
    path = Path(path)
    lines = [f"{inst.m} {inst.n}"]
    for j in range(inst.m):
        lines.append(f"{'capacity' if placeholder else format(inst.capacity[j], 'g')} {inst.fixed_cost[j]:.3f}")
    for i in range(inst.n):
        lines.append(f"{inst.demand[i]:g}")
        row = [f"{c:.3f}" for c in inst.cost[i]]
        lines += [" ".join(row[k : k + 10]) for k in range(0, len(row), 10)]  # wrapped as OR-Library does
    path.write_text("\n".join(lines) + "\n")
    return path


def generate_pmedian_like(number: int, *, seed: int | None = None) -> tuple[int, int, np.ndarray]:
    """A seeded random graph shaped like OR-Library pmed``number`` (21-40): ``(n, p, edges)``.

    ``n`` vertices and ``e = n^2 / 50`` undirected edges with integer costs uniform in 1-100: a random spanning
    tree (each vertex joined to a random earlier one, in a random order) makes the graph connected, and the other
    edges join distinct random pairs, as Beasley's generator does. ``edges`` is an (e, 3) integer array of 1-based
    ``i j c`` rows. Not the OR-Library data: the optima differ (see ``benchmarks/reference_optima.csv``).
    """
    if number not in PMED_LIKE_SIZES:
        raise ValueError(f"number must be one of {min(PMED_LIKE_SIZES)}-{max(PMED_LIKE_SIZES)}, not {number!r}")
    n, p = PMED_LIKE_SIZES[number]
    e = n * n // 50
    rng = np.random.default_rng(1000 + number if seed is None else seed)
    order = rng.permutation(n)
    tree = [(int(order[k]), int(order[rng.integers(k)])) for k in range(1, n)]
    seen = {(min(a, b), max(a, b)) for a, b in tree}
    pairs = list(seen)
    while len(pairs) < e:
        a, b = (int(v) for v in rng.integers(n, size=2))
        key = (min(a, b), max(a, b))
        if a != b and key not in seen:
            seen.add(key)
            pairs.append(key)
    ij = np.array(pairs, dtype=np.int64)
    ij = ij[rng.permutation(len(ij))] + 1
    costs = rng.integers(1, 101, len(ij))
    return n, p, np.column_stack([ij, costs])


def write_pmedian(n: int, p: int, edges: np.ndarray, path: str | Path) -> Path:
    """Write a graph in the OR-Library pmed format (``n e p`` then ``i j c`` lines)."""
    path = Path(path)
    body = "\n".join(f"{int(a)} {int(b)} {int(c)}" for a, b, c in edges)
    path.write_text(f"{n} {len(edges)} {p}\n{body}\n")
    return path


def pmedian_like(number: int, *, seed: int | None = None) -> PMedianInstance:
    """:func:`generate_pmedian_like` as a :class:`PMedianInstance` (shortest-path distances), named
    ``pmed{number}-like``."""
    n, p, edges = generate_pmedian_like(number, seed=seed)
    W = np.full((n, n), np.inf)
    u, v, c = edges[:, 0] - 1, edges[:, 1] - 1, edges[:, 2].astype(np.float64)
    W[u, v] = c
    W[v, u] = c
    np.fill_diagonal(W, np.inf)
    dist = shortest_path(csgraph_from_dense(W, null_value=np.inf), method="D", directed=False)
    dist.setflags(write=False)
    return PMedianInstance(name=f"pmed{number}-like", n=n, p=p, dist=dist)
