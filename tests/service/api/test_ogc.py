"""OGC API – Features at ``/ogc``: the result layers of an organisation's succeeded runs for QGIS and GDAL.

One real run of the toy region per database (SQLite and PostgreSQL+PostGIS, module-scoped ``site`` fixtures) feeds
every test. Counts, extents, attributes and bbox matches are recounted from the run's ``layers.gpkg`` with pyogrio
and shapely, never taken from the endpoint under test. A live ``branchnet serve`` on the SQLite site's data folder
is read by a real OGC client, GDAL's OAPIF driver (through pyogrio), and by a replay of QGIS's request sequence.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import httpx
import pandas as pd
import pyogrio
import pytest
import shapely

from geodata.region import RegionData
from service.api.local_server import LocalServer, local_server
from service.api.ogc import DEFAULT_LIMIT, MAX_LIMIT
from service.store.db import Run
from tests.service.api.conftest import LEAFLET, Keys, PostgresCluster
from tests.service.api.test_runs import QUICK, setup_org, submit, succeeded

OGC = "/ogc"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass
class Site:
    """An app with organisations a and b, and one succeeded run of organisation a."""

    client: Any  # TestClient
    services: Any
    keys: Keys
    run_id: str
    scenario: str
    gpkg: Path
    data_dir: Path

    def a(self) -> dict[str, str]:
        return self.keys.headers("a", "viewer")

    def cid(self, layer: str) -> str:
        return f"{self.run_id}__{layer}"


def gpkg_layers(gpkg: Path) -> list[str]:
    return [str(name) for name, _ in pyogrio.list_layers(gpkg)]


def gpkg_frame(gpkg: Path, layer: str) -> gpd.GeoDataFrame:
    """The layer as stored, in EPSG:4326, indexed by its fid: the reference every answer is checked against."""
    frame = pyogrio.read_dataframe(gpkg, layer=layer, fid_as_index=True)
    return frame if frame.crs is None or frame.crs.to_epsg() == 4326 else frame.to_crs(4326)


@contextlib.contextmanager
def make_site(tmp: Path, toy_region: RegionData, db_url: str | None) -> Iterator[Site]:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    data_dir = tmp / "data"
    values: dict[str, Any] = {"data_dir": data_dir, "leaflet_dir": LEAFLET, "run_workers": 1, "workers": 1}
    if db_url:
        values["database_url"] = db_url
    app = create_app(Settings(**values))
    with TestClient(app) as client:
        services = app.state.services
        keys, (scenario,) = setup_org(services, toy_region, QUICK)
        run_id = submit(client, keys, scenario)
        succeeded(client, keys, run_id, timeout=120)
        with services.sessions() as s:
            run = s.get(Run, run_id)
            folder = services.files.root / run.result_path
            # a failed run of the same scenario, pointing at the same files: never a collection
            s.add(Run(org_id=run.org_id, scenario_id=run.scenario_id, body=run.body, status="failed", progress=50.0,
                      stage="failed", attempts=1, summary={}, result_path=run.result_path, id="f" * 16))  # fmt: skip
            s.commit()
        yield Site(client, services, keys, run_id, str(QUICK["name"]), folder / "layers.gpkg", data_dir)


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory, toy_region: RegionData) -> Iterator[Site]:
    """A site on SQLite (its data folder is also served by the live server)."""
    with make_site(tmp_path_factory.mktemp("ogc-sqlite"), toy_region, None) as site:
        yield site


@pytest.fixture(scope="module")
def postgres_site(
    tmp_path_factory: pytest.TempPathFactory, toy_region: RegionData, postgres: PostgresCluster
) -> Iterator[Site]:
    """A site on a fresh PostgreSQL+PostGIS database."""
    url = postgres.create_database()
    try:
        with make_site(tmp_path_factory.mktemp("ogc-postgres"), toy_region, url) as site:
            yield site
    finally:
        postgres.drop_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest) -> Site:
    """The site on each database in turn."""
    result: Site = request.getfixturevalue(f"{request.param}_site")
    return result


@pytest.fixture(scope="module")
def live(sqlite_site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """``branchnet serve`` on a free port, on the SQLite site's database and file store."""
    tmp = tmp_path_factory.mktemp("ogc-live")
    settings = {"BRANCHNET_DATA_DIR": str(sqlite_site.data_dir), "BRANCHNET_LEAFLET_DIR": str(LEAFLET),
                "BRANCHNET_RUN_WORKERS": "1", "BRANCHNET_WORKERS": "1"}  # fmt: skip
    with local_server(settings, cwd=tmp, log=tmp / "server.log") as server:
        yield server


def basic(key: str, user: str = "qgis") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def page_all(client: Any, url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every feature of ``url`` and every page, following ``next`` links until there is none."""
    features, pages = [], []
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        pages.append(r.json())
        features += r.json()["features"]
        url = next((link["href"] for link in r.json()["links"] if link["rel"] == "next"), "")
    return features, pages


# ---------------------------------------------------------------------------------------------------------------
# landing page, conformance, collections (both databases)


def test_landing_page_and_conformance(site: Site) -> None:
    r = site.client.get(OGC, headers=site.a())
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    links = {link["rel"]: link for link in r.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert links["service-desc"]["href"].endswith("/ogc/api") and links["data"]["href"].endswith("/ogc/collections")
    for rel in ("service-desc", "conformance", "data"):  # every link resolves
        assert site.client.get(links[rel]["href"], headers=site.a()).status_code == 200, rel
    assert site.client.get(OGC, params={"f": "html"}, headers=site.a()).json() == r.json()

    conf = site.client.get(f"{OGC}/conformance", headers=site.a())
    assert conf.status_code == 200
    assert set(conf.json()["conformsTo"]) >= {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    }


def test_collections_are_the_layers_of_succeeded_runs(site: Site) -> None:
    r = site.client.get(f"{OGC}/collections", headers=site.a())
    assert r.status_code == 200, r.text
    listed = {c["id"]: c for c in r.json()["collections"]}
    layers = gpkg_layers(site.gpkg)
    assert {"branches", "demand"} <= set(layers)
    # only the succeeded run: the failed run "fff..." shares its files but is not listed
    assert set(listed) == {site.cid(layer) for layer in layers}
    for layer in layers:
        c = listed[site.cid(layer)]
        assert site.scenario in c["title"] and layer in c["title"] and c["description"]
        assert c["crs"] == [CRS84] and c["extent"]["spatial"]["crs"] == CRS84
        frame = gpkg_frame(site.gpkg, layer)
        assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(list(frame.total_bounds), abs=1e-9)
        minx, miny, maxx, maxy = c["extent"]["spatial"]["bbox"][0]
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90  # longitude first
        items = next(link for link in c["links"] if link["rel"] == "items")
        assert items["type"] == "application/geo+json" and items["href"].endswith(f"/collections/{c['id']}/items")
        one = site.client.get(f"{OGC}/collections/{c['id']}", headers=site.a())
        assert one.status_code == 200 and one.json() == c
    failed = site.client.get(f"{OGC}/collections/{'f' * 16}__branches", headers=site.a())
    assert failed.status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# items: pages, feature ids, bbox (both databases)


def test_items_pages_cover_the_layer_once(site: Site) -> None:
    frame = gpkg_frame(site.gpkg, "demand")
    limit = max(2, len(frame) // 4 + 1)  # four pages, the last one short
    features, pages = page_all(site.client, f"{OGC}/collections/{site.cid('demand')}/items?limit={limit}", site.a())
    assert len(pages) == -(-len(frame) // limit) >= 2
    assert {p["numberMatched"] for p in pages} == {len(frame)}
    assert [p["numberReturned"] for p in pages] == [len(p["features"]) for p in pages]
    assert all(p["timeStamp"].endswith("Z") for p in pages)
    assert "prev" not in {link["rel"] for link in pages[0]["links"]}
    assert all("prev" in {link["rel"] for link in p["links"]} for p in pages[1:])
    for p in pages[:-1]:  # next links keep the page size
        nxt = next(link["href"] for link in p["links"] if link["rel"] == "next")
        assert parse_qs(urlsplit(nxt).query)["limit"] == [str(limit)]
    ids = [f["id"] for f in features]
    assert sorted(ids) == sorted(int(i) for i in frame.index)  # each feature once, by its GeoPackage fid
    assert set(features[0]["properties"]) == set(frame.columns) - {"geometry"}
    for f in features[:: max(1, len(features) // 10)]:
        want = frame.loc[f["id"]]
        assert shapely.geometry.shape(f["geometry"]).equals_exact(want.geometry, 1e-9)
        for column in set(frame.columns) - {"geometry"}:
            value = want[column]
            got = f["properties"][column]
            if pd.isna(value):
                assert got is None, column
            elif isinstance(got, float):
                assert got == pytest.approx(value), column
            else:
                assert got == value, column
        one = site.client.get(f"{OGC}/collections/{site.cid('demand')}/items/{f['id']}", headers=site.a())
        assert one.status_code == 200 and one.headers["content-type"].startswith("application/geo+json")
        assert one.json()["links"] and {**one.json(), "links": None} == {**f, "links": None}
    default = site.client.get(f"{OGC}/collections/{site.cid('demand')}/items", headers=site.a()).json()
    assert default["numberReturned"] == min(DEFAULT_LIMIT, len(frame))
    url = f"{OGC}/collections/{site.cid('demand')}/items?offset={len(frame) + 5}"
    beyond = site.client.get(url, headers=site.a())
    assert beyond.status_code == 200 and beyond.json()["features"] == []
    assert beyond.json()["numberMatched"] == len(frame)


@pytest.mark.parametrize("layer", ["demand", "areas"])
def test_bbox_returns_exactly_the_intersecting_features(site: Site, layer: str) -> None:
    frame = gpkg_frame(site.gpkg, layer)
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
    w, h = maxx - minx, maxy - miny
    box = (minx + w * 0.05, miny + h * 0.05, minx + w * 0.4, miny + h * 0.4)
    expected = {int(fid) for fid, g in frame.geometry.items() if g is not None and g.intersects(shapely.box(*box))}
    assert 0 < len(expected) < len(frame)  # the box cuts the layer
    bbox = ",".join(repr(v) for v in box)
    features, pages = page_all(site.client, f"{OGC}/collections/{site.cid(layer)}/items?bbox={bbox}&limit=10",
                               site.a())  # fmt: skip
    assert {f["id"] for f in features} == expected and len(features) == len(expected)
    assert pages[0]["numberMatched"] == len(expected)
    if len(pages) > 1:  # next links keep the filter
        nxt = next(link["href"] for link in pages[0]["links"] if link["rel"] == "next")
        assert parse_qs(urlsplit(nxt).query)["bbox"] == [bbox]
    with_heights = f"{box[0]!r},{box[1]!r},-10,{box[2]!r},{box[3]!r},100"
    r = site.client.get(f"{OGC}/collections/{site.cid(layer)}/items", params={"bbox": with_heights,
                        "bbox-crs": CRS84, "limit": MAX_LIMIT}, headers=site.a())  # fmt: skip
    assert r.status_code == 200 and {f["id"] for f in r.json()["features"]} == expected
    for far, matched in (("100,-50,101,-49", 0), ("170,-90,-170,90", 0), ("0,-90,-170,90", len(frame))):
        r = site.client.get(f"{OGC}/collections/{site.cid(layer)}/items?bbox={far}", headers=site.a())  # 2 across 180°
        assert r.status_code == 200 and r.json()["numberMatched"] == matched, far


# ---------------------------------------------------------------------------------------------------------------
# bad input, keys and organisations (both databases)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=10001", ["limit", "maximum", str(MAX_LIMIT)]),
        ("limit=0", ["limit", "at least 1"]),
        ("limit=ten", ["limit", "integer", "'ten'"]),
        ("offset=-1", ["offset", "at least 0"]),
        ("offset=1.5", ["offset", "integer"]),
        ("bbox=1,2,3", ["bbox", "4 comma-separated numbers", "3 value(s)"]),
        ("bbox=1,2,x,4", ["bbox", "value 3", "'x'", "not a number"]),
        ("bbox=1,2,3,nan", ["bbox", "value 4", "finite"]),
        ("bbox=0,50,1,49", ["bbox", "lower latitude 50", "upper latitude 49"]),
        ("bbox=0,0,1,1&bbox-crs=EPSG:3857", ["bbox-crs", "CRS84", "'EPSG:3857'"]),
        ("f=xml", ["f:", "'xml'"]),
    ],
)
def test_malformed_parameters_are_a_400_naming_them(site: Site, query: str, words: list[str]) -> None:
    r = site.client.get(f"{OGC}/collections/{site.cid('branches')}/items?{query}", headers=site.a())
    assert r.status_code == 400, r.text
    for word in words:
        assert word in r.json()["detail"], (word, r.json()["detail"])


def test_unknown_collections_and_features_are_a_404_naming_them(site: Site) -> None:
    for cid in (site.cid("nope"), "0123456789abcdef__branches", "branches", f"{site.run_id}__", "__branches"):
        for path in (f"/collections/{cid}", f"/collections/{cid}/items", f"/collections/{cid}/items/1"):
            r = site.client.get(OGC + path, headers=site.a())
            assert r.status_code == 404, (path, r.text)
            assert repr(cid) in r.json()["detail"], r.json()
    fids = [int(i) for i in gpkg_frame(site.gpkg, "branches").index]
    for fid in (str(max(fids) + 1), "0", "abc", "1.0", "9" * 40):
        r = site.client.get(f"{OGC}/collections/{site.cid('branches')}/items/{fid}", headers=site.a())
        assert r.status_code == 404 and repr(fid) in r.json()["detail"], (fid, r.text)


def test_keys_basic_auth_and_organisations(site: Site) -> None:
    key = site.keys["a"]["viewer"]
    url = f"{OGC}/collections/{site.cid('branches')}/items/1"
    for path in (OGC, f"{OGC}/api", f"{OGC}/conformance", f"{OGC}/collections", url):
        r = site.client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == 'Basic realm="branchnet"'
    no_colon = {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}  # not user:password
    for wrong in (basic("bn_0000_nope"), basic(key + "x"), {"Authorization": "Basic !!!"}, no_colon):
        r = site.client.get(url, headers=wrong)
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="branchnet"', wrong
    expected = site.client.get(url, headers={"X-API-Key": key})
    assert expected.status_code == 200
    for good in (basic(key), basic(key, user=""), basic(key, user="zoë"), {"Authorization": f"Bearer {key}"},
                 basic(site.keys["a"]["admin"])):  # fmt: skip
        r = site.client.get(url, headers=good)
        assert r.status_code == 200 and r.json() == expected.json(), good

    other = site.keys.headers("b", "admin")
    listed = site.client.get(f"{OGC}/collections", headers=other)
    assert listed.status_code == 200 and listed.json()["collections"] == []
    for path in (f"/collections/{site.cid('branches')}", f"/collections/{site.cid('branches')}/items", url[4:]):
        foreign = site.client.get(OGC + path, headers=basic(site.keys["b"]["viewer"]))
        missing = site.client.get(OGC + path.replace(site.run_id, "0" * 16), headers=other)
        assert foreign.status_code == missing.status_code == 404, path
        assert foreign.json()["detail"].replace(site.run_id, "0" * 16) == missing.json()["detail"]


def test_api_document_declares_the_paging_parameters(site: Site) -> None:
    r = site.client.get(f"{OGC}/api", headers=site.a())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json;version=3.0")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.") and doc["servers"][0]["url"].endswith("/ogc")

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return dict(target)
        return node

    ops = {path: item["get"] for path, item in doc["paths"].items()}
    one = "/collections/{collectionId}"
    assert set(ops) == {"/", "/api", "/conformance", "/collections", one, f"{one}/items", f"{one}/items/{{featureId}}"}
    for path, op in ops.items():  # every path parameter is declared, every $ref resolves
        params = {p["name"]: p for p in map(resolve, op["parameters"])}
        for name in ("collectionId", "featureId"):
            assert (f"{{{name}}}" in path) == (name in params and params[name]["in"] == "path"), (path, name)
    items = {p["name"]: p for p in map(resolve, ops["/collections/{collectionId}/items"]["parameters"])}
    assert items["limit"]["schema"]["default"] == DEFAULT_LIMIT and items["limit"]["schema"]["maximum"] == MAX_LIMIT
    assert {"bbox", "offset"} <= set(items) and all(items[n]["in"] == "query" for n in ("limit", "bbox", "offset"))


# ---------------------------------------------------------------------------------------------------------------
# real clients against a live server (SQLite)


@contextlib.contextmanager
def gdal_credentials(key: str) -> Iterator[None]:
    """HTTP Basic for GDAL's HTTP client (a config option: never in the URL)."""
    pyogrio.set_gdal_config_options({"GDAL_HTTP_USERPWD": f"gis:{key}", "GDAL_HTTP_AUTH": "BASIC"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_USERPWD": None, "GDAL_HTTP_AUTH": None})


def test_gdal_oapif_driver_lists_and_reads_the_layers(live: LocalServer, sqlite_site: Site) -> None:
    site = sqlite_site
    source = f"OAPIF:{live.url}/ogc"
    with gdal_credentials(site.keys["a"]["viewer"]):
        listed = {str(name) for name, _ in pyogrio.list_layers(source)}
        assert listed == {site.cid(layer) for layer in gpkg_layers(site.gpkg)}
        for layer in ("demand", "branches"):
            want = gpkg_frame(site.gpkg, layer)
            got = pyogrio.read_dataframe(source, layer=site.cid(layer))
            assert len(got) == len(want)
            assert set(got.columns) == set(want.columns)
            assert got.crs is not None and (got.crs.equals("OGC:CRS84") or got.crs.to_epsg() == 4326)
            assert sorted(got.geometry.x.round(9)) == sorted(want.geometry.x.round(9))
        branches = gpkg_frame(site.gpkg, "branches")
        got = pyogrio.read_dataframe(source, layer=site.cid("branches"))
        assert sorted(got["branch_id"]) == sorted(branches["branch_id"])

        demand = gpkg_frame(site.gpkg, "demand")
        minx, miny, maxx, maxy = (float(v) for v in demand.total_bounds)
        box = (minx, miny, (minx + maxx) / 2, (miny + maxy) / 2)
        expected = demand[demand.geometry.intersects(shapely.box(*box))]
        assert 0 < len(expected) < len(demand)
        got = pyogrio.read_dataframe(source, layer=site.cid("demand"), bbox=box)
        assert len(got) == len(expected)
        assert sorted(zip(got.geometry.x.round(9), got.geometry.y.round(9), strict=True)) == sorted(
            zip(expected.geometry.x.round(9), expected.geometry.y.round(9), strict=True))  # fmt: skip

    with pytest.raises(pyogrio.errors.DataSourceError):  # no key: the server's 401 stops GDAL
        pyogrio.list_layers(source)
    log = live.log.read_text(errors="replace")
    assert "/ogc/collections" in log and site.keys["a"]["viewer"] not in log  # requests logged, keys never


def test_qgis_request_sequence(live: LocalServer, sqlite_site: Site) -> None:
    """Landing page, API document (page size from limit), collections, then items page by page via next links."""
    site = sqlite_site
    key = site.keys["a"]["viewer"]
    with httpx.Client(auth=("qgis-user", key), timeout=30, headers={"Accept": "application/json"}) as http:
        assert httpx.get(f"{live.url}/ogc", timeout=30).status_code == 401  # QGIS asks for the credentials here
        landing = http.get(f"{live.url}/ogc")
        assert landing.status_code == 200
        links = {link["rel"]: link for link in landing.json()["links"]}
        desc = http.get(links["service-desc"]["href"], headers={"Accept": links["service-desc"]["type"]})
        assert desc.status_code == 200
        api = desc.json()
        (items_path,) = [p for p in api["paths"] if p.endswith("/items")]
        params = api["paths"][items_path]["get"]["parameters"]
        ref = next(p["$ref"] for p in params if p.get("$ref", "").endswith("/limit"))
        schema = api["components"]["parameters"][ref.rsplit("/", 1)[1]]["schema"]
        assert schema["default"] == DEFAULT_LIMIT and schema["maximum"] == MAX_LIMIT
        page_size = 40  # QGIS's own page size when smaller than the maximum, as a user may set it

        collections = http.get(links["data"]["href"]).json()["collections"]
        demand = next(c for c in collections if c["id"] == site.cid("demand"))
        items = next(link["href"] for link in demand["links"] if link["rel"] == "items")
        features, pages = page_all(http, f"{items}?limit={page_size}", {"Accept": "application/geo+json"})
        count = len(pyogrio.read_dataframe(site.gpkg, layer="demand"))
        assert count > page_size and len(pages) == -(-count // page_size)
        assert len(features) == pages[0]["numberMatched"] == count == len({f["id"] for f in features})
        hrefs = [link["href"] for p in pages for link in p["links"]]
        assert all(h.startswith(f"{live.url}/ogc/") and key not in h for h in hrefs)
