"""What every catalogue module shares: the snapshot of stored data, the good tiny region's files, the CLI runner.

:func:`snapshot` is what "leaves stored data byte-for-byte unchanged" means here: the SHA-256 of every file under
the data folder (regions, caches, the file store, uploads) except the SQLite database's own files, plus every row of
every table of the database, read by reflection (so a table added by a later migration is covered too). The one
exception is ``audit_log``, which records every write request *including refused ones* by design
(:mod:`service.api.audit`): :func:`unchanged` requires its new rows, if any, to be refusals (status >= 400).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy import MetaData, create_engine, select
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
TINY_OSM = REPO / "tests" / "data" / "tiny.osm"
DB_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal", ".migrate.lock")
AUDIT = "audit_log"
runner = CliRunner()


def snapshot(data_dir: Path, db_url: str | None = None) -> dict[str, Any]:
    """Hashes of every stored file and every row of every table (see the module docstring)."""
    files = {
        p.relative_to(data_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file() and not p.name.endswith(DB_SUFFIXES)
    }
    tables: dict[str, list[str]] = {}
    if db_url is not None:
        engine = create_engine(db_url)
        try:
            meta = MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                for table in meta.sorted_tables:
                    tables[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
        finally:
            engine.dispose()
    return {"files": files, "tables": tables}


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Assert that nothing stored changed: files byte for byte, rows exactly; new audit rows are refusals only."""
    assert after["files"] == before["files"], _diff(before["files"], after["files"])
    b_tables = {k: v for k, v in before["tables"].items() if k != AUDIT}
    a_tables = {k: v for k, v in after["tables"].items() if k != AUDIT}
    assert a_tables == b_tables, _diff(b_tables, a_tables)
    if AUDIT in after["tables"]:
        added = sorted(set(after["tables"][AUDIT]) - set(before["tables"].get(AUDIT, [])))
        assert all(_refusal(row) for row in added), added


def _refusal(row: str) -> bool:
    """Whether an audit row (its repr) records a status of 400 or more."""
    return any(f", {code}, " in row for code in range(400, 600))


def _diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return f"changed: {changed[:10]}"


# ---------------------------------------------------------------------------------------------------------------
# the good tiny region (tests/data/tiny.osm: a 1.1 km drive loop at 56.2N 9.5E)


def good_region(folder: Path) -> dict[str, Path]:
    """Write the good inputs of the tiny region: two census areas with population and two branches."""
    folder.mkdir(parents=True, exist_ok=True)
    areas = gpd.GeoDataFrame(
        {"code": ["A1", "A2"], "population": [120, 80]},
        geometry=[shapely.box(9.499, 56.199, 9.509, 56.211), shapely.box(9.509, 56.199, 9.519, 56.211)],
        crs="EPSG:4326",
    )
    areas.to_file(folder / "areas.geojson")
    (folder / "branches.csv").write_text("branch_id,name,lon,lat\nmain,Main library,9.501,56.2005\n"
                                         "east,East library,9.517,56.209\n")  # fmt: skip
    return {"osm": TINY_OSM, "population": folder / "areas.geojson", "branches": folder / "branches.csv"}


CLI_FLAGS = {"osm": "--osm", "population": "--population", "branches": "--branches",
             "population_table": "--population-table", "population_field": "--population-field",
             "id_field": "--id-field", "join_on": "--join-on"}  # fmt: skip


def cli(args: list[str], data_dir: Path) -> tuple[int, str]:
    """Run ``branchnet ARGS`` in process on ``data_dir``; the exit code and the output on one line."""
    r = runner.invoke(_app(), args, env={"BRANCHNET_DATA_DIR": str(data_dir), "COLUMNS": "250"})
    return r.exit_code, r.output.replace("\n", " ")


def _app() -> Any:
    from service.cli import app

    return app


def import_args(name: str, files: dict[str, Path], options: dict[str, str] | None = None) -> list[str]:
    """``region import NAME --osm ... --population ... --branches ...`` with ``options``."""
    args = ["region", "import", name]
    for key, path in files.items():
        args += [CLI_FLAGS[key], str(path)]
    for key, value in (options or {}).items():
        args += [CLI_FLAGS[key], value]
    return args


@dataclass(frozen=True)
class Entry:
    """One catalogue entry: what it sends (``sends``) and what must come back (``expect`` in the message).

    ``expect`` may differ by entry point (``{"cli": ..., "api": ...}``); ``status`` is the HTTP status of the API and
    ``exit_code`` the CLI's.
    """

    id: str
    sends: str
    expect: str | dict[str, str]
    make: Callable[..., Any] | None = None
    status: int = 422
    exit_code: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def expected(self, via: str) -> str:
        return self.expect if isinstance(self.expect, str) else self.expect[via]
