"""What a run depends on, hashed: the scenario, its region's source files, the solver settings and the versions.

A scenario's *inputs* are a small JSON document of named parts, each a SHA-256:

- ``scenario``: the canonical JSON of the scenario (sorted keys, no whitespace), so an edit that changes nothing
  (a reordered mapping) changes nothing;
- ``sources``: per source file of the region (``osm``, ``population``, ``population_table``, ``branches``,
  ``settlements``, ``speeds``) the SHA-256 of its bytes, read now (not the digest recorded at import);
- ``solver``: the solve section (time limit, seed) and the worker count;
- ``versions``: branchnet, OR-Tools, SciPy (HiGHS), NumPy and Python.

The *fingerprint* is the SHA-256 of the canonical inputs. Keys must survive between processes and machines, so
they are built here from content, never with ``dask.tokenize`` or ``hash()``. File digests are memoised by
(path, size, modification time) in a small JSON file, so a no-op batch re-reads no large file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from geodata import _cache

SOURCE_KEYS = ("osm", "population", "population_table", "branches", "settlements", "speeds")
_PACKAGES = {"branchnet": "branchnet", "ortools": "ortools", "scipy (HiGHS)": "scipy", "numpy": "numpy"}


def canonical(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> dict[str, str]:
    """The versions a plan depends on (a new OR-Tools may change a plan, so it recomputes the scenario)."""
    out = {}
    for label, dist in _PACKAGES.items():
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[label] = "not installed"
    out["python"] = platform.python_version()
    return out


@dataclass
class DigestCache:
    """File digests memoised by (path, size, mtime): a file is hashed again only when it changed on disk."""

    path: Path
    entries: dict[str, list[Any]] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def open(cls, path: Path) -> DigestCache:
        try:
            entries = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            entries = {}  # a damaged memo costs a re-hash, nothing else
        return cls(path, entries if isinstance(entries, dict) else {})

    def digest(self, file: str | Path) -> str:
        """The SHA-256 of ``file``'s bytes (``FileNotFoundError`` when it vanished)."""
        real = str(Path(file).resolve())
        st = os.stat(real)
        stamp = [st.st_size, st.st_mtime_ns]
        hit = self.entries.get(real)
        if hit and hit[:2] == stamp:
            return str(hit[2])
        value = _cache.file_digest(real)
        self.entries[real] = [*stamp, value]
        self.dirty = True
        return value

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".digests.", dir=self.path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(self.entries, f)
        os.replace(tmp, self.path)
        self.dirty = False


class SourceVanishedError(FileNotFoundError):
    """A region's source file is no longer where it was imported from."""


def source_digests(meta: dict[str, Any], digests: DigestCache) -> dict[str, str]:
    """Digests of a region's source files, read now (``SourceVanishedError`` naming the file and the region)."""
    sources = meta.get("sources", {})
    out = {}
    for key in SOURCE_KEYS:
        path = sources.get(key)
        if not path:
            continue
        try:
            out[key] = digests.digest(path)
        except FileNotFoundError:
            raise SourceVanishedError(
                f"region {meta.get('name')!r}: its {key} source file {path} has vanished; restore it or re-import "
                "the region"
            ) from None
    return out


def scenario_inputs(body: dict[str, Any], sources: dict[str, str], workers: int) -> dict[str, Any]:
    """The inputs of one scenario run (module docstring)."""
    solve = body.get("solve") or {}
    return {
        "scenario": sha256(canonical(body)),
        "sources": dict(sorted(sources.items())),
        "solver": sha256(canonical({"solve": solve, "workers": workers})),
        "versions": versions(),
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    """The SHA-256 of a run's inputs (the scenario's version number is a label, not an input)."""
    return sha256(canonical({k: v for k, v in inputs.items() if k != "scenario_version"}))


def run_inputs(body: dict[str, Any], sources: dict[str, str], workers: int,
               version: int | None) -> tuple[dict[str, Any], str]:  # fmt: skip
    """A run's inputs (with the scenario's version for the report) and their fingerprint."""
    inputs = {**scenario_inputs(body, sources, workers), "scenario_version": version}
    return inputs, fingerprint(inputs)


def recorded_sources(meta: dict[str, Any]) -> dict[str, str]:
    """The digests of a region's source files recorded at its import (what a run of it was planned from)."""
    return {k: str(v) for k, v in (meta.get("digests") or {}).items() if k in SOURCE_KEYS}


def reasons(old: dict[str, Any] | None, new: dict[str, Any], *, old_version: int | None = None,
            new_version: int | None = None) -> list[str]:  # fmt: skip
    """Why a scenario must be recomputed: which inputs differ from those of its last succeeded run."""
    if old is None:
        return ["never computed with a fingerprint (no succeeded run records its inputs)"]
    out = []
    if old.get("scenario") != new["scenario"]:
        edit = f" (version {old_version} -> {new_version})" if old_version and new_version else ""
        out.append(f"scenario edited{edit}")
    old_sources, new_sources = old.get("sources", {}), new["sources"]
    for key in sorted(set(old_sources) | set(new_sources)):
        if old_sources.get(key) != new_sources.get(key):
            out.append(f"{key} source file changed" if key in old_sources and key in new_sources
                       else f"{key} source file {'added' if key in new_sources else 'removed'}")  # fmt: skip
    if old.get("solver") != new["solver"]:
        out.append("solver settings changed")
    for name in sorted(set(old.get("versions", {})) | set(new["versions"])):
        a, b = old.get("versions", {}).get(name), new["versions"].get(name)
        if a != b:
            out.append(f"{name} {a} -> {b}")
    return out or ["inputs differ"]


def region_changed(meta: dict[str, Any], now: dict[str, str]) -> list[str]:
    """The source files of a region whose bytes differ from the digests recorded when it was imported."""
    recorded = meta.get("digests", {})
    return sorted(k for k in now if recorded.get(k) != now[k])
