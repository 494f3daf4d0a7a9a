"""The generated region: :class:`SyntheticRegion`, and :func:`generate_region`, which runs the stages in order.

One ``numpy.random.default_rng(seed)`` is spawned into six streams: the first for place and street names (drawn
by stages 1, 3 and 5 in turn), one each for settlements, roads, dwellings and census areas, and the last for the
age groups and then the libraries. Changing the draws of one stage leaves the other stages' streams alone, except
for the names.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.synthetic._geometry import to_lonlat
from geodata.synthetic.branches import branch_table
from geodata.synthetic.buildings import (
    Dwellings,
    footprints,
    industrial_buildings,
    landuse_polygons,
    place_farms,
    place_settlement_buildings,
)
from geodata.synthetic.names import Namer
from geodata.synthetic.parishes import age_groups, build_census
from geodata.synthetic.roads import build_roads
from geodata.synthetic.settlements import place_settlements
from geodata.synthetic.spec import CRS, OUTPUT_CRS, SyntheticSpec, resolve_spec
from geodata.synthetic.ways import Roads, assemble_ways, planarise

#: One OSM way: its id, its node ids (closed ways repeat the first node last) and its tags.
OsmRecord = tuple[int, np.ndarray, dict[str, str]]


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


def _osm_elements(
    roads: Roads, d: dict[str, np.ndarray] | None, polys: list[tuple[shapely.Polygon, dict[str, str]]]
) -> tuple[np.ndarray, list[OsmRecord], list[OsmRecord], list[OsmRecord]]:
    """Number the OSM nodes and ways: road nodes first, then building corners (if ``d``), then land-use rings.

    Returns the node coordinates (EPSG:25832, node id ``k + 1`` at row ``k``), the road ways, the buildings and
    the land-use ways.
    """
    way_chains = assemble_ways(roads)
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
        corners = footprints(d)
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
        libraries, in EPSG:4326. See :mod:`geodata.synthetic` for the model.

    Raises
    ------
    ValueError
        For an unknown preset name.
    """
    spec = resolve_spec(spec)
    streams = np.random.default_rng(seed).spawn(6)
    namer = Namer(streams[0])
    lay = place_settlements(spec, streams[1], namer)
    net = build_roads(lay, spec, streams[2], namer)
    roads = net.roads

    # Dwellings: settlements first, then farms for the residents left over.
    rng = streams[3]
    dw = Dwellings([], [], [], [], [], [], [], [])
    industry_of = dict(zip(net.industrial_town, net.industrial, strict=True))
    housed = np.zeros(len(lay.pop), dtype=np.int64)
    for s in range(len(lay.pop)):
        housed[s] = place_settlement_buildings(
            roads, net.streets[s], int(lay.pop[s]), str(lay.kind[s]), s, float(lay.x[s]), float(lay.y[s]),
            spec, lay.region, industry_of.get(s), dw, rng,
        )  # fmt: skip
    for segs, poly in zip(net.spur_edges, net.industrial, strict=True):
        industrial_buildings(roads, segs, poly, dw, rng)
    farm_population = spec.population - int(housed.sum())
    forced = place_farms(roads, net, lay, farm_population, spec, dw, rng)
    planarise(roads, forced)
    d = dw.arrays()

    # Census areas: population is counted where each dwelling stands.
    census = build_census(lay, spec.village_threshold // 2, streams[4], namer)
    area = census.area_of(d["x"], d["y"])
    n_area = len(census.cells)
    pop = np.bincount(area, weights=d["residents"], minlength=n_area).astype(np.int64)
    in_town = (d["settlement"] >= 0) & (d["settlement"] < lay.n_towns)
    urban = np.bincount(area, weights=d["residents"] * in_town, minlength=n_area) / np.maximum(pop, 1)
    age = age_groups(pop, urban, streams[5])
    settlement_muni = census.municipality[census.area_of(lay.x, lay.y)]

    convert = to_lonlat()
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
    br = branch_table(lay, census, settlement_muni, housed, streams[5])
    br_ll = convert(br[["x", "y"]].to_numpy(dtype=float))
    branches = gpd.GeoDataFrame(br.drop(columns=["x", "y"]), geometry=shapely.points(br_ll), crs=OUTPUT_CRS)

    polys = landuse_polygons(lay, net, d)
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
