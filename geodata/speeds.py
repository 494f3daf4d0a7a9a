"""The speed model: how fast a car, a bookmobile or a walker moves on each road, and what junctions cost.

Every edge gets a speed from its road class and its **context**, urban or rural, and a tagged ``maxspeed`` sets
the speed as a share of the limit:

- **Context.** A road is urban where it is lit (``lit=yes``), where its limit is 50 km/h (about 30 mph) or less,
  or where the drive roads around it are dense: at least ``urban_density`` km of road per km² in the 500 m square
  around it. That is the test Valhalla applies to untagged roads (its graph builder grades road density around
  each node). The threshold, 20 km/km², is met in town grids; the centres of Rutland's market towns measure
  12-17 and open country 2-5, and Valhalla's density index stays at 4 of 15 or below there, so both treat
  Rutland's untagged roads as rural.
- **Speeds.** The rural defaults are the speeds Valhalla 3.9.1 assigns to untagged roads, read from its trace
  attributes on Rutland (``benchmarks.valhalla``): trunk 90, primary 75, secondary 60, tertiary 50, unclassified
  40, residential 35 and service 25 km/h. The urban defaults are a fifth to a third lower on main roads, our
  estimate; they apply only where no limit is tagged and the context is urban.
- **Limits.** Where ``maxspeed`` is tagged, it is the limit, not the speed driven: the speed is the limit times a
  free-flow share, 1 up to 50 km/h, falling linearly to ``limit_factor`` (0.85) at 80 km/h and above. Town limits
  are kept to; on fast roads drivers average below the limit even where traffic flows freely (Department for
  Transport, SPE0111: cars on 60 mph single carriageways average 48 mph, 0.8 of it; on 70 mph motorways 67 mph).
  Valhalla instead drives at the tagged limit, up to 90 km/h on a lane tagged ``60 mph``; that is where the two
  part most (``benchmarks.travel_times`` prints the ratio by road class).
- **Junctions and turns** cost time as :mod:`geodata.turns` describes; ``turn_costs`` holds their seconds.

Everything is a field of :class:`SpeedProfile`, and a YAML or TOML file can override any of it
(:meth:`SpeedProfile.from_file`). ``benchmarks.travel_times`` measures the result against Valhalla on Rutland.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import networkx as nx
import numpy as np

from geodata.errors import InvalidValueError
from geodata.turns import TurnCosts

#: Rural car speeds (km/h) by ``highway`` class, where ``maxspeed`` is not tagged.
DEFAULT_HWY_SPEEDS: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 105.0, "motorway_link": 65.0, "trunk": 90.0, "trunk_link": 60.0,
        "primary": 75.0, "primary_link": 55.0, "secondary": 60.0, "secondary_link": 50.0,
        "tertiary": 50.0, "tertiary_link": 45.0, "unclassified": 40.0, "road": 40.0,
        "residential": 35.0, "living_street": 15.0, "service": 25.0, "track": 15.0,
    }
)  # fmt: skip
#: Urban car speeds (km/h) by ``highway`` class, where ``maxspeed`` is not tagged.
DEFAULT_URBAN_SPEEDS: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 90.0, "motorway_link": 50.0, "trunk": 60.0, "trunk_link": 45.0,
        "primary": 50.0, "primary_link": 40.0, "secondary": 45.0, "secondary_link": 35.0,
        "tertiary": 40.0, "tertiary_link": 30.0, "unclassified": 35.0, "road": 30.0,
        "residential": 30.0, "living_street": 12.0, "service": 20.0, "track": 10.0,
    }
)  # fmt: skip
#: The highway classes a speed file may name.
HIGHWAY_CLASSES = frozenset(DEFAULT_HWY_SPEEDS) | {"pedestrian", "footway", "path", "cycleway", "steps", "bridleway"}

_LIT = frozenset({"yes", "24/7", "automatic", "limited", "interval", "sunset-sunrise", "dusk-dawn"})
_MPH = 1.609344
#: Implicit limits (km/h) of OSM's ``maxspeed`` zone values (``GB:nsl_single`` and the like).
_ZONES = {"nsl_single": 60 * _MPH, "nsl_dual": 70 * _MPH, "motorway": 70 * _MPH, "urban": 50.0, "rural": 90.0}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$")


def parse_maxspeed(value: object) -> float | None:
    """Return a ``maxspeed`` tag's limit in km/h, or None when it gives none (``none``, ``signals``, nonsense).

    Accepts ``50``, ``30 mph``, ``50 km/h``, lists (``50;70``: the lowest), and zone values (``GB:nsl_single``,
    ``DK:urban``).
    """
    if value is None:
        return None
    if isinstance(value, list):
        found = [s for s in (parse_maxspeed(v) for v in value) if s is not None]
        return min(found) if found else None
    text = str(value).strip().lower()
    if ";" in text or "|" in text:
        return parse_maxspeed(re.split(r"[;|]", text))
    match = _NUMBER.match(text)
    if match:
        speed = float(match.group(1)) * (_MPH if match.group(2) == "mph" else 1.0)
        return speed if speed > 0 else None
    zone = text.split(":", 1)[-1]
    return _ZONES.get(zone)


@dataclass(frozen=True)
class SpeedProfile:
    """How fast a vehicle (or walker) moves on each road, in each context, and what junctions cost it.

    Parameters
    ----------
    name
        Profile name, recorded on the graph.
    hwy_speeds, urban_speeds
        Rural and urban km/h by OSM ``highway`` class (module docstring).
    fallback_kph
        km/h for classes missing from the tables (urban: times ``urban_speeds``/``hwy_speeds`` of ``road``).
    max_kph
        Cap on any edge speed, for vehicles slower than the limit (a bookmobile). ``None`` for no cap.
    factor
        Multiplier applied after the cap (for example 0.85 for a heavy vehicle's slower cornering and climbing).
    use_maxspeed
        Use tagged ``maxspeed`` as a limit (and as a sign of urban context).
    limit_factor
        Share of a tagged limit of 80 km/h or more that is driven on average, in (0, 1].
    urban_density
        km of road per km² (500 m square) from which a road counts as urban; ``inf`` for rural everywhere.
    turn_costs
        Junction and turn costs (:class:`geodata.turns.TurnCosts`); ``None`` for none (walking).
    """

    name: str
    hwy_speeds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_HWY_SPEEDS))
    urban_speeds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_URBAN_SPEEDS))
    fallback_kph: float = 40.0
    max_kph: float | None = None
    factor: float = 1.0
    use_maxspeed: bool = True
    limit_factor: float = 0.85
    urban_density: float = 20.0
    turn_costs: TurnCosts | None = field(default_factory=TurnCosts)

    def __post_init__(self) -> None:
        for table in ("hwy_speeds", "urban_speeds"):
            for hwy, speed in getattr(self, table).items():
                if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
                    raise InvalidValueError(
                        f"speed profile {self.name!r}: {table}.{hwy} must be a positive number of km/h, not {speed!r}"
                    )
        if not (math.isfinite(self.fallback_kph) and self.fallback_kph > 0):
            raise InvalidValueError(f"speed profile {self.name!r}: fallback_kph must be a positive number of km/h")
        if self.max_kph is not None and not self.max_kph > 0:
            raise InvalidValueError(f"speed profile {self.name!r}: max_kph must be positive")
        if not 0 < self.factor <= 2:
            raise InvalidValueError(f"speed profile {self.name!r}: factor must lie in (0, 2]")
        if not 0 < self.limit_factor <= 1:
            raise InvalidValueError(f"speed profile {self.name!r}: limit_factor must lie in (0, 1]")
        if not self.urban_density > 0:
            raise InvalidValueError(f"speed profile {self.name!r}: urban_density must be positive km/km²")

    def speed(self, highway: str, urban: bool) -> float:
        """The class default in km/h, before limits, cap and factor."""
        rural = self.hwy_speeds.get(highway, self.fallback_kph)
        if not urban:
            return float(rural)
        return float(self.urban_speeds.get(highway, min(rural, self.fallback_kph * 0.8)))

    def limited(self, speed: float, limit: float | None) -> float:
        """The speed driven where ``limit`` (km/h) is tagged: the free-flow share of it (module docstring);
        ``speed`` (the class default) where it is not."""
        if limit is None or not self.use_maxspeed:
            return speed
        share = 1.0 - (1.0 - self.limit_factor) * float(np.clip((limit - 50.0) / 30.0, 0.0, 1.0))
        return limit * share

    @classmethod
    def from_file(cls, path: str | Path, *, base: SpeedProfile | None = None) -> SpeedProfile:
        """Read a profile from YAML or TOML; keys left out keep the values of ``base`` (default :data:`CAR`).

        Keys: ``name``, ``hwy_speeds`` and ``urban_speeds`` (km/h by highway class, merged into the base's),
        ``fallback_kph``, ``max_kph``, ``factor``, ``use_maxspeed``, ``limit_factor``, ``urban_density`` and
        ``turn_costs`` (seconds by :class:`~geodata.turns.TurnCosts` field, merged; ``false`` for none).

        Raises
        ------
        InvalidValueError
            Naming the file and the field: unknown keys or highway classes, speeds that are not positive, factors
            outside (0, 1] (``limit_factor``) or (0, 2] (``factor``), negative turn costs.
        """
        import tomllib

        import yaml

        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise InvalidValueError(f"{path}: not a readable speed profile ({exc})") from None
        base = base or CAR
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else data
            raise InvalidValueError(f"{path}: unknown speed profile field(s) {extra}; known are {sorted(known)}")
        changes: dict[str, Any] = {"name": str(data.get("name", path.stem))}
        for table in ("hwy_speeds", "urban_speeds"):
            given = data.get(table) or {}
            if not isinstance(given, dict):
                raise InvalidValueError(f"{path}: {table} must map highway classes to km/h")
            unknown = sorted(str(k) for k in given if str(k) not in HIGHWAY_CLASSES)
            if unknown:
                raise InvalidValueError(
                    f"{path}: {table}.{unknown[0]}: unknown highway class; known are {sorted(HIGHWAY_CLASSES)}"
                )
            parsed = {str(k): _number(path, f"{table}.{k}", v) for k, v in given.items()}
            changes[table] = {**getattr(base, table), **parsed}
        for key in ("fallback_kph", "factor", "limit_factor", "urban_density"):
            if key in data:
                changes[key] = _number(path, key, data[key])
        if "max_kph" in data:
            changes["max_kph"] = None if data["max_kph"] is None else _number(path, "max_kph", data["max_kph"])
        if "use_maxspeed" in data:
            changes["use_maxspeed"] = bool(data["use_maxspeed"])
        if "turn_costs" in data:
            changes["turn_costs"] = _turn_costs(path, data["turn_costs"], base.turn_costs)
        try:
            return replace(base, **changes)
        except InvalidValueError as exc:
            raise InvalidValueError(f"{path}: {exc}") from None

    def as_dict(self) -> dict[str, object]:
        """Return the profile as plain data (for cache keys and reports)."""
        d = asdict(self)
        d["hwy_speeds"] = dict(sorted(self.hwy_speeds.items()))
        d["urban_speeds"] = dict(sorted(self.urban_speeds.items()))
        return d


def _number(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValueError(f"{path}: {key} must be a number, not {value!r}")
    try:
        return float(value)
    except ValueError:
        raise InvalidValueError(f"{path}: {key} must be a number, not {value!r}") from None


def _turn_costs(path: Path, value: object, base: TurnCosts | None) -> TurnCosts | None:
    if value is False or value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidValueError(f"{path}: turn_costs must map cost names to seconds, or be false")
    known = {f.name for f in fields(TurnCosts)}
    unknown = sorted(set(map(str, value)) - known)
    if unknown:
        raise InvalidValueError(f"{path}: turn_costs.{unknown[0]}: unknown field; known are {sorted(known)}")
    merged: dict[str, Any] = {**(base or TurnCosts()).as_dict()}
    for k, v in value.items():
        merged[str(k)] = v if k == "drive_side" else _number(path, f"turn_costs.{k}", v)
    try:
        return TurnCosts(**merged)
    except InvalidValueError as exc:
        raise InvalidValueError(f"{path}: {exc}") from None


#: A private car.
CAR = SpeedProfile("car")
#: A bookmobile: a rigid heavy vehicle, capped at 80 km/h, 15% slower than a car on every road and half as slow
#: again through junctions.
BOOKMOBILE = SpeedProfile("bookmobile", max_kph=80.0, factor=0.85, turn_costs=TurnCosts().scaled(1.5))
#: Walking at 4.8 km/h on any walkable way, whatever the speed limit; no junction costs.
WALK = SpeedProfile(
    "walk", hwy_speeds={}, urban_speeds={}, fallback_kph=4.8, use_maxspeed=False, urban_density=math.inf,
    turn_costs=None,
)  # fmt: skip


def road_density(x: np.ndarray, y: np.ndarray, tail: np.ndarray, head: np.ndarray, *, cell: float = 100.0,
                 window: int = 5) -> np.ndarray:  # fmt: skip
    """km of road per km² in the ``window`` x ``window`` cells (of ``cell`` metres) around each segment's middle.

    ``x``, ``y`` are node coordinates in metres; each undirected segment ``tail``-``head`` counts once.
    """
    if len(tail) == 0:
        return np.zeros(0)
    a, b = np.minimum(tail, head), np.maximum(tail, head)
    pairs, inverse = np.unique(np.column_stack([a, b]), axis=0, return_inverse=True)
    mx = (x[pairs[:, 0]] + x[pairs[:, 1]]) / 2
    my = (y[pairs[:, 0]] + y[pairs[:, 1]]) / 2
    length = np.hypot(x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]])
    ix = np.floor((mx - mx.min()) / cell).astype(np.int64)
    iy = np.floor((my - my.min()) / cell).astype(np.int64)
    pad = window // 2
    grid = np.zeros((iy.max() + 1 + 2 * pad, ix.max() + 1 + 2 * pad))
    np.add.at(grid, (iy + pad, ix + pad), length)
    # window sums by a summed-area table
    sat = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1))
    sat[1:, 1:] = grid.cumsum(0).cumsum(1)
    y0, x0 = iy, ix
    y1, x1 = iy + window, ix + window
    total = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    density = (total / 1000.0) / ((window * cell / 1000.0) ** 2)
    return np.asarray(density[np.asarray(inverse).ravel()])


def add_travel_times(G: nx.MultiDiGraph, profile: SpeedProfile) -> nx.MultiDiGraph:
    """Set ``speed_kph``, ``urban`` and ``travel_time`` (s) on every edge of ``G`` in place, record the profile's
    turn costs in ``G.graph["turn_costs"]``, and return ``G``.

    Node coordinates are ``x``/``y`` in degrees (EPSG:4326) or metres (a projected CRS).
    """
    G.graph.pop("turn_costs", None)
    if profile.turn_costs is not None:
        G.graph["turn_costs"] = profile.turn_costs.as_dict()
    if G.number_of_edges() == 0:
        return G
    edges = list(G.edges(keys=True, data=True))
    index = {n: i for i, n in enumerate(G.nodes)}
    xy = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)], dtype=np.float64)
    if str(G.graph.get("crs", "EPSG:4326")).upper() == "EPSG:4326":  # local metres, good enough for a density
        lat0 = math.radians(float(np.mean(xy[:, 1])))
        xy = xy * np.array([111_320.0 * math.cos(lat0), 110_540.0])
    tail = np.fromiter((index[u] for u, _, _, _ in edges), dtype=np.int64, count=len(edges))
    head = np.fromiter((index[v] for _, v, _, _ in edges), dtype=np.int64, count=len(edges))
    dense = (
        road_density(xy[:, 0], xy[:, 1], tail, head) >= profile.urban_density
        if math.isfinite(profile.urban_density)
        else np.zeros(len(edges), dtype=bool)
    )
    for (_, _, _, d), is_dense in zip(edges, dense.tolist(), strict=True):
        limit = parse_maxspeed(d.get("maxspeed")) if profile.use_maxspeed else None
        urban = bool(is_dense or d.get("lit") in _LIT or (limit is not None and limit <= 50.0))
        speed = profile.limited(profile.speed(str(d.get("highway")), urban), limit)
        if profile.max_kph is not None:
            speed = min(speed, profile.max_kph)
        d["urban"] = urban
        d["speed_kph"] = speed * profile.factor
        d["travel_time"] = d["length"] / (d["speed_kph"] / 3.6)
    return G
