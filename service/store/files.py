"""The file store: uploads, organisations' regions and run results under ``<data_dir>/files``.

Paths are built from ids the service generated, never from client file names. Writes are atomic (a temporary
folder renamed into place; see :func:`service.plans.outputs.atomic_dir`), so a crashed run leaves nothing visible;
single files go through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def _part(value: str) -> str:
        if not _SAFE.match(value):
            raise ValueError(f"unsafe path component {value!r}")
        return value

    def regions_dir(self, org_id: str) -> Path:
        """The folder holding an organisation's regions (``service.store.regions`` layout, one folder per name)."""
        return self.root / "orgs" / self._part(org_id) / "regions"

    def run_dir(self, org_id: str, run_id: str) -> Path:
        return self.root / "orgs" / self._part(org_id) / "runs" / self._part(run_id)

    def upload_dir(self, upload_id: str) -> Path:
        path = self.root / "uploads" / self._part(upload_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, path: Path) -> None:
        if path.resolve().is_relative_to(self.root.resolve()) and path.exists():
            shutil.rmtree(path, ignore_errors=True)


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it renamed into place, so that a
    reader never sees half a file; the file is readable by all, as results are for sharing."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(name, 0o644)  # mkstemp makes it private
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return path
