"""``python -m service.batch.child MODULE:FUNCTION ARGS_JSON``: run one batch task in a process of its own.

The batch starts every scenario (and every re-import) this way, from a local pool or from a Dask worker (whose
processes are daemons and may not use ``multiprocessing`` children). The child asks the kernel to kill it when its
parent dies (``PR_SET_PDEATHSIG``), so a killed Dask worker leaves no orphan, and keeps to one thread per
numerical library: the batch parallelises over scenarios.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    """Be killed when ``parent`` dies (Linux); exit at once if it is already gone."""
    with contextlib.suppress(Exception):  # elsewhere a killed worker may leave its child running to the end
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(70)


def main(argv: list[str]) -> None:
    target, args = argv[0], json.loads(argv[1])
    die_with_parent(int(os.environ.get("BRANCHNET_BATCH_PARENT", os.getppid())))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the batch, which then stops its children
    module, _, name = target.partition(":")
    getattr(importlib.import_module(module), name)(*args)


if __name__ == "__main__":
    main(sys.argv[1:])
