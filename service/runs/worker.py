"""The execution of one run, in a worker process or a Dask task: claim it, plan it with the one pipeline
(:func:`service.plans.pipeline.run_plan`), write its progress, and end it ``succeeded`` or ``failed``.

Every write of an execution is conditional on owning the run (still ``running``, same attempt), so a cancelled or
re-queued run aborts at its next progress report and a stale worker can never overwrite it. A failure is
reported by the one error table (:mod:`service.errors`): the user's errors with their message, anything else as
``internal error: ...``.

**Leases.** A ``running`` run belongs to its execution until ``runs.lease_expires_at``. A heartbeat thread moves
the lease forward every third of its length while the execution lives; a run whose lease has expired is lost
(:mod:`service.runs.executor` queues it again or fails it), whichever server notices first. The heartbeat also
notices a run taken away (cancelled from another server, re-queued after an expired lease) and makes the
execution stop at its next progress report. The database may go away for a while (a restart): progress writes
are then skipped, heartbeats retried, and the final write retried for up to :data:`FINAL_WRITE_RETRY_S`.

A run is claimed either here (``attempt=None``: the nightly batch's tasks) or, atomically, by a server's
dispatcher, which passes the ``attempt`` it claimed: the execution then adopts the run only if it is still that
attempt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import sessionmaker

from service.store.db import Run, is_postgres, make_engine, now, session_scope

log = logging.getLogger("branchnet.runner")

#: Progress is written at most this often (and on every change of stage).
PROGRESS_EVERY_S = 0.5
LOST = "the server or worker stopped during the run"
#: Niceness added to local worker processes, so that planning never starves the API server on the same cores.
WORKER_NICE = 10
#: Default length of a run's lease (seconds); the heartbeat renews it every third of that.
LEASE_S = 60.0
#: The final write of a run (its status and results) is retried this long while the database is unreachable.
FINAL_WRITE_RETRY_S = 120.0
#: Errors of an unreachable database (a restart, a dropped connection), as opposed to errors of a statement.
UNREACHABLE = (OperationalError, DBAPIError)

#: Overall progress (percent) of each planner stage: (start, end); the stage's fraction interpolates.
STAGES: dict[str, tuple[float, float]] = {
    "starting": (0.0, 1.0),
    "loading region": (1.0, 3.0),
    "candidate stops": (3.0, 8.0),
    "outreach sites": (8.0, 10.0),
    "solve": (10.0, 10.0),
    "select": (10.0, 85.0),
    "route": (10.0, 85.0),
    "pareto": (10.0, 85.0),
    "done": (85.0, 85.0),
    "write results": (85.0, 99.0),
}


class RunAbortedError(Exception):
    """The run is no longer ours (cancelled, or re-queued/failed by an executor): stop quietly."""


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (``Result`` is typed without it; the cursor result has it)."""
    return int(result.rowcount)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_until(lease_s: float) -> Any:
    """The end of a lease of ``lease_s`` seconds taken now."""
    return now() + timedelta(seconds=lease_s)


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable (worth retrying), not that a statement is wrong."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def execute_run(
    run_id: str,
    db_url: str,
    data_dir: str | Path,
    leaflet_dir: str | Path,
    workers: int,
    max_attempts: int = 2,
    attempt: int | None = None,
    lease_s: float = LEASE_S,
) -> str:
    """Execute one run end to end and return its final status (see the module docstring).

    ``attempt``: the attempt a dispatcher claimed for this execution (None: claim the run here). Never raises for
    a failing run: domain errors (a bad scenario or region, an infeasible problem) fail it with their message,
    anything else with ``internal error: ...``. Safe to call for a run that is no longer queued (or no longer
    the claimed attempt): it then does nothing and returns the run's status.
    """
    engine = make_engine(db_url)
    try:
        execution = _Execution(run_id, engine, Path(data_dir), Path(leaflet_dir), workers, max_attempts)
        return execution.run(attempt, lease_s)
    finally:
        engine.dispose()


def process_main(*args: Any) -> None:
    """Entry point of a local worker process: Ctrl-C stops the server, which then stops its workers; and a worker
    dies with its server (Linux ``PR_SET_PDEATHSIG``), so that a killed server's runs are lost when their leases
    expire and another server (or this one restarted) runs them, rather than finished by an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    with contextlib.suppress(OSError):  # a plan is background work: the server's requests come first
        os.nice(WORKER_NICE)
    execute_run(*args)


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent thread ends (a no-op elsewhere)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os._exit(70)


class _Execution:
    def __init__(
        self, run_id: str, engine: Engine, data_dir: Path, leaflet_dir: Path, workers: int, max_attempts: int
    ) -> None:
        from service.config import Settings
        from service.store.files import FileStore

        self.run_id = run_id
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.files = FileStore(Settings.model_construct(data_dir=data_dir).files_dir)
        self.leaflet_dir = leaflet_dir
        self.workers = workers
        self.max_attempts = max_attempts
        self.attempt = 0
        self.org_id = ""
        self.stage = ""
        self.percent = 0.0
        self.last_write = 0.0
        self.timed_stage = ""
        self.stage_t0 = 0.0
        self.stage_s: dict[str, float] = {}
        self.scenario_id: str | None = None
        self.fingerprinted = False
        self.region_meta: dict[str, Any] = {}
        self.lease_s = LEASE_S
        self.taken = threading.Event()  # the heartbeat found the run no longer ours
        self.ended = threading.Event()

    def _mine(self) -> Any:
        return (Run.id == self.run_id) & (Run.status == "running") & (Run.attempts == self.attempt)

    def _update(self, **values: Any) -> bool:
        """Update the run if this execution still owns it; whether it did."""
        with self.engine.begin() as conn:
            return bool(rowcount(conn.execute(update(Run).where(self._mine()).values(**values))))

    def _heartbeat(self) -> None:
        """Renew the lease every third of its length until the execution ends; note a run taken away."""
        every = max(self.lease_s / 3.0, 0.2)
        while not self.ended.wait(every):
            try:
                if not self._update(lease_expires_at=lease_until(self.lease_s)):
                    self.taken.set()
                    return
            except Exception as exc:  # the database is away: try again at the next beat
                log.warning("heartbeat failed", extra={"fields": {"run": self.run_id, "error": str(exc)[:200]}})

    def _adopt(self, attempt: int) -> tuple[str, dict[str, Any]] | None:
        """Take over the run a dispatcher claimed as ``attempt``: its body, or None when it is no longer that."""
        with session_scope(self.sessions) as s:
            run = s.get(Run, self.run_id)
            if run is None or run.status != "running" or run.attempts != attempt:
                return None
            values = {"worker": worker_id(), "lease_expires_at": lease_until(self.lease_s)}
            done = rowcount(s.execute(
                update(Run).where(Run.id == run.id, Run.status == "running", Run.attempts == attempt).values(**values)
            ))  # fmt: skip
            if not done:
                return None
            self.attempt = attempt
            self.org_id = run.org_id
            self.scenario_id, self.fingerprinted = run.scenario_id, run.fingerprint is not None
            return run.org_id, dict(run.body)

    def _claim(self) -> tuple[str, dict[str, Any]] | None:
        """Mark the run running (attempts + 1); its body, or None when it is not ours to run."""
        with session_scope(self.sessions) as s:
            run = s.get(Run, self.run_id)
            if run is None:
                return None
            if run.status == "running" and run.attempts >= self.max_attempts:
                # a previous execution of this run was lost (a Dask worker died and the task was rescheduled)
                run.status, run.stage, run.finished_at = "failed", "failed", now()
                run.error = f"worker lost (attempt {run.attempts} of {self.max_attempts}): {LOST}"
                return None
            if run.status not in ("queued", "running"):
                return None
            before, attempts = run.status, run.attempts
            values = {"status": "running", "attempts": attempts + 1, "started_at": now(), "finished_at": None,
                      "worker": worker_id(), "stage": "starting", "progress": 0.0,
                      "lease_expires_at": lease_until(self.lease_s)}  # fmt: skip
            done = rowcount(s.execute(
                update(Run).where(Run.id == run.id, Run.status == before, Run.attempts == attempts)
                .values(**values)
            ))  # fmt: skip
            if not done:
                return None
            self.attempt = attempts + 1
            self.org_id = run.org_id
            self.scenario_id, self.fingerprinted = run.scenario_id, run.fingerprint is not None
            return run.org_id, dict(run.body)

    def progress(self, stage: str, fraction: float) -> None:
        """The planner's progress callback: write (throttled) and abort when the run is no longer ours."""
        if self.taken.is_set():
            raise RunAbortedError(self.run_id)
        clock_now = time.perf_counter()
        if stage != self.timed_stage:  # the time spent in each stage, for the batch's report
            if self.timed_stage:
                self.stage_s[self.timed_stage] = self.stage_s.get(self.timed_stage, 0.0) + clock_now - self.stage_t0
            self.timed_stage, self.stage_t0 = stage, clock_now
        lo, hi = STAGES.get(stage, (self.percent, self.percent))
        percent = max(self.percent, lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0))
        clock = time.monotonic()
        if stage == self.stage and clock - self.last_write < PROGRESS_EVERY_S:
            self.percent = percent
            return
        self.stage, self.percent, self.last_write = stage, percent, clock
        try:
            mine = self._update(stage=stage[:64], progress=round(percent, 1))
        except UNREACHABLE as exc:
            if not _transient(exc):
                raise
            log.warning("progress not written", extra={"fields": {"run": self.run_id, "error": str(exc)[:200]}})
            return  # progress is best effort; the heartbeat keeps trying, the final write retries
        if not mine:
            raise RunAbortedError(self.run_id)

    def run(self, attempt: int | None = None, lease_s: float = LEASE_S) -> str:
        self.lease_s = lease_s
        claimed = self._claim() if attempt is None else self._adopt(attempt)
        if claimed is None:
            return self._status()
        beat = threading.Thread(target=self._heartbeat, name=f"branchnet-lease-{self.run_id}", daemon=True)
        beat.start()
        try:
            return self._execute(*claimed)
        finally:
            self.ended.set()
            beat.join(timeout=5)

    def _execute(self, org_id: str, body: dict[str, Any]) -> str:
        out_dir = self.files.run_dir(org_id, self.run_id)
        log.info("run started", extra={"fields": {"run": self.run_id, "attempt": self.attempt}})
        try:
            plan = self._plan(org_id, body, out_dir)
            summary = summarize(plan)
            if self.timed_stage:
                self.stage_s[self.timed_stage] = self.stage_s.get(self.timed_stage, 0.0) + (
                    time.perf_counter() - self.stage_t0
                )
            summary["stages_s"] = {k: round(v, 3) for k, v in self.stage_s.items()}
            values = {"status": "succeeded", "progress": 100.0, "stage": "done", "error": None, "summary": summary,
                      "result_path": out_dir.relative_to(self.files.root).as_posix(), "finished_at": now(),
                      "lease_expires_at": None}  # fmt: skip
            self._retrying(lambda: self._finish(org_id, body, out_dir, values))
        except RunAbortedError:
            status = self._status()
            if status == "cancelled":  # the results of a cancelled run are not kept
                shutil.rmtree(out_dir, ignore_errors=True)
            log.info("run aborted", extra={"fields": {"run": self.run_id, "status": status}})
            return status
        except Exception as exc:
            reason = failure_reason(exc)
            if reason.startswith("internal error"):
                log.exception("run failed", extra={"fields": {"run": self.run_id}})
            values = {"status": "failed", "stage": "failed", "error": reason, "finished_at": now(),
                      "lease_expires_at": None}  # fmt: skip
            if self._retrying(lambda: self._update(**values)):  # ours: nothing of it stays on disk
                shutil.rmtree(out_dir, ignore_errors=True)
                remove_partial(out_dir)
            return self._status()
        log.info("run succeeded", extra={"fields": {"run": self.run_id, "attempt": self.attempt}})
        return "succeeded"

    def _finish(self, org_id: str, body: dict[str, Any], out_dir: Path, values: dict[str, Any]) -> None:
        """Record the succeeded run (and its PostGIS features) in one transaction, if it is still ours."""
        with self.engine.begin() as conn:
            if not self.fingerprinted:  # an API run: record what it was planned from (the batch skips it)
                values.update(self._inputs(conn, body))
            if is_postgres(self.engine):
                write_features(conn, self.run_id, org_id, out_dir / "layers.gpkg")
            if not rowcount(conn.execute(update(Run).where(self._mine()).values(**values))):
                raise RunAbortedError(self.run_id)  # rolls the features back

    def _retrying(self, write: Any) -> Any:
        """Run ``write`` (a final write), retrying while the database is unreachable, up to
        :data:`FINAL_WRITE_RETRY_S`; the lease keeps the run ours meanwhile (heartbeats retry too)."""
        deadline = time.monotonic() + FINAL_WRITE_RETRY_S
        pause = 0.2
        while True:
            try:
                return write()
            except UNREACHABLE as exc:
                if not _transient(exc) or time.monotonic() > deadline:
                    raise
                log.warning("database unreachable; retrying", extra={"fields": {"run": self.run_id,
                                                                                 "error": str(exc)[:200]}})  # fmt: skip
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _plan(self, org_id: str, body: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from service.plans.pipeline import run_plan
        from service.plans.scenario import Scenario
        from service.store.regions import load_region

        scenario = Scenario.parse(body)
        self.progress("loading region", 0.0)
        region = load_region(scenario.region, self.files.regions_dir(org_id))
        self.region_meta = region.meta
        self.progress("loading region", 1.0)
        return run_plan(region, scenario, out_dir, leaflet_dir=self.leaflet_dir, progress=self.progress,
                                workers=self.workers)  # fmt: skip

    def _inputs(self, conn: Any, body: dict[str, Any]) -> dict[str, Any]:
        """The run's inputs and fingerprint (:mod:`service.runs.fingerprint`), as the nightly batch computes them."""
        from service.runs.fingerprint import recorded_sources, run_inputs
        from service.store.db import Scenario as ScenarioRow

        version = None
        if self.scenario_id is not None:
            version = conn.execute(select(ScenarioRow.version).where(ScenarioRow.id == self.scenario_id)).scalar()
        inputs, digest = run_inputs(body, recorded_sources(self.region_meta), self.workers, version)
        return {"inputs": inputs, "fingerprint": digest}

    def _status(self) -> str:
        def read() -> str | None:
            with self.sessions() as s:
                return s.scalar(select(Run.status).where(Run.id == self.run_id))

        return self._retrying(read) or "missing"


def failure_reason(exc: BaseException) -> str:
    """The reason shown to users: the message of a domain error (their input), ``internal error: ...`` else."""
    from service.errors import message

    return message(exc)


def summarize(plan: dict[str, Any]) -> dict[str, Any]:
    """A few KPIs of a plan for run listings: cost, coverage, branches kept, bookmobile, solver status and gap."""

    def get(*keys: str) -> Any:
        value: Any = plan
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    years = [str(y) for y in plan.get("years") or []]
    branches = get("decisions", "branches") or []
    return {
        "objective": plan.get("objective"),
        "years": years,
        "cost": get("costs", "plan", "total"),
        "cost_today": get("costs", "today", "total"),
        "covered_share": {y: get("kpis", y, "plan", "covered_share") for y in years},
        "covered_share_today": {y: get("kpis", y, "today", "covered_share") for y in years},
        "branches_kept": sum(1 for b in branches if b.get("decision") != "close"),
        "branches_total": len(branches),
        "bookmobile_vehicles": get("decisions", "bookmobile", "vehicles"),
        "bookmobile_stops": get("decisions", "bookmobile", "stops_served"),
        "outreach_desks": len(get("decisions", "outreach", "desks") or []),
        "solver_status": get("solver", "status"),
        "gap": get("solver", "gap"),
        "runtime_s": plan.get("runtime_s"),
    }


def write_features(conn: Any, run_id: str, org_id: str, gpkg: Path) -> int:
    """Replace the run's rows in the PostGIS table ``result_features`` by the layers of ``gpkg`` (EPSG:4326)."""
    import pyogrio

    conn.execute(text("DELETE FROM result_features WHERE run_id = :run"), {"run": run_id})
    if not gpkg.is_file():
        return 0
    sql = text(
        "INSERT INTO result_features (run_id, org_id, layer, properties, geom) VALUES (:run, :org, :layer, "
        "CAST(:props AS jsonb), ST_SetSRID(ST_GeomFromGeoJSON(CAST(:geom AS text)), 4326))"
    )
    count = 0
    for layer, _kind in pyogrio.list_layers(gpkg):
        frame = pyogrio.read_dataframe(gpkg, layer=str(layer))
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        features = json.loads(frame.to_json(na="null", drop_id=True))["features"]
        rows = [{"run": run_id, "org": org_id, "layer": str(layer)[:64], "props": json.dumps(f["properties"]),
                 "geom": json.dumps(f["geometry"]) if f.get("geometry") else None} for f in features]  # fmt: skip
        if rows:
            conn.execute(sql, rows)
            count += len(rows)
    return count


def remove_partial(run_dir: Path) -> None:
    """Remove temporary folders a killed writer left beside ``run_dir`` (``.<run>.*``, see ``atomic_dir``)."""
    parent = run_dir.parent
    if parent.is_dir():
        for tmp in parent.glob(f".{run_dir.name}.*"):
            shutil.rmtree(tmp, ignore_errors=True)
