"""Where the batch's tasks run: a local pool (threads, each starting a child process) or a Dask cluster.

Both take a module-level function and plain arguments, so the same task runs on either. Task keys on Dask are the
batch's own ids (``branchnet-run-<run>-<attempt>``), not ``dask.tokenize`` of the arguments, so they mean the
same thing in every process.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from service.config import Settings
from service.errors import ConfigurationError


class BatchExecutor(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any: ...
    def wait_any(self, futures: list[Any]) -> list[Any]: ...
    def describe(self) -> dict[str, Any]: ...


class ProcessesExecutor:
    """``workers`` tasks at once on this machine (each task runs its scenario in its own child process)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: cf.ThreadPoolExecutor | None = None

    def start(self) -> None:
        self.pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="branchnet-batch")

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        assert self.pool is not None
        return self.pool.submit(fn, *args)

    def wait_any(self, futures: list[Any]) -> list[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def describe(self) -> dict[str, Any]:
        return {"executor": "processes", "workers": self.workers}


class DaskExecutor:
    """Tasks on a Dask cluster: the one at ``scheduler``, or a ``LocalCluster`` of ``workers`` single-threaded
    worker processes started and stopped with the batch."""

    def __init__(self, workers: int, scheduler: str | None, data_dir: Path) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.data_dir = data_dir
        self.client: Any = None
        self.cluster: Any = None

    def start(self) -> None:
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise ConfigurationError(
                    f"--scheduler {self.scheduler}: cannot reach the Dask scheduler ({exc})"
                ) from None
        else:
            self.cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            self.client = Client(self.cluster, set_as_default=False)  # type: ignore[no-untyped-call]
        self._check_data_dir()

    def _check_data_dir(self) -> None:
        """Every worker must see the data folder at the same path: probe for a marker file written here."""
        from service.batch.tasks import data_dir_visible

        marker = f".batch-probe-{uuid.uuid4().hex}"
        (self.data_dir / marker).write_text("branchnet batch probe\n")
        try:
            seen = self.client.run(data_dir_visible, str(self.data_dir), marker)
        finally:
            (self.data_dir / marker).unlink(missing_ok=True)
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise ConfigurationError(
                f"the data folder {self.data_dir} is not visible to Dask worker(s) {', '.join(blind)}; every worker "
                "must see it at the same path (a shared mount)"
            )
        if not seen:
            raise ConfigurationError(f"the Dask scheduler {self.scheduler or 'LocalCluster'} has no workers")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        return self.client.submit(fn, *args, key=key, pure=False, retries=0)

    def wait_any(self, futures: list[Any]) -> list[Any]:
        """The futures that finished (polled: ``distributed.wait`` needs a default client, and ours is not)."""
        while True:
            done = [f for f in futures if f.done()]
            if done:
                return done
            time.sleep(0.1)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"executor": "dask", "scheduler": self.scheduler or "LocalCluster"}
        if self.client is not None:
            with contextlib.suppress(Exception):
                info["dashboard"] = self.client.dashboard_link
                info["workers"] = len(self.client.scheduler_info().get("workers", {}))
        return info


def make_executor(options: Any, settings: Settings) -> BatchExecutor:
    if options.executor == "dask":
        return DaskExecutor(options.workers, options.scheduler, settings.data_dir)
    return ProcessesExecutor(options.workers)
