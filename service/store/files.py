"""The file store: uploads, organisations' regions and run results under ``<data_dir>/files``.

Paths are built from ids the service generated, never from client file names. Writes are atomic (a temporary
folder renamed into place; see :func:`service.plans.outputs.atomic_dir`), so a crashed run leaves nothing visible;
single files go through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import uuid
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

    def new_upload_dir(self) -> Path:
        """A fresh folder for one upload, named ``<host>-<pid>-<random>`` after the process receiving it, so that
        :meth:`sweep_uploads` knows when its owner is gone."""
        host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:24]
        return self.upload_dir(f"{host}-{os.getpid()}-{uuid.uuid4().hex[:16]}")

    def sweep_uploads(self, max_age_s: float = 6 * 3600.0) -> list[Path]:
        """Remove the upload folders a killed server left behind: those of a process of this host that is no longer
        alive, and any untouched for ``max_age_s`` (another host's). An upload in progress is never removed: its
        process lives and it is written to. Returns what was removed."""
        root = self.root / "uploads"
        if not root.is_dir():
            return []
        host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:24]
        removed = []
        for folder in root.iterdir():
            owner, _, rest = folder.name.partition("-")
            pid_text = rest.partition("-")[0]
            dead = owner == host and pid_text.isdigit() and not _alive(int(pid_text))
            try:
                newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
            except OSError:
                continue
            if dead or time.time() - newest > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def remove(self, path: Path) -> None:
        if path.resolve().is_relative_to(self.root.resolve()) and path.exists():
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
