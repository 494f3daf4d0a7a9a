"""The HTTP API: ``create_app()`` builds a FastAPI app from settings (``uvicorn --factory service.api.app:create_app``).

Versioned under ``/api/v1``; OpenAPI at ``/api/v1/openapi.json`` and docs at ``/api/v1/docs``. Authentication is
an API key in ``X-API-Key`` (or ``Authorization: Bearer ...``). Routers:

- :mod:`service.api.regions` — regions (upload or register), scenarios (CRUD);
- :mod:`service.api.runs` — runs (async, progress, cancel), results, compare.

The app owns one :class:`Services` (engine, sessions, file store, run executor) in ``app.state.services``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from geodata.errors import GeodataError
from optimizer.errors import OptimizerError
from service import errors
from service.api.auth import Principal, authenticate
from service.config import Settings
from service.errors import ServiceError
from service.store.db import make_engine, migrate
from service.store.files import FileStore

API = "/api/v1"
log = logging.getLogger("branchnet.api")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (structured logs)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger("branchnet")
    if any(getattr(h, "_branchnet", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._branchnet = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_json else logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


@dataclass
class Metrics:
    """Counters and latency histograms, served in the Prometheus text format at ``/metrics``."""

    buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    hist: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 12))
    total_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        counts = self.hist[route]
        for i, b in enumerate(self.buckets):
            if seconds <= b:
                counts[i] += 1
        counts[-1] += 1
        self.total_s[route] += seconds

    def render(self, extra: dict[str, float]) -> str:
        lines = ["# HELP branchnet_http_requests_total HTTP requests by method, route and status.",
                 "# TYPE branchnet_http_requests_total counter"]  # fmt: skip
        for (m, r, s), n in sorted(self.requests.items()):
            lines.append(f'branchnet_http_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}')
        lines += ["# HELP branchnet_http_request_seconds Request latency by route.",
                  "# TYPE branchnet_http_request_seconds histogram"]  # fmt: skip
        for r, counts in sorted(self.hist.items()):
            for b, c in zip(self.buckets, counts, strict=False):
                lines.append(f'branchnet_http_request_seconds_bucket{{route="{r}",le="{b}"}} {c}')
            lines.append(f'branchnet_http_request_seconds_bucket{{route="{r}",le="+Inf"}} {counts[-1]}')
            lines.append(f'branchnet_http_request_seconds_sum{{route="{r}"}} {self.total_s[r]:.6f}')
            lines.append(f'branchnet_http_request_seconds_count{{route="{r}"}} {counts[-1]}')
        for name, value in sorted(extra.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


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


class ObserveMiddleware:
    """Pure ASGI middleware: request metrics and structured access logs (the plan hot path is not logged)."""

    def __init__(self, app: Any, svc: Services) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            self.svc.metrics.observe(scope["method"], path, status[0], elapsed)
            if status[0] >= 500 or not path.endswith("/plan"):
                fields = {"method": scope["method"], "path": scope["path"], "status": status[0],
                          "ms": round(1000 * elapsed, 2)}  # fmt: skip
                log.info("request", extra={"fields": fields})


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app: migrate the database, recover interrupted runs, start the executor, mount the routers."""
    settings = settings or Settings()
    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    svc = Services(settings, engine, sessionmaker(engine, expire_on_commit=False), FileStore(settings.files_dir),
                   Metrics())  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.runs.executor import make_executor

        svc.executor = make_executor(svc)
        svc.executor.start()
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
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])  # fmt: skip

    app.add_middleware(ObserveMiddleware, svc=svc)

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

    from service.api import regions as api_regions
    from service.api import runs as api_runs

    app.include_router(api_regions.router, prefix=API)
    app.include_router(api_runs.router, prefix=API)
    return app
