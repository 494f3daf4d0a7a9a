"""The web app's routes: the page, its own files, the whitelisted vendor files and ``GET /ui/session``.

Nothing here serves a path the client chose: the app's files and the vendor files are looked up in fixed tables
(name -> file), so ``..`` or any other name answers 404. The API key never appears in a URL: the app sends it in
``X-API-Key`` to ``/ui/session`` and to the ``/api/v1`` endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import select

from service.api.deps import DB, Viewer
from service.config import Settings
from service.errors import NotFoundError
from service.store.db import ApiKey, Organisation

STATIC = Path(__file__).resolve().parent / "static"
#: The app's own files, by the name in the URL.
APP_FILES = ("app.js", "api.js", "dom.js", "swipe.js", "map.js", "app.css")
#: Vendor files by URL name, relative to Leaflet's ``dist`` folder (installed by ``make setup``).
LEAFLET_FILES = (
    "leaflet.js",
    "leaflet.css",
    "images/layers.png",
    "images/layers-2x.png",
    "images/marker-icon.png",
    "images/marker-icon-2x.png",
    "images/marker-shadow.png",
)
MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}
# The app's files change with the code: always revalidate (they are small and served with an ETag).
NO_CACHE = {"Cache-Control": "no-cache"}


def _file(path: Path) -> FileResponse:
    if not path.is_file():
        raise NotFoundError(f"{path.name} is not installed; run `make setup`")
    return FileResponse(path, media_type=MEDIA[path.suffix], headers=NO_CACHE)


def make_router(settings: Settings) -> APIRouter:
    """The web app's router for ``settings`` (Leaflet from ``settings.leaflet_dir``)."""
    router = APIRouter(include_in_schema=False)
    vendor = {f"leaflet/{name}": settings.leaflet_dir / name for name in LEAFLET_FILES}

    @router.get("/")
    def root() -> RedirectResponse:
        """Send a browser to the web app."""
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui")
    @router.get("/ui/")
    def page() -> FileResponse:
        """The web app's one page."""
        return _file(STATIC / "index.html")

    @router.get("/ui/static/{name}")
    def app_file(name: str) -> FileResponse:
        """One of the app's own files (a fixed list)."""
        if name not in APP_FILES:
            raise NotFoundError(f"no app file {name!r}")
        return _file(STATIC / name)

    @router.get("/ui/vendor/{name:path}")
    def vendor_file(name: str) -> FileResponse:
        """A whitelisted vendor file from node_modules."""
        if name not in vendor:
            raise NotFoundError(f"no vendor file {name!r}")
        return _file(vendor[name])

    @router.get("/ui/session")
    def session(who: Viewer, db: DB) -> dict[str, Any]:
        """Who the key in ``X-API-Key`` is: organisation, role and key name (401 for a wrong or revoked key)."""
        org = db.scalar(select(Organisation.name).where(Organisation.id == who.org_id))
        name = db.scalar(select(ApiKey.name).where(ApiKey.id == who.key_id))
        return {"organisation": org, "role": who.role, "key_name": name or ""}

    return router
