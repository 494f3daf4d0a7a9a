"""Stage 4: dwellings on plots along the streets, farms beside the rural roads, shops, schools, industry, land use.

Buildings are rectangles (centre, heading, half sizes) until :func:`footprints` turns them into corners for the
OSM file. Each dwelling holds an integer number of residents, which the census areas of stage 5 count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geodata.synthetic._geometry import uniform_in
from geodata.synthetic.roads import Network
from geodata.synthetic.settlements import Layout
from geodata.synthetic.spec import SyntheticSpec
from geodata.synthetic.streets import Streets
from geodata.synthetic.ways import Roads


@dataclass
class Dwellings:
    """Buildings under construction (a local accumulator): centre, heading, half sizes, tag, residents, owner."""

    x: list[np.ndarray]
    y: list[np.ndarray]
    angle: list[np.ndarray]
    half_w: list[np.ndarray]
    half_d: list[np.ndarray]
    tag: list[np.ndarray]
    residents: list[np.ndarray]
    settlement: list[np.ndarray]  # -1 for farms and non-residential buildings outside settlements

    def add(
        self, x: np.ndarray, y: np.ndarray, angle: np.ndarray, half_w: np.ndarray, half_d: np.ndarray,
        tag: np.ndarray, residents: np.ndarray, settlement: int,
    ) -> None:  # fmt: skip
        """Add buildings; ``settlement`` is the owner of all of them (-1 outside settlements)."""
        self.x.append(x)
        self.y.append(y)
        self.angle.append(angle)
        self.half_w.append(half_w)
        self.half_d.append(half_d)
        self.tag.append(np.asarray(tag, dtype=object))
        self.residents.append(np.asarray(residents, dtype=np.int64))
        self.settlement.append(np.full(len(x), settlement, dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        """Return each field concatenated over everything added, in the order added."""
        fields = ("x", "y", "angle", "half_w", "half_d", "tag", "residents", "settlement")
        return {f: np.concatenate(getattr(self, f)) for f in fields}


def _split_residents(total: int, n: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give each of ``n`` buildings one resident and share the rest in proportion to ``weights``."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    extra = rng.multinomial(total - n, weights / weights.sum())
    return np.asarray(1 + extra, dtype=np.int64)


def _slots(
    roads: Roads, edges: np.ndarray, width: float, rows: int, rng: np.random.Generator, first: float = 14.0
) -> tuple[np.ndarray, ...]:
    """Return plot centres along both sides of ``edges``: x, y, heading, row, and the edge index.

    Row ``r`` lies ``first + 26 r`` metres from the street's centre line; plots keep clear of the street's
    ends so that they do not overlap the plots of the crossing street.
    """
    x, y = roads.xy()
    u, v = roads.u[edges], roads.v[edges]
    px, py, qx, qy = x[u], y[u], x[v], y[v]
    length = np.hypot(qx - px, qy - py)
    ux, uy = (qx - px) / np.maximum(length, 1e-9), (qy - py) / np.maximum(length, 1e-9)
    heading = np.arctan2(uy, ux)
    out: list[list[np.ndarray]] = [[], [], [], [], []]
    for row in range(rows):
        offset = first + 26.0 * row
        margin = offset + 9.0
        count = np.maximum(np.floor((length - 2 * margin) / width), 0).astype(np.int64)
        e = np.repeat(np.arange(len(edges)), count)
        k = np.arange(e.size) - np.repeat(np.cumsum(count) - count, count)
        t = margin + (k + 0.5) * width + rng.uniform(-0.1, 0.1, e.size) * width
        for sgn in (1.0, -1.0):
            out[0].append(px[e] + t * ux[e] - sgn * offset * uy[e])
            out[1].append(py[e] + t * uy[e] + sgn * offset * ux[e])
            out[2].append(heading[e])
            out[3].append(np.full(e.size, row))
            out[4].append(e)
    return tuple(np.concatenate(parts) for parts in out)


def place_settlement_buildings(
    roads: Roads,
    grid: Streets,
    pop: int,
    kind: str,
    s: int,
    cx: float,
    cy: float,
    spec: SyntheticSpec,
    region: shapely.Polygon,
    industrial: shapely.Geometry | None,
    out: Dwellings,
    rng: np.random.Generator,
) -> int:
    """Place a settlement's dwellings (and its shops and school) on plots nearest the centre; return residents.

    About ``pop / persons_per_building`` dwellings take the plots nearest the centre (first row of plots first),
    each with at least one resident; the rest of ``pop`` is shared in proportion to the building type (flats hold
    more). Where the streets offer too few plots, fewer dwellings hold more residents each; all of ``pop`` is
    housed unless there is no plot at all.
    """
    n_res = max(1, round(pop / spec.persons_per_building))
    n_shop = int(np.clip(pop // 1_500, 2, 12)) if kind == "town" else (1 if pop >= 800 else 0)
    n_school = 1 if kind == "town" or pop >= 500 else 0
    wanted = n_res + n_shop + n_school
    x, y = roads.xy()
    u, v = roads.u[grid.edges], roads.v[grid.edges]
    usable = np.maximum(np.hypot(x[v] - x[u], y[v] - y[u]) - 46.0, 0.0).sum()
    rows = 1
    while rows < 3 and 2 * rows * usable / 14.0 < 1.3 * wanted:
        rows += 1
    width = float(np.clip(2 * rows * usable / (1.4 * wanted), 14.0, 32.0)) if usable > 0 else 14.0
    sx, sy, heading, row, _ = _slots(roads, grid.edges, width, rows, rng)
    ok = shapely.contains_xy(region, sx, sy)
    if industrial is not None:
        ok &= ~shapely.contains_xy(industrial, sx, sy)
    sx, sy, heading, row = sx[ok], sy[ok], heading[ok], row[ok]
    score = np.hypot(sx - cx, sy - cy) * rng.lognormal(0.0, 0.12, sx.size) + 60.0 * row
    take = np.argsort(score, kind="stable")[:wanted]
    sx, sy, heading = sx[take], sy[take], heading[take]
    n = take.size
    half_w = rng.uniform(4.0, min(7.5, (width - 3.0) / 2.0), n)
    half_d = rng.uniform(4.0, 7.5, n)
    tag = np.empty(n, dtype=object)
    # The most central plots hold shops; the school sits a little further out.
    rank = np.arange(n)
    shops = rank < n_shop
    tag[shops] = "commercial"
    school_at = n_shop + min(n - n_shop - 1, max(0, n // 5)) if n_school else -1
    res = ~shops
    if n_school and n > n_shop:
        tag[school_at] = "school"
        res[school_at] = False
        half_w[school_at], half_d[school_at] = (width - 2.0) / 2.0, 10.0
    half_w[shops] = (width - 2.0) / 2.0
    half_d[shops] = rng.uniform(6.0, 9.0, int(shops.sum()))
    res_idx = np.flatnonzero(res)
    n_res = res_idx.size
    inner = np.arange(n_res) < (0.25 * n_res if kind == "town" else 0)
    draw = rng.random(n_res)
    res_tag = np.where(draw < 0.5, "detached", np.where(draw < 0.9, "house", "yes")).astype(object)
    res_tag[inner] = np.where(draw[inner] < 0.35, "apartments", np.where(draw[inner] < 0.7, "terrace", "house"))
    tag[res_idx] = res_tag
    weight = np.where(res_tag == "apartments", 8.0, np.where(res_tag == "terrace", 2.5, 1.8))
    residents = np.zeros(n, dtype=np.int64)
    if n_res:
        residents[res_idx] = _split_residents(max(pop, n_res), n_res, weight, rng)
    out.add(sx, sy, heading, half_w, half_d, tag, residents, s)
    return int(residents.sum())


def place_farms(
    roads: Roads,
    net: Network,
    lay: Layout,
    residents_total: int,
    spec: SyntheticSpec,
    out: Dwellings,
    rng: np.random.Generator,
) -> list[tuple[int, float, int]]:
    """Scatter farms beside the rural roads, away from the villages; give some a driveway.

    Returns the forced splits ``(edge, t, node)`` where driveways join their road.
    """
    if residents_total <= 0:
        return []
    n = max(1, min(residents_total, round(residents_total / spec.persons_per_building)))
    x, y = roads.xy()
    edges = net.rural_edges
    u, v = roads.u[edges], roads.v[edges]
    length = np.hypot(x[v] - x[u], y[v] - y[u])
    prob = length / length.sum()
    tree = cKDTree(np.column_stack([lay.x, lay.y]))
    k_near = min(4, len(lay.x))
    industry = shapely.STRtree(net.industrial) if net.industrial else None
    px_parts: list[np.ndarray] = []
    py_parts: list[np.ndarray] = []
    anchors: list[np.ndarray] = []
    got = 0
    for _ in range(40):
        if got >= n:
            break
        m = int(1.5 * (n - got)) + 32
        e = rng.choice(edges.size, size=m, p=prob)
        t = rng.uniform(0.1, 0.9, m)
        near = rng.random(m) < 0.6
        off = np.where(near, rng.uniform(50.0, 160.0, m), rng.uniform(160.0, 500.0, m))
        off *= np.where(rng.random(m) < 0.5, 1.0, -1.0)
        dx, dy = x[v[e]] - x[u[e]], y[v[e]] - y[u[e]]
        norm = np.maximum(np.hypot(dx, dy), 1e-9)
        fx = x[u[e]] + t * dx - off * dy / norm
        fy = y[u[e]] + t * dy + off * dx / norm
        ok = shapely.contains_xy(lay.region, fx, fy)
        dist, idx = tree.query(np.column_stack([fx, fy]), k=k_near)
        dist, idx = dist.reshape(m, -1), idx.reshape(m, -1)
        ok &= (dist > lay.radius[idx] + 150.0).all(axis=1)
        if industry is not None:
            hit, _ = industry.query(shapely.points(fx, fy), predicate="intersects")
            ok[hit] = False
        ok_idx = np.flatnonzero(ok)[: n - got]
        px_parts.append(fx[ok_idx])
        py_parts.append(fy[ok_idx])
        anchors.append(np.column_stack([edges[e[ok_idx]], t[ok_idx], off[ok_idx]]))
        got += ok_idx.size
    fx, fy = np.concatenate(px_parts), np.concatenate(py_parts)
    anchor = np.concatenate(anchors)
    if got < n:  # very crowded roads: put the rest anywhere in the fields
        extra = uniform_in(lay.region, n - got, rng)
        fx, fy = np.concatenate([fx, extra[:, 0]]), np.concatenate([fy, extra[:, 1]])
    n = fx.size
    heading = rng.uniform(0.0, math.pi, n)
    tag = np.where(rng.random(n) < 0.5, "house", "detached").astype(object)
    residents = _split_residents(residents_total, n, np.ones(n), rng)
    out.add(fx, fy, heading, rng.uniform(5.0, 7.5, n), rng.uniform(4.0, 6.0, n), tag, residents, -1)

    forced: list[tuple[int, float, int]] = []
    for k in np.flatnonzero((rng.random(len(anchor)) < 0.3) & (np.abs(anchor[:, 2]) < 200.0)).tolist():
        edge, at, offset = int(anchor[k, 0]), float(anchor[k, 1]), float(anchor[k, 2])
        ua, va = int(roads.u[edge]), int(roads.v[edge])
        ax = float(roads.x[ua] + at * (roads.x[va] - roads.x[ua]))
        ay = float(roads.y[ua] + at * (roads.y[va] - roads.y[ua]))
        dx, dy = float(fx[k]) - ax, float(fy[k]) - ay
        # The driveway stops at the farmhouse's wall, not inside it.
        frac = max(0.0, 1.0 - 12.0 / max(abs(offset), 13.0))
        ends = roads.add_nodes(np.array([ax, ax + frac * dx]), np.array([ay, ay + frac * dy]))
        roads.add_chain(ends, {"highway": "service", "service": "driveway"})
        forced.append((edge, at, int(ends[0])))
    return forced


def industrial_buildings(
    roads: Roads, segs: list[int], poly: shapely.Polygon, out: Dwellings, rng: np.random.Generator
) -> None:
    """Place large industrial buildings, without residents, beside the roads ``segs`` of an industrial zone."""
    sx, sy, heading, _, _ = _slots(roads, np.asarray(segs, dtype=np.int64), 55.0, 1, rng, first=35.0)
    inside = shapely.contains_xy(poly, sx, sy)
    sx, sy, heading = sx[inside], sy[inside], heading[inside]
    n = sx.size
    tag = np.full(n, "industrial", dtype=object)
    tag[rng.random(n) < 0.2] = "yes"
    out.add(sx, sy, heading, rng.uniform(10.0, 20.0, n), rng.uniform(8.0, 14.0, n), tag, np.zeros(n), -1)


def footprints(d: dict[str, np.ndarray]) -> np.ndarray:
    """Return the four corners (n, 4, 2) of each rectangular footprint."""
    c, s = np.cos(d["angle"]), np.sin(d["angle"])
    a, b = d["half_w"], d["half_d"]
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    lx = local[None, :, 0] * a[:, None]
    ly = local[None, :, 1] * b[:, None]
    x = d["x"][:, None] + lx * c[:, None] - ly * s[:, None]
    y = d["y"][:, None] + lx * s[:, None] + ly * c[:, None]
    return np.stack([x, y], axis=2)


def _hull(x: np.ndarray, y: np.ndarray, pad: float) -> shapely.Polygon:
    """Return a padded, simplified hull of a settlement's dwellings (concave for big ones)."""
    pts = shapely.multipoints(np.column_stack([x, y]))
    if len(x) >= 400:
        step = max(1, len(x) // 3_000)
        hull = shapely.concave_hull(shapely.multipoints(np.column_stack([x[::step], y[::step]])), ratio=0.15)
    else:
        hull = shapely.convex_hull(pts)
    poly = shapely.buffer(hull, pad, quad_segs=2).simplify(4.0)
    if poly.geom_type != "Polygon":
        poly = shapely.convex_hull(poly)
    return poly


def landuse_polygons(
    lay: Layout, net: Network, d: dict[str, np.ndarray]
) -> list[tuple[shapely.Polygon, dict[str, str]]]:
    """Return a residential land-use polygon around each settlement's buildings, and the industrial zones."""
    polys: list[tuple[shapely.Polygon, dict[str, str]]] = []
    owner = d["settlement"]
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(lay.pop) + 1))
    for s in range(len(lay.pop)):
        idx = order[bounds[s] : bounds[s + 1]]
        if idx.size >= 3:
            polys.append((_hull(d["x"][idx], d["y"][idx], 25.0), {"landuse": "residential", "name": lay.name[s]}))
    for t, poly in zip(net.industrial_town, net.industrial, strict=True):
        polys.append((poly, {"landuse": "industrial", "name": f"{lay.name[t]} Erhvervsområde"}))
    return polys
