"""Helpers shared by the benchmark runners."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The ../shared folder, or None when it is absent (a fresh clone)."""
    path = Path(os.environ.get("BRANCHNET_SHARED_DIR", REPO.parent / "shared"))
    return path if (path / "data").is_dir() else None


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Return the median wall time of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record, default=float), flush=True)
