"""Security headers of every response the service sends (pure ASGI middleware, the outermost of the app).

Every response (API JSON, files, pages, errors, 404s, the OGC API) gets :data:`COMMON`:
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` (nothing the
service serves is meant to be framed: the web app shows maps in its own page, and a map opened alone is a
top-level page; the policies below also say ``frame-ancestors 'none'``), ``Cross-Origin-Opener-Policy:
same-origin``, ``Cross-Origin-Resource-Policy: same-origin`` (CORS requests, when ``cors_origins`` allows them,
are not affected) and a ``Permissions-Policy`` that turns off the browser features no page uses. Responses of
the API (``/api/v1``, ``/ogc``, ``/ui/session``) and of any request that carries a key get
``Cache-Control: no-store``, so no shared or browser cache keeps an organisation's data. With ``behind_https``
set, ``Strict-Transport-Security`` too (never over plain http, where browsers ignore it and it would mislead).
An unhandled error's 500, which Starlette's outermost error middleware answers, is answered here instead with the
same plain ``Internal Server Error`` and the headers (the error still propagates to the server's log).

Pages get a Content-Security-Policy by path:

- the web app (``/``, ``/ui...``): :data:`APP_POLICY`, scripts, styles and requests only from this origin (so
  ``index.html`` has no inline script or style), images also from ``data:`` and ``blob:``, no frames, no plugins;
- a run's map (``/api/v1/runs/{id}/map``, a self-contained page with inline scripts): only the scripts and styles
  whose SHA-256 :func:`service.plans.maps.map_csp` lists (Leaflet, the shared ``map.js`` and the page's start-up
  code), nothing fetched, not framed. The page carries the same policy in a ``<meta>`` for when it is opened from
  disk; a map written before that policy existed has other scripts and is not run;
- a batch's ``report.html`` (no script at all): no script, its own inline style only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

APP_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'"
)
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
_APP = re.compile(r"^/(ui(/.*)?)?$")
_MAP = re.compile(r"^/api/v1/runs/[^/]+/map$")
_REPORT = re.compile(r"^/api/v1/batches/[^/]+/report\.html$")


def policies(leaflet_dir: Path) -> list[tuple[re.Pattern[str], str]]:
    """(path pattern, Content-Security-Policy) pairs; the map's policy hashes the assets in ``leaflet_dir``."""
    from service.plans.maps import MissingAssetsError, check_assets, map_csp

    try:
        check_assets(leaflet_dir)
        map_policy = map_csp(leaflet_dir) + "; frame-ancestors 'none'"
    except MissingAssetsError:  # no Leaflet, so no map can have been written with it: serve maps without script
        map_policy = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    return [(_APP, APP_POLICY), (_MAP, map_policy), (_REPORT, REPORT_POLICY)]


#: Headers of every response.
COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
                            b"microphone=(), payment=(), usb=()"),
)  # fmt: skip
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_NO_STORE = re.compile(r"^/(api/v1/|ogc(/|$)|ui/session$)")
_CREDENTIALS = (b"x-api-key", b"authorization")


class SecurityHeaders:
    """Add :data:`COMMON`, ``Cache-Control: no-store`` on the API, HSTS when ``hsts`` and, by path, a
    Content-Security-Policy to every HTTP response."""

    def __init__(self, app: Any, policies: list[tuple[re.Pattern[str], str]], hsts: bool = False) -> None:
        self.app = app
        self.policies = policies
        self.hsts = hsts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = next((p for pattern, p in self.policies if pattern.match(path)), None)
        no_store = bool(_NO_STORE.match(path)) or any(k.lower() in _CREDENTIALS for k, _ in scope.get("headers", ()))
        add = list(COMMON)
        if policy is not None:
            add.append((b"content-security-policy", policy.encode("latin-1")))
        if no_store:
            add.append((b"cache-control", b"no-store"))
        if self.hsts:
            add.append(HSTS)
        names = {k for k, _ in add}
        started = [False]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + add}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if not started[0]:  # what ServerErrorMiddleware would answer, with the headers
                body = b"Internal Server Error"
                await send_wrapper({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send_wrapper({"type": "http.response.body", "body": body})
            raise
