"""``branchnet backup`` and ``branchnet restore``: the database and the file store, backed up while servers run.

The logic is :mod:`service.store.backup`; the database and data folder come from the settings
(``BRANCHNET_DATA_DIR``, ``BRANCHNET_DATABASE_URL``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli._common import JsonOption, app, err, print_json, progress_bar, settings, user_errors


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="A new (or empty) folder to write the backup to.")],
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Back up the database and the file store into TARGET while the servers keep running (SQLite's online
    backup or pg_dump, then the files; a manifest lists every file's SHA-256 and every table's rows)."""
    from service.store.backup import backup as run_backup

    config = settings()
    with user_errors(), progress_bar() as report:
        manifest = run_backup(config.db_url, config.files_dir, target, progress=report)
    if as_json:
        print_json(_summary(manifest))
        return
    db = manifest["database"]
    err.print(f"backed up {sum(db['rows'].values()):,} rows in {len(db['rows'])} tables ({db['kind']}, schema "
              f"{db['schema_revision']}) and {len(manifest['files']) - 1:,} files, {_mb(manifest['bytes'])} in all, "
              f"to {target}", highlight=False)  # fmt: skip


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest for ``--json``: everything but the file list, which is counted."""
    return {k: v for k, v in manifest.items() if k != "files"} | {"file_count": len(manifest["files"])}


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `branchnet backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a database or file store that is not empty.")] = False,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Restore a backup into the configured database and data folder (stop the servers first): every file is
    checked against the manifest before anything is touched, then the database is migrated to the newest schema."""
    from service.store.backup import restore as run_restore

    config = settings()
    with user_errors(), progress_bar() as report:
        manifest = run_restore(source, config.db_url, config.files_dir, force=force, progress=report)
    if as_json:
        print_json(_summary(manifest))
        return
    db = manifest["database"]
    err.print(f"restored {sum(db['rows'].values()):,} rows ({db['kind']}, schema {db['schema_revision']}, now "
              f"migrated to the newest) and {len(manifest['files']) - 1:,} files from the backup of "
              f"{manifest['created_at']}", highlight=False)  # fmt: skip
