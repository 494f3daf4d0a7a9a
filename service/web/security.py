"""Security headers of the pages the service serves (pure ASGI middleware).

Every response gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. Pages get a
Content-Security-Policy by path:

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


class SecurityHeaders:
    """Add ``nosniff``, ``no-referrer`` and, by path, a Content-Security-Policy to every HTTP response."""

    def __init__(self, app: Any, policies: list[tuple[re.Pattern[str], str]]) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = next((p for pattern, p in self.policies if pattern.match(path)), None)

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-content-type-options", b"referrer-policy",
                                                b"content-security-policy")]  # fmt: skip
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if policy is not None:
                    headers.append((b"content-security-policy", policy.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
