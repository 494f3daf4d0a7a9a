"""Synthetic merged municipalities: a seeded, realistic stand-in for a Danish region after the 2007 reform.

:func:`generate_region` builds, in EPSG:25832 metres, a region of several former municipalities merged into one,
and converts it to lon/lat for output. It is the embedded default region of ``make demo`` and the input of scale
benchmarks, so it must look and behave like real data while being exactly reproducible: everything is drawn from
one ``numpy.random.default_rng(seed)`` (split into independent streams per stage), nothing depends on hash order,
and the same preset and seed give byte-identical files.

The construction, stage by stage:

1. **Region and towns.** A slightly irregular convex polygon whose area is ``population / density_per_km2``.
   One main town per former municipality, spread by Lloyd relaxation; the town nearest the centre is the biggest,
   the merged seat. Town sizes follow a rank-size law clipped to ``town_population``.
2. **Villages and hamlets.** The rest of the non-farm population lives in villages and hamlets whose sizes follow
   a Zipf law :math:`s_k = s_1 k^{-b}` per former municipality (a few villages of 500-1,500, many hamlets of
   30-200), placed by dart throwing with a minimum spacing of 1.3-2 km plus their built-up radii.
3. **Roads.** Each settlement gets an irregular grid of ``residential`` streets scaled to its population. Between
   settlements, every road is an edge of the Gabriel graph of the centres: the Gabriel shortest paths along the
   towns' minimum spanning tree (and a few extra town pairs) are ``primary``/``secondary``, each village's path
   to its town is ``tertiary``, and the rest of the relative-neighbourhood graph plus some loops is
   ``unclassified``. A Gabriel graph is planar; a final planarisation pass still inserts a shared node wherever
   two drawn ways cross. Through roads continue into town along the street grid with ``maxspeed=50``; a few
   streets of the seat are one-way, kept only if the grid stays strongly connected. Footways, tracks and farm
   driveways (``service``) are dead ends that a drive network must drop.
4. **Dwellings.** About one building per ``persons_per_building`` residents, on plots along the streets (nearest
   the centre first) and at farms beside the rural roads; each dwelling holds an integer number of residents.
5. **Census areas (parishes).** Voronoi cells of the towns' quarters, the villages and a few rural fill points,
   clipped to the region. Each parish joins the municipality whose town reaches it first through the parish
   adjacency graph (Dijkstra), so municipalities are contiguous unions of whole parishes. A parish's population
   is the sum of the residents of the dwellings inside it; its age groups are drawn with a 65+ share that grows
   with its rural share.
6. **Libraries.** A main library in each main town (35-50 staffed hours a week) and one or two small branches
   (8-20 hours) in the largest villages of each former municipality.

:func:`synthetic_road_graph` reuses stages 1-3 at a scale chosen for a requested node count and returns an
osmnx-style drive graph directly, for matrix benchmarks.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final
from xml.sax.saxutils import escape

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from geodata.network import DEFAULT_HWY_SPEEDS

#: Projected CRS in which everything is generated (ETRS89 / UTM zone 32N, metres).
CRS: Final = "EPSG:25832"
#: CRS of every output file.
OUTPUT_CRS: Final = "EPSG:4326"

#: The seven UK public-library schema columns for staffed hours.
HOURS_COLUMNS: Final = tuple(
    f"{day} staffed hours" for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
)

#: Road classes from the most to the least important; a later class never overwrites an earlier one.
_ROAD_RANK: Final = {"primary": 0, "secondary": 1, "tertiary": 2, "unclassified": 3, "residential": 4}
_NOT_DRIVE: Final = frozenset({"footway", "track", "service"})

#: One OSM way: its id, its node ids (closed ways repeat the first node last) and its tags.
OsmRecord = tuple[int, np.ndarray, dict[str, str]]


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: the size and character of a synthetic merged municipality.

    Parameters
    ----------
    n_municipalities
        Number of former municipalities (each with a main town and a main library), 2-400.
    population
        Target total population; the generated total equals it exactly.
    buildings
        Emit building footprints. ``False`` keeps dwellings internally (for census counts) and land use, but
        writes no footprints, for large presets.
    density_per_km2
        Residents per km² of the whole region, which sets its area (inland Jutland: 50-90).
    urban_share
        Target share of residents living in the main towns (before clipping to ``town_population``).
    farm_share
        Target share of residents living on scattered farms.
    town_population
        Bounds (inclusive) on a main town's population.
    zipf_exponent
        Rank-size exponent :math:`b` of villages and hamlets within a former municipality.
    min_settlement
        Population of the smallest hamlet.
    village_threshold
        Settlements at least this large are villages; smaller ones are hamlets.
    village_max
        Largest village; villages also stay below 60% of their main town.
    persons_per_building
        Mean residents per dwelling building.
    node_spacing_m
        Range of distances (m) between consecutive nodes of rural roads.
    centre
        (lon, lat) of the region's centre; it must lie in UTM zone 32N (lon 3-15, lat 45-70).
    name
        Preset name, recorded in the README.
    """

    n_municipalities: int
    population: int
    buildings: bool = True
    density_per_km2: float = 70.0
    urban_share: float = 0.5
    farm_share: float = 0.1
    town_population: tuple[int, int] = (2_000, 15_000)
    zipf_exponent: float = 1.25
    min_settlement: int = 30
    village_threshold: int = 200
    village_max: int = 1_500
    persons_per_building: float = 2.2
    node_spacing_m: tuple[float, float] = (100.0, 250.0)
    centre: tuple[float, float] = (9.5, 56.25)
    name: str = "custom"

    def __post_init__(self) -> None:
        if not 2 <= self.n_municipalities <= 400:
            raise ValueError(f"n_municipalities must lie in [2, 400], got {self.n_municipalities}")
        lo, hi = self.town_population
        if not 100 <= lo <= hi <= 5_000_000:
            raise ValueError(f"town_population must satisfy 100 <= low <= high <= 5e6, got {self.town_population}")
        if not 1_000 <= self.population <= 20_000_000:
            raise ValueError(f"population must lie in [1000, 2e7], got {self.population}")
        if self.population < 1.3 * self.n_municipalities * lo:
            raise ValueError(
                f"population {self.population} is too small for {self.n_municipalities} main towns of at least "
                f"{lo} residents (need at least {math.ceil(1.3 * self.n_municipalities * lo)})"
            )
        if not 5.0 <= self.density_per_km2 <= 5_000.0:
            raise ValueError(f"density_per_km2 must lie in [5, 5000], got {self.density_per_km2}")
        if not 0.05 <= self.urban_share <= 0.95:
            raise ValueError(f"urban_share must lie in [0.05, 0.95], got {self.urban_share}")
        if not 0.0 <= self.farm_share <= 0.5:
            raise ValueError(f"farm_share must lie in [0, 0.5], got {self.farm_share}")
        if self.urban_share + self.farm_share > 0.97:
            raise ValueError("farm_share: urban_share + farm_share must leave at least 3% for villages")
        if not 0.5 <= self.zipf_exponent <= 3.0:
            raise ValueError(f"zipf_exponent must lie in [0.5, 3], got {self.zipf_exponent}")
        if not 5 <= self.min_settlement <= 1_000:
            raise ValueError(f"min_settlement must lie in [5, 1000], got {self.min_settlement}")
        if not self.min_settlement < self.village_threshold <= lo:
            raise ValueError(
                f"village_threshold must lie in (min_settlement, town_population[0]], got {self.village_threshold}"
            )
        if not self.village_threshold < self.village_max <= hi:
            raise ValueError(f"village_max must lie in (village_threshold, town_population[1]], got {self.village_max}")
        if not 1.0 <= self.persons_per_building <= 10.0:
            raise ValueError(f"persons_per_building must lie in [1, 10], got {self.persons_per_building}")
        s_lo, s_hi = self.node_spacing_m
        if not 20.0 <= s_lo <= s_hi <= 2_000.0:
            raise ValueError(f"node_spacing_m must satisfy 20 <= low <= high <= 2000, got {self.node_spacing_m}")
        lon, lat = self.centre
        if not (3.0 <= lon <= 15.0 and 45.0 <= lat <= 70.0):
            raise ValueError(f"centre must lie in UTM zone 32N (lon 3-15, lat 45-70), got {self.centre}")


#: Named specifications. ``toy`` is for unit tests, ``demo`` for ``make demo``, the rest for scale benchmarks.
PRESETS: Mapping[str, SyntheticSpec] = MappingProxyType(
    {
        "toy": SyntheticSpec(3, 10_000, urban_share=0.6, farm_share=0.06, zipf_exponent=1.4, name="toy"),
        "small": SyntheticSpec(4, 25_000, name="small"),
        "demo": SyntheticSpec(5, 60_000, urban_share=0.45, name="demo"),
        "county": SyntheticSpec(12, 300_000, density_per_km2=90.0, town_population=(3_000, 60_000), name="county"),
        "national": SyntheticSpec(
            98,
            5_900_000,
            buildings=False,
            density_per_km2=137.0,
            urban_share=0.6,
            farm_share=0.08,
            town_population=(5_000, 600_000),
            village_max=8_000,
            name="national",
        ),
    }
)


@dataclass(frozen=True)
class SyntheticRegion:
    """A generated region, in memory.

    Attributes
    ----------
    spec, seed
        What was generated.
    crs
        The CRS the geometry was generated in (``"EPSG:25832"``); every table below is in EPSG:4326.
    node_ids, node_lon, node_lat
        Every OSM node (roads, buildings, land use), ids ascending from 1.
    ways
        Road ways as ``(way_id, node_ids, tags)``.
    buildings, landuse
        Closed ways (the last node id repeats the first) with their ``building`` or ``landuse`` tags.
    settlements
        ``name, municipality, kind ('town'|'village'|'hamlet'), population, lon, lat``.
    areas
        Census areas (parishes): ``area_id, name, municipality, population, age_0_17, age_18_64, age_65_plus``.
    municipalities
        Former municipalities: ``municipality, population`` and their polygon (a union of whole parishes).
    branches
        Libraries: ``branch_id, "Library name", municipality``, the seven ``"<Day> staffed hours"`` columns,
        ``must_keep, closable, annual_cost`` (empty), ``closure_cost``.
    farm_population
        Residents on farms, outside every settlement. Areas sum to settlements plus this.
    """

    spec: SyntheticSpec
    seed: int
    crs: str
    node_ids: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    ways: list[OsmRecord]
    buildings: list[OsmRecord]
    landuse: list[OsmRecord]
    settlements: pd.DataFrame
    areas: gpd.GeoDataFrame
    municipalities: gpd.GeoDataFrame
    branches: gpd.GeoDataFrame
    farm_population: int

    def summary(self) -> str:
        """Return a one-line description of the region's size."""
        return (
            f"{self.spec.name} seed={self.seed}: {len(self.municipalities)} municipalities, "
            f"{int(self.areas['population'].sum())} residents in {len(self.settlements)} settlements and on farms "
            f"({self.farm_population}), {len(self.areas)} areas, {len(self.branches)} libraries, "
            f"{len(self.node_ids)} nodes, {len(self.ways)} road ways, {len(self.buildings)} buildings"
        )


# --------------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------------

_STEMS: Final = (
    "Hvid", "Skov", "Lund", "Ege", "Birke", "Ask", "Hjort", "Ravn", "Ulf", "Bjørn", "Sten", "Sand", "Mose", "Kær",
    "Hede", "Bakke", "Dal", "Vand", "Sø", "Gud", "Tor", "Frej", "Od", "Tyr", "Hol", "Ring", "Bram", "Gjern",
    "Hammel", "Thor", "Fal", "Grind", "Sej", "Ans", "Bor", "Fur", "Hald", "Kjel", "Lem", "Rye", "Vium", "Lin",
    "Gam", "Ål", "Ølg", "Hør", "Dals", "Tinn", "Sval", "Kvong", "Bred", "Grøn", "Ny", "Gammel", "Rød", "Sort",
    "Hjer", "Tarm", "Vorg", "Gjed", "Haun", "Rand", "Ebel", "Trust", "Fjel", "Fly", "Hav", "Klo", "Mør", "Stub",
)  # fmt: skip
_MIDDLES: Final = ("", "", "", "", "e", "s", "er", "el", "ing")
_SUFFIXES: Final = (
    "by", "rup", "strup", "lev", "sted", "ning", "holm", "købing", "bjerg", "skov", "lund", "torp", "toft", "høj",
    "bæk", "um", "ager", "inge", "mark", "dal", "lunde", "borg",
)  # fmt: skip
_TOWN_SUFFIXES: Final = ("købing", "sted", "by", "holm", "strup", "lev", "rup", "bjerg", "borg", "ning")
_QUALIFIERS: Final = ("Lille", "Store", "Nørre", "Sønder", "Vester", "Øster", "Ny", "Gammel")
_STREET_STEMS: Final = (
    "Birke", "Ege", "Linde", "Ahorn", "Kastanie", "Rose", "Hyld", "Skov", "Eng", "Mose", "Bakke", "Mølle",
    "Skole", "Kirke", "Præste", "Smede", "Mejeri", "Sol", "Vester", "Øster", "Nørre", "Sønder", "Grøn", "Park",
    "Tvær", "Fasan", "Hjorte", "Ugle", "Lærke", "Svale", "Stær", "Bøge", "Pile", "Hassel", "Kløver", "Vibe",
    "Agerhøns", "Tjørne", "Ene", "Gran", "Fyrre", "Lyng", "Toft", "Kilde", "Bæk", "Å", "Dam", "Stations",
)  # fmt: skip
_STREET_KINDS: Final = ("vej", "vej", "vej", "gade", "vænget", "toften", "parken", "haven")
_TOWN_PARISHES: Final = ("Vor Frue", "Sankt Nikolaj", "Sankt Mortens", "Sankt Pauls", "Budolfi", "Sankt Jørgens")


class _Namer:
    """Draws unique Danish-sounding place names (a local helper; never shared between calls)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.street_pool = [s + k if k.islower() else f"{s} {k}" for s in _STREET_STEMS for k in _STREET_KINDS]

    def place(self, *, town: bool = False) -> str:
        suffixes = _TOWN_SUFFIXES if town else _SUFFIXES
        for attempt in range(200):
            stem = str(self.rng.choice(_STEMS))
            middle = str(self.rng.choice(_MIDDLES))
            suffix = str(self.rng.choice(suffixes))
            name = (stem + middle + suffix).capitalize()
            if attempt >= 50:
                name = f"{self.rng.choice(_QUALIFIERS)} {name}"
            if name not in self.used:
                self.used.add(name)
                return name
        k = 2
        while f"{name} {k}" in self.used:
            k += 1
        self.used.add(f"{name} {k}")
        return f"{name} {k}"

    def streets(self, n: int) -> list[str]:
        """Return ``n`` street names, unique within one settlement where the pool allows."""
        pool = self.street_pool
        order = self.rng.permutation(len(pool))
        names = [pool[i] for i in order[:n].tolist()]
        while len(names) < n:
            names.append(f"{names[len(names) % len(pool)]} {len(names) // len(pool) + 1}")
        return names


def _slug(name: str) -> str:
    text = name.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


# --------------------------------------------------------------------------------------------------------------
# Stage 1-2: region, towns, villages and hamlets
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
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
    """Radius (m) of a settlement's built-up area: density grows from ~1,200/km² (hamlets) to ~2,800/km²."""
    p = np.maximum(np.asarray(pop, dtype=float), 10.0)
    density_km2 = 600.0 + 400.0 * np.log10(p)
    return np.asarray(np.sqrt(p / (math.pi * density_km2)) * 1000.0)


def _uniform_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``n`` points drawn uniformly in ``poly`` by rejection from its bounding box."""
    shapely.prepare(poly)
    minx, miny, maxx, maxy = poly.bounds
    fill = max(poly.area / ((maxx - minx) * (maxy - miny)), 0.05)
    parts, got = [], 0
    while got < n:
        m = int(1.3 * (n - got) / fill) + 16
        x, y = rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)
        ok = shapely.contains_xy(poly, x, y)
        parts.append(np.column_stack([x[ok], y[ok]]))
        got += int(ok.sum())
    return np.concatenate(parts)[:n]


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
    samples = _uniform_in(region, max(20_000, 300 * n), rng)
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


def _layout(spec: SyntheticSpec, rng: np.random.Generator, namer: _Namer) -> _Layout:
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

    samples = _uniform_in(region, max(20_000, 300 * n), rng)
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
    return _Layout(region, x, y, pop, _built_radius(pop), kind, names, n, town_of)


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
                    pts = _uniform_in(cell, 256, rng)
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


# --------------------------------------------------------------------------------------------------------------
# Stage 3: roads
# --------------------------------------------------------------------------------------------------------------


class _Column:
    """A growable numpy array (amortised O(1) appends)."""

    def __init__(self, dtype: type) -> None:
        self.data: np.ndarray = np.zeros(1024, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray | Sequence[float]) -> None:
        values = np.asarray(values, dtype=self.data.dtype)
        need = self.n + values.size
        if need > self.data.size:
            grown = np.zeros(max(need, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = values
        self.n = need

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class _Roads:
    """Road nodes and directed segments under construction (a local builder; never shared between calls).

    Each segment belongs to a *group* (one drawn polyline) at position ``seq``; ways are assembled at the end
    from runs of consecutive segments of one group with identical tags. The array properties are views: writing
    into them edits the builder.
    """

    def __init__(self) -> None:
        self._x, self._y = _Column(float), _Column(float)
        self._u, self._v, self._group, self._tag = (
            _Column(np.int64),
            _Column(np.int64),
            _Column(np.int64),
            _Column(np.int64),
        )
        self._seq = _Column(float)
        self.tags: list[dict[str, str]] = []
        self._tag_ids: dict[tuple[tuple[str, str], ...], int] = {}
        self.n_groups = 0

    @property
    def x(self) -> np.ndarray:
        """Node eastings (m)."""
        return self._x.view()

    @property
    def y(self) -> np.ndarray:
        """Node northings (m)."""
        return self._y.view()

    @property
    def u(self) -> np.ndarray:
        """Segment start nodes."""
        return self._u.view()

    @property
    def v(self) -> np.ndarray:
        """Segment end nodes."""
        return self._v.view()

    @property
    def group(self) -> np.ndarray:
        """The polyline each segment belongs to."""
        return self._group.view()

    @property
    def seq(self) -> np.ndarray:
        """Each segment's position along its polyline."""
        return self._seq.view()

    @property
    def tag(self) -> np.ndarray:
        """Each segment's index into :attr:`tags`."""
        return self._tag.view()

    def add_nodes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        start = self._x.n
        self._x.extend(x)
        self._y.extend(y)
        return np.arange(start, self._x.n, dtype=np.int64)

    def add_edges(self, u: np.ndarray, v: np.ndarray, group: np.ndarray, seq: np.ndarray, tag: np.ndarray) -> None:
        for col, values in ((self._u, u), (self._v, v), (self._group, group), (self._seq, seq), (self._tag, tag)):
            col.extend(values)

    def tag_id(self, tags: Mapping[str, str]) -> int:
        key = tuple(sorted(tags.items()))
        found = self._tag_ids.get(key)
        if found is None:
            found = self._tag_ids[key] = len(self.tags)
            self.tags.append(dict(key))
        return found

    def add_chain(self, nodes: Sequence[int] | np.ndarray, tags: Mapping[str, str]) -> tuple[int, list[int]]:
        """Add a polyline through ``nodes``; return its group and its segment indices."""
        group, tag = self.n_groups, self.tag_id(tags)
        self.n_groups += 1
        ids = np.asarray(nodes, dtype=np.int64)
        m = ids.size - 1
        first = self._u.n
        self.add_edges(ids[:-1], ids[1:], np.full(m, group), np.arange(m, dtype=float), np.full(m, tag))
        return group, list(range(first, first + m))

    def retag(self, edge: int, **changes: str) -> None:
        self.tag[edge] = self.tag_id({**self.tags[int(self.tag[edge])], **changes})

    def highway(self, edge: int) -> str:
        return self.tags[int(self.tag[edge])]["highway"]

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


@dataclass(frozen=True)
class _Streets:
    """One settlement's street grid."""

    centre: int
    nodes: np.ndarray
    edges: np.ndarray
    rows: list[list[int]]  # the segments of each street (grid row or column run)
    cells: dict[tuple[int, int], int]  # grid index -> node


def _street_grid(
    roads: _Roads, cx: float, cy: float, radius: float, spacing: float, town: bool, rng: np.random.Generator,
    namer: _Namer,
) -> _Streets:  # fmt: skip
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
    return _Streets(int(node_of[centre]), ids, np.asarray(edges, dtype=np.int64), rows, cells)


def _grid_spacing(pop: int) -> float:
    return float(np.clip(105.0 + 18.0 * math.log10(max(pop, 10)), 110.0, 210.0))


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


@dataclass(frozen=True)
class _Network:
    roads: _Roads
    streets: list[_Streets]
    rural_edges: np.ndarray  # segments of roads between settlements (farms sit beside them)
    industrial: list[shapely.Polygon]
    industrial_town: list[int]
    spur_edges: list[list[int]]


def _extreme_node(roads: _Roads, streets: _Streets, ux: float, uy: float) -> int:
    nodes = streets.nodes
    xs, ys = roads.x[nodes], roads.y[nodes]
    return int(nodes[int(np.argmax(xs * ux + ys * uy))])


def _road_classes(lay: _Layout, spec: SyntheticSpec, rng: np.random.Generator) -> list[tuple[int, int, str, str]]:
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
            if k not in cls or _ROAD_RANK[c] < _ROAD_RANK[cls[k]]:
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


def _build_roads(
    lay: _Layout,
    spec: SyntheticSpec,
    rng: np.random.Generator,
    namer: _Namer,
    *,
    target_nodes: int | None = None,
    extras: bool = True,
) -> _Network:
    """Lay out streets, the inter-settlement road hierarchy, and (with ``extras``) footways, tracks and industry.

    With ``target_nodes``, the spacing of rural road nodes is chosen to reach about that many nodes in all.
    """
    roads = _Roads()
    streets: list[_Streets] = []
    for k in range(len(lay.pop)):
        pop = int(lay.pop[k])
        streets.append(
            _street_grid(
                roads, float(lay.x[k]), float(lay.y[k]), float(lay.radius[k]), _grid_spacing(pop),
                lay.kind[k] == "town", rng, namer,
            )
        )  # fmt: skip
    links = _road_classes(lay, spec, rng)
    ends: list[tuple[int, int]] = []
    for i, j, _, _ in links:
        ux, uy = lay.x[j] - lay.x[i], lay.y[j] - lay.y[i]
        norm = math.hypot(ux, uy)
        ux, uy = ux / norm, uy / norm
        ends.append((_extreme_node(roads, streets[i], ux, uy), _extreme_node(roads, streets[j], -ux, -uy)))
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

    _through_roads(roads, streets, lay, attach)
    _oneway_streets(roads, streets[0], rng)
    industrial: list[shapely.Polygon] = []
    industrial_town: list[int] = []
    spur_edges: list[list[int]] = []
    if extras:
        _footways(roads, streets, lay, rng)
        _tracks(roads, np.asarray(rural, dtype=np.int64), max(1, len(lay.pop) // 3), rng)
        for t in range(lay.n_towns):
            poly, segs = _industrial_zone(roads, streets[t], lay, t, attach, rng)
            industrial.append(poly)
            industrial_town.append(t)
            spur_edges.append(segs)
    return _Network(roads, streets, np.asarray(rural, dtype=np.int64), industrial, industrial_town, spur_edges)


def _grid_csr(roads: _Roads, streets: _Streets, *, directed: bool) -> tuple[sp.csr_matrix, dict[int, int]]:
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


def _through_roads(
    roads: _Roads, streets: list[_Streets], lay: _Layout, attach: list[tuple[int, int, str, str | None]]
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
            if _ROAD_RANK[c] < _ROAD_RANK[roads.highway(e)]:
                changes = {"highway": c, "maxspeed": "50"}
                if ref:
                    changes["ref"] = ref
                roads.retag(e, **changes)
            cur = prev


def _oneway_streets(roads: _Roads, grid: _Streets, rng: np.random.Generator, wanted: int = 6) -> None:
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


def _footways(roads: _Roads, streets: list[_Streets], lay: _Layout, rng: np.random.Generator) -> None:
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
        start = _extreme_node(roads, grid, math.cos(ang), math.sin(ang))
        dist = np.array([110.0, 230.0])
        px = roads.x[start] + dist * math.cos(ang) + rng.normal(0, 10, 2)
        py = roads.y[start] + dist * math.sin(ang) + rng.normal(0, 10, 2)
        roads.add_chain([start, *roads.add_nodes(px, py).tolist()], {"highway": "footway"})


def _tracks(roads: _Roads, rural: np.ndarray, count: int, rng: np.random.Generator) -> None:
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
    roads: _Roads,
    grid: _Streets,
    lay: _Layout,
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
    start = _extreme_node(roads, grid, ux, uy)
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


def _planarise(roads: _Roads, forced: Sequence[tuple[int, float, int]] = ()) -> None:
    """Insert a shared node wherever two segments cross, and split segments at the ``forced`` (edge, t, node)."""
    x, y = roads.xy()
    u, v = roads.u, roads.v
    p = np.column_stack([x[u], y[u]])
    q = np.column_stack([x[v], y[v]])
    lines = shapely.linestrings(np.stack([p, q], axis=1))
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="crosses")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = (u[left] == u[right]) | (u[left] == v[right]) | (v[left] == u[right]) | (v[left] == v[right])
    left, right = left[~shared], right[~shared]
    r, s = q[left] - p[left], q[right] - p[right]
    qp = p[right] - p[left]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    ok = np.abs(denom) > 1e-12
    left, right, r, s, qp, denom = left[ok], right[ok], r[ok], s[ok], qp[ok], denom[ok]
    t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom
    w = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denom
    # An end lying on the other segment (a driveway meeting its road) is a junction already, not a crossing.
    proper = (t > 1e-6) & (t < 1 - 1e-6) & (w > 1e-6) & (w < 1 - 1e-6)
    left, right, r, t, w = left[proper], right[proper], r[proper], t[proper], w[proper]
    pts = p[left] + t[:, None] * r
    new = roads.add_nodes(pts[:, 0], pts[:, 1])
    splits: list[tuple[int, float, int]] = list(forced)
    for k in range(len(new)):
        splits.append((int(left[k]), float(t[k]), int(new[k])))
        splits.append((int(right[k]), float(w[k]), int(new[k])))
    splits.sort()
    new_u: list[int] = []
    new_v: list[int] = []
    new_e: list[int] = []
    new_f: list[float] = []
    k = 0
    rv = roads.v
    while k < len(splits):
        e = splits[k][0]
        first = k
        while k < len(splits) and splits[k][0] == e:
            k += 1
        chain = [node for _, _, node in splits[first:k]] + [int(rv[e])]
        rv[e] = chain[0]
        for m in range(k - first):
            new_u.append(chain[m])
            new_v.append(chain[m + 1])
            new_e.append(e)
            new_f.append(splits[first + m][1])
    e_arr = np.asarray(new_e, dtype=np.int64)
    roads.add_edges(
        np.asarray(new_u, dtype=np.int64),
        np.asarray(new_v, dtype=np.int64),
        roads.group[e_arr],
        roads.seq[e_arr] + 0.999 * np.asarray(new_f),
        roads.tag[e_arr],
    )


def _assemble_ways(roads: _Roads) -> list[tuple[list[int], int]]:
    """Chain segments into ways: runs of one group, in order, with one tag set; at most 1,900 nodes each."""
    order = np.lexsort((roads.seq, roads.group))
    ways: list[tuple[list[int], int]] = []
    prev_group, prev_tag, chain = -1, -1, [0]
    columns = (roads.group[order], roads.tag[order], roads.u[order], roads.v[order])
    for g, tag, u, v in zip(*(c.tolist() for c in columns), strict=True):
        if g == prev_group and tag == prev_tag and chain[-1] == u and len(chain) < 1_900:
            chain.append(v)
            continue
        if prev_group >= 0:
            ways.append((chain, prev_tag))
        chain, prev_group, prev_tag = [u, v], g, tag
    if prev_group >= 0:
        ways.append((chain, prev_tag))
    return ways


# --------------------------------------------------------------------------------------------------------------
# Stage 4: dwellings and buildings
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Dwellings:
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
        self.x.append(x)
        self.y.append(y)
        self.angle.append(angle)
        self.half_w.append(half_w)
        self.half_d.append(half_d)
        self.tag.append(np.asarray(tag, dtype=object))
        self.residents.append(np.asarray(residents, dtype=np.int64))
        self.settlement.append(np.full(len(x), settlement, dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        fields = ("x", "y", "angle", "half_w", "half_d", "tag", "residents", "settlement")
        return {f: np.concatenate(getattr(self, f)) for f in fields}


def _split_residents(total: int, n: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give each of ``n`` buildings one resident and share the rest in proportion to ``weights``."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    extra = rng.multinomial(total - n, weights / weights.sum())
    return np.asarray(1 + extra, dtype=np.int64)


def _slots(
    roads: _Roads, edges: np.ndarray, width: float, rows: int, rng: np.random.Generator, first: float = 14.0
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


def _place_settlement_buildings(
    roads: _Roads,
    grid: _Streets,
    pop: int,
    kind: str,
    s: int,
    cx: float,
    cy: float,
    spec: SyntheticSpec,
    region: shapely.Polygon,
    industrial: shapely.Geometry | None,
    out: _Dwellings,
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


def _place_farms(
    roads: _Roads,
    net: _Network,
    lay: _Layout,
    residents_total: int,
    spec: SyntheticSpec,
    out: _Dwellings,
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
        extra = _uniform_in(lay.region, n - got, rng)
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


def _industrial_buildings(
    roads: _Roads, segs: list[int], poly: shapely.Polygon, out: _Dwellings, rng: np.random.Generator
) -> None:
    sx, sy, heading, _, _ = _slots(roads, np.asarray(segs, dtype=np.int64), 55.0, 1, rng, first=35.0)
    inside = shapely.contains_xy(poly, sx, sy)
    sx, sy, heading = sx[inside], sy[inside], heading[inside]
    n = sx.size
    tag = np.full(n, "industrial", dtype=object)
    tag[rng.random(n) < 0.2] = "yes"
    out.add(sx, sy, heading, rng.uniform(10.0, 20.0, n), rng.uniform(8.0, 14.0, n), tag, np.zeros(n), -1)


def _footprints(d: dict[str, np.ndarray]) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------------------------
# Stage 5-6: census areas, municipalities and libraries
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Census:
    cells: np.ndarray  # polygons, EPSG:25832
    names: list[str]
    municipality: np.ndarray  # town index per area
    tree: cKDTree  # over the generators: nearest generator = area

    def area_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(self.tree.query(np.column_stack([x, y]))[1], dtype=np.int64)


def _census(lay: _Layout, parish_min: int, rng: np.random.Generator, namer: _Namer) -> _Census:
    """Build parishes and assign each to the municipality whose town reaches it first through the parishes."""
    gx: list[float] = []
    gy: list[float] = []
    names: list[str] = []
    central: list[int] = []
    golden = math.pi * (3.0 - math.sqrt(5.0))
    for t in range(lay.n_towns):
        q = max(1, round(int(lay.pop[t]) / 4_000))
        cx, cy, r = float(lay.x[t]), float(lay.y[t]), float(lay.radius[t])
        if q == 1:
            gx.append(cx)
            gy.append(cy)
            names.append(f"{lay.name[t]} Sogn")
            central.append(len(gx) - 1)
            continue
        # Town quarters on a sunflower pattern, shifted so that no quarter boundary runs through the centre.
        rot = rng.uniform(0, 2 * math.pi)
        ox, oy = 0.07 * r * math.cos(rot + 1.0), 0.07 * r * math.sin(rot + 1.0)
        kq = np.arange(q)
        rad = 0.8 * r * np.sqrt((kq + 0.5) / q)
        first = len(gx)
        gx.extend((cx + ox + rad * np.cos(rot + kq * golden)).tolist())
        gy.extend((cy + oy + rad * np.sin(rot + kq * golden)).tolist())
        for m in range(q):
            label = _TOWN_PARISHES[m] if m < len(_TOWN_PARISHES) else f"{namer.place()}"
            names.append(f"{lay.name[t]} {label} Sogn")
        quarters = np.column_stack([gx[first:], gy[first:]])
        central.append(first + int(np.argmin(np.hypot(quarters[:, 0] - cx, quarters[:, 1] - cy))))
    # Every village, and the bigger hamlets, has its own church and parish.
    for s in np.flatnonzero((lay.kind != "town") & (lay.pop >= parish_min)).tolist():
        gx.append(float(lay.x[s]))
        gy.append(float(lay.y[s]))
        names.append(f"{lay.name[s]} Sogn")
    # Rural fill: a parish wherever the nearest church is more than ~2.5 settlement spacings away.
    pts = np.column_stack([lay.x, lay.y])
    nn = cKDTree(pts).query(pts, k=2)[0][:, 1] if len(pts) > 1 else np.array([3_000.0])
    reach = max(3_000.0, 2.5 * float(np.median(nn)))
    samples = _uniform_in(lay.region, 8_000, rng)
    d = cKDTree(np.column_stack([gx, gy])).query(samples)[0]
    hamlets = np.flatnonzero((lay.kind == "hamlet") & (lay.pop < parish_min))
    named = set()
    while d.max() > reach:
        k = int(np.argmax(d))
        sx, sy = samples[k]
        if hamlets.size:
            h = hamlets[int(np.argmin(np.hypot(lay.x[hamlets] - sx, lay.y[hamlets] - sy)))]
            if int(h) not in named and math.hypot(lay.x[h] - sx, lay.y[h] - sy) < reach:
                named.add(int(h))
                sx, sy = float(lay.x[h]), float(lay.y[h])
                names.append(f"{lay.name[h]} Sogn")
            else:
                names.append(f"{namer.place()} Sogn")
        else:
            names.append(f"{namer.place()} Sogn")
        gx.append(float(sx))
        gy.append(float(sy))
        d = np.minimum(d, np.hypot(samples[:, 0] - sx, samples[:, 1] - sy))

    gens = np.column_stack([gx, gy])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(gens), extend_to=lay.region, ordered=True))
    cells = shapely.set_precision(shapely.intersection(cells, lay.region), 0.01)
    tree = shapely.STRtree(cells)
    a, b = tree.query(cells, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    touching = shapely.length(shapely.intersection(cells[a], cells[b])) > 1.0
    a, b = a[touching], b[touching]
    w = np.hypot(gens[a, 0] - gens[b, 0], gens[a, 1] - gens[b, 1])
    graph = sp.coo_matrix((w, (a, b)), shape=(len(gens), len(gens))).tocsr()
    _, _, source = dijkstra(graph, directed=False, indices=np.asarray(central), min_only=True, return_predecessors=True)
    town_of_gen = {g: t for t, g in enumerate(central)}
    municipality = np.array([town_of_gen.get(int(s), -1) for s in source.tolist()], dtype=np.int64)
    if (municipality < 0).any():  # an island of parishes cut off by the boundary: give it to the nearest town
        lost = np.flatnonzero(municipality < 0)
        municipality[lost] = cKDTree(np.column_stack([lay.x[: lay.n_towns], lay.y[: lay.n_towns]])).query(gens[lost])[1]
    return _Census(cells, names, municipality, cKDTree(gens))


def _age_groups(
    pop: np.ndarray, urban: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw integer age groups per area; the 65+ share rises from ~16% in towns to ~26% in the countryside."""
    n = pop.size
    old = np.clip(0.16 + 0.10 * (1.0 - urban) + rng.normal(0.0, 0.02, n), 0.08, 0.38)
    young = np.clip(0.205 - 0.01 * (1.0 - urban) + rng.normal(0.0, 0.02, n), 0.10, 0.30)
    out = np.zeros((n, 3), dtype=np.int64)
    for k in range(n):
        out[k] = rng.multinomial(int(pop[k]), [young[k], 1.0 - young[k] - old[k], old[k]])
    return out[:, 0], out[:, 1], out[:, 2]


def _clock(hours: float) -> str:
    return f"{int(hours):02d}:{round((hours % 1) * 60):02d}"


def _main_hours(rng: np.random.Generator) -> list[str | None]:
    """Opening hours of a main library: every weekday, one late evening, Saturday morning; 35-50 h a week."""
    while True:
        late = int(rng.integers(0, 4))
        days: list[str | None] = []
        total = 0.0
        for d in range(5):
            start = float(rng.choice([9.0, 9.5, 10.0]))
            end = 19.0 if d == late else float(rng.choice([16.0, 17.0, 17.5, 18.0]))
            days.append(f"{_clock(start)}-{_clock(end)}")
            total += end - start
        sat_end = float(rng.choice([13.0, 14.0, 15.0]))
        days.append(f"10:00-{_clock(sat_end)}")
        total += sat_end - 10.0
        if rng.random() < 0.25:
            days.append("12:00-16:00")
            total += 4.0
        else:
            days.append(None)
        if 35.0 <= total <= 50.0:
            return days


def _branch_hours(rng: np.random.Generator) -> list[str | None]:
    """Opening hours of a small branch: two to four days, some split around lunch; 8-20 h a week."""
    shapes = [("14:00-18:00", 4.0), ("10:00-13:00", 3.0), ("13:00-17:00", 4.0), ("15:00-19:00", 4.0),
              ("10:00-12:00,14:00-17:00", 5.0), ("09:30-12:00,13:00-16:30", 6.0)]  # fmt: skip
    while True:
        open_days = rng.choice(6, size=int(rng.integers(2, 5)), replace=False)
        days: list[str | None] = [None] * 7
        total = 0.0
        for d in sorted(open_days.tolist()):
            text, h = shapes[int(rng.integers(0, 4 if d == 5 else len(shapes)))]
            if d == 5:
                text, h = "10:00-13:00", 3.0
            days[d] = text
            total += h
        if 8.0 <= total <= 20.0:
            return days


def _branches(
    lay: _Layout,
    census: _Census,
    settlement_muni: np.ndarray,
    settlement_pop: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for t in range(lay.n_towns):
        main = [t]
        villages = [
            int(s) for s in np.flatnonzero((settlement_muni == t) & (lay.kind != "town")).tolist()
            if settlement_pop[s] >= 100
        ]  # fmt: skip
        villages.sort(key=lambda s: (-int(settlement_pop[s]), s))
        n_small = 1
        if len(villages) > 1 and settlement_pop[villages[1]] >= 300 and rng.random() < 0.6:
            n_small = 2
        for s in main + villages[:n_small]:
            is_main = s == t
            ang = rng.uniform(0, 2 * math.pi)
            bx, by = float(lay.x[s]) + 20.0 * math.cos(ang), float(lay.y[s]) + 20.0 * math.sin(ang)
            if census.municipality[census.area_of(np.array([bx]), np.array([by]))[0]] != t:
                bx, by = float(lay.x[s]), float(lay.y[s])
            hours = _main_hours(rng) if is_main else _branch_hours(rng)
            cost = rng.uniform(100_000, 150_000) if is_main else rng.uniform(50_000, 100_000)
            row: dict[str, object] = {
                "branch_id": f"{_slug(lay.name[s])}-library",
                "Library name": f"{lay.name[s]} Bibliotek",
                "municipality": lay.name[t],
            }
            row.update(dict(zip(HOURS_COLUMNS, hours, strict=True)))
            row.update(
                must_keep=is_main and t == 0,
                closable=not (is_main and t == 0),
                annual_cost=None,
                closure_cost=int(round(cost, -3)),
                x=bx,
                y=by,
            )
            rows.append(row)
    frame = pd.DataFrame(rows)
    for col in HOURS_COLUMNS:  # keep closed days as None, not NaN
        frame[col] = pd.Series([row[col] for row in rows], dtype=object)
    return frame


# --------------------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------------------


def _resolve(spec: SyntheticSpec | str) -> SyntheticSpec:
    if isinstance(spec, SyntheticSpec):
        return spec
    if spec not in PRESETS:
        raise ValueError(f"unknown preset {spec!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[spec]


def _to_lonlat() -> Callable[[np.ndarray], np.ndarray]:
    tr = Transformer.from_crs(CRS, OUTPUT_CRS, always_xy=True)

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return convert


def _landuse_polygons(
    lay: _Layout, net: _Network, d: dict[str, np.ndarray]
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


def _osm_elements(
    roads: _Roads, d: dict[str, np.ndarray] | None, polys: list[tuple[shapely.Polygon, dict[str, str]]]
) -> tuple[np.ndarray, list[OsmRecord], list[OsmRecord], list[OsmRecord]]:
    """Number the OSM nodes and ways: road nodes first, then building corners (if ``d``), then land-use rings.

    Returns the node coordinates (EPSG:25832, node id ``k + 1`` at row ``k``), the road ways, the buildings and
    the land-use ways.
    """
    way_chains = _assemble_ways(roads)
    rx, ry = roads.xy()
    used = np.zeros(len(rx), dtype=bool)
    for chain, _ in way_chains:
        used[chain] = True
    road_nodes = np.flatnonzero(used)
    node_id = np.zeros(len(rx), dtype=np.int64)
    node_id[road_nodes] = np.arange(1, road_nodes.size + 1)
    ways: list[OsmRecord] = [
        (k + 1, node_id[np.asarray(chain)], dict(roads.tags[tag])) for k, (chain, tag) in enumerate(way_chains)
    ]
    xy_parts = [np.column_stack([rx[road_nodes], ry[road_nodes]])]
    next_node, next_way = road_nodes.size + 1, len(ways) + 1
    buildings: list[OsmRecord] = []
    if d is not None:
        corners = _footprints(d)
        nb = len(corners)
        ids = next_node + np.arange(4 * nb, dtype=np.int64).reshape(nb, 4)
        rings = np.concatenate([ids, ids[:, :1]], axis=1)
        xy_parts.append(corners.reshape(-1, 2))
        tags = d["tag"].tolist()
        buildings = [(next_way + k, rings[k], {"building": str(tags[k])}) for k in range(nb)]
        next_node += 4 * nb
        next_way += nb
    landuse: list[OsmRecord] = []
    for poly, poly_tags in polys:
        ring = np.asarray(poly.exterior.coords)[:-1]
        ring_ids = next_node + np.arange(len(ring), dtype=np.int64)
        xy_parts.append(ring)
        landuse.append((next_way, np.concatenate([ring_ids, ring_ids[:1]]), poly_tags))
        next_node += len(ring)
        next_way += 1
    return np.concatenate(xy_parts), ways, buildings, landuse


def generate_region(spec: SyntheticSpec | str = "demo", *, seed: int = 42) -> SyntheticRegion:
    """Generate a synthetic merged municipality.

    Parameters
    ----------
    spec
        A :class:`SyntheticSpec` or the name of one of :data:`PRESETS`.
    seed
        Seed of ``numpy.random.default_rng``; the same spec and seed give the same region, bit for bit.

    Returns
    -------
    SyntheticRegion
        OSM nodes and ways (roads, buildings, land use), settlements, census areas, former municipalities and
        libraries, in EPSG:4326. See the module docstring for the model.

    Raises
    ------
    ValueError
        For an unknown preset name.
    """
    spec = _resolve(spec)
    streams = np.random.default_rng(seed).spawn(6)
    namer = _Namer(streams[0])
    lay = _layout(spec, streams[1], namer)
    net = _build_roads(lay, spec, streams[2], namer)
    roads = net.roads

    # Dwellings: settlements first, then farms for the residents left over.
    rng = streams[3]
    dw = _Dwellings([], [], [], [], [], [], [], [])
    industry_of = dict(zip(net.industrial_town, net.industrial, strict=True))
    housed = np.zeros(len(lay.pop), dtype=np.int64)
    for s in range(len(lay.pop)):
        housed[s] = _place_settlement_buildings(
            roads, net.streets[s], int(lay.pop[s]), str(lay.kind[s]), s, float(lay.x[s]), float(lay.y[s]),
            spec, lay.region, industry_of.get(s), dw, rng,
        )  # fmt: skip
    for segs, poly in zip(net.spur_edges, net.industrial, strict=True):
        _industrial_buildings(roads, segs, poly, dw, rng)
    farm_population = spec.population - int(housed.sum())
    forced = _place_farms(roads, net, lay, farm_population, spec, dw, rng)
    _planarise(roads, forced)
    d = dw.arrays()

    # Census areas: population is counted where each dwelling stands.
    census = _census(lay, spec.village_threshold // 2, streams[4], namer)
    area = census.area_of(d["x"], d["y"])
    n_area = len(census.cells)
    pop = np.bincount(area, weights=d["residents"], minlength=n_area).astype(np.int64)
    in_town = (d["settlement"] >= 0) & (d["settlement"] < lay.n_towns)
    urban = np.bincount(area, weights=d["residents"] * in_town, minlength=n_area) / np.maximum(pop, 1)
    age = _age_groups(pop, urban, streams[5])
    settlement_muni = census.municipality[census.area_of(lay.x, lay.y)]

    convert = _to_lonlat()
    muni_names = np.asarray(lay.name[: lay.n_towns], dtype=object)
    order = np.lexsort((np.arange(n_area), census.municipality))
    cells_ll = shapely.transform(census.cells, convert)
    areas = gpd.GeoDataFrame(
        {
            "area_id": np.arange(1, n_area + 1),
            "name": [census.names[k] for k in order.tolist()],
            "municipality": muni_names[census.municipality[order]],
            "population": pop[order],
            "age_0_17": age[0][order],
            "age_18_64": age[1][order],
            "age_65_plus": age[2][order],
        },
        geometry=cells_ll[order],
        crs=OUTPUT_CRS,
    )
    muni_geom = [shapely.union_all(census.cells[census.municipality == t]) for t in range(lay.n_towns)]
    municipalities = gpd.GeoDataFrame(
        {
            "municipality": muni_names,
            "population": np.bincount(census.municipality, weights=pop, minlength=lay.n_towns).astype(np.int64),
        },
        geometry=shapely.transform(np.asarray(muni_geom), convert),
        crs=OUTPUT_CRS,
    )
    centres_ll = convert(np.column_stack([lay.x, lay.y]))
    settlements = pd.DataFrame(
        {
            "name": lay.name,
            "municipality": muni_names[settlement_muni],
            "kind": lay.kind.astype(str),
            "population": housed,
            "lon": np.round(centres_ll[:, 0], 7),
            "lat": np.round(centres_ll[:, 1], 7),
        }
    )
    br = _branches(lay, census, settlement_muni, housed, streams[5])
    br_ll = convert(br[["x", "y"]].to_numpy(dtype=float))
    branches = gpd.GeoDataFrame(br.drop(columns=["x", "y"]), geometry=shapely.points(br_ll), crs=OUTPUT_CRS)

    polys = _landuse_polygons(lay, net, d)
    xy, ways, buildings, landuse = _osm_elements(roads, d if spec.buildings else None, polys)
    lonlat = convert(xy)
    return SyntheticRegion(
        spec=spec,
        seed=seed,
        crs=CRS,
        node_ids=np.arange(1, len(xy) + 1, dtype=np.int64),
        node_lon=np.round(lonlat[:, 0], 7),
        node_lat=np.round(lonlat[:, 1], 7),
        ways=ways,
        buildings=buildings,
        landuse=landuse,
        settlements=settlements,
        areas=areas,
        municipalities=municipalities,
        branches=branches,
        farm_population=farm_population,
    )


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


def _xml_attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _write_osm(region: SyntheticRegion, path: Path) -> None:
    lon, lat = region.node_lon, region.node_lat
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="branchnet-synthetic">\n')
        f.write(
            f' <bounds minlat="{lat.min():.7f}" minlon="{lon.min():.7f}" '
            f'maxlat="{lat.max():.7f}" maxlon="{lon.max():.7f}"/>\n'
        )
        chunk = 50_000
        for start in range(0, len(region.node_ids), chunk):
            ids = region.node_ids[start : start + chunk].tolist()
            la = lat[start : start + chunk].tolist()
            lo = lon[start : start + chunk].tolist()
            f.write(
                "".join(
                    f' <node id="{i}" version="1" lat="{a:.7f}" lon="{b:.7f}"/>\n'
                    for i, a, b in zip(ids, la, lo, strict=True)
                )
            )
        for records in (region.ways, region.buildings, region.landuse):
            lines: list[str] = []
            for way_id, refs, tags in records:
                lines.append(f' <way id="{way_id}" version="1">\n')
                lines.extend(f'  <nd ref="{r}"/>\n' for r in refs.tolist())
                lines.extend(f'  <tag k="{_xml_attr(k)}" v="{_xml_attr(v)}"/>\n' for k, v in tags.items())
                lines.append(" </way>\n")
                if len(lines) > 100_000:
                    f.write("".join(lines))
                    lines = []
            f.write("".join(lines))
        f.write("</osm>\n")


def write_region(region: SyntheticRegion, out_dir: str | Path) -> dict[str, Path]:
    """Write a region's files atomically into ``out_dir`` (replacing it if it exists).

    Files: ``roads.osm`` (OSM XML 0.6 with every road, building and land-use way), ``areas.geojson``,
    ``municipalities.geojson``, ``branches.geojson`` (EPSG:4326), ``settlements.csv`` and ``README.txt``.
    Everything is built in a temporary directory beside ``out_dir`` and renamed into place, so a crash leaves
    either the old directory or the new one, never a half-written one.

    Returns
    -------
    dict
        Paths under ``out_dir`` keyed ``osm``, ``areas``, ``municipalities``, ``branches``, ``settlements``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = {
        "osm": "roads.osm",
        "areas": "areas.geojson",
        "municipalities": "municipalities.geojson",
        "branches": "branches.geojson",
        "settlements": "settlements.csv",
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _write_osm(region, tmp / names["osm"])
        for key in ("areas", "municipalities", "branches"):
            frame: gpd.GeoDataFrame = getattr(region, key)
            frame.to_file(tmp / names[key], driver="GeoJSON", COORDINATE_PRECISION=7)
        region.settlements.to_csv(tmp / names["settlements"], index=False, lineterminator="\n")
        spec = region.spec
        (tmp / "README.txt").write_text(
            "SYNTHETIC DATA - not a real place.\n\n"
            f"Generated by branchnet (geodata.synthetic) from preset {spec.name!r} with seed {region.seed}.\n"
            "Every name, road, building, population count and library here is invented; the region is placed\n"
            "in inland Jutland, Denmark, only to give it plausible coordinates.\n\n"
            f"{region.summary()}\n\n"
            "roads.osm               OSM XML 0.6: roads, buildings and land use\n"
            "areas.geojson           census areas (parishes) with population and age groups\n"
            "municipalities.geojson  the former municipalities merged into one\n"
            "branches.geojson        libraries with staffed hours and closure costs\n"
            "settlements.csv         towns, villages and hamlets\n",
            encoding="utf-8",
        )
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {key: out / name for key, name in names.items()}


# --------------------------------------------------------------------------------------------------------------
# Benchmark graphs
# --------------------------------------------------------------------------------------------------------------


#: Residents per drive-graph node in the generated layouts (calibrated on the presets); only sets the scale.
_PERSONS_PER_NODE: Final = 3.2


def synthetic_road_graph(n_nodes: int, *, seed: int = 0) -> nx.MultiDiGraph:
    """Build a large, realistic drive graph directly, without writing or parsing OSM XML.

    The road layout of :func:`generate_region` (street grids, village roads, town links) is generated at a
    population of about 3.2 residents per node; the spacing of rural road nodes is then chosen so that the node
    count lands within 10% of ``n_nodes``. The graph is osmnx-style: ``crs="EPSG:25832"``; nodes carry ``x``,
    ``y`` (m), ``lon`` and ``lat``; edges carry ``length`` (m), ``highway``, ``speed_kph`` (``maxspeed`` where
    tagged, else :data:`geodata.network.DEFAULT_HWY_SPEEDS`), ``travel_time`` (s) and ``osmid``; two-way roads
    have an edge in each direction. It is strongly connected.

    Parameters
    ----------
    n_nodes
        Wanted number of nodes, at least 500.
    seed
        Seed of ``numpy.random.default_rng``.

    Raises
    ------
    ValueError
        When ``n_nodes`` is below 500 or above 5,000,000.
    """
    if not 500 <= n_nodes <= 5_000_000:
        raise ValueError(f"n_nodes must lie in [500, 5e6], got {n_nodes}")
    population = int(n_nodes * _PERSONS_PER_NODE)
    n_muni = int(np.clip(round(population / 40_000), 3, 400))
    spec = SyntheticSpec(
        n_municipalities=n_muni,
        population=max(population, 1_000 * n_muni),
        buildings=False,
        density_per_km2=80.0,
        town_population=(700, 60_000),
        village_max=1_500,
        name=f"graph-{n_nodes}",
    )
    streams = np.random.default_rng(seed).spawn(3)
    namer = _Namer(streams[0])
    lay = _layout(spec, streams[1], namer)
    net = _build_roads(lay, spec, streams[2], namer, target_nodes=n_nodes, extras=False)
    _planarise(net.roads)
    return _graph_from_roads(net.roads)


def _speed(tags: Mapping[str, str]) -> float:
    maxspeed = tags.get("maxspeed")
    if maxspeed is not None and maxspeed.isdigit():
        return float(maxspeed)
    return float(DEFAULT_HWY_SPEEDS.get(tags["highway"], 40.0))


def _graph_from_roads(roads: _Roads) -> nx.MultiDiGraph:
    chains = _assemble_ways(roads)
    x, y = roads.xy()
    lonlat = _to_lonlat()(np.column_stack([x, y]))
    rows: list[int] = []
    cols: list[int] = []
    edges: list[tuple[int, int, dict[str, object]]] = []
    for way_id, (chain, tag) in enumerate(chains, start=1):
        tags = roads.tags[tag]
        if tags["highway"] in _NOT_DRIVE:
            continue
        oneway = tags.get("oneway") == "yes"
        speed = _speed(tags)
        c = np.asarray(chain)
        lengths = np.hypot(np.diff(x[c]), np.diff(y[c])).tolist()
        base: dict[str, object] = {"osmid": way_id, "highway": tags["highway"], "speed_kph": speed}
        for k in ("maxspeed", "name", "ref"):
            if k in tags:
                base[k] = tags[k]
        for a, b, length in zip(chain[:-1], chain[1:], lengths, strict=True):
            attrs = {**base, "oneway": oneway, "reversed": False, "length": length,
                     "travel_time": length / (speed / 3.6)}  # fmt: skip
            edges.append((a, b, attrs))
            rows.append(a)
            cols.append(b)
            if not oneway:
                edges.append((b, a, {**attrs, "reversed": True}))
                rows.append(b)
                cols.append(a)
    n = len(x)
    csr = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    _, label = connected_components(csr, directed=True, connection="strong")
    present = np.zeros(n, dtype=bool)
    present[rows] = True
    counts = np.bincount(label[present])
    best = int(np.argmax(counts))
    keep = present & (label == best)
    G = nx.MultiDiGraph(crs=CRS)
    G.add_nodes_from(
        (int(k) + 1, {"x": float(x[k]), "y": float(y[k]), "lon": float(lonlat[k, 0]), "lat": float(lonlat[k, 1])})
        for k in np.flatnonzero(keep).tolist()
    )
    G.add_edges_from((a + 1, b + 1, attrs) for a, b, attrs in edges if keep[a] and keep[b])
    return G
