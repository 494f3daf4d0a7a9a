"""Road networks from OpenStreetMap: drive, bookmobile and walk graphs with travel time on every edge.

The graph model is osmnx's: a ``networkx.MultiDiGraph`` whose nodes carry ``x``/``y`` (projected metres) and
``lon``/``lat``, and whose edges carry ``length`` (m), ``speed_kph`` and ``travel_time`` (s); drive graphs also
carry junction and turn costs (``G.graph["turn_costs"]``, :mod:`geodata.turns`). Speeds are
:mod:`geodata.speeds`'s model. Graphs are built
unsimplified, so every OSM node of a kept way is a node, which keeps snapping of demand points accurate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np
import osmnx as ox

from geodata import _cache
from geodata._osm import OsmExtract, read_osm
from geodata.errors import NetworkBuildError
from geodata.speeds import (
    BOOKMOBILE,
    CAR,
    DEFAULT_HWY_SPEEDS,
    DEFAULT_URBAN_SPEEDS,
    WALK,
    SpeedProfile,
    add_travel_times,
)

__all__ = [
    "BOOKMOBILE", "CAR", "DEFAULT_HWY_SPEEDS", "DEFAULT_URBAN_SPEEDS", "WALK", "NetworkReport", "SpeedProfile",
    "add_travel_times", "build_network", "graph_from_extract", "load_network",
]  # fmt: skip

log = logging.getLogger(__name__)

Mode = Literal["drive", "bookmobile", "walk"]
Progress = Callable[[str, float], None]

# Way filters after osmnx's "drive" and "walk" network types (osmnx/_overpass.py), as exact sets.
_DRIVE_EXCLUDED_HIGHWAY = frozenset(
    {
        "abandoned", "bridleway", "bus_guideway", "construction", "corridor", "cycleway", "elevator",
        "escalator", "footway", "no", "path", "pedestrian", "planned", "platform", "proposed", "raceway",
        "razed", "service", "steps", "track", "bus_stop", "traffic_island", "layby", "rest_area", "services",
    }
)  # fmt: skip
_WALK_EXCLUDED_HIGHWAY = frozenset(
    {
        "abandoned", "bus_guideway", "construction", "cycleway", "motorway", "motorway_link", "no", "planned",
        "platform", "proposed", "raceway", "razed", "bus_stop", "traffic_island", "rest_area", "services",
    }
)  # fmt: skip
_PRIVATE_SERVICE = frozenset({"alley", "driveway", "emergency_access", "parking", "parking_aisle", "private"})
_ONEWAY_YES = frozenset({"yes", "true", "1"})
_ONEWAY_REVERSE = frozenset({"-1", "reverse"})


_DEFAULT_PROFILES: dict[str, SpeedProfile] = {"drive": CAR, "bookmobile": BOOKMOBILE, "walk": WALK}


@dataclass(frozen=True)
class NetworkReport:
    """What the build kept and dropped."""

    mode: str
    ways: int
    nodes: int
    edges: int
    dropped_nodes: int
    dropped_edges: int
    crs: str
    highway_counts: dict[str, int]


def _keep_way(tags: Mapping[str, str], mode: str) -> bool:
    hwy = tags["highway"]
    if tags.get("area") == "yes" or tags.get("access") == "private":
        return False
    if mode == "walk":
        return hwy not in _WALK_EXCLUDED_HIGHWAY and tags.get("foot") != "no" and tags.get("service") != "private"
    return (
        hwy not in _DRIVE_EXCLUDED_HIGHWAY
        and tags.get("motor_vehicle") != "no"
        and tags.get("motorcar") != "no"
        and tags.get("service") not in _PRIVATE_SERVICE
    )


def _oneway(tags: Mapping[str, str], mode: str) -> int:
    """Return 1 for forward-only, -1 for reverse-only, 0 for both directions."""
    if mode == "walk":
        return 0
    value = tags.get("oneway", "")
    if value in _ONEWAY_YES:
        return 1
    if value in _ONEWAY_REVERSE:
        return -1
    if value == "no":
        return 0
    if tags.get("junction") in ("roundabout", "circular") or tags["highway"] == "motorway":
        return 1
    return 0


def _haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.radians(a) for a in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return np.asarray(2 * 6_371_009.0 * np.arcsin(np.sqrt(a)))


def graph_from_extract(extract: OsmExtract, *, mode: Mode = "drive") -> nx.MultiDiGraph:
    """Build an unprojected, unsimplified osmnx-style graph of the ways that ``mode`` may use.

    Edges get ``osmid``, ``highway``, ``oneway``, ``reversed``, ``length`` (great-circle metres) and the
    ``maxspeed``/``name``/``ref``/``junction``/``lit`` tags where present; drive graphs' nodes get ``control``
    (signals and signs, :data:`geodata._osm.NODE_CONTROLS`). Speeds are added by
    :func:`geodata.speeds.add_travel_times`.
    """
    G = nx.MultiDiGraph(crs="EPSG:4326")
    for way in extract.ways:
        if not _keep_way(way.tags, mode):
            continue
        direction = _oneway(way.tags, mode)
        lengths = _haversine_m(way.lon[:-1], way.lat[:-1], way.lon[1:], way.lat[1:])
        attrs = {k: way.tags[k] for k in ("highway", "maxspeed", "name", "ref", "junction", "lit") if k in way.tags}
        for ref, lon, lat in zip(way.refs.tolist(), way.lon.tolist(), way.lat.tolist(), strict=True):
            control = extract.controls.get(ref)
            if control is not None and mode != "walk":
                G.add_node(ref, x=lon, y=lat, control=control)
            else:
                G.add_node(ref, x=lon, y=lat)
        refs = way.refs.tolist()
        for i, length in enumerate(lengths.tolist()):
            u, v = refs[i], refs[i + 1]
            if u == v:
                continue
            if direction >= 0:
                G.add_edge(u, v, osmid=way.id, oneway=direction != 0, reversed=False, length=length, **attrs)
            if direction <= 0:
                G.add_edge(v, u, osmid=way.id, oneway=direction != 0, reversed=True, length=length, **attrs)
    return G


def build_network(
    extract: OsmExtract,
    *,
    mode: Mode = "drive",
    profile: SpeedProfile | None = None,
    crs: str | None = None,
    progress: Progress | None = None,
) -> tuple[nx.MultiDiGraph, NetworkReport]:
    """Build a projected graph with travel times, keeping its largest strongly connected component.

    Parameters
    ----------
    extract
        Ways read by :func:`geodata._osm.read_osm`.
    mode
        ``"drive"`` (cars), ``"bookmobile"`` (the drive network at bookmobile speeds) or ``"walk"``.
    profile
        Speeds; defaults to :data:`CAR`, :data:`BOOKMOBILE` or :data:`WALK` by mode.
    crs
        Metric CRS to project to; ``None`` picks the local UTM zone.
    """
    profile = profile or _DEFAULT_PROFILES[mode]
    graph_mode: Mode = "walk" if mode == "walk" else "drive"
    if progress:
        progress(f"{mode} graph", 0.1)
    G = graph_from_extract(extract, mode=graph_mode)
    if G.number_of_edges() == 0:
        raise NetworkBuildError(
            f"{extract.path}: no {graph_mode}able highway ways found "
            f"({len(extract.ways)} highway ways in all); is this the right extract?"
        )
    n0, m0 = G.number_of_nodes(), G.number_of_edges()
    G = ox.truncate.largest_component(G, strongly=True)
    dropped_nodes, dropped_edges = n0 - G.number_of_nodes(), m0 - G.number_of_edges()
    if dropped_nodes:
        log.info("%s: dropped %d nodes outside the largest strongly connected component", mode, dropped_nodes)
    if progress:
        progress(f"{mode} graph", 0.5)
    add_travel_times(G, profile)
    for _, d in G.nodes(data=True):
        d["lon"], d["lat"] = d["x"], d["y"]
    G = ox.project_graph(G, to_crs=crs)
    counts: dict[str, int] = {}
    for _, _, hwy in G.edges(data="highway"):
        counts[str(hwy)] = counts.get(str(hwy), 0) + 1
    report = NetworkReport(
        mode=mode,
        ways=len({d["osmid"] for _, _, d in G.edges(data=True)}),
        nodes=G.number_of_nodes(),
        edges=G.number_of_edges(),
        dropped_nodes=dropped_nodes,
        dropped_edges=dropped_edges,
        crs=str(G.graph["crs"]),
        highway_counts=dict(sorted(counts.items())),
    )
    G.graph.update(mode=mode, profile=profile.name, source=str(extract.path))
    if progress:
        progress(f"{mode} graph", 1.0)
    return G, report


def load_network(
    path: str | Path,
    *,
    mode: Mode = "drive",
    profile: SpeedProfile | None = None,
    crs: str | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> nx.MultiDiGraph:
    """Load an OSM file as a projected road graph with ``travel_time`` (seconds) on every edge.

    The graph is cached in ``cache_dir`` (when given) under a hash of the file's bytes and every build
    parameter, so a changed file or profile never returns a stale graph. ``G.graph["branchnet_hash"]`` holds
    that key; :func:`geodata.matrix.travel_time_matrix` uses it to cache matrices.

    Raises
    ------
    InputFileError
        When the file is missing, empty or corrupt.
    NetworkBuildError
        When it holds no usable road for ``mode``.
    """
    path = Path(path)
    profile = profile or _DEFAULT_PROFILES[mode]
    if not path.is_file():
        from geodata.errors import InputFileError

        raise InputFileError(f"{path}: OSM file not found")
    key = _cache.params_digest(_cache.file_digest(path), mode, profile.as_dict(), crs, "network")
    cached = Path(cache_dir) / "graphs" / f"{key}.pickle" if cache_dir else None
    if cached is not None and cached.is_file():
        G: nx.MultiDiGraph = _cache.read_pickle(cached)
        if progress:
            progress(f"{mode} graph (cached)", 1.0)
        return G
    extract = read_osm(path, areas=False, progress=progress)
    G, report = build_network(extract, mode=mode, profile=profile, crs=crs, progress=progress)
    G.graph["branchnet_hash"] = key
    G.graph["report"] = asdict(report)
    if cached is not None:
        _cache.write_pickle(G, cached)
    return G
