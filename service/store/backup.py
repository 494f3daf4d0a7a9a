"""Backups of an installation: a consistent snapshot of the database and the file store, taken while servers run.

A backup is a folder::

    manifest.json        what it holds: versions, schema revision, database kind, time, every file's size and
                         SHA-256, the row count of every table, the file-store folders the snapshot refers to
    database.sqlite      SQLite: a copy made with SQLite's online backup API (one step, so one read transaction)
    database.pgdump      PostgreSQL: ``pg_dump --format=custom`` of the database
    files/...            the file store (:class:`service.store.files.FileStore`): regions and run results

**Consistency.** The database is snapshotted first and the files copied afterwards. Results are written before
their run is marked ``succeeded`` and a region's folder is renamed into place before its row is committed
(:mod:`service.runs.worker`, :mod:`service.store.regions`), so every folder the snapshot refers to (each region's
``path`` and each succeeded run's ``result_path``) already exists when the copy starts. Only a deletion or a
region re-import between the snapshot and the copy can break that: each referenced folder's inode is compared
before and after it is copied, and the whole backup is taken again (up to ``attempts`` times) when one changed.
On PostgreSQL the rows, counts and referenced folders are read in the very transaction whose snapshot
``pg_dump --snapshot`` dumps. Hidden entries (``.<run>.*`` folders of results being written, ``.staging-*``
regions being imported, ``.<file>.*`` files being replaced) and ``uploads/`` (requests in flight) are skipped.
A folder the snapshot refers to that is missing from the file store makes the backup start again too (it was
deleted after the snapshot); when it is still missing at the last attempt (lost before the backup began) it is
named in a warning and in the manifest's ``missing``, since it cannot be restored.

**Restore** reads the manifest and checks every file's size and SHA-256 before it touches anything (a corrupted or
missing file is refused, named), refuses a database or file store that is not empty unless ``force``, copies
the files to a staging folder beside the file store, restores the database (a file copy on SQLite;
``pg_restore --clean --if-exists --single-transaction`` on PostgreSQL), checks the restored row counts against
the manifest, swaps the file store into place and runs :func:`service.store.db.migrate`, so that a backup of an
older schema comes back at the newest. Stop the servers of the target before restoring into it.

No FastAPI here: the command line (:mod:`service.cli.ops`) and the tests call these functions. About 600 lines
because backup and restore are two halves of one format (the manifest, its checks, the database kinds' snapshot
and restore), which read best side by side.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url

from service.errors import BadRequestError, ConfigurationError, ConflictError
from service.store.db import MIGRATIONS, make_engine, migrate

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"
FILES = "files"
#: Top-level folders of the file store that hold nothing lasting (uploads being received).
TRANSIENT = frozenset({"uploads"})
CHUNK = 1 << 20

Progress = Callable[[str, float], None]


class BackupInconsistentError(ConflictError):
    """The file store kept changing under the copy; the backup was taken ``attempts`` times without success."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a backup: its path relative to the backup folder, size in bytes and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatabaseInfo:
    """What the database snapshot holds, read from the snapshot itself."""

    kind: str  # "sqlite" or "postgresql"
    revision: str | None  # alembic_version of the snapshot (None: never migrated)
    rows: dict[str, int]  # rows per table
    referenced: tuple[str, ...]  # file-store folders (relative) of regions and succeeded runs


@dataclass
class _Copy:
    files: list[FileEntry] = field(default_factory=list)
    bytes: int = 0


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql`` (the backup formats); ConfigurationError for any other database."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"backups support SQLite and PostgreSQL databases, not {name!r} ({url})")
    return name


def head_revision() -> str | None:
    """The newest schema revision this version of branchnet migrates to."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def branchnet_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("branchnet")
    except metadata.PackageNotFoundError:
        return "unknown"


def _quiet(_stage: str, _fraction: float) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------------
# reading a snapshot


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def read_info(conn: Connection, kind: str) -> DatabaseInfo:
    """Row counts, schema revision and referenced folders, read on ``conn`` (inside the snapshot's transaction)."""
    # spatial_ref_sys belongs to PostGIS (the target's own installation fills it), not to the backup
    tables = sorted(t for t in inspect(conn).get_table_names() if t != "spatial_ref_sys")
    rows = {t: int(conn.execute(text(f"SELECT count(*) FROM {_q(conn, t)}")).scalar_one()) for t in tables}
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    referenced: set[str] = set()
    if "regions" in tables:
        referenced.update(p for p in conn.execute(text("SELECT path FROM regions")).scalars() if p)
    if "runs" in tables:
        sql = "SELECT result_path FROM runs WHERE status = 'succeeded' AND result_path IS NOT NULL"
        referenced.update(p for p in conn.execute(text(sql)).scalars() if p)
    return DatabaseInfo(kind, revision, rows, tuple(sorted(referenced)))


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError(f"cannot back up or restore an in-memory SQLite database ({url})")
    return Path(database)


def _snapshot_sqlite(url: str, out: Path) -> DatabaseInfo:
    """Copy the SQLite database at ``url`` to ``out`` with the online backup API, in one step (so within one read
    transaction: concurrent writers wait on the busy timeout at most for the copy, and the copy is consistent)."""
    path = _sqlite_path(url)
    if not path.is_file():
        raise ConfigurationError(f"there is no database at {path} (BRANCHNET_DATA_DIR or BRANCHNET_DATABASE_URL)")
    source = sqlite3.connect(path, timeout=30)  # reads only; read-write so that it can join the WAL of writers
    target = sqlite3.connect(out)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        target.close()
        source.close()
    engine = create_engine(f"sqlite:///{out}")
    try:
        with engine.connect() as conn:
            return read_info(conn, "sqlite")
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL client programs


def pg_program(name: str) -> str:
    """The path of a PostgreSQL client program (``pg_dump``, ``pg_restore``): from ``pg_config --bindir``, PATH or
    the newest ``/usr/lib/postgresql/*/bin``; ConfigurationError when none is installed."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / name).is_file():
            return str(Path(out) / name)
    found = shutil.which(name)
    if found:
        return found

    def major(path: str) -> int:
        part = Path(path).parent.parent.name
        return int(part) if part.isdigit() else 0

    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major, reverse=True):
        return candidate
    raise ConfigurationError(f"{name} is not installed (apt-get install postgresql-client-15, or put it on PATH)")


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for a SQLAlchemy URL, and the environment carrying its password (not argv)."""
    u = make_url(url)
    env = {"PGPASSWORD": u.password} if u.password else {}
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run_pg(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, **env})
    if done.returncode:
        detail = done.stderr.strip() or done.stdout.strip()
        raise ConfigurationError(f"{what} failed (exit {done.returncode}): {detail}")
    return done.stdout


def _snapshot_postgres(url: str, out: Path) -> DatabaseInfo:
    """``pg_dump`` the database at ``url`` to ``out`` from a snapshot exported by a REPEATABLE READ transaction,
    in which the counts and referenced folders are read too: they describe exactly the dumped rows."""
    pg_dump = pg_program("pg_dump")
    conninfo, env = libpq_target(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                info = read_info(conn, "postgresql")
                _run_pg([pg_dump, "--format=custom", f"--snapshot={snapshot}", "--file", str(out),
                         "--dbname", conninfo], env, "pg_dump")  # fmt: skip
    finally:
        engine.dispose()
    return info


# ---------------------------------------------------------------------------------------------------------------
# files


def copy_file(src: Path, dst: Path) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (through one open file, so one version of an atomically replaced file); return the
    size and SHA-256 of what was copied."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    shutil.copystat(src, dst, follow_symlinks=False)
    return size, digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _store_files(root: Path) -> Iterator[Path]:
    """The lasting files of a file store, relative to ``root``: hidden entries and ``uploads/`` skipped."""
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (rel == Path(".") and d in TRANSIENT))
        for name in sorted(names):
            if not name.startswith(".") and not os.path.islink(os.path.join(folder, name)):
                yield rel / name


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _copy_store(root: Path, out: Path, prefix: str, progress: Progress) -> _Copy:
    """Copy the file store ``root`` into ``out``; files that vanish meanwhile are skipped (the caller checks that
    the referenced folders stayed whole)."""
    copied = _Copy()
    if not root.is_dir():
        return copied
    names = list(_store_files(root))
    for i, rel in enumerate(names):
        try:
            size, sha = copy_file(root / rel, out / rel)
        except FileNotFoundError:
            continue
        copied.files.append(FileEntry(f"{prefix}/{rel.as_posix()}", size, sha))
        copied.bytes += size
        if i % 50 == 0:
            progress("copy files", (i + 1) / len(names))
    progress("copy files", 1.0)
    return copied


# ---------------------------------------------------------------------------------------------------------------
# backup


def _check_target(target: Path, files_dir: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target}: the backup folder must be new or empty")
    if target.resolve().is_relative_to(files_dir.resolve()):
        raise BadRequestError(f"{target}: the backup folder cannot be inside the file store {files_dir}")


def backup(db_url: str, files_dir: Path, target: Path, *, attempts: int = 3,
           progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Back up the database at ``db_url`` and the file store ``files_dir`` into the new folder ``target``
    (written beside it and renamed into place when complete); return the manifest.

    Raises ConflictError when ``target`` is not new or empty, ConfigurationError without the database or
    ``pg_dump``, and BackupInconsistentError when a referenced folder changed under every one of ``attempts``
    copies (deleted or re-imported during the backup).
    """
    report = progress or _quiet
    kind = database_kind(db_url)
    _check_target(target, files_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for attempt in range(1, attempts + 1):
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            report("snapshot database", 0.0)
            db_file = SQLITE_FILE if kind == "sqlite" else PG_FILE
            if kind == "sqlite":
                info = _snapshot_sqlite(db_url, work / db_file)
            else:
                info = _snapshot_postgres(db_url, work / db_file)
            report("snapshot database", 1.0)
            before = {rel: _inode(files_dir / rel) for rel in info.referenced}
            copied = _copy_store(files_dir, work / FILES, FILES, report)
            after = {rel: _inode(files_dir / rel) for rel in info.referenced}
            changed = [rel for rel in info.referenced if before[rel] != after[rel]]
            have = {parent.as_posix() for f in copied.files for parent in PurePosixPath(f.path).parents}
            missing = [rel for rel in info.referenced if before[rel] is None or f"{FILES}/{rel}" not in have]
            if changed or (missing and attempt < attempts):  # deleted after the snapshot, or lost before it
                shutil.rmtree(work, ignore_errors=True)
                continue
            if missing:
                lost = ", ".join(missing)
                warnings.warn(f"the database refers to {len(missing)} folder(s) missing from the file store "
                              f"{files_dir}, which the backup cannot hold: {lost}", stacklevel=2)  # fmt: skip
            db_entry = FileEntry(db_file, (work / db_file).stat().st_size, file_sha256(work / db_file))
            manifest = {
                "format": FORMAT,
                "branchnet_version": branchnet_version(),
                "created_at": datetime.now(UTC).isoformat(),
                "attempts": attempt,
                "database": {
                    "kind": kind,
                    "file": db_file,
                    "schema_revision": info.revision,
                    "alembic_head": head_revision(),
                    "rows": info.rows,
                },
                "referenced": list(info.referenced),
                "missing": missing,
                "bytes": db_entry.size + copied.bytes,
                "files": [vars(e) for e in [db_entry, *copied.files]],
            }
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
            if target.exists():
                target.rmdir()  # empty (checked); the complete backup takes its place
            os.replace(work, target)
            return manifest
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    raise BackupInconsistentError(
        f"the file store kept changing during the backup ({attempts} attempts); these folders were deleted or "
        f"replaced while being copied: {', '.join(changed)}. Try again when fewer changes are under way."
    )


# ---------------------------------------------------------------------------------------------------------------
# restore


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup in ``source``; BadRequestError naming the file when it is missing or invalid."""
    path = source / MANIFEST
    if not path.is_file():
        raise BadRequestError(f"{path}: not found; {source} is not a branchnet backup")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        kind = manifest["database"]["kind"]
        db_file = manifest["database"]["file"]
        rows = manifest["database"]["rows"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequestError(f"{path}: not a valid backup manifest ({type(exc).__name__}: {exc})") from None
    if manifest.get("format") != FORMAT:
        raise BadRequestError(f"{path}: format {manifest.get('format')!r}; this branchnet reads format {FORMAT}")
    if kind not in ("sqlite", "postgresql") or not isinstance(rows, dict):
        raise BadRequestError(f"{path}: database.kind {kind!r} is not sqlite or postgresql")
    if db_file not in {f.get("path") for f in files if isinstance(f, dict)}:
        raise BadRequestError(f"{path}: the database file {db_file!r} is not in the file list")
    for i, f in enumerate(files):
        rel = f.get("path") if isinstance(f, dict) else None
        if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts or rel == MANIFEST:
            raise BadRequestError(f"{path}: files[{i}].path {rel!r} is not a relative path inside the backup")
        if rel != db_file and not rel.startswith(f"{FILES}/"):
            raise BadRequestError(f"{path}: files[{i}].path {rel!r} is neither the database nor under {FILES}/")
    return dict(manifest)


def verify_backup(source: Path, manifest: dict[str, Any], progress: Progress | None = None) -> None:
    """Check every file of the manifest for its size and SHA-256; BadRequestError naming the bad files."""
    report = progress or _quiet
    bad: list[str] = []
    files = manifest["files"]
    for i, entry in enumerate(files):
        path = source / entry["path"]
        if not path.is_file():
            bad.append(f"{path}: missing")
        elif path.stat().st_size != entry["size"]:
            bad.append(f"{path}: {path.stat().st_size} bytes, the manifest says {entry['size']}")
        elif file_sha256(path) != entry["sha256"]:
            bad.append(f"{path}: SHA-256 differs from the manifest (corrupted)")
        report("verify backup", (i + 1) / len(files))
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise BadRequestError(f"the backup in {source} is damaged, nothing was restored: {'; '.join(bad[:5])}{more}")


def _pg_user_tables(conn: Connection) -> list[str]:
    sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
           "AND table_type = 'BASE TABLE' AND table_name <> 'spatial_ref_sys' ORDER BY 1")  # fmt: skip
    return list(conn.execute(text(sql)).scalars())


def target_contents(db_url: str, files_dir: Path) -> list[str]:
    """What the restore target already holds (empty: nothing), described for the refusal message."""
    found: list[str] = []
    if files_dir.is_dir() and any(files_dir.iterdir()):
        found.append(f"the file store {files_dir} is not empty")
    if database_kind(db_url) == "sqlite":
        path = _sqlite_path(db_url)
        wal = Path(f"{path}-wal")
        count = 0
        if path.is_file() and path.stat().st_size > 0:
            # immutable: no -wal or -shm created beside a database that the restore may leave alone
            db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=30)
            try:
                count = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            finally:
                db.close()
        if count:
            found.append(f"the database {path} has {count} table(s)")
        elif wal.is_file() and wal.stat().st_size > 0:  # its tables may so far be only in the write-ahead log
            found.append(f"the database {path} has a write-ahead log ({wal.name})")
        return found
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = _pg_user_tables(conn)
    finally:
        engine.dispose()
    if tables:
        found.append(f"the database {make_url(db_url).render_as_string()} has {len(tables)} table(s)")
    return found


@contextmanager
def _staged_files(source: Path, manifest: dict[str, Any], files_dir: Path) -> Iterator[Path]:
    """Copy the backup's files into a staging folder beside ``files_dir`` (checking each digest again as it is
    copied); yield it, and remove what is left of it at the end."""
    files_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{files_dir.name}.restore-", dir=files_dir.parent))
    try:
        for entry in manifest["files"]:
            rel = entry["path"]
            if not rel.startswith(f"{FILES}/"):
                continue
            _size, sha = copy_file(source / rel, staging / Path(rel).relative_to(FILES))
            if sha != entry["sha256"]:
                raise BadRequestError(f"{source / rel}: changed while it was restored (SHA-256 differs)")
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, files_dir: Path) -> None:
    old = None
    if files_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{files_dir.name}.old-", dir=files_dir.parent))
        os.replace(files_dir, old / "files")
    os.replace(staging, files_dir)
    files_dir.chmod(0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _restore_sqlite(snapshot: Path, url: str) -> None:
    path = _sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.restore")
    shutil.copyfile(snapshot, tmp)
    for side in ("-wal", "-shm", "-journal"):  # sidecars of the database being replaced
        Path(f"{path}{side}").unlink(missing_ok=True)
    os.replace(tmp, path)


_EXTENSION = re.compile(r"^\s*\d+;\s*\d+\s+\d+\s+(EXTENSION|COMMENT - EXTENSION)\s")


def _restore_postgres(dump: Path, url: str) -> None:
    """``pg_restore`` the dump into ``url`` in one transaction, dropping the dumped objects first. Extensions are
    created here (``CREATE EXTENSION IF NOT EXISTS``) rather than dropped and recreated by ``--clean``: dropping
    PostGIS would drop whatever else of the target uses it."""
    pg_restore = pg_program("pg_restore")
    conninfo, env = libpq_target(url)
    toc = _run_pg([pg_restore, "--list", str(dump)], env, "pg_restore --list")
    extensions = re.findall(r"^\s*\d+;\s*\d+\s+\d+\s+EXTENSION\s+-\s+(\S+)", toc, flags=re.MULTILINE)
    if extensions:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                for name in extensions:
                    conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {_q(conn, name)}"))
        finally:
            engine.dispose()
    with tempfile.TemporaryDirectory(prefix="branchnet-restore-") as work:
        listing = Path(work) / "restore.list"
        listing.write_text("".join(f"{line}\n" for line in toc.splitlines() if not _EXTENSION.match(line)))
        _run_pg([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                 "--exit-on-error", "--use-list", str(listing), "--dbname", conninfo, str(dump)], env,
                "pg_restore")  # fmt: skip


def _check_rows(db_url: str, kind: str, rows: dict[str, int]) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            restored = read_info(conn, kind).rows
    finally:
        engine.dispose()
    wrong = {t: (restored.get(t), n) for t, n in rows.items() if restored.get(t) != n}
    if wrong:
        detail = ", ".join(f"{t}: {got} restored, {n} backed up" for t, (got, n) in sorted(wrong.items()))
        raise RuntimeError(f"the restored database does not hold the backed-up rows ({detail})")


def restore(source: Path, db_url: str, files_dir: Path, *, force: bool = False,
            progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Restore the backup in ``source`` into the database at ``db_url`` and the file store ``files_dir``; migrate
    the database to the newest schema; return the manifest.

    Nothing is changed when the backup is damaged (BadRequestError naming the files), of another database kind
    (BadRequestError) or the target is not empty without ``force`` (ConflictError).
    """
    report = progress or _quiet
    manifest = read_manifest(source)
    verify_backup(source, manifest, report)
    kind = database_kind(db_url)
    if manifest["database"]["kind"] != kind:
        raise BadRequestError(f"{source / MANIFEST}: a backup of a {manifest['database']['kind']} database cannot "
                              f"be restored into {kind} ({make_url(db_url).render_as_string()})")  # fmt: skip
    present = target_contents(db_url, files_dir)
    if present and not force:
        raise ConflictError(f"the restore target is not empty: {'; '.join(present)}; pass --force to replace it")
    report("copy files", 0.0)
    with _staged_files(source, manifest, files_dir) as staging:
        report("copy files", 1.0)
        report("restore database", 0.0)
        db_file = source / manifest["database"]["file"]
        if kind == "sqlite":
            _restore_sqlite(db_file, db_url)
        else:
            _restore_postgres(db_file, db_url)
        _check_rows(db_url, kind, manifest["database"]["rows"])
        report("restore database", 1.0)
        _swap_in(staging, files_dir)
    report("migrate", 0.0)
    migrate(db_url)
    report("migrate", 1.0)
    return manifest
