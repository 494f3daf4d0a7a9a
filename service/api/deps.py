"""What every request needs, as FastAPI dependencies: the app's :class:`Services`, a database session, the
authenticated caller (:func:`principal`) and role checks (:func:`require`), with ``Annotated`` aliases."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.api.auth import Principal, authenticate
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
#: A revoked key stops working within this many seconds.
KEY_CACHE_S = 5.0
_key_cache: dict[str, tuple[Principal | None, float]] = {}


def _key_of(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if key is None and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


def _lookup(svc: Services, key: str | None) -> Principal | None:
    with svc.sessions() as session:
        return authenticate(session, key)


async def principal(request: Request) -> Principal:
    """The caller, from ``X-API-Key`` or ``Authorization: Bearer``; 401 without a valid key."""
    from starlette.concurrency import run_in_threadpool

    from service.api.auth import hash_key

    key = _key_of(request)
    who: Principal | None = None
    if key:
        digest = hash_key(key)
        hit = _key_cache.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            who = hit[0]
        else:
            who = await run_in_threadpool(_lookup, _services(request), key)
            if len(_key_cache) > 10_000:
                _key_cache.clear()
            _key_cache[digest] = (who, time.monotonic() + KEY_CACHE_S)
    if who is None:
        raise HTTPException(401, "a valid API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
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
DB = Annotated[Session, Depends(db)]
Svc = Annotated[Services, Depends(services)]
Body = Annotated[Any, Depends(json_body)]
