"""Stage 3 between settlements: the road hierarchy, and the tracks and industrial roads of a full region.

:func:`build_roads` lays every settlement's street grid (:mod:`geodata.synthetic.streets`), chooses the roads
between settlements on the Gabriel graph of their centres, draws them as gently curving polylines, and continues
the main roads into town.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from geodata.synthetic.names import Namer
from geodata.synthetic.settlements import Layout
from geodata.synthetic.spec import SyntheticSpec
from geodata.synthetic.streets import (
    Streets,
    extreme_node,
    footways,
    grid_spacing,
    oneway_streets,
    street_grid,
    through_roads,
)
from geodata.synthetic.ways import ROAD_RANK, Roads


@dataclass(frozen=True)
class Network:
    """The roads of stage 3: the builder, each settlement's streets and what later stages place beside them.

    ``industrial[k]`` is the industrial zone of town ``industrial_town[k]``, served by the segments
    ``spur_edges[k]``; all three are empty without ``extras``.
    """

    roads: Roads
    streets: list[Streets]
    rural_edges: np.ndarray  # segments of roads between settlements (farms sit beside them)
    industrial: list[shapely.Polygon]
    industrial_town: list[int]
    spur_edges: list[list[int]]


def _densify(
    x0: float, y0: float, x1: float, y1: float, spacing: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the intermediate nodes of a gently curving road from (x0, y0) to (x1, y1)."""
    length = math.hypot(x1 - x0, y1 - y0)
    lo, hi = spacing
    if length < 1.5 * lo:
        return np.zeros(0), np.zeros(0)
    steps = rng.uniform(lo, hi, int(length / lo) + 2)
    t = np.cumsum(steps)
    t = t[t < length - 0.5 * lo] / length
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    amp = min(0.035 * length, 150.0) * rng.uniform(0.3, 1.0)
    k = np.arange(1, 4)[:, None]
    weights = rng.normal(0.0, 1.0, 3)[:, None] / k
    phase = rng.uniform(0.0, 2 * math.pi, 3)[:, None]
    bend = (weights * np.sin(k * math.pi * t + phase)).sum(axis=0) / max(float(np.abs(weights).sum()), 1e-9)
    lateral = amp * bend * np.sin(math.pi * t) + rng.normal(0.0, 4.0, t.size) * np.sin(math.pi * t)
    return x0 + t * length * ux - lateral * uy, y0 + t * length * uy + lateral * ux


def _planar_graphs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the Delaunay edges of the points and masks of those in the Gabriel and relative-neighbour graphs."""
    pts = np.column_stack([x, y])
    if len(pts) < 3:
        edges = np.array([[0, 1]]) if len(pts) == 2 else np.zeros((0, 2), dtype=np.int64)
        return edges, np.ones(len(edges), bool), np.ones(len(edges), bool)
    tri = Delaunay(pts)
    s = tri.simplices
    pairs = np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
    edges = np.unique(np.sort(pairs, axis=1), axis=0)
    a, b = pts[edges[:, 0]], pts[edges[:, 1]]
    length = np.hypot(*(a - b).T)
    tree = cKDTree(pts)
    d_mid, _ = tree.query(0.5 * (a + b))
    gabriel = d_mid >= 0.5 * length * (1 - 1e-9)
    rng_mask = np.zeros(len(edges), bool)
    for k in np.flatnonzero(gabriel).tolist():
        i, j = int(edges[k, 0]), int(edges[k, 1])
        near = tree.query_ball_point(pts[i], length[k] * (1 - 1e-9))
        near_arr = np.asarray([c for c in near if c not in (i, j)], dtype=np.int64)
        if near_arr.size == 0:
            rng_mask[k] = True
            continue
        d_j = np.hypot(*(pts[near_arr] - pts[j]).T)
        rng_mask[k] = not bool((d_j < length[k] * (1 - 1e-9)).any())
    return edges, gabriel, rng_mask


def _road_classes(lay: Layout, spec: SyntheticSpec, rng: np.random.Generator) -> list[tuple[int, int, str, str]]:
    """Choose the roads between settlements: ``(i, j, highway, ref)`` for each, in a fixed order.

    Town links are the towns' minimum spanning tree (primary) plus the shortest other town-Delaunay pairs
    (secondary), each routed along the Gabriel graph so that it passes through the villages in between. Each
    village's Gabriel path to its town is tertiary. The remaining relative-neighbourhood edges, and 35% of the
    other Gabriel edges (for loops), are tertiary between two villages and unclassified otherwise. All of them are
    Gabriel edges, so the straight links never cross.
    """
    edges, gabriel, rng_mask = _planar_graphs(lay.x, lay.y)
    n_set = len(lay.pop)
    length = np.hypot(lay.x[edges[:, 0]] - lay.x[edges[:, 1]], lay.y[edges[:, 0]] - lay.y[edges[:, 1]])
    cls: dict[int, str] = {}
    g_idx = np.flatnonzero(gabriel)
    gab = sp.coo_matrix((length[g_idx], (edges[g_idx, 0], edges[g_idx, 1])), shape=(n_set, n_set)).tocsr()
    gab = gab + gab.T
    edge_of = {(int(edges[k, 0]), int(edges[k, 1])): int(k) for k in g_idx.tolist()}
    nt = lay.n_towns
    tx, ty = lay.x[:nt], lay.y[:nt]
    dist_t = np.hypot(tx[:, None] - tx, ty[:, None] - ty)
    mst = minimum_spanning_tree(dist_t).tocoo()
    links = [(int(i), int(j), "primary") for i, j in zip(mst.row.tolist(), mst.col.tolist(), strict=True)]
    in_mst = {(min(i, j), max(i, j)) for i, j, _ in links}
    t_edges, _, _ = _planar_graphs(tx, ty)
    extra = [(int(i), int(j)) for i, j in t_edges.tolist() if (int(i), int(j)) not in in_mst]
    extra.sort(key=lambda p: (dist_t[p[0], p[1]], p))
    links += [(i, j, "secondary") for i, j in extra[: math.ceil(0.3 * nt)]]
    _, pred = dijkstra(gab, directed=False, indices=np.arange(nt), return_predecessors=True)
    refs = rng.permutation(np.arange(11, 99)).tolist()
    ref_of: dict[int, str] = {}
    for n_link, (i, j, c) in enumerate(links):
        # Danish primary roads carry two-digit numbers, secondary roads three-digit ones.
        ref = str(refs[n_link % len(refs)]) if c == "primary" else str(100 + (37 * n_link) % 800)
        node = j
        while node != i and pred[i, node] >= 0:
            prev = int(pred[i, node])
            k = edge_of[(min(prev, node), max(prev, node))]
            if k not in cls or ROAD_RANK[c] < ROAD_RANK[cls[k]]:
                cls[k] = c
                ref_of[k] = ref
            node = prev
    # Each village's road to its town is tertiary.
    for s in np.flatnonzero((lay.kind == "village") & (np.arange(n_set) >= nt)).tolist():
        t, node = int(lay.town_of[s]), s
        while node != t and pred[t, node] >= 0:
            prev = int(pred[t, node])
            k = edge_of[(min(prev, node), max(prev, node))]
            if k not in cls:
                cls[k] = "tertiary"
            node = prev
    big = lay.pop >= spec.village_threshold
    for k in np.flatnonzero(rng_mask).tolist():
        if k not in cls:
            cls[k] = "tertiary" if big[edges[k, 0]] and big[edges[k, 1]] else "unclassified"
    loops = np.flatnonzero(gabriel & ~rng_mask)
    for k in loops[rng.random(loops.size) < 0.35].tolist():
        cls.setdefault(int(k), "unclassified")
    return [(int(edges[k, 0]), int(edges[k, 1]), cls[k], ref_of.get(k, "")) for k in sorted(cls)]


def _spacing_for(lengths: np.ndarray, wanted: float) -> tuple[float, float]:
    """Return the node spacing range that puts about ``wanted`` intermediate nodes on roads of these lengths."""
    lo, hi = 5.0, 1e6
    for _ in range(60):
        mean = math.sqrt(lo * hi)
        # _densify draws steps uniformly in [0.6, 1.4] * mean and stops 0.3 * mean short of the far end.
        count = np.where(lengths < 0.9 * mean, 0.0, np.maximum(lengths / mean - 0.3, 0.0)).sum()
        lo, hi = (mean, hi) if count > wanted else (lo, mean)
    mean = math.sqrt(lo * hi)
    return 0.6 * mean, 1.4 * mean


def build_roads(
    lay: Layout,
    spec: SyntheticSpec,
    rng: np.random.Generator,
    namer: Namer,
    *,
    target_nodes: int | None = None,
    extras: bool = True,
) -> Network:
    """Lay out streets, the inter-settlement road hierarchy, and (with ``extras``) footways, tracks and industry.

    With ``target_nodes``, the spacing of rural road nodes is chosen to reach about that many nodes in all.
    """
    roads = Roads()
    streets: list[Streets] = []
    for k in range(len(lay.pop)):
        pop = int(lay.pop[k])
        streets.append(
            street_grid(
                roads, float(lay.x[k]), float(lay.y[k]), float(lay.radius[k]), grid_spacing(pop),
                lay.kind[k] == "town", rng, namer,
            )
        )  # fmt: skip
    links = _road_classes(lay, spec, rng)
    ends: list[tuple[int, int]] = []
    for i, j, _, _ in links:
        ux, uy = lay.x[j] - lay.x[i], lay.y[j] - lay.y[i]
        norm = math.hypot(ux, uy)
        ux, uy = ux / norm, uy / norm
        ends.append((extreme_node(roads, streets[i], ux, uy), extreme_node(roads, streets[j], -ux, -uy)))
    spacing = spec.node_spacing_m
    if target_nodes is not None:
        e = np.asarray(ends, dtype=np.int64).reshape(-1, 2)
        lengths = np.hypot(roads.x[e[:, 0]] - roads.x[e[:, 1]], roads.y[e[:, 0]] - roads.y[e[:, 1]])
        spacing = _spacing_for(lengths, max(target_nodes - len(roads.x), 0.02 * target_nodes))

    rural: list[int] = []
    attach: list[tuple[int, int, str, str | None]] = []  # settlement, node, class, ref
    for (i, j, c, ref_text), (ea, eb) in zip(links, ends, strict=True):
        mx, my = _densify(roads.x[ea], roads.y[ea], roads.x[eb], roads.y[eb], spacing, rng)
        mid = roads.add_nodes(mx, my)
        tags = {"highway": c}
        ref: str | None = None
        if c in ("primary", "secondary"):
            ref = ref_text
            tags["ref"] = ref
            if c == "primary" or rng.random() < 0.5:
                tags["maxspeed"] = "80"
        else:
            # Danish country roads are named after where they lead: the bigger end.
            far = j if lay.pop[j] >= lay.pop[i] else i
            tags["name"] = f"{lay.name[far]}vej"
            if c == "tertiary" and rng.random() < 0.3:
                tags["maxspeed"] = "80" if rng.random() < 0.5 else "60"
        _, segs = roads.add_chain([ea, *mid.tolist(), eb], tags)
        rural.extend(segs)
        attach.append((i, ea, c, ref))
        attach.append((j, eb, c, ref))

    through_roads(roads, streets, lay, attach)
    oneway_streets(roads, streets[0], rng)
    industrial: list[shapely.Polygon] = []
    industrial_town: list[int] = []
    spur_edges: list[list[int]] = []
    if extras:
        footways(roads, streets, lay, rng)
        _tracks(roads, np.asarray(rural, dtype=np.int64), max(1, len(lay.pop) // 3), rng)
        for t in range(lay.n_towns):
            poly, segs = _industrial_zone(roads, streets[t], lay, t, attach, rng)
            industrial.append(poly)
            industrial_town.append(t)
            spur_edges.append(segs)
    return Network(roads, streets, np.asarray(rural, dtype=np.int64), industrial, industrial_town, spur_edges)


def _tracks(roads: Roads, rural: np.ndarray, count: int, rng: np.random.Generator) -> None:
    """Add dead-end field tracks leaving rural roads at right angles."""
    if rural.size == 0:
        return
    for e in rng.choice(rural, size=min(count, rural.size), replace=False).tolist():
        u, v = roads.u[e], roads.v[e]
        dx, dy = roads.x[v] - roads.x[u], roads.y[v] - roads.y[u]
        norm = math.hypot(dx, dy) or 1.0
        side = 1.0 if rng.random() < 0.5 else -1.0
        nx_, ny_ = -dy / norm * side, dx / norm * side
        dist = np.cumsum(rng.uniform(120.0, 220.0, int(rng.integers(2, 5))))
        px = roads.x[u] + dist * nx_ + rng.normal(0, 12, dist.size)
        py = roads.y[u] + dist * ny_ + rng.normal(0, 12, dist.size)
        tags = {"highway": "track", "tracktype": str(rng.choice(["grade2", "grade3", "grade4"]))}
        roads.add_chain([u, *roads.add_nodes(px, py).tolist()], tags)


def _industrial_zone(
    roads: Roads,
    grid: Streets,
    lay: Layout,
    t: int,
    attach: list[tuple[int, int, str, str | None]],
    rng: np.random.Generator,
) -> tuple[shapely.Polygon, list[int]]:
    """Add a dead-end industrial road at the edge of town, pointing away from the main roads."""
    cx, cy = float(lay.x[t]), float(lay.y[t])
    used = [math.atan2(roads.y[node] - cy, roads.x[node] - cx) for s, node, _, _ in attach if s == t]
    cand = rng.uniform(0, 2 * math.pi) + np.arange(16) * 2 * math.pi / 16
    if used:
        gap = np.min(np.abs(np.angle(np.exp(1j * (cand[:, None] - np.asarray(used)[None, :])))), axis=1)
        ang = float(cand[int(np.argmax(gap))])
    else:
        ang = float(cand[0])
    ux, uy = math.cos(ang), math.sin(ang)
    start = extreme_node(roads, grid, ux, uy)
    dist = np.cumsum(rng.uniform(140.0, 190.0, 3))
    px = roads.x[start] + dist * ux + rng.normal(0, 6, 3)
    py = roads.y[start] + dist * uy + rng.normal(0, 6, 3)
    spur = roads.add_nodes(px, py)
    _, segs = roads.add_chain([start, *spur.tolist()], {"highway": "unclassified", "name": "Industrivej"})
    end = int(spur[-1])
    side = rng.choice([-1.0, 1.0])
    bx = roads.x[end] - uy * side * np.array([150.0])
    by = roads.y[end] + ux * side * np.array([150.0])
    branch = roads.add_nodes(bx, by)
    _, segs2 = roads.add_chain([end, int(branch[0])], {"highway": "unclassified", "name": "Fabriksvej"})
    line = shapely.MultiLineString(
        [[(roads.x[start] + 60 * ux, roads.y[start] + 60 * uy), *zip(px.tolist(), py.tolist(), strict=True)],
         [(roads.x[end], roads.y[end]), (float(bx[0]), float(by[0]))]]
    )  # fmt: skip
    poly = shapely.buffer(line, 75.0, cap_style="flat", join_style="mitre").simplify(2.0)
    if poly.geom_type != "Polygon":
        poly = shapely.convex_hull(poly)
    return poly, segs + segs2
