"""What every request needs, as FastAPI dependencies: the app's :class:`Services`, a database session, the
authenticated caller (:func:`principal`, or :func:`basic_principal` for clients that only speak HTTP Basic) and
role checks (:func:`require`), with ``Annotated`` aliases.

The authenticated caller is also left in the request's scope (:data:`PRINCIPAL_SCOPE`) for the middlewares that
run around the endpoint: the audit log (:mod:`service.api.audit`) and the rate limit
(:mod:`service.api.ratelimit`)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.api.auth import KeyExpiredError, Principal, identify
from service.api.bodies import json_body
from service.api.observe import Metrics
from service.config import Settings
from service.store.files import FileStore


@dataclass
class Services:
    """What every request needs: settings, the database, the file store and the run executor."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    files: FileStore
    metrics: Metrics
    executor: Any = None  # service.runs.executor.Executor, set at start-up

    @property
    def postgis(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def services(request: Request) -> Services:
    """The app's :class:`Services` (an async dependency: no thread hop on hot paths)."""
    return _services(request)


def db(request: Request) -> Any:
    """A session per request, committed by the endpoint (``session.commit()``), closed afterwards."""
    session = _services(request).sessions()
    try:
        yield session
    finally:
        session.close()


#: Authenticated keys, cached briefly (key hash -> principal, expiry) so hot read paths skip the key query.
#: A revoked key, or one whose expiry was changed (``branchnet keys rotate``), follows within this many seconds; a
#: key's own expiry is checked on every request, so an expired key stops at once.
KEY_CACHE_S = 5.0
#: The scope entry where :func:`principal` leaves the caller (also an expired key's owner) for the middlewares.
PRINCIPAL_SCOPE = "branchnet.principal"
_key_cache: dict[str, tuple[Principal | None, float]] = {}


def _key_of(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if key is None and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


def _basic_key(request: Request) -> str | None:
    """The password of ``Authorization: Basic`` (the user name is ignored), or None without a well-formed one."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon and password else None


def _lookup(svc: Services, key: str | None) -> Principal | None:
    with svc.sessions() as session:
        return identify(session, key)


async def _caller(request: Request, key: str | None, challenge: str) -> Principal | None:
    """The principal of ``key`` (from the short-lived cache when fresh), or None; 401 for an expired key."""
    who = await _cached(request, key)
    if who is not None:
        request.scope[PRINCIPAL_SCOPE] = who
        if who.expired():
            raise HTTPException(401, str(KeyExpiredError(who)), headers={"WWW-Authenticate": challenge})
    return who


async def _cached(request: Request, key: str | None) -> Principal | None:
    from starlette.concurrency import run_in_threadpool

    from service.api.auth import hash_key

    if not key:
        return None
    digest = hash_key(key)
    hit = _key_cache.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    who = await run_in_threadpool(_lookup, _services(request), key)
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[digest] = (who, time.monotonic() + KEY_CACHE_S)
    return who


async def principal(request: Request) -> Principal:
    """The caller, from ``X-API-Key`` or ``Authorization: Bearer``; 401 without a valid key."""
    who = await _caller(request, _key_of(request), "Bearer")
    if who is None:
        raise HTTPException(401, "a valid API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return who


async def basic_principal(request: Request) -> Principal:
    """The caller, from ``X-API-Key``, ``Authorization: Bearer`` or HTTP Basic with the key as the password (any
    user name), for GIS clients that only speak Basic; 401 with a Basic challenge (so QGIS asks for it) without a
    valid key."""
    who = await _caller(request, _key_of(request) or _basic_key(request), 'Basic realm="branchnet"')
    if who is None:
        raise HTTPException(401, "a valid API key is required (header X-API-Key, Authorization: Bearer, or HTTP "
                                 "Basic with the key as the password and any user name)",
                            headers={"WWW-Authenticate": 'Basic realm="branchnet"'})  # fmt: skip
    return who


def require(role: str) -> Callable[[Principal], Any]:
    """A dependency that lets through callers with at least ``role`` (403 otherwise)."""

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.can(role):
            raise HTTPException(403, f"this needs the {role} role; your key has {who.role}")
        return who

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Planner = Annotated[Principal, Depends(require("planner"))]
Admin = Annotated[Principal, Depends(require("admin"))]
#: Any valid key (every role reads), also as the password of HTTP Basic: the OGC API's callers (GIS clients).
BasicViewer = Annotated[Principal, Depends(basic_principal)]
DB = Annotated[Session, Depends(db)]
Svc = Annotated[Services, Depends(services)]
Body = Annotated[Any, Depends(json_body)]
