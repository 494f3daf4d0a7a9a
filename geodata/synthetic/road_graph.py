"""Benchmark road graphs: stages 1-3 at a chosen node count, straight to an osmnx-style drive graph."""

from __future__ import annotations

from typing import Final

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from geodata.errors import InvalidValueError
from geodata.speeds import CAR, add_travel_times
from geodata.synthetic._geometry import to_lonlat
from geodata.synthetic.names import Namer
from geodata.synthetic.roads import build_roads
from geodata.synthetic.settlements import place_settlements
from geodata.synthetic.spec import CRS, SyntheticSpec
from geodata.synthetic.ways import Roads, assemble_ways, planarise

#: Highway classes that are not for driving: a drive graph leaves them out.
_NOT_DRIVE: Final = frozenset({"footway", "track", "service"})


#: Residents per drive-graph node in the generated layouts (calibrated on the presets); only sets the scale.
_PERSONS_PER_NODE: Final = 3.2


def synthetic_road_graph(n_nodes: int, *, seed: int = 0) -> nx.MultiDiGraph:
    """Build a large, realistic drive graph directly, without writing or parsing OSM XML.

    The road layout of :func:`generate_region` (street grids, village roads, town links) is generated at a
    population of about 3.2 residents per node; the spacing of rural road nodes is then chosen so that the node
    count lands within 10% of ``n_nodes``. The graph is osmnx-style: ``crs="EPSG:25832"``; nodes carry ``x``,
    ``y`` (m), ``lon`` and ``lat``; edges carry ``length`` (m), ``highway``, ``speed_kph`` and ``travel_time``
    (s) of the car profile (:data:`geodata.speeds.CAR`, with its junction and turn costs) and ``osmid``; two-way
    roads have an edge in each direction. It is strongly connected.

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
        raise InvalidValueError(f"n_nodes must lie in [500, 5e6], got {n_nodes}")
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
    namer = Namer(streams[0])
    lay = place_settlements(spec, streams[1], namer)
    net = build_roads(lay, spec, streams[2], namer, target_nodes=n_nodes, extras=False)
    planarise(net.roads)
    return _graph_from_roads(net.roads)


def _graph_from_roads(roads: Roads) -> nx.MultiDiGraph:
    """Return the drive graph of the roads' ways (no footways, tracks or driveways), strongly connected.

    Only the largest strongly connected component is kept; node ``k + 1`` is road node ``k``.
    """
    chains = assemble_ways(roads)
    x, y = roads.xy()
    lonlat = to_lonlat()(np.column_stack([x, y]))
    rows: list[int] = []
    cols: list[int] = []
    edges: list[tuple[int, int, dict[str, object]]] = []
    for way_id, (chain, tag) in enumerate(chains, start=1):
        tags = roads.tags[tag]
        if tags["highway"] in _NOT_DRIVE:
            continue
        oneway = tags.get("oneway") == "yes"
        c = np.asarray(chain)
        lengths = np.hypot(np.diff(x[c]), np.diff(y[c])).tolist()
        base: dict[str, object] = {"osmid": way_id, "highway": tags["highway"]}
        for k in ("maxspeed", "name", "ref", "junction", "lit"):
            if k in tags:
                base[k] = tags[k]
        for a, b, length in zip(chain[:-1], chain[1:], lengths, strict=True):
            attrs = {**base, "oneway": oneway, "reversed": False, "length": length}
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
    return add_travel_times(G, CAR)
