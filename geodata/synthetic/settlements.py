"""Stages 1-2: the region polygon, the main towns, and the villages and hamlets around them.

:func:`place_settlements` returns a :class:`Layout` in EPSG:25832 with the towns first (the merged seat at index
0), then the villages and hamlets. Every later stage builds on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from geodata.synthetic._geometry import uniform_in
from geodata.synthetic.names import Namer
from geodata.synthetic.spec import CRS, OUTPUT_CRS, SyntheticSpec


@dataclass(frozen=True)
class Layout:
    """Settlements in EPSG:25832; towns come first, the seat at index 0."""

    region: shapely.Polygon
    x: np.ndarray
    y: np.ndarray
    pop: np.ndarray
    radius: np.ndarray
    kind: np.ndarray
    name: list[str]
    n_towns: int
    town_of: np.ndarray  # preliminary municipality (nearest town) of each settlement


def _built_radius(pop: np.ndarray | float) -> np.ndarray:
    """Return the radius (m) of a settlement's built-up area: density grows from ~1,200/km² (hamlets) to ~2,800/km²."""
    p = np.maximum(np.asarray(pop, dtype=float), 10.0)
    density_km2 = 600.0 + 400.0 * np.log10(p)
    return np.asarray(np.sqrt(p / (math.pi * density_km2)) * 1000.0)


def _region_polygon(spec: SyntheticSpec, rng: np.random.Generator, cx: float, cy: float) -> shapely.Polygon:
    """Return a slightly irregular convex polygon of area ``population / density`` centred on (cx, cy)."""
    area = spec.population / spec.density_per_km2 * 1e6
    theta = np.sort(rng.uniform(0.0, 2.0 * math.pi, 40))
    k = np.arange(1, 4)[:, None]
    amp = rng.uniform(0.02, 0.07, 3)[:, None]
    phase = rng.uniform(0.0, 2.0 * math.pi, 3)[:, None]
    r = 1.0 + (amp * np.cos(k * theta + phase)).sum(axis=0)
    aspect = rng.uniform(1.0, 1.4)
    px, py = r * np.cos(theta) * math.sqrt(aspect), r * np.sin(theta) / math.sqrt(aspect)
    rot = rng.uniform(0.0, math.pi)
    qx = px * math.cos(rot) - py * math.sin(rot)
    qy = px * math.sin(rot) + py * math.cos(rot)
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([qx, qy])))
    c = hull.centroid
    scale = math.sqrt(area / hull.area)
    coords = (np.asarray(hull.exterior.coords) - [c.x, c.y]) * scale + [cx, cy]
    return shapely.Polygon(np.round(coords, 2))


def _place_towns(region: shapely.Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """Spread ``n`` towns over the region by Lloyd relaxation on sample points, then jitter them a little."""
    samples = uniform_in(region, max(20_000, 300 * n), rng)
    towns = samples[rng.choice(len(samples), n, replace=False)].copy()
    for _ in range(20):
        label = cKDTree(towns).query(samples)[1]
        count = np.bincount(label, minlength=n)
        sx = np.bincount(label, samples[:, 0], minlength=n)
        sy = np.bincount(label, samples[:, 1], minlength=n)
        moved = count > 0
        towns[moved] = np.column_stack([sx[moved] / count[moved], sy[moved] / count[moved]])
    spacing = math.sqrt(region.area / n)
    jitter = rng.normal(0.0, 0.12 * spacing, towns.shape)
    inside = shapely.contains_xy(region, towns[:, 0] + jitter[:, 0], towns[:, 1] + jitter[:, 1])
    towns[inside] += jitter[inside]
    return towns


def _rank_sizes(total: float, cap: float, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Return settlement sizes :math:`s_k = s_1 k^{-b}` (jittered, in ``[min_settlement, cap]``) summing to ~total.

    :math:`s_1` is found by bisection so that the sizes down to ``min_settlement`` add up to ``total``. When even
    :math:`s_1` = ``cap`` is too little, the exponent :math:`b` is lowered instead (more, larger villages).
    """
    s_min = float(spec.min_settlement)
    if total < s_min:
        return np.zeros(0, dtype=np.int64)

    def mass(s1: float, b: float) -> float:
        count = int((s1 / s_min) ** (1.0 / b))
        return float(s1 * (np.arange(1, count + 1, dtype=float) ** -b).sum())

    b = spec.zipf_exponent
    cap = max(cap, s_min)
    if mass(cap, b) >= total:
        lo, hi = s_min, cap
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if mass(mid, b) < total else (lo, mid)
        s1 = hi
    else:
        s1, lo, hi = cap, 0.6, b
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if mass(cap, mid) >= total else (lo, mid)
        b = lo
    count = max(1, int((s1 / s_min) ** (1.0 / b)))
    sizes = s1 * np.arange(1, count + 1, dtype=float) ** -b * rng.lognormal(0.0, 0.2, count)
    sizes = np.clip(np.round(sizes * total / sizes.sum()), s_min, cap).astype(np.int64)
    return np.sort(sizes)[::-1]


def place_settlements(spec: SyntheticSpec, rng: np.random.Generator, namer: Namer) -> Layout:
    """Lay out the region, its main towns, and the villages and hamlets around them (stages 1-2).

    The town nearest the region's centroid becomes the merged seat, at index 0. Each settlement's preliminary
    municipality is its nearest town; the census areas of stage 5 settle the final one.
    """
    to_utm = Transformer.from_crs(OUTPUT_CRS, CRS, always_xy=True)
    cx, cy = to_utm.transform(*spec.centre)
    region = _region_polygon(spec, rng, float(cx), float(cy))
    shapely.prepare(region)
    n = spec.n_municipalities
    towns = _place_towns(region, n, rng)
    centroid = np.array([region.centroid.x, region.centroid.y])
    seat = int(np.argmin(np.hypot(*(towns - centroid).T)))
    towns = np.concatenate([towns[[seat]], np.delete(towns, seat, axis=0)])

    lo, hi = spec.town_population
    w = np.arange(1, n + 1, dtype=float) ** -0.9 * rng.lognormal(0.0, 0.1, n)
    sizes = np.sort(np.clip(np.round(spec.urban_share * spec.population * w / w.sum()), lo, hi))[::-1]
    others = np.maximum(np.minimum(sizes[1:], 0.9 * sizes[0]), lo)  # the seat stays clearly the biggest
    town_pop = np.concatenate([sizes[:1], rng.permutation(others)]).astype(np.int64)
    town_r = _built_radius(town_pop)
    # Keep each town's streets well inside the region: pull it towards the centre until it fits.
    boundary = region.exterior
    for i in range(n):
        for _ in range(40):
            if shapely.distance(boundary, shapely.Point(towns[i])) >= town_r[i] + 600.0:
                break
            towns[i] += 0.1 * (centroid - towns[i])

    samples = uniform_in(region, max(20_000, 300 * n), rng)
    share = np.bincount(cKDTree(towns).query(samples)[1], minlength=n) / len(samples)
    rural = spec.population - int(town_pop.sum())
    farms = min(spec.farm_share * spec.population, 0.6 * rural)
    village_total = share * (rural - farms)

    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(towns), extend_to=region, ordered=True))
    cells = shapely.intersection(cells, region)
    xs, ys, pops = _place_rural(
        region,
        towns,
        town_r,
        cells,
        [
            _rank_sizes(v, min(spec.village_max, 0.6 * p), spec, rng)
            for v, p in zip(village_total, town_pop, strict=True)
        ],
        spec,
        rng,
    )
    x = np.concatenate([towns[:, 0], xs])
    y = np.concatenate([towns[:, 1], ys])
    pop = np.concatenate([town_pop, pops]).astype(np.int64)
    kind = np.where(pop >= spec.village_threshold, "village", "hamlet").astype(object)
    kind[:n] = "town"
    names = [namer.place(town=True) for _ in range(n)] + [namer.place() for _ in range(len(pop) - n)]
    town_of = cKDTree(towns).query(np.column_stack([x, y]))[1].astype(np.int64)
    town_of[:n] = np.arange(n)
    return Layout(region, x, y, pop, _built_radius(pop), kind, names, n, town_of)


def _place_rural(
    region: shapely.Polygon,
    towns: np.ndarray,
    town_r: np.ndarray,
    cells: np.ndarray,
    sizes: Sequence[np.ndarray],
    spec: SyntheticSpec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place villages and hamlets by dart throwing in each former municipality, largest first.

    Two settlements keep ``max(base, r_i + r_j + 700 m)`` apart, with ``base`` 2 km between villages and 1.3 km
    otherwise; a settlement keeps 1.2 km of fields from a town's built-up edge and its own radius plus 400 m from
    the region's boundary. After repeated failures the spacing relaxes; a settlement that still does not fit is
    dropped, and its residents end up on farms.
    """
    boundary = region.exterior
    cell_size = 2_500.0
    grid: dict[tuple[int, int], list[int]] = {}
    px: list[float] = []
    py: list[float] = []
    pr: list[float] = []
    pv: list[bool] = []
    pp: list[int] = []
    max_r = 0.0
    for m, cell in enumerate(cells):
        stream = np.zeros((0, 4))
        pos = 0
        for s in sizes[m].tolist():
            r = float(_built_radius(s))
            village = s >= spec.village_threshold
            relax = 1.0
            for attempt in range(300):
                if attempt and attempt % 75 == 0:
                    relax *= 0.8
                if pos >= len(stream):
                    pts = uniform_in(cell, 256, rng)
                    d_edge = shapely.distance(boundary, shapely.points(pts))
                    d_town = (np.hypot(pts[:, :1] - towns[:, 0], pts[:, 1:] - towns[:, 1]) - town_r).min(axis=1)
                    stream, pos = np.column_stack([pts, d_edge, d_town]), 0
                x, y, d_edge, d_town = stream[pos].tolist()
                pos += 1
                if d_edge < r + 400.0 or d_town < r + 1_200.0 * relax:
                    continue
                need = max(2_000.0, r + max_r + 700.0)
                gx, gy = int(x // cell_size), int(y // cell_size)
                reach = math.ceil(need / cell_size)
                clash = False
                for ix in range(gx - reach, gx + reach + 1):
                    for iy in range(gy - reach, gy + reach + 1):
                        for j in grid.get((ix, iy), ()):
                            base = 2_000.0 if (village and pv[j]) else 1_300.0
                            if math.hypot(x - px[j], y - py[j]) < max(base, r + pr[j] + 700.0) * relax:
                                clash = True
                                break
                        if clash:
                            break
                    if clash:
                        break
                if clash:
                    continue
                grid.setdefault((gx, gy), []).append(len(px))
                px.append(x)
                py.append(y)
                pr.append(r)
                pv.append(village)
                pp.append(s)
                max_r = max(max_r, r)
                break
    return np.asarray(px), np.asarray(py), np.asarray(pp, dtype=np.int64)
