"""Content hashes and atomic writes for on-disk caches."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Bump when a cached object's format or meaning changes, so old entries are never read.
CACHE_VERSION = 1


def file_digest(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def params_digest(*parts: Any) -> str:
    """Return a short stable hash of JSON-serialisable parts (file digests, parameters)."""
    payload = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:32]


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_pickle(obj: Any, target: Path) -> None:
    """Pickle ``obj`` to ``target`` atomically."""
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def read_pickle(path: Path) -> Any:
    """Read a pickle written by :func:`write_pickle` (only ever our own cache files)."""
    with open(path, "rb") as f:
        return pickle.load(f)
