"""Run execution: planner runs happen outside the request path, in worker processes or on a Dask cluster.

The database is the queue. ``POST /scenarios/{id}/runs`` inserts a ``queued`` run and wakes the executor; a
background dispatcher thread polls for queued runs (so they survive restarts) and starts each in a worker:

- :class:`LocalExecutor` (default): one OS process per run (``multiprocessing`` "spawn" context), at most
  ``settings.run_workers`` at once;
- :class:`DaskExecutor` (``settings.dask_scheduler`` set): each run is a task on a ``distributed`` cluster.

Both run :func:`execute_run`, which opens its own engine, marks the run ``running`` (``attempts`` + 1, ``worker`` =
``host:pid``), solves with :func:`service.plans.pipeline.run_network_plan`, writes progress (0-100 %) and the stage to
the database at most every half second, and ends ``succeeded`` (result files in the file store, a few KPIs in
``summary``; on PostGIS also the result layers in ``result_features``, in the same transaction) or ``failed``
with the reason. Every write of an execution is conditional on owning the run (still ``running``, same attempt),
so a cancelled or re-queued run aborts at its next progress report and a stale worker can never overwrite it.

Cancelling a queued run is immediate; a running one is marked ``cancelled`` and its process terminated (local) or
its task cancelled and aborted cooperatively (Dask). A run whose worker disappears (process killed, server
crashed: every run still ``running`` when an executor starts is considered lost) is queued again while
``attempts < settings.run_max_attempts``, else failed with ``worker lost (attempt N of M): ...``. Nothing is
silently lost. A graceful stop of the server terminates its workers and queues their runs again (the attempt
still counts, so ``attempts`` is the number of times a run was started).

One executor per database: run one server process (``branchnet serve``), or the recovery of one process would
take the runs of another for lost. With Dask, the data folder must be the same path on every worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.store.db import Run, is_postgres, make_engine, now, session_scope

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from service.api.app import Services

log = logging.getLogger("branchnet.runner")

#: How often the dispatcher looks for queued runs and finished workers (it is also woken on submit).
POLL_S = 0.5
#: Progress is written at most this often (and on every change of stage).
PROGRESS_EVERY_S = 0.5
#: A terminated worker still alive after this long is killed.
KILL_AFTER_S = 5.0
LOST = "the server or worker stopped during the run"

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


class Executor(Protocol):
    """What the app needs from a run executor."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def submit(self, run_id: str) -> None: ...
    def cancel(self, run_id: str) -> None: ...
    def gauges(self) -> dict[str, float]: ...


def make_executor(svc: Services) -> Executor:
    """A :class:`DaskExecutor` when ``settings.dask_scheduler`` is set, else a :class:`LocalExecutor`."""
    if svc.settings.dask_scheduler:
        return DaskExecutor(svc)
    return LocalExecutor(svc)


# ---------------------------------------------------------------------------------------------------------------
# the execution of one run (in a worker process or a Dask task)


class RunAbortedError(Exception):
    """The run is no longer ours (cancelled, or re-queued/failed by an executor): stop quietly."""


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (``Result`` is typed without it; the cursor result has it)."""
    return int(result.rowcount)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_run(
    run_id: str,
    db_url: str,
    data_dir: str | Path,
    leaflet_dir: str | Path,
    workers: int,
    max_attempts: int = 2,
) -> str:
    """Execute one run end to end and return its final status (see the module docstring).

    Never raises for a failing run: domain errors (a bad scenario or region, an infeasible problem) fail it with
    their message, anything else with ``internal error: ...``. Safe to call for a run that is no longer queued:
    it then does nothing and returns the run's status.
    """
    engine = make_engine(db_url)
    try:
        return _Execution(run_id, engine, Path(data_dir), Path(leaflet_dir), workers, max_attempts).run()
    finally:
        engine.dispose()


def _process_main(*args: Any) -> None:
    """Entry point of a local worker process: Ctrl-C stops the server, which then stops its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    execute_run(*args)


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

    def _mine(self) -> Any:
        return (Run.id == self.run_id) & (Run.status == "running") & (Run.attempts == self.attempt)

    def _update(self, **values: Any) -> bool:
        """Update the run if this execution still owns it; whether it did."""
        with self.engine.begin() as conn:
            return bool(rowcount(conn.execute(update(Run).where(self._mine()).values(**values))))

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
                      "worker": worker_id(), "stage": "starting", "progress": 0.0}  # fmt: skip
            done = rowcount(s.execute(
                update(Run).where(Run.id == run.id, Run.status == before, Run.attempts == attempts)
                .values(**values)
            ))  # fmt: skip
            if not done:
                return None
            self.attempt = attempts + 1
            self.org_id = run.org_id
            return run.org_id, dict(run.body)

    def progress(self, stage: str, fraction: float) -> None:
        """The planner's progress callback: write (throttled) and abort when the run is no longer ours."""
        lo, hi = STAGES.get(stage, (self.percent, self.percent))
        percent = max(self.percent, lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0))
        clock = time.monotonic()
        if stage == self.stage and clock - self.last_write < PROGRESS_EVERY_S:
            self.percent = percent
            return
        self.stage, self.percent, self.last_write = stage, percent, clock
        if not self._update(stage=stage[:64], progress=round(percent, 1)):
            raise RunAbortedError(self.run_id)

    def run(self) -> str:
        claimed = self._claim()
        if claimed is None:
            return self._status()
        org_id, body = claimed
        out_dir = self.files.run_dir(org_id, self.run_id)
        log.info("run started", extra={"fields": {"run": self.run_id, "attempt": self.attempt}})
        try:
            plan = self._plan(org_id, body, out_dir)
            summary = summarize(plan)
            values = {"status": "succeeded", "progress": 100.0, "stage": "done", "error": None, "summary": summary,
                      "result_path": out_dir.relative_to(self.files.root).as_posix(), "finished_at": now()}  # fmt: skip
            with self.engine.begin() as conn:
                if is_postgres(self.engine):
                    write_features(conn, self.run_id, org_id, out_dir / "layers.gpkg")
                if not rowcount(conn.execute(update(Run).where(self._mine()).values(**values))):
                    raise RunAbortedError(self.run_id)  # rolls the features back
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
            self._update(status="failed", stage="failed", error=reason, finished_at=now())
            return self._status()
        log.info("run succeeded", extra={"fields": {"run": self.run_id, "attempt": self.attempt}})
        return "succeeded"

    def _plan(self, org_id: str, body: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from service.plans.pipeline import run_network_plan
        from service.plans.scenario import Scenario
        from service.store.regions import load_region

        scenario = Scenario.parse(body)
        self.progress("loading region", 0.0)
        region = load_region(scenario.region, self.files.regions_dir(org_id))
        self.progress("loading region", 1.0)
        return run_network_plan(region, scenario, out_dir, leaflet_dir=self.leaflet_dir, progress=self.progress,
                                workers=self.workers)  # fmt: skip

    def _status(self) -> str:
        with self.sessions() as s:
            status = s.scalar(select(Run.status).where(Run.id == self.run_id))
        return status or "missing"


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


# ---------------------------------------------------------------------------------------------------------------
# executors


def describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker process disappeared"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {code}"


@dataclass
class _Job:
    handle: Any  # a multiprocessing Process or a distributed Future
    attempts: int  # the run's attempts when it was started
    cancelled_at: float | None = None


class _BaseExecutor:
    """The dispatcher thread, crash recovery and the lost-worker rule, shared by both executors."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.sessions: sessionmaker[Session] = svc.sessions
        self.jobs: dict[str, _Job] = {}
        self.start_failures: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle

    def start(self) -> None:
        self.recover()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"branchnet-{type(self).__name__}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, run_id: str) -> None:
        """A run was queued: dispatch now rather than at the next poll."""
        self._wake.set()

    def recover(self) -> list[str]:
        """At start: every run still ``running`` lost its worker (none runs yet); apply the lost-worker rule."""
        with session_scope(self.sessions) as s:
            lost = list(s.scalars(select(Run).where(Run.status == "running")))
            for run in lost:
                self.lost(s, run, LOST)
            ids = [r.id for r in lost]
        if ids:
            log.warning("recovered runs", extra={"fields": {"runs": ids}})
        return ids

    def lost(self, s: Session, run: Run, cause: str, attempts: int | None = None) -> None:
        """The rule for a run whose worker disappeared: queue it again, or fail it after the last attempt."""
        n, m = max(run.attempts, attempts or 0), self.settings.run_max_attempts
        run.attempts, run.worker, run.progress = n, None, 0.0
        if n < m:
            run.status, run.stage, run.started_at = "queued", "queued again", None
            run.error = f"attempt {n} of {m} lost ({cause}); queued again"
        else:
            run.status, run.stage, run.finished_at = "failed", "failed", now()
            run.error = f"worker lost (attempt {n} of {m}): {cause}"
        remove_partial(self.svc.files.run_dir(run.org_id, run.id))
        log.warning("worker lost", extra={"fields": {"run": run.id, "status": run.status, "reason": run.error}})

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap()
                if not self._stopping.is_set():
                    self._dispatch()
            except Exception:
                log.exception("dispatcher error")
            self._wake.wait(POLL_S)
            self._wake.clear()

    # -- dispatching

    def _capacity(self) -> int:
        raise NotImplementedError

    def _launch(self, run_id: str) -> Any:
        raise NotImplementedError

    def _dispatch(self) -> None:
        with self.lock:
            free, busy = self._capacity() - len(self.jobs), set(self.jobs)
        if free <= 0:
            return
        with self.sessions() as s:
            rows = s.execute(
                select(Run.id, Run.attempts).where(Run.status == "queued").order_by(Run.created_at, Run.id)
                .limit(free + len(busy))
            ).all()  # fmt: skip
        for run_id, attempts in [r for r in rows if r[0] not in busy][:free]:
            with self.lock:
                if self._stopping.is_set():
                    return
                self.jobs[run_id] = _Job(self._launch(run_id), attempts)
            log.info("run dispatched", extra={"fields": {"run": run_id, "executor": type(self).__name__}})

    def _args(self, run_id: str) -> tuple[Any, ...]:
        st = self.settings
        return (run_id, st.db_url, str(st.data_dir.resolve()), str(st.leaflet_dir), st.workers, st.run_max_attempts)

    def _finished(self, run_id: str, job: _Job, cause: str | None) -> None:
        """A worker ended; ``cause`` says why when it did not end normally. Apply the lost rule if needed."""
        with session_scope(self.sessions) as s:
            run = s.get(Run, run_id)
            if run is None:
                return
            m = self.settings.run_max_attempts
            if run.status == "running":
                why = f"{cause} during the run" if cause else "the worker ended without finishing the run"
                self.lost(s, run, why, attempts=job.attempts + 1)
            elif run.status == "queued" and cause is not None:  # it died before it could start the run
                self.start_failures[run_id] += 1
                k = self.start_failures[run_id]
                if k >= m:
                    run.status, run.stage, run.finished_at = "failed", "failed", now()
                    run.error = f"worker lost: {cause} before starting the run ({k} of {m} tries)"
                    log.warning("worker lost", extra={"fields": {"run": run.id, "reason": run.error}})
            if run.status != "queued":
                self.start_failures.pop(run_id, None)
            if run.status != "succeeded":
                remove_partial(self.svc.files.run_dir(run.org_id, run.id))

    def _reap(self) -> None:
        raise NotImplementedError

    def _requeue_interrupted(self, run_ids: list[str]) -> None:
        """At a graceful stop: runs we were executing go back to the queue (the server stopped, not the run)."""
        if not run_ids:
            return
        try:
            with session_scope(self.sessions) as s:
                for run in s.scalars(select(Run).where(Run.id.in_(run_ids), Run.status == "running")):
                    run.status, run.stage, run.worker, run.progress = "queued", "queued again", None, 0.0
                    run.started_at = None
                    run.error = f"attempt {run.attempts} interrupted (the server stopped); queued again"
                    remove_partial(self.svc.files.run_dir(run.org_id, run.id))
        except Exception:  # the database is gone: the next start recovers these runs as lost
            log.exception("could not re-queue interrupted runs", extra={"fields": {"runs": run_ids}})

    # -- metrics

    def gauges(self) -> dict[str, float]:
        with self.sessions() as s:
            counts = {status: n for status, n in s.execute(select(Run.status, func.count()).group_by(Run.status))}
        with self.lock:
            busy = len(self.jobs)
        return {
            "branchnet_runs_queued": float(counts.get("queued", 0)),
            "branchnet_runs_running": float(counts.get("running", 0)),
            "branchnet_runs_succeeded": float(counts.get("succeeded", 0)),
            "branchnet_runs_failed": float(counts.get("failed", 0)),
            "branchnet_runs_cancelled": float(counts.get("cancelled", 0)),
            "branchnet_run_workers_busy": float(busy),
            "branchnet_run_workers": float(self._capacity()),
        }


class LocalExecutor(_BaseExecutor):
    """One spawned OS process per run, at most ``settings.run_workers`` at once."""

    def __init__(self, svc: Services, target: Callable[..., Any] = _process_main) -> None:
        super().__init__(svc)
        self._ctx = multiprocessing.get_context("spawn")
        self._target = target

    def _capacity(self) -> int:
        return self.settings.run_workers

    def _launch(self, run_id: str) -> BaseProcess:
        proc = self._ctx.Process(target=self._target, args=self._args(run_id), name=f"branchnet-run-{run_id}")
        proc.start()
        return proc

    def pid(self, run_id: str) -> int | None:
        """The pid of the process executing ``run_id`` (None when there is none)."""
        with self.lock:
            job = self.jobs.get(run_id)
        return job.handle.pid if job else None

    def cancel(self, run_id: str) -> None:
        with self.lock:
            job = self.jobs.get(run_id)
            if job is not None and job.cancelled_at is None:
                job.cancelled_at = time.monotonic()
                job.handle.terminate()
        self._wake.set()

    def _reap(self) -> None:
        done: list[tuple[str, _Job]] = []
        with self.lock:
            for run_id, job in list(self.jobs.items()):
                proc = job.handle
                if proc.is_alive():
                    if job.cancelled_at is not None and time.monotonic() - job.cancelled_at > KILL_AFTER_S:
                        proc.kill()
                    continue
                proc.join(0)
                done.append((run_id, job))
                del self.jobs[run_id]
        for run_id, job in done:
            code = job.handle.exitcode
            job.handle.close()
            self._finished(run_id, job, None if code == 0 else describe_exit(code))

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(Exception):
            self._reap()  # workers that already ended are accounted for normally
        with self.lock:
            jobs, self.jobs = dict(self.jobs), {}
        for job in jobs.values():
            job.handle.terminate()
        for job in jobs.values():
            job.handle.join(KILL_AFTER_S)
            if job.handle.is_alive():
                job.handle.kill()
                job.handle.join(KILL_AFTER_S)
        self._requeue_interrupted(list(jobs))


class DaskExecutor(_BaseExecutor):
    """Runs as tasks on a ``distributed`` cluster (``settings.dask_scheduler``); progress goes via the database."""

    def __init__(self, svc: Services) -> None:
        super().__init__(svc)
        self.client: Any = None

    def start(self) -> None:
        from distributed import Client

        self.client = Client(self.settings.dask_scheduler, set_as_default=False, timeout="30s")  # type: ignore[no-untyped-call]
        super().start()

    def _capacity(self) -> int:
        # the cluster schedules; we keep at most two tasks per worker thread in flight
        try:
            threads = int(sum(self.client.nthreads().values()))
        except Exception:
            threads = 1
        return max(1, 2 * threads)

    def _launch(self, run_id: str) -> Any:
        return self.client.submit(execute_run, *self._args(run_id), pure=False, key=f"branchnet-run-{run_id}-"
                                  f"{time.time_ns()}")  # fmt: skip

    def cancel(self, run_id: str) -> None:
        with self.lock:
            job = self.jobs.get(run_id)
            if job is not None and job.cancelled_at is None:
                job.cancelled_at = time.monotonic()
                job.handle.cancel()  # a task not started never runs; a running one aborts at its next progress
        self._wake.set()

    def _reap(self) -> None:
        done: list[tuple[str, _Job]] = []
        with self.lock:
            for run_id, job in list(self.jobs.items()):
                if job.handle.done():
                    done.append((run_id, job))
                    del self.jobs[run_id]
        for run_id, job in done:
            fut, cause = job.handle, None
            if fut.status == "error":
                exc = fut.exception()
                cause = f"the Dask task failed ({type(exc).__name__}: {exc})"
            elif fut.status == "cancelled" and job.cancelled_at is None:
                cause = "the Dask task was cancelled"
            with contextlib.suppress(Exception):
                fut.release()
            self._finished(run_id, job, cause)

    def stop(self) -> None:
        super().stop()
        with self.lock:
            jobs, self.jobs = dict(self.jobs), {}
        for job in jobs.values():
            with contextlib.suppress(Exception):
                job.handle.cancel()
        self._requeue_interrupted(list(jobs))  # a task still running aborts at its next progress report
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
            self.client = None
