"""OGC API – Features (Part 1: Core) for the result layers of the organisation's succeeded runs, at ``/ogc``.

QGIS's "WFS / OGC API – Features" connection, GDAL's OAPIF driver and any other OGC API client list every layer of
every succeeded run and load it page by page:

- ``GET /ogc``: the landing page (links ``self``, ``service-desc``, ``conformance`` and ``data``);
- ``GET /ogc/api``: the OpenAPI 3.0 description of these endpoints (:func:`api_document`); it declares ``limit``
  with its default and maximum, from which QGIS and GDAL choose their page size;
- ``GET /ogc/conformance``: the conformance classes core, geojson and oas30;
- ``GET /ogc/collections``: one collection per (succeeded run, layer of its ``layers.gpkg``), newest run first,
  with the id ``{run_id}__{layer}``, a title (scenario, layer, run), the extent in CRS84 and an ``items`` link;
- ``GET /ogc/collections/{collectionId}``: one of them;
- ``GET /ogc/collections/{collectionId}/items``: a page of features as GeoJSON (CRS84: longitude, latitude), filtered
  by ``bbox`` (features whose geometry intersects it), from ``offset``, at most ``limit``, with ``numberMatched``,
  ``numberReturned``, ``timeStamp`` and the links ``self``, ``prev``, ``next`` and ``collection``;
- ``GET /ogc/collections/{collectionId}/items/{featureId}``: one feature; its id is its fid in ``layers.gpkg``, so
  it is stable and the same as QGIS shows for the GeoPackage.

The features come from the run's ``layers.gpkg`` in the file store, on SQLite and PostgreSQL alike (on PostGIS the
table ``result_features`` holds the same rows, but the file is the one source both backends share), read once
per (file, modification time, size, layer) into a small cache with its spatial index.

Callers authenticate as everywhere in the API (``X-API-Key`` or ``Authorization: Bearer``) or by HTTP Basic with
the key as the password and any user name, for clients that only speak Basic; without a valid key the answer is
401 with ``WWW-Authenticate: Basic realm="branchnet"``, so that QGIS asks for it. Another organisation's
collection answers 404, exactly like a missing one. A malformed or out-of-range ``limit``, ``offset``, ``bbox``,
``bbox-crs`` or ``f`` answers 400 naming the parameter; ``limit`` above :data:`MAX_LIMIT` is such an error, not
silently clamped. Other query parameters are ignored and never copied into links, so a key that a client put in a
URL by mistake is not repeated in the ``next`` links either.

About 500 lines because the standard's six endpoints, their parameter checks, the paging links and the layer cache
belong together: each endpoint is short, and splitting them would spread one protocol over several modules.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.auth import Principal
from service.api.deps import DB, BasicViewer, Svc
from service.api.ogc_document import CRS84, DEFAULT_LIMIT, GEOJSON, JSON, MAX_LIMIT, OPENAPI, api_document
from service.api.responses import errors
from service.errors import NotFoundError
from service.store.db import Run, Scenario

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely

router = APIRouter(tags=["ogc"])
log = logging.getLogger("branchnet.api")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
#: Spellings of CRS84 accepted in ``bbox-crs``.
_CRS84_NAMES = {CRS84, CRS84.replace("http:", "https:"), "OGC:CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"}
_FORMATS = {"json", "geojson", "html"}  # html is answered with JSON: there is no HTML rendering
_SEP = "__"  # between the run id (hex) and the layer name in a collection id
_LAYER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# ---------------------------------------------------------------------------------------------------------------
# the layers of a GeoPackage, cached


@dataclass(frozen=True)
class LayerInfo:
    """What a collection shows of a layer: its name, feature count, geometry type and extent in CRS84."""

    name: str
    count: int
    geometry_type: str | None
    bbox: tuple[float, float, float, float] | None


T = TypeVar("T")


class _Cache:
    """A small thread-safe LRU of values derived from files, keyed by (path, mtime, size, variant)."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, int, int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, variant: str, load: Callable[[Path], T]) -> T:
        """``load(path)``, from the cache while the file is unchanged; OSError when it is gone."""
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, variant)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                value: T = self._items[key]
                return value
        value = load(path)  # outside the lock: two threads may both load a cold entry, never a wrong one
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value


_infos = _Cache(4096)
_data = _Cache(16)


def _to_crs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in longitude/latitude (a layer without a CRS is taken to be in it already)."""
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        return frame.to_crs(4326)
    return frame


def _read_infos(path: Path) -> list[LayerInfo]:
    import pyogrio
    from pyproj import CRS, Transformer

    out = []
    for name, _kind in pyogrio.list_layers(path):
        info = pyogrio.read_info(path, layer=str(name), force_feature_count=True, force_total_bounds=True)
        bounds = info.get("total_bounds")
        bbox = None
        if bounds is not None and info["features"] and all(math.isfinite(float(b)) for b in bounds):
            minx, miny, maxx, maxy = (float(b) for b in bounds)
            crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
            if crs is not None and crs.to_epsg() != 4326:
                to84 = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
                minx, miny, maxx, maxy = to84.transform_bounds(minx, miny, maxx, maxy)
            bbox = (minx, miny, maxx, maxy)
        out.append(LayerInfo(str(name), int(info["features"]), info.get("geometry_type"), bbox))
    return out


def layer_infos(path: Path) -> list[LayerInfo] | None:
    """The layers of the GeoPackage ``path``, or None when it is missing or unreadable (logged)."""
    from pyogrio.errors import DataSourceError

    try:
        return _infos.get(path, "infos", _read_infos)
    except (OSError, DataSourceError) as exc:
        log.warning("unreadable result layers", extra={"fields": {"path": str(path), "error": str(exc)}})
        return None


def _reader(layer: str) -> Callable[[Path], gpd.GeoDataFrame]:
    def load(path: Path) -> gpd.GeoDataFrame:
        import pyogrio

        frame = _to_crs84(pyogrio.read_dataframe(path, layer=layer, fid_as_index=True))
        frame.sindex  # noqa: B018 -- built now, once, rather than lazily by concurrent requests
        return frame

    return load


def layer_frame(path: Path, layer: str) -> gpd.GeoDataFrame:
    """The features of ``layer`` in CRS84, indexed by their GeoPackage fid, with their spatial index built; 404
    when the file went away since it was listed (its run was deleted).

    ``layer`` is a name read from the GeoPackage itself, never a client's string.
    """
    from pyogrio.errors import DataSourceError

    try:
        return _data.get(path, f"layer:{layer}", _reader(layer))
    except (OSError, DataSourceError):
        raise NotFoundError(f"the layer {layer!r} is no longer there (its run was deleted)") from None


# ---------------------------------------------------------------------------------------------------------------
# query parameters (400 naming the parameter)


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 80 else raw[:80] + "...")


def parse_limit(raw: str | None) -> int:
    """``limit``: an integer from 1 to :data:`MAX_LIMIT` (:data:`DEFAULT_LIMIT` when absent)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {_shown(raw)}") from None
    if value < 1:
        raise _bad(f"limit: must be at least 1, got {value}")
    if value > MAX_LIMIT:
        raise _bad(f"limit: {value} is above the maximum of {MAX_LIMIT} features per page; ask for at most "
                   f"{MAX_LIMIT} and follow the 'next' links")  # fmt: skip
    return value


def parse_offset(raw: str | None) -> int:
    """``offset``: the number of matching features to skip, an integer of at least 0 (0 when absent)."""
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"offset: expected an integer of at least 0, got {_shown(raw)}") from None
    if value < 0:
        raise _bad(f"offset: must be at least 0, got {value}")
    return value


def parse_bbox(raw: str | None, crs: str | None = None) -> shapely.Geometry | None:
    """``bbox``: ``minLon,minLat,maxLon,maxLat`` in CRS84 (or 6 numbers, with heights, which are ignored).

    A ``minLon`` above ``maxLon`` crosses the antimeridian (two boxes). Coordinates beyond the world are clamped to
    it; anything but 4 or 6 finite numbers, or ``minLat`` above ``maxLat``, is a 400.
    """
    import shapely

    if crs is not None and crs.strip().strip("<>") not in _CRS84_NAMES:
        raise _bad(f"bbox-crs: only CRS84 ({CRS84}) is supported, got {_shown(crs)}")
    if raw is None:
        return None
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise _bad(f"bbox: expected 4 comma-separated numbers minLon,minLat,maxLon,maxLat in CRS84 (or 6 with "
                   f"heights), got {len(parts)} value(s): {_shown(raw)}")  # fmt: skip
    values = []
    for i, part in enumerate(parts, start=1):
        try:
            value = float(part)
        except ValueError:
            raise _bad(f"bbox: value {i} ({_shown(part.strip())}) is not a number") from None
        if not math.isfinite(value):
            raise _bad(f"bbox: value {i} ({_shown(part.strip())}) is not a finite number")
        values.append(value)
    minx, miny, maxx, maxy = values[:2] + values[3:5] if len(values) == 6 else values
    if miny > maxy:
        raise _bad(f"bbox: the lower latitude {miny:g} is above the upper latitude {maxy:g}")

    def clamp(v: float, limit: float) -> float:
        return max(-limit, min(limit, v))

    minx, maxx, miny, maxy = clamp(minx, 180), clamp(maxx, 180), clamp(miny, 90), clamp(maxy, 90)
    if minx <= maxx:
        return shapely.box(minx, miny, maxx, maxy)
    return shapely.union(shapely.box(minx, miny, 180, maxy), shapely.box(-180, miny, maxx, maxy))


def check_format(raw: str | None) -> None:
    """``f``: ``json`` or ``geojson`` (``html`` is accepted and answered with JSON)."""
    if raw is not None and raw.lower() not in _FORMATS:
        raise _bad(f"f: unsupported format {_shown(raw)}; this API answers JSON (f=json)")


# ---------------------------------------------------------------------------------------------------------------
# collections


@dataclass(frozen=True)
class Collection:
    """A layer of a succeeded run, as one OGC collection."""

    run: Run
    scenario: str
    gpkg: Path
    layer: LayerInfo

    @property
    def id(self) -> str:
        return f"{self.run.id}{_SEP}{self.layer.name}"


def _gpkg(svc: Any, run: Run) -> Path:
    return Path(svc.files.root) / str(run.result_path) / "layers.gpkg"


def _succeeded(session: Session, who: Principal, run_id: str | None = None) -> list[tuple[Run, str]]:
    query = (
        select(Run, Scenario.name).join(Scenario, Scenario.id == Run.scenario_id)
        .where(Run.org_id == who.org_id, Run.status == "succeeded", Run.result_path.is_not(None))
        .order_by(Run.finished_at.desc(), Run.id)
    )  # fmt: skip
    if run_id is not None:
        query = query.where(Run.id == run_id)
    return [(run, name) for run, name in session.execute(query)]


def collections_of(session: Session, who: Principal, svc: Any) -> list[Collection]:
    """Every layer of the organisation's succeeded runs whose ``layers.gpkg`` is readable."""
    out = []
    for run, name in _succeeded(session, who):
        path = _gpkg(svc, run)
        infos = layer_infos(path) if path.is_file() else None
        out += [Collection(run, name, path, info) for info in infos or [] if _LAYER.match(info.name)]
    return out


def find_collection(session: Session, who: Principal, svc: Any, collection_id: str) -> Collection:
    """The collection ``collection_id`` of the caller's organisation; 404 naming it otherwise."""
    run_id, sep, layer = collection_id.partition(_SEP)
    missing = NotFoundError(f"collection {collection_id!r} not found; GET /ogc/collections lists yours")
    if not sep or not run_id or not layer:
        raise missing
    runs = _succeeded(session, who, run_id)
    if not runs:
        raise missing
    run, name = runs[0]
    path = _gpkg(svc, run)
    infos = layer_infos(path) if path.is_file() else None
    found = [i for i in infos or [] if i.name == layer and _LAYER.match(i.name)]
    if not found:
        raise missing
    return Collection(run, name, path, found[0])


def _root(request: Request) -> str:
    return str(request.url_for("ogc_landing")).rstrip("/")


def _href(request: Request, *parts: str, query: dict[str, Any] | None = None) -> str:
    path = "".join("/" + quote(p, safe="") for p in parts)
    return _root(request) + path + (f"?{urlencode(query)}" if query else "")


def _collection_doc(request: Request, c: Collection) -> dict[str, Any]:
    when = c.run.finished_at.strftime("%Y-%m-%d %H:%M UTC") if c.run.finished_at else "unknown time"
    region = (c.run.body or {}).get("region", "?")
    doc: dict[str, Any] = {
        "id": c.id,
        "title": f"{c.scenario} · {c.layer.name} (run {c.run.id}, {when})",
        "description": f"Layer {c.layer.name!r} of run {c.run.id} of the scenario {c.scenario!r} on the region "
                       f"{region!r}, finished {when}: {c.layer.count} features"
                       + (f" ({c.layer.geometry_type})" if c.layer.geometry_type else "") + ".",
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            {"href": _href(request, "collections", c.id), "rel": "self", "type": JSON, "title": "this collection"},
            {"href": _href(request, "collections", c.id, "items"), "rel": "items", "type": GEOJSON,
             "title": f"the features of {c.layer.name}"},
        ],
    }  # fmt: skip
    if c.layer.bbox is not None:
        doc["extent"] = {"spatial": {"bbox": [list(c.layer.bbox)], "crs": CRS84}}
    return doc


def _features(frame: gpd.GeoDataFrame, rows: Any) -> list[dict[str, Any]]:
    """GeoJSON features of the frame's rows (positions), each with its fid as ``id``."""
    page = frame.iloc[rows]
    features: list[dict[str, Any]] = json.loads(page.to_json(na="null", drop_id=True))["features"]
    return [{"type": "Feature", "id": int(fid), "geometry": f["geometry"], "properties": f["properties"]}
            for fid, f in zip(page.index, features, strict=True)]  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(body: dict[str, Any], media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), media_type=media_type, headers=headers)


_CONTENT_CRS = {"Content-Crs": f"<{CRS84}>"}
_JSON_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {JSON: {"schema": {"type": "object"}}},
                                                    "description": "JSON"}, **errors(400)}  # fmt: skip
_ONE_DOC = {**_JSON_DOC, **errors(400, 404)}  # a collection
_GEOJSON_DOC: dict[int | str, dict[str, Any]] = {200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                                                       "description": "GeoJSON"}, **errors(400, 404)}  # fmt: skip
Format = Annotated[str | None, Query(description="json (the default) or geojson; html is answered with JSON")]


# ---------------------------------------------------------------------------------------------------------------
# routes


@router.get("", name="ogc_landing", response_class=Response, responses=_JSON_DOC)
@router.get("/", include_in_schema=False, response_class=Response)
def landing(request: Request, who: BasicViewer, f: Format = None) -> Response:
    """The landing page: links to the API description, the conformance classes and the collections."""
    check_format(f)
    return _json({
        "title": "branchnet result layers",
        "description": "The layers of your organisation's succeeded runs, as OGC API – Features collections.",
        "links": [
            {"href": _root(request), "rel": "self", "type": JSON, "title": "this document"},
            {"href": _href(request, "api"), "rel": "service-desc", "type": OPENAPI, "title": "the API definition"},
            {"href": _href(request, "conformance"), "rel": "conformance", "type": JSON,
             "title": "the conformance classes"},
            {"href": _href(request, "collections"), "rel": "data", "type": JSON, "title": "the collections"},
        ],
    })  # fmt: skip


@router.get(
    "/api",
    name="ogc_api",
    response_class=Response,
    responses={200: {"content": {OPENAPI: {"schema": {"type": "object"}}}, "description": "the OpenAPI document"}},
)
def api(request: Request, who: BasicViewer) -> Response:
    """The OpenAPI 3.0 description of this OGC API (``limit`` with its default and maximum)."""
    return _json(api_document(_root(request)), media_type=OPENAPI)


@router.get("/conformance", response_class=Response, responses=_JSON_DOC)
def conformance(who: BasicViewer, f: Format = None) -> Response:
    """The conformance classes: core, geojson and oas30."""
    check_format(f)
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", response_class=Response, responses=_JSON_DOC)
def collections(request: Request, who: BasicViewer, session: DB, svc: Svc, f: Format = None) -> Response:
    """Every layer of the organisation's succeeded runs, newest run first."""
    check_format(f)
    return _json({
        "links": [{"href": _href(request, "collections"), "rel": "self", "type": JSON, "title": "this document"}],
        "collections": [_collection_doc(request, c) for c in collections_of(session, who, svc)],
    })  # fmt: skip


@router.get("/collections/{collection_id}", name="ogc_collection", response_class=Response, responses=_ONE_DOC)
def collection(
    collection_id: str, request: Request, who: BasicViewer, session: DB, svc: Svc, f: Format = None
) -> Response:
    """One collection (a layer of a run); 404 naming it when it is not the caller's."""
    check_format(f)
    return _json(_collection_doc(request, find_collection(session, who, svc, collection_id)))


@router.get("/collections/{collection_id}/items", response_class=Response, responses=_GEOJSON_DOC)
def items(
    collection_id: str,
    request: Request,
    who: BasicViewer,
    session: DB,
    svc: Svc,
    limit: Annotated[str | None, Query(description=f"features per page, 1 to {MAX_LIMIT} ({DEFAULT_LIMIT})")] = None,
    offset: Annotated[str | None, Query(description="matching features to skip (0)")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat in CRS84")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS84, the only one")] = None,
    f: Format = None,
) -> Response:
    """A page of the collection's features (GeoJSON, CRS84), optionally those intersecting ``bbox``."""
    check_format(f)
    n, start, box = parse_limit(limit), parse_offset(offset), parse_bbox(bbox, bbox_crs)
    c = find_collection(session, who, svc, collection_id)
    frame = layer_frame(c.gpkg, c.layer.name)
    if box is None:
        matched = list(range(len(frame)))
    else:
        matched = sorted(int(i) for i in frame.sindex.query(box, predicate="intersects"))
    rows = matched[start : start + n]
    query = {"limit": n} | ({"bbox": bbox} if bbox is not None else {}) | ({"bbox-crs": bbox_crs} if bbox_crs else {})

    def page(rel: str, at: int, title: str) -> dict[str, str]:
        href = _href(request, "collections", c.id, "items", query={**query, "offset": at})
        return {"href": href, "rel": rel, "type": GEOJSON, "title": title}

    up = {"href": _href(request, "collections", c.id), "rel": "collection", "type": JSON, "title": "the collection"}
    links = [page("self", start, "this page"), up]
    if start > 0:
        links.append(page("prev", max(0, start - n), "the previous page"))
    if start + len(rows) < len(matched):
        links.append(page("next", start + n, "the next page"))
    body = {"type": "FeatureCollection", "features": _features(frame, rows), "numberMatched": len(matched),
            "numberReturned": len(rows), "timeStamp": _now(), "links": links}  # fmt: skip
    return _json(body, media_type=GEOJSON, headers=_CONTENT_CRS)


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=Response, responses=_GEOJSON_DOC)
def feature(
    collection_id: str, feature_id: str, request: Request, who: BasicViewer, session: DB, svc: Svc, f: Format = None
) -> Response:
    """One feature, by its fid in the run's ``layers.gpkg``; 404 when the collection has no such feature."""
    check_format(f)
    c = find_collection(session, who, svc, collection_id)
    frame = layer_frame(c.gpkg, c.layer.name)
    fid = int(feature_id) if re.fullmatch(r"-?[0-9]{1,18}", feature_id) else None
    if fid is None or fid not in frame.index:
        raise NotFoundError(f"feature {feature_id!r} not found in collection {c.id!r} (ids are the GeoPackage "
                            f"fids; see /items)")  # fmt: skip
    (body,) = _features(frame, [frame.index.get_loc(fid)])
    body["links"] = [
        {"href": _href(request, "collections", c.id, "items", str(fid)), "rel": "self", "type": GEOJSON},
        {"href": _href(request, "collections", c.id), "rel": "collection", "type": JSON},
    ]
    return _json(body, media_type=GEOJSON, headers=_CONTENT_CRS)
