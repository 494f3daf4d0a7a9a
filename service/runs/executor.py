"""Run executors: planner runs happen outside the request path, in worker processes or on a Dask cluster.

The database is the queue. ``POST /scenarios/{id}/runs`` inserts a ``queued`` run and wakes the executor; a
background dispatcher thread polls for queued runs (so they survive restarts) and starts each in a worker:

- :class:`LocalExecutor` (default): one OS process per run (``multiprocessing`` "spawn" context), at most
  ``settings.run_workers`` at once;
- :class:`DaskExecutor` (``settings.dask_scheduler`` set): each run is a task on a ``distributed`` cluster.

Both run :func:`service.runs.worker.execute_run` (one run, end to end, with the one pipeline).

Cancelling a queued run is immediate; a running one is marked ``cancelled`` and its process terminated (local) or
its task cancelled and aborted cooperatively (Dask); on another server, its worker's heartbeat notices and aborts.

**Several servers, one database.** Runs are leased (:mod:`service.runs.worker`). A dispatcher claims queued runs
atomically (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite, whose writers take turns, a
compare-and-set on status and attempts), marks them ``running`` with a lease, and hands each to a worker. The lease
is renewed every third of its length by the worker's heartbeat and by its server while the worker lives (a worker
deep in a native solve holding the GIL cannot beat for itself). A run is lost only when its lease expires (or its
own server sees its worker die): every dispatcher looks for expired leases at start and then every few seconds, and
the first to see one applies the lost-worker rule with a compare-and-set, so no run is taken twice. Any number of
``branchnet serve`` processes (and the nightly batch, whose runs are its own) can therefore share one database. A
worker process dies with its server, so a killed server's runs are run again elsewhere once their leases expire.

The lost-worker rule: a run whose worker disappeared is queued again while ``attempts <
settings.run_max_attempts``, else failed with ``worker lost (attempt N of M): ...``. Nothing is silently lost. A
graceful stop of the server terminates its workers and queues their runs again (the attempt still counts, so
``attempts`` is the number of times a run was started). With Dask, the data folder must be the same path on
every worker. Servers' clocks must agree to well within a lease (``settings.run_lease_s``, 60 s by default).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.runs.worker import LOST, execute_run, lease_until, process_main, remove_partial, rowcount, worker_id
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
    attempt: int  # the attempt this server claimed for it
    cancelled_at: float | None = None


class _BaseExecutor:
    """The dispatcher thread, crash recovery and the lost-worker rule, shared by both executors."""

    def __init__(self, svc: Host) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.sessions: sessionmaker[Session] = svc.sessions
        self.jobs: dict[str, _Job] = {}
        self.unsettled: list[tuple[str, _Job, str | None]] = []  # ended workers not yet recorded (database away)
        self.lock = threading.Lock()
        self.server_id = worker_id()
        self._next_expiry = 0.0
        self._next_renewal = 0.0
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
        """Apply the lost-worker rule to every ``running`` API run whose lease has expired (or that has none: a
        run of a server from before leases); return their ids. Runs at start and every quarter of a lease."""
        stamp = now()
        expired = (Run.status == "running") & (Run.trigger == "api")
        expired &= or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < stamp)
        with self.lock:
            busy = set(self.jobs)  # our own workers are watched directly
        ids: list[str] = []
        with session_scope(self.sessions) as s:
            query = select(Run.id, Run.org_id, Run.attempts).where(expired).with_for_update(skip_locked=True)
            for run_id, org_id, attempts in s.execute(query).all():
                if run_id not in busy and self.lost(s, run_id, org_id, attempts, LOST):
                    ids.append(run_id)
        if ids:
            log.warning("recovered runs", extra={"fields": {"runs": ids}})
        return ids

    def renew(self) -> int:
        """Renew the leases of the runs this server's workers are executing (still theirs); how many.

        The server renews for its live workers, as the workers do themselves: a worker busy in native code that
        holds the GIL (a long solve) cannot run its own heartbeat, and its run must not be taken for lost."""
        with self.lock:
            jobs = {run_id: job.attempt for run_id, job in self.jobs.items()}
        if not jobs:
            return 0
        renewed = 0
        until = lease_until(self.settings.run_lease_s)
        try:
            with session_scope(self.sessions) as s:
                for run_id, attempt in jobs.items():
                    ours = (Run.id == run_id) & (Run.status == "running") & (Run.attempts == attempt)
                    renewed += rowcount(s.execute(update(Run).where(ours).values(lease_expires_at=until)))
        except Exception as exc:  # the database is away: the next round tries again
            log.warning("lease renewal failed", extra={"fields": {"error": str(exc)[:200]}})
        return renewed

    def lost(self, s: Session, run_id: str, org_id: str, attempts: int, cause: str) -> bool:
        """The rule for a run whose worker disappeared during ``attempts``: queue it again, or fail it after the
        last attempt. A compare-and-set: it does nothing (False) when the run is no longer running that attempt."""
        m = self.settings.run_max_attempts
        values: dict[str, Any] = {"worker": None, "progress": 0.0, "lease_expires_at": None}
        if attempts < m:
            values.update(status="queued", stage="queued again", started_at=None,
                          error=f"attempt {attempts} of {m} lost ({cause}); queued again")  # fmt: skip
        else:
            values.update(status="failed", stage="failed", finished_at=now(),
                          error=f"worker lost (attempt {attempts} of {m}): {cause}")  # fmt: skip
        mine = (Run.id == run_id) & (Run.status == "running") & (Run.attempts == attempts)
        if not rowcount(s.execute(update(Run).where(mine).values(**values))):
            return False
        remove_partial(self.svc.files.run_dir(org_id, run_id))
        log.warning("worker lost", extra={"fields": {"run": run_id, "status": values["status"],
                                                     "reason": values["error"]}})  # fmt: skip
        return True

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reap()
                self._settle()
                if time.monotonic() >= self._next_renewal:
                    self._next_renewal = time.monotonic() + self.settings.run_lease_s / 3
                    self.renew()
                if time.monotonic() >= self._next_expiry:
                    self._next_expiry = time.monotonic() + self.settings.run_lease_s / 4
                    self.recover()
                if not self._stopping.is_set():
                    self._dispatch()
            except Exception:
                log.exception("dispatcher error")
            self._wake.wait(POLL_S)
            self._wake.clear()

    # -- dispatching

    def _capacity(self) -> int:
        raise NotImplementedError

    def _launch(self, run_id: str, attempt: int) -> Any:
        raise NotImplementedError

    def claim(self, n: int) -> list[tuple[str, int]]:
        """Atomically claim up to ``n`` queued API runs for this server: (run id, attempt) of each claimed."""
        with self.lock:
            busy = set(self.jobs)
        query = select(Run.id, Run.attempts).where(Run.status == "queued", Run.trigger == "api")
        if busy:
            query = query.where(Run.id.notin_(busy))
        query = query.order_by(Run.created_at, Run.id).limit(n).with_for_update(skip_locked=True)
        claimed: list[tuple[str, int]] = []
        with session_scope(self.sessions) as s:
            for run_id, attempts in s.execute(query).all():
                values = {"status": "running", "attempts": attempts + 1, "started_at": now(), "finished_at": None,
                          "worker": self.server_id, "stage": "starting", "progress": 0.0,
                          "lease_expires_at": lease_until(self.settings.run_lease_s)}  # fmt: skip
                queued = (Run.id == run_id) & (Run.status == "queued") & (Run.attempts == attempts)
                if rowcount(s.execute(update(Run).where(queued).values(**values))):
                    claimed.append((run_id, attempts + 1))
        return claimed

    def _dispatch(self) -> None:
        with self.lock:
            free = self._capacity() - len(self.jobs)
        if free <= 0 or self._stopping.is_set():
            return
        for run_id, attempt in self.claim(free):
            with self.lock:
                try:
                    handle = self._launch(run_id, attempt)
                except Exception as exc:
                    log.exception("could not start a worker", extra={"fields": {"run": run_id}})
                    self.unsettled.append((run_id, _Job(None, attempt), f"the worker could not start ({exc})"))
                    continue
                self.jobs[run_id] = _Job(handle, attempt)
            log.info("run dispatched", extra={"fields": {"run": run_id, "executor": type(self).__name__}})

    def _args(self, run_id: str, attempt: int) -> tuple[Any, ...]:
        st = self.settings
        return (run_id, st.db_url, str(st.data_dir.resolve()), str(st.leaflet_dir), st.workers, st.run_max_attempts,
                attempt, st.run_lease_s)  # fmt: skip

    def _finished(self, run_id: str, job: _Job, cause: str | None) -> None:
        """A worker ended; ``cause`` says why when it did not end normally. Apply the lost rule if it left the
        attempt it was given still running. Recorded later when the database is away (:meth:`_settle`)."""
        try:
            with session_scope(self.sessions) as s:
                run = s.get(Run, run_id)
                if run is None or run.attempts != job.attempt:
                    return  # gone, or taken over after an expired lease: not ours any more
                if run.status == "running":
                    why = f"{cause} during the run" if cause else "the worker ended without finishing the run"
                    self.lost(s, run_id, run.org_id, job.attempt, why)
                elif run.status != "succeeded":
                    remove_partial(self.svc.files.run_dir(run.org_id, run.id))
        except Exception:
            log.warning("could not record an ended worker; will retry", extra={"fields": {"run": run_id}})
            with self.lock:
                self.unsettled.append((run_id, job, cause))

    def _settle(self) -> None:
        """Record the workers that ended while the database was away."""
        with self.lock:
            pending, self.unsettled = self.unsettled, []
        for run_id, job, cause in pending:
            self._finished(run_id, job, cause)

    def _reap(self) -> None:
        raise NotImplementedError

    def _requeue_interrupted(self, jobs: dict[str, _Job]) -> None:
        """At a graceful stop: runs we were executing go back to the queue (the server stopped, not the run)."""
        if not jobs:
            return
        try:
            with session_scope(self.sessions) as s:
                for run_id, job in jobs.items():
                    mine = (Run.id == run_id) & (Run.status == "running") & (Run.attempts == job.attempt)
                    why = f"attempt {job.attempt} interrupted (the server stopped); queued again"
                    values = {"status": "queued", "stage": "queued again", "worker": None, "progress": 0.0,
                              "started_at": None, "lease_expires_at": None, "error": why}  # fmt: skip
                    org_id = s.scalar(select(Run.org_id).where(mine))
                    if org_id is not None and rowcount(s.execute(update(Run).where(mine).values(**values))):
                        remove_partial(self.svc.files.run_dir(org_id, run_id))
        except Exception:  # the database is gone: the leases expire and another start recovers these runs
            log.exception("could not re-queue interrupted runs", extra={"fields": {"runs": list(jobs)}})

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

    def _launch(self, run_id: str, attempt: int) -> BaseProcess:
        proc = self._ctx.Process(target=self._target, args=self._args(run_id, attempt), name=f"branchnet-run-{run_id}")
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
        self._requeue_interrupted(jobs)


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

    def _launch(self, run_id: str, attempt: int) -> Any:
        return self.client.submit(execute_run, *self._args(run_id, attempt), pure=False,
                                  key=f"branchnet-run-{run_id}-{attempt}-{time.time_ns()}")  # fmt: skip

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
        self._requeue_interrupted(jobs)  # a task still running aborts at its next progress report
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
            self.client = None
