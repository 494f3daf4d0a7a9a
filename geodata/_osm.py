"""Read OpenStreetMap extracts (.osm.pbf or .osm XML) with pyosmium.

One pass collects the highway ways with their node coordinates, building footprints and land-use polygons. Nothing
here knows about travel modes: :mod:`geodata.network` filters and builds graphs from what is read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium
import shapely

from geodata.errors import InputFileError

#: Way tags kept on road edges.
WAY_TAGS = (
    "highway", "maxspeed", "oneway", "junction", "access", "motor_vehicle", "motorcar", "foot", "service",
    "area", "name", "ref", "lit",
)  # fmt: skip

#: Node ``highway`` values that control traffic at a node (signals and signs), kept as ``OsmExtract.controls``.
NODE_CONTROLS = frozenset({"traffic_signals", "stop", "give_way", "mini_roundabout"})

#: Land uses that hold homes; other land uses mark buildings tagged only ``building=yes`` as non-residential.
RESIDENTIAL_LANDUSE = frozenset({"residential"})
NON_RESIDENTIAL_LANDUSE = frozenset(
    {
        "industrial",
        "commercial",
        "retail",
        "military",
        "railway",
        "quarry",
        "landfill",
        "cemetery",
        "farmyard",
    }
)


@dataclass
class OsmWay:
    """A highway way: its OSM id, node ids, coordinates (lon, lat) and the tags in :data:`WAY_TAGS`."""

    id: int
    refs: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    tags: dict[str, str]


@dataclass
class OsmExtract:
    """What branchnet reads from an OSM file."""

    path: Path
    ways: list[OsmWay] = field(default_factory=list)
    #: Building footprints in EPSG:4326, with their ``building`` tag value.
    buildings: list[tuple[int, shapely.Geometry, str]] = field(default_factory=list)
    #: Land-use polygons in EPSG:4326, with their ``landuse`` tag value.
    landuse: list[tuple[int, shapely.Geometry, str]] = field(default_factory=list)
    #: Traffic control at nodes: node id -> ``highway`` value in :data:`NODE_CONTROLS`.
    controls: dict[int, str] = field(default_factory=dict)


class _Handler(osmium.SimpleHandler):
    def __init__(self, extract: OsmExtract, want_areas: bool) -> None:
        super().__init__()
        self.extract = extract
        self.want_areas = want_areas
        self.wkb = osmium.geom.WKBFactory()
        self.bad_areas = 0

    def node(self, n: osmium.osm.Node) -> None:
        control = n.tags.get("highway")
        if control in NODE_CONTROLS:
            self.extract.controls[n.id] = control

    def way(self, w: osmium.osm.Way) -> None:
        tags = w.tags
        if "highway" not in tags:
            return
        refs, lons, lats = [], [], []
        for n in w.nodes:
            if not n.location.valid():
                continue  # a node outside the extract's cut
            refs.append(n.ref)
            lons.append(n.location.lon)
            lats.append(n.location.lat)
        if len(refs) < 2:
            return
        kept = {k: tags[k] for k in WAY_TAGS if k in tags}
        self.extract.ways.append(
            OsmWay(w.id, np.asarray(refs, dtype=np.int64), np.asarray(lons), np.asarray(lats), kept)
        )

    def area(self, a: osmium.osm.Area) -> None:
        if not self.want_areas:
            return
        building = a.tags.get("building")
        landuse = a.tags.get("landuse")
        if building is None and landuse is None:
            return
        try:
            geom = shapely.from_wkb(self.wkb.create_multipolygon(a))
        except (RuntimeError, shapely.errors.GEOSException):
            self.bad_areas += 1  # broken multipolygon in the source data; skipping it loses one footprint
            return
        if geom.is_empty:
            return
        if building is not None and building != "no":
            self.extract.buildings.append((a.orig_id(), geom, building))
        if landuse is not None:
            self.extract.landuse.append((a.orig_id(), geom, landuse))


def read_osm(
    path: str | Path, *, areas: bool = True, progress: Callable[[str, float], None] | None = None
) -> OsmExtract:
    """Read highway ways, and optionally buildings and land use, from an ``.osm.pbf`` or ``.osm`` file.

    Parameters
    ----------
    path
        The OSM file. pyosmium reads PBF, XML (``.osm``, ``.osm.bz2``, ``.osm.gz``) and o5m.
    areas
        Also assemble building and land-use polygons (needed for dasymetric population).
    progress
        Called with a stage name and a fraction in [0, 1].

    Raises
    ------
    InputFileError
        When the file is missing, empty, or not a readable OSM file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: OSM file not found")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: OSM file is empty")
    if progress:
        progress("read OSM", 0.0)
    extract = OsmExtract(path=path)
    handler = _Handler(extract, areas)
    try:
        handler.apply_file(str(path), locations=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputFileError(f"{path}: not a readable OSM file ({exc})") from exc
    if progress:
        progress("read OSM", 1.0)
    return extract
