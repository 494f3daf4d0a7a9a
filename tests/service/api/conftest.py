"""Fixtures for the HTTP API tests: a throwaway PostgreSQL+PostGIS cluster, both databases, apps and keys.

Adopt them in any module under ``tests/service/api/`` (they are found automatically)::

    def test_list_regions(api, keys):             # runs twice: on SQLite and on PostgreSQL+PostGIS
        client, services = api
        r = client.get("/api/v1/regions", headers=keys.headers("a", "viewer"))
        assert r.status_code == 200

    def test_tight_limits(make_app, db_url):      # your own settings: any Settings field as a keyword
        client, services = make_app(db_url, max_upload_mb=0.001)

Fixtures
--------
``postgres`` (session)
    A :class:`PostgresCluster`: ``initdb`` + ``pg_ctl`` in a temporary folder, listening on 127.0.0.1 on a free
    port (and a unix socket in that folder) with trust authentication for the user ``branchnet``; stopped and
    removed at the end of the session. ``postgres.create_database()`` returns the URL of a new empty database
    cloned from a template that already has PostGIS; ``postgres.drop_database(url)`` drops it.
``postgres_url`` (session)
    ``postgresql+psycopg://branchnet@127.0.0.1:PORT/branchnet_test``: one database with PostGIS for the session.
``db_url`` (per test, parametrised ``sqlite`` / ``postgres``)
    sqlite: the default URL of ``Settings(data_dir=tmp)`` (a file in the test's data folder). postgres: a fresh
    database per test (created from the PostGIS template, about 0.1 s; dropped afterwards).
``data_dir`` (per test)
    The data folder (``BRANCHNET_DATA_DIR``) the apps of this test use.
``make_app`` (per test)
    ``make_app(db_url=None, **settings_overrides) -> (TestClient, Services)``: ``create_app(Settings(...))`` with
    the test's data folder, the repo's Leaflet, and the lifespan entered (executor started); closed at teardown.
``api`` (per test)
    ``make_app(db_url)``: the app on the parametrised database.
``keys`` (per test)
    :class:`Keys` for the ``api`` app: organisations ``a`` and ``b``, each with a ``viewer``, ``planner`` and
    ``admin`` key made with :func:`service.api.auth.create_key`. ``keys["a"]["admin"]`` is the plain key,
    ``keys.headers("a", "admin")`` the request headers, ``keys.org_id("a")`` the organisation's id.
``toy_results``, ``toy_roadmap_results`` (session)
    Result folders of a plan and of a two-year roadmap on the toy region (``test_access.PLAN``), written once by
    :func:`service.plans.pipeline.run_plan`, for tests that seed succeeded runs (copy them into the file store).

PostgreSQL: the binaries come from ``pg_config --bindir`` (or ``initdb`` on PATH) and PostGIS from the package
``postgresql-15-postgis-3`` (``.ci/run`` installs it). Without them the PostgreSQL tests are skipped with the
reason, except under CI (``CI`` set), where they fail. As root, the cluster runs as the ``postgres`` user
(``runuser``), since ``initdb`` refuses root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from service.api.local_server import free_port

REPO = Path(__file__).resolve().parents[3]
LEAFLET = REPO / "node_modules" / "leaflet" / "dist"
PG_USER = "branchnet"
PG_TEMPLATE = "branchnet_template"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI, where nothing may be skipped."""
    if in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").is_file():
            return Path(out)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _pg_sharedir(bindir: Path) -> Path | None:
    for cmd in ([str(bindir / "pg_config"), "--sharedir"], ["pg_config", "--sharedir"]):
        with contextlib.suppress(OSError):
            out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
            if out:
                return Path(out)
    return None


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster (see the module docstring)."""

    bindir: Path
    base: Path
    port: int
    as_user: list[str] = field(default_factory=list)  # ["runuser", "-u", "postgres", "--"] when root

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, *args], capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> None:
        init = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                         "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        if init.returncode:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        self.resume()

    def resume(self) -> None:
        """Start the server of an initialised cluster (after :meth:`stop`: a database restart)."""
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
        ctl = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                        "-w", "-t", "60", "start")  # fmt: skip
        if ctl.returncode:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{ctl.stdout}\n{ctl.stderr}\n{log}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement with autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=database,
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str | None = None, *, template: str = PG_TEMPLATE) -> str:
        """A new database (a copy of the PostGIS template); its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, url_or_name: str) -> None:
        name = url_or_name.rsplit("/", 1)[-1]
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL+PostGIS cluster for the session (skipped locally when unavailable; fails in CI)."""
    bindir = _pg_bindir()
    if bindir is None:
        unavailable("PostgreSQL is not installed (no pg_config/initdb on PATH; apt-get install postgresql-15)")
    assert bindir is not None
    share = _pg_sharedir(bindir)
    if share is None or not (share / "extension" / "postgis.control").is_file():
        unavailable(f"PostGIS is not installed for PostgreSQL in {bindir} (apt-get install postgresql-15-postgis-3)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[dev]')")
    as_user: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run initdb as")
        owner = (pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    # not under pytest's tmp folder: the postgres user cannot enter root's 0700 folders
    base = Path(tempfile.mkdtemp(prefix="branchnet-pg-"))
    if owner:
        os.chown(base, *owner)
    cluster = None
    try:
        for attempt in range(3):  # the free port may be taken between probing and binding
            cluster = PostgresCluster(bindir, base, free_port(), as_user)
            try:
                cluster.start()
                break
            except RuntimeError:
                shutil.rmtree(cluster.data, ignore_errors=True)
                if attempt == 2:
                    raise
        assert cluster is not None
        cluster.execute(f'CREATE DATABASE "{PG_TEMPLATE}"')
        cluster.execute("CREATE EXTENSION postgis", database=PG_TEMPLATE)
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """One PostGIS database for the session: ``postgresql+psycopg://branchnet@127.0.0.1:PORT/branchnet_test``."""
    url = postgres.create_database("branchnet_test")
    yield url
    postgres.drop_database(url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """The database of one test: SQLite (the default URL of the data folder) or a fresh PostGIS database."""
    if request.param == "sqlite":
        from service.config import Settings

        yield Settings(data_dir=data_dir).db_url
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


AppFactory = Callable[..., tuple[Any, Any]]


@pytest.fixture
def make_app(data_dir: Path) -> Iterator[AppFactory]:
    """``make_app(db_url=None, **settings_overrides) -> (TestClient, Services)``, closed at teardown."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    stack = contextlib.ExitStack()

    def make(db_url: str | None = None, **overrides: Any) -> tuple[TestClient, Any]:
        values: dict[str, Any] = {"data_dir": data_dir, "leaflet_dir": LEAFLET, "log_json": True}
        values.update(overrides)
        settings = Settings(**values)
        if db_url and db_url != settings.db_url:
            settings = Settings(**{**values, "database_url": db_url})
        app = create_app(settings)
        client = stack.enter_context(TestClient(app))
        return client, app.state.services

    with stack:
        yield make


@pytest.fixture
def api(make_app: AppFactory, db_url: str) -> tuple[Any, Any]:
    """(TestClient, Services) of an app on the parametrised database."""
    return make_app(db_url)


class Keys(dict[str, dict[str, str]]):
    """Plain API keys by organisation and role: ``keys["a"]["admin"]``."""

    def __init__(self) -> None:
        super().__init__()
        self.org_ids: dict[str, str] = {}

    def headers(self, org: str, role: str) -> dict[str, str]:
        return {"X-API-Key": self[org][role]}

    def org_id(self, org: str) -> str:
        return self.org_ids[org]


def create_keys(services: Any, orgs: tuple[str, ...] = ("a", "b")) -> Keys:
    """A viewer, a planner and an admin key for each organisation (``org-<name>`` in the database)."""
    from service.api.auth import create_key
    from service.store.db import ROLES

    keys = Keys()
    with services.sessions() as session:
        for org in orgs:
            keys[org] = {}
            for role in ROLES:
                plain, row = create_key(session, f"org-{org}", role, name=f"test {org} {role}")
                keys[org][role] = plain
                keys.org_ids[org] = row.org_id
        session.commit()
    return keys


@pytest.fixture
def keys(api: tuple[Any, Any]) -> Keys:
    """Keys of organisations ``a`` and ``b`` × viewer/planner/admin on the ``api`` app's database."""
    return create_keys(api[1])


@pytest.fixture(scope="session")
def toy_results(toy_region: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The result folder of one planner run on the toy region (plan, timetable, calendars, layers, map)."""
    from service.plans.pipeline import run_plan
    from service.plans.scenario import Scenario
    from tests.service.api.test_access import PLAN

    out = tmp_path_factory.mktemp("api-results") / "plan"
    run_plan(toy_region, Scenario.parse(PLAN), out, leaflet_dir=LEAFLET, workers=1)
    assert {"plan.json", "timetable.csv", "layers.gpkg", "map.html"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture(scope="session")
def toy_roadmap_results(toy_region: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The result folder of a two-year roadmap on the toy region (roadmap.json, its chart and timeline, and its last
    year's plan with timetable, calendars, layers and map)."""
    from service.plans.pipeline import run_plan
    from service.plans.scenario import Scenario
    from tests.service.api.test_access import PLAN

    body = {k: v for k, v in PLAN.items() if k != "budget_share"}
    body.update(objective="roadmap", roadmap={"target_year": 2026, "objective": "max_credit", "notice_years": 0,
                                              "budget_path_share": {2025: 0.9}, "no_gap": False,
                                              "max_closures_per_year": None})  # fmt: skip
    out = tmp_path_factory.mktemp("api-results") / "roadmap"
    run_plan(toy_region, Scenario.parse(body), out, leaflet_dir=LEAFLET, workers=1)
    assert {"roadmap.json", "roadmap.png", "timeline.md", "plan.json"} <= {p.name for p in out.iterdir()}
    return out
