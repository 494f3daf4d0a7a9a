"""The nightly batch: recompute every stored scenario whose inputs changed, and write the morning report.

Steps (:func:`run_batch`):

1. take the batch lock (a file lock in the data folder, and a PostgreSQL advisory lock on PostgreSQL): a second
   batch exits at once (exit code 75);
2. select the scenarios (all organisations, ``--org``, or ``--scenario ID...``), read each region's
   ``region.json`` once and compare its source files with their digests at import
   (:mod:`service.batch.regions`);
3. fingerprint every scenario (:mod:`service.runs.fingerprint`) and skip those whose fingerprint equals that of
   their last succeeded run (unless ``--force``); the others are recomputed and the report says why;
4. re-import each region whose source files changed, once, before its scenarios; then plan each scenario as a
   run of the runs table (``trigger = batch``, the batch's id, its fingerprint and inputs), so the API, compare
   and the maps show it like any other run; the API's executor never takes batch runs and the batch never takes
   the API's;
5. run the tasks on the executor (:mod:`service.batch.executors`: a local pool of processes, or Dask), each in a
   child process with the per-scenario timeout; a run whose worker crashed, was killed or was lost is retried
   (``--retries``), a run that failed on its input (an infeasible scenario) is not;
6. write ``batch-report.json`` and ``batch-report.html`` (:mod:`service.batch.report`) and store the report with
   the batch.

Exit codes: 0 every scenario succeeded or was skipped; 1 some failed; 2 usage or configuration error (an unknown
organisation or scenario id, an unreachable scheduler, a data folder the workers cannot see); 3 nothing could
run; 75 another batch holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.batch import report as reports
from service.batch.executors import BatchExecutor, make_executor
from service.batch.regions import RegionState, region_state
from service.batch.tasks import plan_task, reimport_task
from service.config import Settings
from service.errors import BadRequestError, LockedError, NotFoundError
from service.runs.fingerprint import DigestCache, reasons, run_inputs
from service.store.db import Batch, Organisation, Region, Run, Scenario, make_engine, migrate, now
from service.store.files import FileStore

log = logging.getLogger("branchnet.batch")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING, EXIT_LOCKED = 0, 1, 2, 3, 75
#: The advisory lock key of the batch on PostgreSQL (any constant shared by every batch).
ADVISORY_KEY = 0x6272616E6368  # "branch"
Event = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class BatchOptions:
    """The batch's command line (``branchnet batch --help``)."""

    org: str | None = None
    scenario_ids: tuple[str, ...] = ()
    executor: Literal["processes", "dask"] = "processes"
    workers: int = 2
    scheduler: str | None = None
    force: bool = False
    dry_run: bool = False
    retries: int = 1
    timeout_s: float = 3600.0
    report_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.executor not in ("processes", "dask"):
            raise BadRequestError(f"--executor {self.executor!r}: use processes or dask")
        if self.workers < 1:
            raise BadRequestError(f"--workers {self.workers}: at least 1")
        if self.retries < 0:
            raise BadRequestError(f"--retries {self.retries}: at least 0")
        if not self.timeout_s > 0:
            raise BadRequestError(f"--timeout {self.timeout_s:g}: a positive number of seconds")
        if self.scheduler and self.executor != "dask":
            raise BadRequestError("--scheduler needs --executor dask")


@dataclass
class Item:
    """One scenario of the batch and what happened to it."""

    scenario_id: str
    scenario_name: str
    org_id: str
    org_name: str
    region_id: str
    region_name: str
    version: int
    body: dict[str, Any]
    inputs: dict[str, Any] | None = None
    fingerprint: str | None = None
    previous_run: str | None = None
    status: str = "pending"  # skipped, recompute, succeeded, failed
    reasons: list[str] = field(default_factory=list)
    run_id: str | None = None
    attempts: int = 0
    retried: bool = False
    error: str | None = None
    seconds: float = 0.0
    worker: str | None = None
    peak_rss_mb: float | None = None
    stages_s: dict[str, float] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    started: bool = False


@dataclass
class BatchOutcome:
    batch_id: str | None
    exit_code: int
    report: dict[str, Any]
    paths: tuple[Path, ...] = ()


# ---------------------------------------------------------------------------------------------------------------
# the lock


@contextlib.contextmanager
def file_lock(data_dir: Path) -> Iterator[None]:
    """Hold ``<data_dir>/batch.lock`` for the block (``LockedError`` at once when another batch holds it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "batch.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"another batch is running (lock {path} is held); try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def advisory_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, hold the batch's advisory lock for the block: batches of servers that share the database
    but not the data folder never overlap either. Nothing to do on SQLite (one machine: the file lock)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar():
            raise LockedError("another batch is running on this database (its PostgreSQL advisory lock is held)")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})


@contextlib.contextmanager
def batch_lock(settings: Settings, engine: Engine) -> Iterator[None]:
    """Both locks of the batch (module docstring)."""
    with file_lock(settings.data_dir), advisory_lock(engine):
        yield


# ---------------------------------------------------------------------------------------------------------------
# selection and fingerprints


def _select(session: Session, options: BatchOptions) -> list[Item]:
    query = (
        select(Scenario, Region, Organisation)
        .join(Region, Region.id == Scenario.region_id)
        .join(Organisation, Organisation.id == Scenario.org_id)
        .order_by(Organisation.name, Scenario.name, Scenario.id)
    )
    if options.org is not None:
        org = session.scalar(select(Organisation).where(Organisation.name == options.org))
        if org is None:
            known = ", ".join(session.scalars(select(Organisation.name).order_by(Organisation.name))) or "none"
            raise NotFoundError(f"--org {options.org!r}: no such organisation (organisations: {known})")
        query = query.where(Scenario.org_id == org.id)
    if options.scenario_ids:
        query = query.where(Scenario.id.in_(options.scenario_ids))
    rows = session.execute(query).all()
    if options.scenario_ids:
        missing = sorted(set(options.scenario_ids) - {s.id for s, _, _ in rows})
        if missing:
            raise NotFoundError(f"--scenario: no scenario with id {', '.join(missing)}")
    return [Item(s.id, s.name, s.org_id, o.name, r.id, r.name, s.version, dict(s.body)) for s, r, o in rows]


def _last_succeeded(session: Session, scenario_id: str) -> Run | None:
    return session.scalars(
        select(Run).where(Run.scenario_id == scenario_id, Run.status == "succeeded")
        .order_by(Run.finished_at.desc(), Run.id.desc()).limit(1)
    ).first()  # fmt: skip


def _previous_version(session: Session, run: Run | None) -> int | None:
    if run is None:
        return None
    version = (run.inputs or {}).get("scenario_version")
    return int(version) if isinstance(version, int) else None


# ---------------------------------------------------------------------------------------------------------------
# the batch


def run_batch(
    settings: Settings,
    options: BatchOptions,
    *,
    on_event: Event | None = None,
    task: Callable[..., dict[str, Any]] = plan_task,
) -> BatchOutcome:
    """Run the batch (module docstring); never raises for a failing scenario, only for usage, configuration and
    lock errors (by the error table of :mod:`service.errors`: exit code 2, or 75 for ``LockedError``). ``task``
    executes one run (tests inject faults)."""
    emit = on_event or (lambda _kind, _data: None)
    started = time.perf_counter()
    with file_lock(settings.data_dir):  # first, so a second batch on this machine exits before any other work
        migrate(settings.db_url)
        engine = make_engine(settings.db_url)
        try:
            with advisory_lock(engine):
                return _run(settings, options, engine, emit, task, started)
        finally:
            engine.dispose()


def _run(settings: Settings, options: BatchOptions, engine: Engine, emit: Event,
         task: Callable[..., dict[str, Any]], started: float) -> BatchOutcome:  # fmt: skip
    sessions = sessionmaker(engine, expire_on_commit=False)
    files = FileStore(settings.files_dir)
    digests = DigestCache.open(settings.cache_dir / "digests.json")
    with sessions() as session:
        items = _select(session, options)
        states: dict[str, RegionState] = {}
        for item in items:
            if item.region_id not in states:
                row = session.get(Region, item.region_id)
                assert row is not None
                states[item.region_id] = region_state(row.id, row.name, row.org_id, files.root / row.path, digests)
            state = states[item.region_id]
            if state.error:
                item.status, item.reasons, item.error = "recompute", ["region source vanished"], state.error
                continue
            item.inputs, item.fingerprint = run_inputs(item.body, state.digests, settings.workers, item.version)
            last = _last_succeeded(session, item.scenario_id)
            item.previous_run = last.id if last is not None else None
            if last is not None and last.fingerprint == item.fingerprint and not options.force:
                item.status, item.reasons = "skipped", ["unchanged since run " + last.id]
                continue
            item.status = "recompute"
            if options.force:
                item.reasons = ["--force"]
            else:
                old = last.inputs if last is not None else None
                item.reasons = reasons(old, item.inputs, old_version=_previous_version(session, last),
                                       new_version=item.version)  # fmt: skip
            if state.changed:
                item.reasons = [f"region {state.name}: {', '.join(state.changed)} changed (re-imported)"]
    digests.save()
    todo = [i for i in items if i.status == "recompute"]
    emit("selected", {"total": len(items), "recompute": len(todo), "skipped": len(items) - len(todo)})
    batch_id = None if options.dry_run else uuid.uuid4().hex
    if options.dry_run or not todo:  # a batch with nothing to do is recorded too: operations see it ran
        if batch_id is not None:
            _open(sessions, batch_id, options)
        return _finish(settings, sessions, files, options, batch_id, items, started, executor_info={})
    executor = make_executor(options, settings)
    try:
        executor.start()  # an unreachable scheduler or a blind worker fails here, before anything is stored
        emit("executor", executor.describe())
        _open(sessions, batch_id, options)
        reimported = _execute(settings, options, sessions, states, todo, executor, batch_id, emit, task)
        info = {**executor.describe(), "reimported": reimported}
    finally:
        executor.stop()
    return _finish(settings, sessions, files, options, batch_id, items, started, executor_info=info)


def _open(sessions: sessionmaker[Session], batch_id: str | None, options: BatchOptions) -> None:
    with sessions() as session:
        session.add(Batch(id=batch_id, status="running", options=_jsonable_options(options)))
        session.commit()


def _jsonable_options(options: BatchOptions) -> dict[str, Any]:
    out = dict(vars(options))
    out["scenario_ids"] = list(options.scenario_ids)
    out["report_dir"] = str(options.report_dir) if options.report_dir else None
    return out


def _execute(settings: Settings, options: BatchOptions, sessions: sessionmaker[Session],
             states: dict[str, RegionState], todo: list[Item], executor: BatchExecutor, batch_id: str | None,
             emit: Event, task: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """Re-import the changed regions (once each), then plan every scenario as a batch run; retry lost runs.
    Returns the re-imports (region, seconds, caches, error)."""
    db_url, data_dir = settings.db_url, str(settings.data_dir)
    waiting: dict[str, list[Item]] = {}
    ready: list[Item] = []
    for item in todo:
        if item.error:  # the region's source vanished: nothing to run
            item.status = "failed"
            emit("done", _event(item))
            continue
        state = states[item.region_id]
        (waiting.setdefault(item.region_id, []) if state.reimport else ready).append(item)
    pending: dict[Any, tuple[str, Any]] = {}
    reimported: list[dict[str, Any]] = []
    for region_id in sorted(waiting, key=lambda r: -_size(states[r])):
        fut = executor.submit(reimport_task, region_id, db_url, data_dir, str(settings.cache_dir), options.timeout_s,
                              key=f"branchnet-reimport-{batch_id}-{region_id}")  # fmt: skip
        pending[fut] = ("reimport", region_id)

    def launch(item: Item) -> None:
        if item.run_id is None:
            item.run_id = _new_run(sessions, item, batch_id)
        else:
            _requeue(sessions, item.run_id)
        fut = executor.submit(task, item.run_id, db_url, data_dir, str(settings.leaflet_dir), settings.workers,
                              options.retries + 1, options.timeout_s,
                              key=f"branchnet-run-{item.run_id}-{item.attempts}")  # fmt: skip
        pending[fut] = ("plan", item)

    for item in sorted(ready, key=lambda i: -_size(states[i.region_id])):  # the largest first: a shorter tail
        launch(item)
    while pending:
        done = executor.wait_any(list(pending))
        for fut in done:
            kind, what = pending.pop(fut)
            if kind == "reimport":
                answer = _result(fut)
                items = waiting.pop(what, [])
                state = states[what]
                reimported.append({"region": state.name, "org_id": state.org_id, "ok": bool(answer.get("ok")),
                                   "seconds": round(float(answer.get("seconds") or 0.0), 3),
                                   "cache": answer.get("cache"), "error": answer.get("error") or answer.get("lost"),
                                   "worker": answer.get("worker")})  # fmt: skip
                if answer.get("ok"):
                    for item in items:
                        item.cache = {"reimport": answer.get("cache", {}), "reimport_s": answer.get("seconds")}
                        launch(item)
                else:
                    for item in items:
                        item.status, item.error = "failed", f"re-import failed: {answer.get('error')}"
                        emit("done", _event(item))
                continue
            item = what
            answer = _result(fut)
            _settle(sessions, item, answer)
            if item.status == "retry":
                if item.attempts <= options.retries:
                    item.retried = True
                    emit("retry", _event(item))
                    launch(item)
                    continue
                item.status = "failed"
            emit("done", _event(item))
    return reimported


def _size(state: RegionState) -> float:
    """A region's people: its scenarios' work grows with them (the longest tasks go first)."""
    return float(state.meta.get("population") or 0.0)


def _result(fut: Any) -> dict[str, Any]:
    """A task's answer, or a lost worker (the task raised: a killed Dask worker, a crashed pool)."""
    try:
        out = fut.result()
        return dict(out) if isinstance(out, dict) else {"lost": f"the task returned {out!r}"}
    except Exception as exc:
        return {"lost": f"the worker was lost: {type(exc).__name__}: {exc}"}


def _new_run(sessions: sessionmaker[Session], item: Item, batch_id: str | None) -> str:
    with sessions() as session:
        run = Run(org_id=item.org_id, scenario_id=item.scenario_id, body=item.body, status="queued",
                  stage="queued", trigger="batch", batch_id=batch_id, fingerprint=item.fingerprint,
                  inputs=item.inputs)  # fmt: skip
        session.add(run)
        session.commit()
        return str(run.id)


def _requeue(sessions: sessionmaker[Session], run_id: str) -> None:
    """Put a batch run back in the queue for another attempt (its attempts count stays, the worker adds one)."""
    with sessions() as session:
        session.execute(update(Run).where(Run.id == run_id, Run.status.in_(("running", "failed")))
                        .values(status="queued", stage="queued", error=None, finished_at=None))  # fmt: skip
        session.commit()


def _settle(sessions: sessionmaker[Session], item: Item, answer: dict[str, Any]) -> None:
    """Read the run's outcome after a task: succeeded, failed on its input (final), or to retry (lost, crashed)."""
    item.seconds += float(answer.get("seconds") or 0.0)
    item.worker = answer.get("worker") or item.worker
    if answer.get("peak_rss_mb") is not None:
        item.peak_rss_mb = max(item.peak_rss_mb or 0.0, float(answer["peak_rss_mb"]))
    with sessions() as session:
        run = session.get(Run, item.run_id)
        assert run is not None
        item.attempts = run.attempts
        item.started = item.started or run.attempts > 0
        item.retried = item.retried or run.attempts > 1  # a retry of ours, or Dask's after a lost worker
        if run.status == "succeeded":
            item.status, item.error = "succeeded", None
            item.stages_s = dict((run.summary or {}).get("stages_s", {}))
            return
        if answer.get("timed_out"):
            session.execute(update(Run).where(Run.id == run.id, Run.status.in_(("queued", "running")))
                            .values(status="failed", stage="failed", finished_at=now(),
                                    error=f"timed out after {answer.get('seconds', 0):.0f} s (--timeout)"))  # fmt: skip
            session.commit()
            item.status, item.error = "failed", f"timed out after {answer.get('seconds', 0):.0f} s (--timeout)"
            return
        if run.status == "failed" and run.error and not run.error.startswith("internal error"):
            item.status, item.error = "failed", run.error  # the scenario's own fault: a retry would fail again
            return
        # lost worker, crashed child, internal error: worth another attempt
        item.error = answer.get("lost") or run.error or f"the worker exited with code {answer.get('exit_code')}"
        if run.status in ("queued", "running"):
            lost = update(Run).where(Run.id == run.id)
            session.execute(lost.values(status="failed", stage="failed", error=item.error, finished_at=now()))
            session.commit()
        item.status = "retry"


def _event(item: Item) -> dict[str, Any]:
    return {"scenario": item.scenario_id, "name": item.scenario_name, "org": item.org_name, "region": item.region_name,
            "status": item.status, "run": item.run_id, "attempts": item.attempts, "seconds": round(item.seconds, 2),
            "reason": "; ".join(item.reasons), "error": item.error, "worker": item.worker}  # fmt: skip


def _finish(settings: Settings, sessions: sessionmaker[Session], files: FileStore, options: BatchOptions,
            batch_id: str | None, items: list[Item], started: float,
            executor_info: dict[str, Any]) -> BatchOutcome:  # fmt: skip
    wall = time.perf_counter() - started
    with sessions() as session:
        report = reports.build_report(session, files, batch_id, items, wall, options, executor_info)
        thumbnails = reports.map_thumbnails(session, files, report["scenarios"])
    todo = [i for i in items if i.status not in ("skipped",)]
    failed = [i for i in todo if i.status == "failed"]
    if options.dry_run:
        code = EXIT_OK
    elif todo and not any(i.started for i in todo) and failed:
        code = EXIT_NOTHING
    elif failed:
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    report["exit_code"] = code
    folder = options.report_dir or (settings.data_dir / "batches" / (batch_id or "dry-run"))
    paths = reports.write_report(report, folder, thumbnails)
    if batch_id is not None:
        with sessions() as session:
            row = session.get(Batch, batch_id)
            if row is not None:
                row.status = "failed" if code else "succeeded"
                row.exit_code, row.report, row.finished_at = code, report, now()
                session.commit()
    return BatchOutcome(batch_id, code, report, paths)
