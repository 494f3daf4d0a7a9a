"""The batch's units of work, run by either executor: plan one scenario run, or re-import one region.

Each task starts a fresh child process (:mod:`service.batch.child`) and waits for it with the batch's per-scenario
timeout, so a crash, a hung solver or a memory blow-up costs only that scenario, and a timeout can stop it; the
child's own resource usage gives its peak memory. Functions are module-level and take plain arguments, so Dask
can ship them to its workers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

#: Threads per child: the batch parallelises over scenarios, so each solve keeps to one core.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def plan_child(run_id: str, db_url: str, data_dir: str, leaflet_dir: str, workers: int, max_attempts: int) -> None:
    from service.runs.worker import execute_run

    execute_run(run_id, db_url, data_dir, leaflet_dir, workers, max_attempts)


def reimport_child(region_id: str, db_url: str, data_dir: str, cache_dir: str, out: str) -> None:
    try:
        from service.batch.regions import reimport_region

        hits = reimport_region(region_id, db_url, Path(data_dir), Path(cache_dir))
        Path(out).write_text(json.dumps({"ok": True, "cache": hits}))
    except Exception as exc:
        from service.errors import message

        Path(out).write_text(json.dumps({"ok": False, "error": message(exc), "trace": traceback.format_exc(limit=5)}))


def run_child(target: str, args: tuple[Any, ...], timeout_s: float) -> dict[str, Any]:
    """Run ``target`` (``module:function``) with ``args`` in a child process: its exit code, whether it timed out,
    its seconds and its peak resident memory (MB)."""
    env = {**os.environ, **SINGLE_THREAD_ENV, "BRANCHNET_BATCH_PARENT": str(os.getpid())}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "service.batch.child", target, json.dumps(list(args))], env=env,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    timed_out = False
    while True:  # wait4: the child's own peak memory, not the largest of every child so far
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout_s:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.05)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    return {"exit_code": code, "timed_out": timed_out, "seconds": time.perf_counter() - started,
            "peak_rss_mb": usage.ru_maxrss / 1024.0, "worker": f"{socket.gethostname()}:{os.getpid()}"}  # fmt: skip


def plan_task(run_id: str, db_url: str, data_dir: str, leaflet_dir: str, workers: int, max_attempts: int,
              timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """Execute one queued batch run in a child process (the one pipeline, through the run worker)."""
    args = (run_id, db_url, data_dir, leaflet_dir, workers, max_attempts)
    return {"run_id": run_id, **run_child("service.batch.tasks:plan_child", args, timeout_s)}


def reimport_task(region_id: str, db_url: str, data_dir: str, cache_dir: str, timeout_s: float) -> dict[str, Any]:
    """Re-import one region from its source files in a child process (the answer comes back through a file)."""
    fd, out = tempfile.mkstemp(prefix="branchnet-reimport-", suffix=".json")
    os.close(fd)
    try:
        ran = run_child("service.batch.tasks:reimport_child", (region_id, db_url, data_dir, cache_dir, out), timeout_s)
        text = Path(out).read_text()
    finally:
        Path(out).unlink(missing_ok=True)
    answer: dict[str, Any] = (
        json.loads(text) if text else {"ok": False, "error": f"the re-import exited with code {ran['exit_code']}"}
    )
    if ran["timed_out"]:
        answer = {"ok": False, "error": f"the re-import took longer than {timeout_s:g} s (--timeout)"}
    return {**answer, **ran, "region_id": region_id}


def data_dir_visible(data_dir: str, marker: str) -> bool:
    """Whether this worker sees the data folder (the batch's marker file in it)."""
    return (Path(data_dir) / marker).is_file()
