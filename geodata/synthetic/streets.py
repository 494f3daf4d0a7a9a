"""Stage 3 inside settlements: street grids, through roads to the centre, one-way streets and footways."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra

from geodata.synthetic.names import Namer
from geodata.synthetic.settlements import Layout
from geodata.synthetic.ways import ROAD_RANK, Roads


@dataclass(frozen=True)
class Streets:
    """One settlement's street grid."""

    centre: int
    nodes: np.ndarray
    edges: np.ndarray
    rows: list[list[int]]  # the segments of each street (grid row or column run)
    cells: dict[tuple[int, int], int]  # grid index -> node


def street_grid(
    roads: Roads, cx: float, cy: float, radius: float, spacing: float, town: bool, rng: np.random.Generator,
    namer: Namer,
) -> Streets:  # fmt: skip
    """Lay an irregular grid of residential streets around (cx, cy) covering ``radius`` metres.

    The grid is rotated, warped by a gentle sine and jittered; nodes beyond a wobbly radius and 12% of the
    segments are dropped, and only the part connected to the centre is kept. Rows and columns become streets.
    """
    n = math.ceil(1.25 * max(radius, spacing) / spacing) + 1
    side = 2 * n + 1
    mi, mj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    ii, jj = mi.ravel(), mj.ravel()
    gx, gy = ii * spacing, jj * spacing
    wave = rng.uniform(4.0, 9.0) * spacing
    gx = gx + 0.25 * spacing * np.sin(2 * math.pi * gy / wave + rng.uniform(0, 2 * math.pi))
    gy = gy + 0.25 * spacing * np.sin(2 * math.pi * gx / wave + rng.uniform(0, 2 * math.pi))
    gx = gx + rng.normal(0.0, 0.08 * spacing, gx.size)
    gy = gy + rng.normal(0.0, 0.08 * spacing, gy.size)
    centre = n * side + n
    gx, gy = gx - gx[centre], gy - gy[centre]
    theta = rng.uniform(0.0, math.pi / 2)
    x = cx + gx * math.cos(theta) - gy * math.sin(theta)
    y = cy + gx * math.sin(theta) + gy * math.cos(theta)
    phi = np.arctan2(jj, ii)
    wobble = 1.0 + 0.12 * np.sin(2 * phi + rng.uniform(0, 6.3)) + 0.08 * np.sin(3 * phi + rng.uniform(0, 6.3))
    keep = np.hypot(ii, jj) * spacing <= max(1.05 * radius, 1.05 * spacing) * wobble
    keep[centre] = True

    idx = np.arange(side * side).reshape(side, side)
    # Segments along i ordered by (j, i), then along j ordered by (i, j), so that streets chain in order.
    a = np.concatenate([idx[:-1, :].T.ravel(), idx[:, :-1].ravel()])
    b = np.concatenate([idx[1:, :].T.ravel(), idx[:, 1:].ravel()])
    horizontal = np.concatenate([np.ones(side * (side - 1), bool), np.zeros(side * (side - 1), bool)])
    ok = keep[a] & keep[b]
    drop = (rng.random(a.size) < 0.12) & (a != centre) & (b != centre)
    ok &= ~drop
    a, b, horizontal = a[ok], b[ok], horizontal[ok]
    graph = sp.coo_matrix((np.ones(a.size), (a, b)), shape=(side * side, side * side)).tocsr()
    _, label = connected_components(graph, directed=False)
    alive = label == label[centre]
    live_edges = alive[a]
    a, b, horizontal = a[live_edges], b[live_edges], horizontal[live_edges]
    local = np.flatnonzero(alive)
    ids = roads.add_nodes(x[local], y[local])
    node_of = np.full(side * side, -1, dtype=np.int64)
    node_of[local] = ids

    # Chain row and column segments into streets: a street breaks where a segment is missing.
    runs: list[list[int]] = []
    for horiz in (True, False):
        sel = np.flatnonzero(horizontal == horiz)
        current: list[int] = []
        for k in sel.tolist():
            if current and a[k] != b[current[-1]]:
                runs.append(current)
                current = []
            current.append(k)
        if current:
            runs.append(current)
    names = namer.streets(len(runs))
    edges: list[int] = []
    rows: list[list[int]] = []
    maxspeed = "50" if town else None
    for run, name in zip(runs, names, strict=True):
        chain = [int(node_of[a[run[0]]])] + [int(node_of[b[k]]) for k in run]
        tags = {"highway": "residential", "name": name}
        if maxspeed and rng.random() < 0.4:
            tags["maxspeed"] = maxspeed
        _, segs = roads.add_chain(chain, tags)
        edges.extend(segs)
        rows.append(segs)
    cells = {(int(ii[k]), int(jj[k])): int(node_of[k]) for k in local.tolist()}
    return Streets(int(node_of[centre]), ids, np.asarray(edges, dtype=np.int64), rows, cells)


def grid_spacing(pop: int) -> float:
    """Return a settlement's street spacing (m): it grows with the logarithm of the population, within 110-210 m."""
    return float(np.clip(105.0 + 18.0 * math.log10(max(pop, 10)), 110.0, 210.0))


def _grid_csr(roads: Roads, streets: Streets, *, directed: bool) -> tuple[sp.csr_matrix, dict[int, int]]:
    """Return a settlement's street grid as a sparse matrix of segment lengths, and the node -> row index."""
    index = {node: k for k, node in enumerate(streets.nodes.tolist())}
    e = streets.edges
    gu, gv = roads.u[e], roads.v[e]
    length = np.hypot(roads.x[gu] - roads.x[gv], roads.y[gu] - roads.y[gv])
    rows = np.asarray([index[a] for a in gu.tolist()], dtype=np.int64)
    cols = np.asarray([index[b] for b in gv.tolist()], dtype=np.int64)
    if directed:
        two_way = np.asarray([roads.tags[t].get("oneway") != "yes" for t in roads.tag[e].tolist()], dtype=bool)
        rows, cols = np.concatenate([rows, cols[two_way]]), np.concatenate([cols, rows[two_way]])
        length = np.concatenate([length, length[two_way]])
    n = len(index)
    return sp.coo_matrix((length, (rows, cols)), shape=(n, n)).tocsr(), index


def extreme_node(roads: Roads, streets: Streets, ux: float, uy: float) -> int:
    """Return the grid node furthest in the direction (ux, uy): where a road, path or spur leaves the settlement."""
    nodes = streets.nodes
    xs, ys = roads.x[nodes], roads.y[nodes]
    return int(nodes[int(np.argmax(xs * ux + ys * uy))])


def through_roads(
    roads: Roads, streets: list[Streets], lay: Layout, attach: list[tuple[int, int, str, str | None]]
) -> None:
    """Continue primary, secondary and tertiary roads to the centre along the street grid, at 50 km/h."""
    for s, node, c, ref in attach:
        if c not in ("primary", "secondary", "tertiary") or lay.kind[s] == "hamlet":
            continue
        grid = streets[s]
        csr, index = _grid_csr(roads, grid, directed=False)
        _, pred = dijkstra(csr, directed=False, indices=index[grid.centre], return_predecessors=True)
        edge_at = {}
        for e in grid.edges.tolist():
            a, b = index[roads.u[e]], index[roads.v[e]]
            edge_at[(min(a, b), max(a, b))] = e
        cur = index[node]
        while pred[cur] >= 0:
            prev = int(pred[cur])
            e = edge_at[(min(prev, cur), max(prev, cur))]
            if ROAD_RANK[c] < ROAD_RANK[roads.highway(e)]:
                changes = {"highway": c, "maxspeed": "50"}
                if ref:
                    changes["ref"] = ref
                roads.retag(e, **changes)
            cur = prev


def oneway_streets(roads: Roads, grid: Streets, rng: np.random.Generator, wanted: int = 6) -> None:
    """Make a few residential streets of the seat one-way, keeping its grid strongly connected."""
    made = 0
    for r in rng.permutation(len(grid.rows)).tolist():
        segs = grid.rows[r]
        if made >= wanted or len(segs) < 2 or any(roads.highway(e) != "residential" for e in segs):
            continue
        if any(grid.centre in (roads.u[e], roads.v[e]) for e in segs):
            continue
        old = [roads.tag[e] for e in segs]
        for e in segs:
            roads.retag(e, oneway="yes")
        csr, _ = _grid_csr(roads, grid, directed=True)
        if connected_components(csr, directed=True, connection="strong")[0] != 1:
            for e, t in zip(segs, old, strict=True):
                roads.tag[e] = t
            continue
        if rng.random() < 0.5:  # drive the other way: swap ends and reverse the order of the street
            for e in segs:
                roads.u[e], roads.v[e] = roads.v[e], roads.u[e]
                roads.seq[e] = -roads.seq[e] - 1.0
        made += 1


def footways(roads: Roads, streets: list[Streets], lay: Layout, rng: np.random.Generator) -> None:
    """Add paths across a few blocks and dead-end park paths in towns and villages."""
    for s in np.flatnonzero(lay.kind != "hamlet").tolist():
        grid = streets[s]
        cells = grid.cells
        keys = sorted(cells)
        wanted = 2 + (len(keys) // 40 if lay.kind[s] == "town" else 0)
        made = 0
        for k in rng.permutation(len(keys)).tolist():
            if made >= wanted:
                break
            i, j = keys[k]
            if (i + 1, j + 1) not in cells:
                continue
            a, b = cells[(i, j)], cells[(i + 1, j + 1)]
            mx = 0.5 * (roads.x[a] + roads.x[b]) + rng.normal(0, 8)
            my = 0.5 * (roads.y[a] + roads.y[b]) + rng.normal(0, 8)
            mid = roads.add_nodes(np.array([mx]), np.array([my]))
            roads.add_chain([a, int(mid[0]), b], {"highway": "footway"})
            made += 1
        # a dead-end path out of the settlement into the fields
        ang = rng.uniform(0, 2 * math.pi)
        start = extreme_node(roads, grid, math.cos(ang), math.sin(ang))
        dist = np.array([110.0, 230.0])
        px = roads.x[start] + dist * math.cos(ang) + rng.normal(0, 10, 2)
        py = roads.y[start] + dist * math.sin(ang) + rng.normal(0, 10, 2)
        roads.add_chain([start, *roads.add_nodes(px, py).tolist()], {"highway": "footway"})
