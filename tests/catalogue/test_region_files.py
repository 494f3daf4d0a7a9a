"""Bad region files, each through ``branchnet region import`` (exit code 2) and ``POST /api/v1/regions`` (422).

Every entry replaces one of the good tiny region's files (or adds an option) and asserts that the message names the
file (its path on the command line; ``field (client file name)`` in the API) and says what is wrong, and that the
stored data is unchanged: the CLI re-imports over the stored ``tiny`` region, the API uploads a new ``tiny2``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import osmium
import pytest
import shapely

from tests.catalogue._support import TINY_OSM, Entry, cli, import_args, snapshot, unchanged
from tests.catalogue.conftest import API, Service

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + bytes(200)
BOX_A1 = shapely.box(9.499, 56.199, 9.509, 56.211)
BOX_A2 = shapely.box(9.509, 56.199, 9.519, 56.211)
BOWTIE = shapely.Polygon([(9.509, 56.199), (9.519, 56.211), (9.519, 56.199), (9.509, 56.211)])

Files = dict[str, Path]
Maker = Callable[[Path], Files]


def raw(field: str, name: str, data: bytes | str) -> Maker:
    """A maker of one file of ``field`` with the bytes (or UTF-8 text) ``data``."""

    def make(folder: Path) -> Files:
        path = folder / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return {field: path}

    return make


def areas(name: str, codes: list[str], populations: list[object], geometry: list[object] | None = None,
          crs: str | None = "EPSG:4326") -> Maker:  # fmt: skip
    """A maker of census-area polygons with ``codes`` and ``populations`` (no population column when empty)."""

    def make(folder: Path) -> Files:
        cols: dict[str, list[object]] = {"code": list(codes)}
        if populations:
            cols["population"] = list(populations)
        gdf = gpd.GeoDataFrame(cols, geometry=geometry or [BOX_A1, BOX_A2][: len(codes)], crs=crs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "'crs' was not provided"
            gdf.to_file(folder / name)
        return {"population": folder / name}

    return make


def both(*makers: Maker) -> Maker:
    def make(folder: Path) -> Files:
        out: Files = {}
        for m in makers:
            out.update(m(folder))
        return out

    return make


@functools.cache
def tiny_pbf() -> bytes:
    """tests/data/tiny.osm as PBF (written with pyosmium)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.osm.pbf"
        writer = osmium.SimpleWriter(str(path))

        class Copy(osmium.SimpleHandler):
            def node(self, n: osmium.osm.Node) -> None:
                writer.add_node(n)

            def way(self, w: osmium.osm.Way) -> None:
                writer.add_way(w)

        Copy().apply_file(str(TINY_OSM))
        writer.close()
        return path.read_bytes()


def truncated_pbf(folder: Path) -> Files:
    data = tiny_pbf()
    path = folder / "roads.osm.pbf"
    path.write_bytes(data[: len(data) // 2])
    return {"osm": path}


NO_ROADS = ('<?xml version="1.0"?><osm version="0.6"><node id="1" version="1" lat="56.2" lon="9.5"/>'
            '<node id="2" version="1" lat="56.21" lon="9.51"/><way id="5" version="1"><nd ref="1"/><nd ref="2"/>'
            '<tag k="waterway" v="river"/></way></osm>')  # fmt: skip
MIXED = ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"A1","population":5},'
         '"geometry":{"type":"Point","coordinates":[9.501,56.2005]}},{"type":"Feature","properties":{"code":"A2",'
         '"population":5},"geometry":{"type":"Polygon","coordinates":[[[9.509,56.199],[9.519,56.199],[9.519,56.211],'
         '[9.509,56.211],[9.509,56.199]]]}}]}')  # fmt: skip
NO_POP = areas("areas_nopop.geojson", ["A1", "A2"], [])
BRANCHES = "branch_id,name,lon,lat\n"

ENTRIES = [
    # --- OSM extract
    Entry("osm-corrupt-pbf", "random bytes as roads.osm.pbf", "not a readable OSM file (unknown pbf field type",
          raw("osm", "roads.osm.pbf", b"\x00\x00\x00\x0dthis is not a PBF" * 64)),
    Entry("osm-truncated-pbf", "the first half of a real PBF", "not a readable OSM file (PBF error", truncated_pbf),
    Entry("osm-zero-bytes", "a 0-byte roads.osm.pbf", {"cli": "OSM file is empty", "api": "is empty"},
          raw("osm", "roads.osm.pbf", b"")),
    Entry("osm-png-named-pbf", "a PNG image named roads.osm.pbf", "not a readable OSM file",
          raw("osm", "roads.osm.pbf", PNG)),
    Entry("osm-no-roads", "valid OSM XML with a river and no highway", "no driveable highway ways found",
          raw("osm", "roads.osm", NO_ROADS)),
    Entry("osm-truncated-xml", "the first 40% of an .osm file", "not a readable OSM file (XML parsing error",
          raw("osm", "roads.osm", TINY_OSM.read_bytes()[: int(TINY_OSM.stat().st_size * 0.4)])),
    Entry("osm-html-error-page", "a web server's error page saved as roads.osm",
          "not a readable OSM file (Unknown top-level element: html)",
          raw("osm", "roads.osm", "<html><body><h1>502 Bad Gateway</h1></body></html>")),
    # --- population
    Entry("population-negative", "area A2 with population -5",
          "row 'A2': field 'population' is -5; population must be a number >= 0",
          areas("areas.geojson", ["A1", "A2"], [120, -5])),
    Entry("population-nan", "a points CSV whose row 3 population is NaN",
          "row 3: field 'population' is 'NaN'; not a number of people",
          raw("population", "people.csv", "lon,lat,population\n9.501,56.2005,10\n9.51,56.205,NaN\n")),
    Entry("population-non-numeric", "a points CSV whose row 3 population is 'many'",
          "row 3: field 'population' is 'many'; not a number of people",
          raw("population", "people.csv", "lon,lat,population\n9.501,56.2005,10\n9.51,56.205,many\n")),
    Entry("population-empty-count", "a points CSV whose row 2 population is empty",
          "row 2: field 'population' is empty; a population count is needed",
          raw("population", "people.csv", "lon,lat,population\n9.501,56.2005,\n9.51,56.205,4\n")),
    Entry("population-huge", "area A1 with population 1e20",
          "row 'A1': field 'population' is 1e+20; more than 1e+09 people in one row is not a population count",
          areas("areas.geojson", ["A1", "A2"], [1e20, 80])),
    Entry("population-no-crs", "a GeoPackage of areas without a CRS", "the file has no coordinate reference system",
          areas("areas.gpkg", ["A1", "A2"], [120, 80], crs=None)),
    Entry("population-invalid-polygon", "area A2 as a self-intersecting bow-tie",
          "1 polygon(s) are invalid and cannot be repaired without changing their area (feature 2: "
          "Self-intersection", areas("areas.geojson", ["A1", "A2"], [120, 80], [BOX_A1, BOWTIE])),
    Entry("population-duplicate-ids", "two areas coded A1", "area id 'A1' repeats in field 'code'",
          areas("areas.geojson", ["A1", "A1"], [120, 80])),
    Entry("population-png-named-gpkg", "a PNG image named areas.gpkg", "not a readable spatial file",
          raw("population", "areas.gpkg", PNG)),
    Entry("population-zero-bytes", "a 0-byte areas.geojson",
          {"cli": "the file is empty (0 bytes)", "api": "is empty"}, raw("population", "areas.geojson", b"")),
    Entry("population-mixed-geometry", "one point and one polygon",
          "geometry must be all points or all polygons, found ['Point', 'Polygon']",
          raw("population", "areas.geojson", MIXED)),
    Entry("population-table-latin1", "a population table in Latin-1 with é on line 3",
          "line 3: byte 0xe9 is not UTF-8 (it looks like Latin-1 or Windows-1252 text); save the file as UTF-8",
          both(NO_POP, raw("population_table", "census.csv", "code,name,population\nA1,North,120\nA2,Ré,80\n"
                                                             .encode("latin-1")))),
    Entry("population-table-no-match", "a population table whose codes match no area",
          "matched no rows (tried every pair of columns)",
          both(NO_POP, raw("population_table", "census.csv", "zone,population\nZ1,120\nZ2,80\n"))),
    Entry("population-field-missing", "--population-field people, which the file lacks",
          "population field 'people' not found; columns are code, population", extra={"population_field": "people"}),
    # --- branches
    Entry("branches-duplicate-ids", "two branches with id main",
          "branch id 'main' in field 'branch_id' repeats (features 1, 2)",
          raw("branches", "branches.csv", BRANCHES + "main,Main,9.501,56.2005\nmain,East,9.517,56.209\n")),
    Entry("branches-outside-network", "a branch 150 km from the roads",
          "1 branch(s) lie outside the road network's area, more than 2 km from any road: 'moon'",
          raw("branches", "branches.csv", BRANCHES + "main,Main,9.501,56.2005\nmoon,Moon,12.0,57.0\n")),
    Entry("branches-latin1", "a branches CSV in Latin-1 with è on line 3", "line 3: byte 0xe8 is not UTF-8",
          raw("branches", "branches.csv", (BRANCHES + "main,Main,9.501,56.2005\neast,Bibliothèque,9.517,56.209\n")
              .encode("latin-1"))),
    Entry("branches-huge-name", "a branch name of 100,000 characters",
          "feature 2: field 'name' is 100,000 characters long; at most 200",
          raw("branches", "branches.csv", BRANCHES + f"main,Main,9.501,56.2005\neast,{'x' * 100_000},9.517,56.209\n")),
    Entry("branches-bad-coordinates", "lon 'east' on row 3", "row 3: fields 'lon'/'lat' are not numeric coordinates",
          raw("branches", "branches.csv", BRANCHES + "main,Main,9.501,56.2005\neast,East,east,56.209\n")),
    Entry("branches-unreadable-hours", "Monday staffed hours '9-5'",
          "branch 'main': field 'Monday staffed hours': cannot read hours '9-5'",
          raw("branches", "branches.csv", "branch_id,lon,lat,Monday staffed hours\nmain,9.501,56.2005,9-5\n")),
    Entry("branches-no-id-field", "a branches CSV with coordinates only", "no branch id field (looked for branch_id",
          raw("branches", "branches.csv", "lon,lat\n9.501,56.2005\n")),
    Entry("branches-empty-id", "a branch with an empty id", "feature 2: field 'branch_id' (branch id) is empty",
          raw("branches", "branches.csv", BRANCHES + "main,Main,9.501,56.2005\n,East,9.517,56.209\n")),
    Entry("branches-truncated-geojson", "a GeoJSON cut mid-string", "not a readable spatial file",
          raw("branches", "branches.geojson", '{"type":"FeatureCollection","features":[{"type":"Feature","prop')),
    Entry("branches-null-geometry", "a GeoJSON feature with geometry null",
          "1 feature(s) have no geometry (field 'geometry')",
          raw("branches", "branches.geojson", '{"type":"FeatureCollection","features":[{"type":"Feature",'
                                              '"properties":{"branch_id":"main"},"geometry":null}]}')),
    Entry("branches-infinite-cost", "annual_cost 1e400", "field 'annual_cost': '1e400' must be a non-negative number",
          raw("branches", "branches.csv", "branch_id,lon,lat,annual_cost\nmain,9.501,56.2005,1e400\n")),
    Entry("branches-png-named-geojson", "a PNG image named branches.geojson", "not a readable spatial file",
          raw("branches", "branches.geojson", PNG)),
]  # fmt: skip
IDS = [e.id for e in ENTRIES]


def bad_files(entry: Entry, folder: Path) -> Files:
    """The files ``entry`` replaces, the one at fault last."""
    folder.mkdir(parents=True, exist_ok=True)
    return entry.make(folder) if entry.make else {}


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_cli(entry: Entry, cli_data: Path, region_files: Files, tmp_path: Path) -> None:
    files = bad_files(entry, tmp_path / "bad")
    before = snapshot(cli_data)
    code, out = cli(import_args("tiny", {**region_files, **files}, entry.extra), cli_data)
    assert code == entry.exit_code, out
    assert "error:" in out and "internal error" not in out and "Traceback" not in out, out
    named = list(files.values())[-1] if files else region_files["population"]  # the file at fault
    assert str(named.resolve()) in out, out
    assert entry.expected("cli") in out, out
    unchanged(before, snapshot(cli_data))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_api(entry: Entry, service: Service, region_files: Files, tmp_path: Path) -> None:
    files = bad_files(entry, tmp_path / "bad")
    upload = {k: (p.name, p.read_bytes()) for k, p in {**region_files, **files}.items()}
    before = service.snapshot()
    r = service.client.post(f"{API}/regions", headers=service.headers("a", "admin"), files=upload,
                            data={"name": "tiny2", **entry.extra})  # fmt: skip
    assert r.status_code == entry.status, r.text
    detail = r.json()["detail"]
    field, path = list(files.items())[-1] if files else ("population", region_files["population"])
    assert f"{field} ({path.name})" in detail, detail
    assert entry.expected("api") in detail, detail
    assert str(tmp_path) not in r.text and str(service.data_dir) not in r.text  # no server path leaks
    unchanged(before, service.snapshot())
