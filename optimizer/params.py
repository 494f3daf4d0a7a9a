"""Solver parameters shared by every model."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from optimizer.errors import InvalidProblemError


@dataclass(frozen=True)
class SolveParams:
    """How long and how to search.

    Parameters
    ----------
    time_limit_s
        Wall-clock limit for the solve (every solver has one).
    seed
        Random seed; the same inputs and seed give the same plan.
    workers
        Solver threads. Results are deterministic for a fixed seed and worker count.
    gap_tolerance
        Relative gap at which the search may stop and report ``optimal``.
    solution_limit
        Routing only: stop after this many solutions, so the search ends on work rather than on the clock and
        gives the same routes on a busy machine (the time limit stays as a safety net).
    """

    time_limit_s: float = 30.0
    seed: int = 0
    workers: int = 2
    gap_tolerance: float = 1e-6
    solution_limit: int | None = None

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise InvalidProblemError(f"time_limit_s must be positive, not {self.time_limit_s!r}")
        if not 0 <= self.seed < 2**31:
            raise InvalidProblemError(f"seed must be a whole number from 0 to 2**31 - 1, not {self.seed!r}")
        if self.workers < 1:
            raise InvalidProblemError(f"workers must be at least 1, not {self.workers!r}")
        if not 0 <= self.gap_tolerance < 1:
            raise InvalidProblemError(f"gap_tolerance must lie in [0, 1), not {self.gap_tolerance!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> SolveParams:
        """Load parameters from a TOML or YAML file (a table ``[solve]`` or top-level keys)."""
        path = Path(path)
        text = path.read_text()
        data: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
        data = data.get("solve", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidProblemError(f"{path}: unknown solve parameter(s) {unknown}; known are {sorted(known)}")
        return cls(**data)
