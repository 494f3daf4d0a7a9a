"""The HTTP API: ``create_app()`` builds a FastAPI app from settings (``uvicorn --factory service.api.app:create_app``).

Versioned under ``/api/v1``; OpenAPI at ``/api/v1/openapi.json`` and docs at ``/api/v1/docs``. Authentication is
an API key in ``X-API-Key`` (or ``Authorization: Bearer ...``). Routers:

- :mod:`service.api.regions` — regions (upload through :mod:`service.api.uploads`, or register; list, delete);
- :mod:`service.api.scenarios` — scenarios (CRUD);
- :mod:`service.api.runs` — runs (async, progress, cancel), results, compare;
- :mod:`service.api.batches` — the nightly batches' morning reports;
- :mod:`service.api.audit` — the audit log of every write (``GET /audit``, admins) and its middleware.

Every request passes the rate limit per key (:mod:`service.api.ratelimit`, 429 with ``Retry-After``) and every
response gets the security headers of :mod:`service.web.security`.

Dependencies (the caller, roles, sessions) are in :mod:`service.api.deps`, request bodies and OpenAPI helpers in
:mod:`service.api.bodies`, logs and metrics in :mod:`service.api.observe`; the OpenAPI document declares every status
and body the API answers (:mod:`service.api.responses`). Errors answer by the one error table
(:mod:`service.errors`). The app owns one :class:`~service.api.deps.Services` (engine, sessions, file store, run
executor) in ``app.state.services``.

OGC API – Features: :mod:`service.api.ogc`, mounted at ``/ogc`` (outside ``/api/v1``, the path GIS clients are
given), serves the layers of the organisation's succeeded runs to QGIS's "WFS / OGC API – Features" connection and
GDAL's OAPIF driver: landing page, OpenAPI 3.0 document (``/ogc/api``), conformance, collections and paged items.
It also takes the key as the password of HTTP Basic (:func:`service.api.deps.basic_principal`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from geodata.errors import GeodataError
from optimizer.errors import OptimizerError
from service import errors
from service.api.audit import AuditMiddleware
from service.api.deps import Services
from service.api.observe import Metrics, ObserveMiddleware, configure_logging
from service.api.ratelimit import RateLimitMiddleware
from service.api.responses import openapi_document
from service.config import Settings
from service.errors import ServiceError
from service.store.db import make_engine, migrate
from service.store.files import FileStore

API = "/api/v1"
log = logging.getLogger("branchnet.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: migrate the database, recover interrupted runs, start the executor, mount the routers."""
    settings = settings or Settings()
    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    svc = Services(settings, engine, sessionmaker(engine, expire_on_commit=False), FileStore(settings.files_dir),
                   Metrics())  # fmt: skip

    swept = svc.files.sweep_uploads()  # the uploads of a server killed mid-way
    if swept:
        log.warning("removed interrupted uploads", extra={"fields": {"uploads": [p.name for p in swept]}})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.runs.executor import make_executor

        svc.executor = make_executor(svc)
        svc.executor.start()
        # the start-up's objects (modules, caches: most of the heap) are never garbage: keep them out of the
        # collector's full passes, which otherwise stall every request for a few hundred ms under load
        gc.collect()
        gc.freeze()
        log.info("started", extra={"fields": {"database": engine.url.render_as_string(hide_password=True),
                                              "executor": type(svc.executor).__name__}})  # fmt: skip
        try:
            yield
        finally:
            svc.executor.stop()
            engine.dispose()

    app = FastAPI(
        title="branchnet",
        version="1",
        description="Library network planning: regions, scenarios, runs and their maps.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        lifespan=lifespan,
    )
    app.state.services = svc
    app.openapi = partial(openapi_document, app)  # type: ignore[method-assign]  # every error declared, see there
    # inside CORS (so a 429 and a preflight carry its headers): the audit of writes, then the rate limit around it
    app.add_middleware(AuditMiddleware, services=svc)
    app.add_middleware(RateLimitMiddleware, per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])  # fmt: skip

    app.add_middleware(ObserveMiddleware, metrics=svc.metrics)

    # the one error table (service.errors): the user's errors answer their status with their message
    @app.exception_handler(ServiceError)
    @app.exception_handler(OptimizerError)
    @app.exception_handler(GeodataError)
    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": errors.message(exc)}, status_code=errors.classify(exc).status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(x) for x in e["loc"] if x != "body"), "message": e["msg"]}
                  for e in exc.errors()]  # fmt: skip
        detail = "; ".join(f"{e['field'] or '(body)'}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_away(_request: Request, exc: OperationalError) -> JSONResponse:
        # the database restarting or unreachable: the client may retry; runs keep their leases meanwhile
        log.warning("database unreachable", extra={"fields": {"error": str(exc.orig or exc)[:200]}})
        return JSONResponse({"detail": "the database is unreachable (restarting or down); try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})  # fmt: skip

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": engine.dialect.name}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> str:
        extra: dict[str, float] = {}
        if svc.executor is not None:
            extra.update(svc.executor.gauges())
        return svc.metrics.render(extra)

    from service.api import audit, batches, regions, runs, scenarios

    for router in (regions.router, scenarios.router, runs.router, batches.router, audit.router):
        app.include_router(router, prefix=API)
    from service.api import ogc

    app.include_router(ogc.router, prefix="/ogc")
    from service.web import mount_web  # the web app at /ui, and the pages' security headers

    mount_web(app, settings)
    return app
