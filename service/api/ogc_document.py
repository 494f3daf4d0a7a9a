"""The OpenAPI 3.0 document of the OGC API – Features endpoints (:mod:`service.api.ogc`), served at ``/ogc/api``.

QGIS and GDAL read ``limit``'s ``default`` and ``maximum`` from it to choose their page size.
"""

from __future__ import annotations

from typing import Any

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
#: Features per page when a request gives no ``limit``, and the most a request may ask for.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def api_document(root: str) -> dict[str, Any]:
    """The OpenAPI 3.0 description of the OGC endpoints served under ``root`` (the landing page's URL)."""
    ref = "#/components/parameters/"

    def answer(description: str, media: str = JSON) -> dict[str, Any]:
        return {"description": description, "content": {media: {"schema": {"type": "object"}}}}

    def error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
        return out | ({"headers": headers} if headers else {})

    errors = {
        "400": error("a malformed parameter; the message names it"),
        "401": error("no valid key: send X-API-Key, or HTTP Basic with the key as the password",
                     {"WWW-Authenticate": {"schema": {"type": "string"}}}),
        "404": error("no such collection or feature in your organisation"),
        "429": error("over the rate limit of this key (or, without a valid key, of this address)",
                     {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}),
        "503": error("the database is unreachable (restarting or down); try again shortly",
                     {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}),
    }  # fmt: skip

    def op(op_id: str, summary: str, ok: dict[str, Any], params: tuple[str, ...] = ()) -> dict[str, Any]:
        """A GET operation: 200, 401, 429 and 503 always, 400 with parameters to check, 404 with a collection."""
        codes = ["401", "429", "503"] + (["400"] if set(params) - {"collectionId", "featureId"} else [])
        codes += ["404"] if "collectionId" in params else []
        return {"get": {"operationId": op_id, "summary": summary, "tags": ["OGC API – Features"],
                        "parameters": [{"$ref": ref + p} for p in params],
                        "responses": {"200": ok} | {c: errors[c] for c in sorted(codes)}}}  # fmt: skip

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
                "description": description, "schema": schema}  # fmt: skip

    return {
        "openapi": "3.0.3",
        "info": {"title": "branchnet result layers (OGC API – Features)", "version": "1.0.0",
                 "description": "The layers of your organisation's succeeded runs. Authenticate with your API key in "
                                "X-API-Key, or with HTTP Basic: any user name, the key as the password."},
        "servers": [{"url": root}],
        "security": [{"apiKey": []}, {"basic": []}],
        "paths": {
            "/": op("getLandingPage", "the landing page", answer("links to the API, conformance and data"), ("f",)),
            "/api": op("getAPI", "this document", answer("the OpenAPI 3.0 document", OPENAPI)),
            "/conformance": op("getConformance", "the conformance classes", answer("conformsTo"), ("f",)),
            "/collections": op("getCollections", "the collections: every layer of every succeeded run",
                               answer("the collections"), ("f",)),
            "/collections/{collectionId}": op("describeCollection", "one collection",
                                              answer("the collection"), ("collectionId", "f")),
            "/collections/{collectionId}/items": op(
                "getFeatures", "a page of the collection's features",
                answer("a GeoJSON FeatureCollection with numberMatched, numberReturned and next links", GEOJSON),
                ("collectionId", "limit", "offset", "bbox", "bbox-crs", "f")),
            "/collections/{collectionId}/items/{featureId}": op(
                "getFeature", "one feature", answer("a GeoJSON Feature", GEOJSON), ("collectionId", "featureId", "f")),
        },
        "components": {
            "schemas": {
                "Error": {"type": "object", "required": ["detail"],
                          "properties": {"detail": {"type": "string", "description": "what went wrong"}}},
            },
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "basic": {"type": "http", "scheme": "basic",
                          "description": "any user name; the API key as the password"},
            },
            "parameters": {
                "collectionId": {"name": "collectionId", "in": "path", "required": True,
                                 "description": "{run id}__{layer}", "schema": {"type": "string"}},
                "featureId": {"name": "featureId", "in": "path", "required": True,
                              "description": "the feature's fid in the run's layers.gpkg",
                              "schema": {"type": "integer"}},
                "limit": query("limit", f"the most features in a page (1 to {MAX_LIMIT}); follow the next links "
                                        "for more", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                                     "default": DEFAULT_LIMIT}),
                "offset": query("offset", "the number of matching features to skip",
                                {"type": "integer", "minimum": 0, "default": 0}),
                "bbox": query("bbox", "only features whose geometry intersects this box: minLon,minLat,maxLon,maxLat "
                                      "(or 6 numbers with heights) in CRS84",
                              {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
                "bbox-crs": query("bbox-crs", "the CRS of bbox: CRS84, the only one",
                                  {"type": "string", "format": "uri", "enum": [CRS84], "default": CRS84}),
                "f": query("f", "the format: json (geojson for features); html is answered with JSON",
                           {"type": "string", "enum": ["json", "geojson", "html"]}),
            },
        },
    }  # fmt: skip
