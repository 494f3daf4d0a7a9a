"""What the API answers, for the OpenAPI document: the one error body (:class:`ErrorResponse`), the error statuses
each route declares (:func:`errors`), and :func:`openapi_document`, which completes FastAPI's document so that it
is true.

Every error answers ``{"detail": "...", "errors": [{"field", "message"}]}`` (``errors`` only for a malformed
request, one entry per field): the one error table (:mod:`service.errors`), FastAPI's ``HTTPException`` (401, 403,
the OGC API's 400), the request validation handler (422, in :mod:`service.api.app`) and the rate limit (429). A
route declares the statuses its handler can answer, ``responses=errors(404, 409)``; :func:`openapi_document` adds
what the route's dependencies and the middleware answer, derived from the routes themselves so a new route cannot
forget them:

- 401 (with ``WWW-Authenticate``) on every route that depends on the caller (:func:`service.api.deps.principal`
  or :func:`~service.api.deps.basic_principal`), 403 on those that require a role
  (:func:`service.api.deps.require`);
- 429 (with ``Retry-After``) on every route the rate limit covers (all but
  :data:`service.api.ratelimit.EXEMPT`);
- 503 (with ``Retry-After``) on every route: the app answers it whenever the database is unreachable (and for a
  :class:`~service.errors.ConfigurationError`);
- FastAPI's own 422 (``HTTPValidationError``, a shape this API never answers) becomes :class:`ErrorResponse`.

``tests/service/api/test_fuzz.py`` holds the document to it: schemathesis sends generated requests to every
operation as every role and fails on an undeclared status, content type or body.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

JSON = "application/json"
ERROR_REF = "#/components/schemas/ErrorResponse"


class FieldError(BaseModel):
    """One field of a malformed request and what is wrong with it."""

    field: str = Field(description="where: a dotted path into the body, or the query or header parameter's name")
    message: str


class ErrorResponse(BaseModel):
    """Every error answer: a message naming the file, row, field or id; for a malformed request also each field."""

    detail: str = Field(description="what went wrong, naming the file, row, field or id")
    errors: list[FieldError] = Field(default_factory=list, description="each malformed field (422 only)")


#: Why each error status is answered (the OpenAPI descriptions).
REASONS: dict[int, str] = {
    400: "a malformed query parameter; the message names it",
    401: "no valid API key (missing, malformed, unknown, revoked or expired)",
    403: "the key's role may not do this",
    404: "not found in your organisation (another organisation's id answers the same)",
    409: "the request contradicts the stored state; the message says how",
    412: "If-Match names another version than the stored one",
    413: "the body or an uploaded file is larger than the limit",
    415: "a body of a content type this operation does not take",
    422: "a malformed request; the message (and errors) names the field",
    429: "over the rate limit of this key (or, without a valid key, of this address); retry after Retry-After",
    503: "the database is unreachable (restarting or down; retry after Retry-After), or the installation lacks "
    "something this needs",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer, or Basic on the OGC API", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds until a request is let through again",
                         "schema": {"type": "integer", "minimum": 1}}},
    503: {"Retry-After": {"description": "seconds to wait before trying again (when the database is away)",
                         "schema": {"type": "integer", "minimum": 1}}},
}  # fmt: skip


def error(status: int) -> dict[str, Any]:
    """The OpenAPI response of an error ``status``: its reason, :class:`ErrorResponse` as JSON, its headers."""
    out: dict[str, Any] = {"description": REASONS[status], "content": {JSON: {"schema": {"$ref": ERROR_REF}}}}
    if status in HEADERS:
        out["headers"] = HEADERS[status]
    return out


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the error ``statuses`` its handler can answer, as :class:`ErrorResponse`."""
    return {s: {"model": ErrorResponse, "description": REASONS[s]} for s in statuses}


def _dependencies(func: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Every dependency of ``func`` (``Depends`` in ``Annotated`` or as a default), and theirs, recursively."""
    try:
        hints = get_type_hints(func, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    for name, param in inspect.signature(func).parameters.items():
        hint = hints.get(name)
        marks = list(get_args(hint)[1:]) if get_origin(hint) is Annotated else []
        if param.default is not inspect.Parameter.empty:
            marks.append(param.default)
        for mark in marks:
            dependency = getattr(mark, "dependency", None)
            if callable(dependency):
                yield dependency
                yield from _dependencies(dependency)


def _auth_statuses(endpoint: Callable[..., Any]) -> list[int]:
    from service.api.deps import basic_principal, principal

    calls = list(_dependencies(endpoint))
    out = [401] if any(c in (principal, basic_principal) for c in calls) else []
    if any(getattr(c, "__qualname__", "").startswith("require.") for c in calls):
        out.append(403)
    return out


def _routes(app: FastAPI) -> Iterator[tuple[str, set[str], Callable[..., Any]]]:
    """(path, methods, endpoint) of the app's routes in the document (FastAPI 0.165 nests included routers)."""
    from fastapi import routing

    contexts = getattr(routing, "iter_route_contexts", None)
    found: list[Any] = list(contexts(app.routes) if contexts is not None else app.routes)
    for ctx in found:
        route = getattr(ctx, "original_route", ctx)
        if isinstance(route, APIRoute) and getattr(ctx, "include_in_schema", True):
            yield ctx.path_format, set(ctx.methods or ()), ctx.endpoint


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of ``app``, completed (see the module): cached in ``app.openapi_schema``."""
    from service.api.ratelimit import EXEMPT

    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      openapi_version=app.openapi_version)  # fmt: skip
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if "ErrorResponse" not in schemas:
        schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas["ErrorResponse"] = schema
    for path, methods, endpoint in _routes(app):
        extra = _auth_statuses(endpoint) + ([] if path in EXEMPT else [429]) + [503]
        for method in methods:
            op = doc["paths"].get(path, {}).get(method.lower())
            if op is None:
                continue
            answers = op.setdefault("responses", {})
            for status in extra:
                answers.setdefault(str(status), error(status))
            for status, answer in answers.items():
                if status.isdigit() and int(status) >= 400:
                    answer["content"] = {JSON: {"schema": {"$ref": ERROR_REF}}}
                    answer["description"] = REASONS.get(int(status), answer.get("description", ""))
                    if int(status) in HEADERS:
                        answer["headers"] = HEADERS[int(status)]
    app.openapi_schema = doc
    return doc
