"""Fault injection for the run worker, in the worker process itself: the entry point :func:`faulty_main` replaces
:func:`service.runs.worker.process_main` in a :class:`~service.runs.executor.LocalExecutor` (``target=``).

The plan is a JSON file named by ``$BRANCHNET_TEST_FAULTS`` (``{run_id: {"at": point}}``), read when the worker
starts, and applied to the run's first attempt only (so the retry shows the recovery). Points:

- a progress stage (``"loading region"``, ``"select"``, ``"write results"``...): SIGKILL at its first report;
- ``"mid-write"``: SIGKILL right after the GeoPackage is written into the run's temporary folder, before the map,
  the image and ``plan.json``;
- ``"final write"``: SIGKILL with every result file in place but before the run is recorded as succeeded;
- ``"silent"``: no heartbeat of the worker's own, and 6 s without a word at the start of the solve (as a worker
  deep in a native solve holding the GIL): only its server can keep its lease.

Every worker start (``attempt N``) and every progress stage it reports are appended to ``<plan>.stages.<run_id>``
(one per line, in order), so a test can first learn the stages of a clean run, then kill a run at each of them.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

PLAN_ENV = "BRANCHNET_TEST_FAULTS"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def faulty_main(*args: Any) -> None:
    from service.plans import outputs
    from service.runs import worker

    run_id, attempt = str(args[0]), args[6]
    plan_file = Path(os.environ[PLAN_ENV])
    plan = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
    at = (plan.get(run_id) or {}).get("at") if attempt == 1 else None
    stages = plan_file.with_name(f"{plan_file.name}.stages.{run_id}")

    with stages.open("a") as f:
        f.write(f"attempt {attempt}\n")
    progress = worker._Execution.progress

    def recorded(self: Any, stage: str, fraction: float) -> None:
        with stages.open("a") as f:
            f.write(stage + "\n")
        if stage == at:
            _die()
        progress(self, stage, fraction)

    worker._Execution.progress = recorded  # type: ignore[method-assign]
    if at == "mid-write":
        write_layers = outputs.write_layers

        def then_die(*a: Any, **k: Any) -> Any:
            write_layers(*a, **k)
            _die()

        outputs.write_layers = then_die
    if at == "silent":
        import time

        worker._Execution._heartbeat = lambda self: None  # type: ignore[method-assign]

        def quiet(self: Any, stage: str, fraction: float) -> None:
            if stage == "solve":
                time.sleep(6.0)
            recorded(self, stage, fraction)

        worker._Execution.progress = quiet  # type: ignore[method-assign]
    if at == "final write":
        worker._Execution._finish = lambda *a, **k: _die()  # type: ignore[method-assign]
    worker.process_main(*args)
