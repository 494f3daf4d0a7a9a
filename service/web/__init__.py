"""The web app for planners and GIS staff, at ``/ui`` (``/`` redirects there), served by the API's own app.

Plain files, no build step: ``static/index.html`` loads ``app.js`` (ES modules: ``app.js``, ``api.js``, ``dom.js``)
and the shared map code ``map.js`` (also inlined into every standalone ``map.html`` by
:mod:`service.plans.maps`); Leaflet comes from ``node_modules`` (``make setup``) through a whitelist, never a CDN.
The app signs in with an API key kept in the browser's ``sessionStorage`` and sends it as ``X-API-Key``; it calls
the ``/api/v1`` endpoints like any client, so roles and organisation isolation are the API's.

- :mod:`service.web.router`: the pages, the static and vendor files, and ``GET /ui/session`` (who the key is);
- :mod:`service.web.security`: the security headers of every response (a strict Content-Security-Policy for the
  pages, and friends).

:func:`mount_web` adds both to an app.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.config import Settings


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Serve the web app at ``/ui`` (and redirect ``/``) and add the pages' security headers to ``app``."""
    from service.web.router import make_router
    from service.web.security import SecurityHeaders, policies

    app.include_router(make_router(settings))
    app.add_middleware(SecurityHeaders, policies=policies(settings.leaflet_dir), hsts=settings.behind_https)
