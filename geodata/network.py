"""Road networks from OpenStreetMap: drive, bookmobile and walk graphs with travel time on every edge.

The graph model is osmnx's: a ``networkx.MultiDiGraph`` whose nodes carry ``x``/``y`` (projected metres) and
``lon``/``lat``, and whose edges carry ``length`` (m), ``speed_kph`` and ``travel_time`` (s). Graphs are built
unsimplified, so every OSM node of a kept way is a node, which keeps snapping of demand points accurate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import networkx as nx
import numpy as np
import osmnx as ox

from geodata import _cache
from geodata._osm import OsmExtract, read_osm
from geodata.errors import InvalidValueError, NetworkBuildError

log = logging.getLogger(__name__)

Mode = Literal["drive", "bookmobile", "walk"]
Progress = Callable[[str, float], None]

#: Default car speeds (km/h) by ``highway`` type, used where ``maxspeed`` is not tagged. They are typical
#: free-flow speeds on rural European roads, below the legal limits, and are meant to be overridden locally.
DEFAULT_HWY_SPEEDS: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 110.0, "motorway_link": 60.0, "trunk": 90.0, "trunk_link": 50.0,
        "primary": 80.0, "primary_link": 45.0, "secondary": 70.0, "secondary_link": 40.0,
        "tertiary": 60.0, "tertiary_link": 35.0, "unclassified": 50.0, "road": 40.0,
        "residential": 30.0, "living_street": 15.0, "service": 20.0, "track": 15.0,
    }
)  # fmt: skip

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


@dataclass(frozen=True)
class SpeedProfile:
    """How fast a vehicle (or walker) moves on each road type.

    Parameters
    ----------
    name
        Profile name, recorded on the graph.
    hwy_speeds
        km/h by OSM ``highway`` value, used where ``maxspeed`` is absent (or always, if ``use_maxspeed`` is off).
    fallback_kph
        km/h for highway types missing from ``hwy_speeds``.
    max_kph
        Cap on any edge speed, for vehicles slower than the limit (a bookmobile). ``None`` for no cap.
    factor
        Multiplier applied after the cap (for example 0.9 for a heavy vehicle's slower cornering and climbing).
    use_maxspeed
        Use tagged ``maxspeed`` where present.
    """

    name: str
    hwy_speeds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HWY_SPEEDS))
    fallback_kph: float = 40.0
    max_kph: float | None = None
    factor: float = 1.0
    use_maxspeed: bool = True

    def __post_init__(self) -> None:
        speeds = [self.fallback_kph, *self.hwy_speeds.values()]
        if not all(np.isfinite(s) and s > 0 for s in speeds):
            raise InvalidValueError(f"speed profile {self.name!r}: every speed must be a positive number of km/h")
        if self.max_kph is not None and not self.max_kph > 0:
            raise InvalidValueError(f"speed profile {self.name!r}: max_kph must be positive")
        if not 0 < self.factor <= 2:
            raise InvalidValueError(f"speed profile {self.name!r}: factor must lie in (0, 2]")

    @classmethod
    def from_file(cls, path: str | Path, *, base: SpeedProfile | None = None) -> SpeedProfile:
        """Read a profile from YAML or TOML: ``name``, ``hwy_speeds`` (km/h by highway), ``fallback_kph``, ...

        Keys left out keep the values of ``base`` (default :data:`CAR`); ``hwy_speeds`` entries are merged.
        """
        import tomllib

        import yaml

        path = Path(path)
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
        base = base or CAR
        known = {"name", "hwy_speeds", "fallback_kph", "max_kph", "factor", "use_maxspeed"}
        if not isinstance(data, dict) or set(data) - known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else data
            raise InvalidValueError(f"{path}: unknown speed profile field(s) {extra}; known are {sorted(known)}")
        speeds = {**base.hwy_speeds, **{str(k): float(v) for k, v in (data.get("hwy_speeds") or {}).items()}}
        try:
            return SpeedProfile(
                name=str(data.get("name", path.stem)),
                hwy_speeds=speeds,
                fallback_kph=float(data.get("fallback_kph", base.fallback_kph)),
                max_kph=data.get("max_kph", base.max_kph),
                factor=float(data.get("factor", base.factor)),
                use_maxspeed=bool(data.get("use_maxspeed", base.use_maxspeed)),
            )
        except ValueError as exc:
            raise InvalidValueError(f"{path}: {exc}") from None

    def as_dict(self) -> dict[str, object]:
        """Return the profile as plain data (for cache keys and reports)."""
        d = asdict(self)
        d["hwy_speeds"] = dict(sorted(self.hwy_speeds.items()))
        return d


#: A private car.
CAR = SpeedProfile("car")
#: A bookmobile: a rigid heavy vehicle, capped at 80 km/h and 15% slower than a car on every road.
BOOKMOBILE = SpeedProfile("bookmobile", max_kph=80.0, factor=0.85)
#: Walking at 4.8 km/h on any walkable way, whatever the speed limit.
WALK = SpeedProfile("walk", hwy_speeds={}, fallback_kph=4.8, use_maxspeed=False)

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
    ``maxspeed``/``name``/``ref`` tags where present. Speeds are added by :func:`add_travel_times`.
    """
    G = nx.MultiDiGraph(crs="EPSG:4326")
    for way in extract.ways:
        if not _keep_way(way.tags, mode):
            continue
        direction = _oneway(way.tags, mode)
        lengths = _haversine_m(way.lon[:-1], way.lat[:-1], way.lon[1:], way.lat[1:])
        attrs = {k: way.tags[k] for k in ("highway", "maxspeed", "name", "ref") if k in way.tags}
        for ref, lon, lat in zip(way.refs.tolist(), way.lon.tolist(), way.lat.tolist(), strict=True):
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


def add_travel_times(G: nx.MultiDiGraph, profile: SpeedProfile) -> nx.MultiDiGraph:
    """Set ``speed_kph`` and ``travel_time`` (s) on every edge of ``G`` in place, and return ``G``."""
    if G.number_of_edges() == 0:
        return G
    if profile.use_maxspeed:
        # osmnx parses maxspeed ("30 mph", "50;70", ...) and falls back to the per-highway table.
        ox.add_edge_speeds(G, hwy_speeds=dict(profile.hwy_speeds), fallback=profile.fallback_kph)
    else:
        for _, _, d in G.edges(data=True):
            d["speed_kph"] = float(profile.hwy_speeds.get(str(d.get("highway")), profile.fallback_kph))
    for _, _, d in G.edges(data=True):
        speed = float(d["speed_kph"])
        if profile.max_kph is not None:
            speed = min(speed, profile.max_kph)
        d["speed_kph"] = speed * profile.factor
        d["travel_time"] = d["length"] / (d["speed_kph"] / 3.6)
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
