"""Any number of processes can start on a fresh database at once: the migrations run under a lock (an advisory
lock on PostgreSQL, a file lock beside a SQLite database), and the ones that waited find the schema at head."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

N = 6


def _migrate_together(url: str, barrier: Any, results: Any) -> None:
    from service.store.db import migrate

    barrier.wait(timeout=120)  # every process imported and ready: they start migrating at the same moment
    try:
        migrate(url)
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_starting_together_on_a_fresh_database_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cluster = request.getfixturevalue("postgres") if backend == "postgres" else None
    url = cluster.create_database() if cluster is not None else f"sqlite:///{tmp_path / 'fresh.db'}"
    try:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(N)
        results = ctx.Queue()
        procs = [ctx.Process(target=_migrate_together, args=(url, barrier, results)) for _ in range(N)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
        outcomes = [results.get(timeout=5) for _ in range(N)]
        assert outcomes == ["ok"] * N, outcomes
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
                tables = set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()
        assert len(versions) == 1  # migrated once, to one head
        assert {"organisations", "api_keys", "regions", "scenarios", "runs"} <= tables
    finally:
        if cluster is not None:
            cluster.drop_database(url)
