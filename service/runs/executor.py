"""Run executors: planner runs happen outside the request path, in worker processes or on a Dask cluster.

The database is the queue. ``POST /scenarios/{id}/runs`` inserts a ``queued`` run and wakes the executor; a
background dispatcher thread polls for queued runs (so they survive restarts) and starts each in a worker:

- :class:`LocalExecutor` (default): one OS process per run (``multiprocessing`` "spawn" context), at most
  ``settings.run_workers`` at once;
- :class:`DaskExecutor` (``settings.dask_scheduler`` set): each run is a task on a ``distributed`` cluster.

Both run :func:`service.runs.worker.execute_run` (one run, end to end, with the one pipeline).

Cancelling a queued run is immediate; a running one is marked ``cancelled`` and its process terminated (local) or
its task cancelled and aborted cooperatively (Dask). A run whose worker disappears (process killed, server
crashed: every run still ``running`` when an executor starts is considered lost) is queued again while
``attempts < settings.run_max_attempts``, else failed with ``worker lost (attempt N of M): ...``. Nothing is
silently lost. A graceful stop of the server terminates its workers and queues their runs again (the attempt
still counts, so ``attempts`` is the number of times a run was started).

One executor per database: run one server process (``branchnet serve``), or the recovery of one process would
take the runs of another for lost. With Dask, the data folder must be the same path on every worker.

The executors need only a :class:`Host` (settings, sessions, files): the API's ``Services`` is one, and this
package never imports the API.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.runs.worker import LOST, execute_run, process_main, remove_partial
from service.store.db import Run, now, session_scope
from service.store.files import FileStore

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

log = logging.getLogger("branchnet.runner")

#: How often the dispatcher looks for queued runs and finished workers (it is also woken on submit).
POLL_S = 0.5
#: A terminated worker still alive after this long is killed.
KILL_AFTER_S = 5.0


class Host(Protocol):
    """What an executor needs of its server: the settings, a session factory and the file store."""

    settings: Settings
    sessions: sessionmaker[Session]
    files: FileStore


class Executor(Protocol):
    """What the app needs from a run executor."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def submit(self, run_id: str) -> None: ...
    def cancel(self, run_id: str) -> None: ...
    def gauges(self) -> dict[str, float]: ...


def make_executor(svc: Host) -> Executor:
    """A :class:`DaskExecutor` when ``settings.dask_scheduler`` is set, else a :class:`LocalExecutor`."""
    if svc.settings.dask_scheduler:
        return DaskExecutor(svc)
    return LocalExecutor(svc)


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

    def __init__(self, svc: Host) -> None:
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
            lost = list(s.scalars(select(Run).where(Run.status == "running", Run.trigger == "api")))
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
                select(Run.id, Run.attempts).where(Run.status == "queued", Run.trigger == "api")
                .order_by(Run.created_at, Run.id).limit(free + len(busy))
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

    def __init__(self, svc: Host, target: Callable[..., Any] = process_main) -> None:
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

    def __init__(self, svc: Host) -> None:
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
