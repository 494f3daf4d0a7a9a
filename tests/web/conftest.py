"""Fixtures of the browser tests: the machine's Chromium driven by Playwright, a live server, keys and guards.

``browser`` (module)
    Chromium at ``/usr/bin/chromium`` (``.ci/run`` installs Debian's package; never ``playwright install``),
    headless. Without it, or without the ``playwright`` package, the tests are skipped with the reason, except
    under CI (``CI`` set), where they fail.
``site`` (module)
    ``branchnet serve`` in a child process on a free loopback port with a fresh data folder, and keys of two
    organisations made before it starts: ``alpha`` (viewer, planner, admin and a revoked planner key) and ``beta``
    (admin). Its log is ``site.server.log``.
``guarded`` (per test)
    ``guarded(key=None, headers=None) -> Guard``: a new browser context and page whose every request, console
    message, page error and dialog is recorded. :meth:`Guard.check` (also called at teardown) fails on a request
    to a non-loopback address, a console error that the test did not :meth:`Guard.expect`, an uncaught page error
    or any dialog (an ``alert`` would mean a script from a user's data ran).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.api.local_server import LocalServer, local_server
from tests.service.api.conftest import LEAFLET, unavailable

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "screenshots"


@dataclass
class Site:
    """The live server and the plain keys: ``site.keys["alpha"]["planner"]``."""

    server: LocalServer
    keys: dict[str, dict[str, str]]
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


def _make_keys(data_dir: Path) -> dict[str, dict[str, str]]:
    from sqlalchemy.orm import sessionmaker

    from service.api.auth import create_key
    from service.config import Settings
    from service.store.db import make_engine, migrate

    settings = Settings(data_dir=data_dir)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    keys: dict[str, dict[str, str]] = {"alpha": {}, "beta": {}}
    try:
        with sessionmaker(engine)() as session:
            for role in ("viewer", "planner", "admin"):
                keys["alpha"][role], _ = create_key(session, "Alpha Libraries", role, name=f"web test {role}")
            keys["alpha"]["revoked"], row = create_key(session, "Alpha Libraries", "planner", name="revoked")
            row.revoked = True
            keys["beta"]["admin"], _ = create_key(session, "Beta Libraries", "admin", name="web test beta")
            session.commit()
    finally:
        engine.dispose()
    return keys


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live ``branchnet serve`` with a fresh data folder and the keys of organisations alpha and beta."""
    if not (LEAFLET / "leaflet.js").is_file():
        pytest.fail(f"Leaflet is missing from {LEAFLET}: run `make setup` (npm install)")
    base = tmp_path_factory.mktemp("web")
    data = base / "data"
    data.mkdir()
    keys = _make_keys(data)
    settings = {"BRANCHNET_DATA_DIR": str(data), "BRANCHNET_LEAFLET_DIR": str(LEAFLET), "BRANCHNET_WORKERS": "1"}
    with local_server(settings, cwd=base, log=base / "server.log") as server:
        yield Site(server, keys, data)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from /usr/bin/chromium (skipped when absent, unless CI is set)."""
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    import os

    with sync_playwright() as pw:
        # root needs --no-sandbox; a container's small /dev/shm would crash renderers
        args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file", "chrome-error"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """A page and everything it did: requests, console errors, page errors and dialogs."""

    page: Any
    context: Any
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """Allow console errors matching ``pattern`` (a failed request the test provokes on purpose)."""
        self.allowed.append(re.compile(pattern))

    def check(self) -> None:
        """Fail on a non-loopback request, an unexpected console error, a page error or any dialog."""
        outside = [u for u in self.requests if not _loopback(u)]
        assert not outside, f"requests to non-loopback addresses: {outside}"
        errors = [m for m in self.console_errors if not any(p.search(m) for p in self.allowed)]
        assert not errors, f"console errors: {errors}"
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"
        assert not self.dialogs, f"dialogs opened (a script ran?): {self.dialogs}"

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Write ``var/screenshots/<name>.png`` (the whole page, or the window only)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def guarded(browser: Any) -> Iterator[Callable[..., Guard]]:
    """``guarded(headers=None) -> Guard``: a fresh context and page, checked at teardown."""
    guards: list[Guard] = []

    def make(headers: dict[str, str] | None = None) -> Guard:
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000},
                                      extra_http_headers=headers or {})  # fmt: skip
        page = context.new_page()
        guard = Guard(page, context)
        page.on("request", lambda r: guard.requests.append(r.url))
        page.on("console", lambda m: guard.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: guard.page_errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            guard.dialogs.append(f"{dialog.type}: {dialog.message}")
            with contextlib.suppress(Exception):
                dialog.dismiss()

        page.on("dialog", on_dialog)
        guards.append(guard)
        return guard

    yield make
    try:
        for guard in guards:
            guard.check()
    finally:
        for guard in guards:
            guard.context.close()
