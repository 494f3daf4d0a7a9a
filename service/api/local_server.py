"""``branchnet serve`` in a child process on a free loopback port: for the API benchmark and end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def branchnet_command() -> str:
    """The ``branchnet`` command installed beside this Python."""
    exe = Path(sys.executable).parent / "branchnet"
    if not exe.is_file():
        raise RuntimeError(f"the branchnet command is not installed beside {sys.executable} (make setup)")
    return str(exe)


@dataclass
class LocalServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def local_server(settings: dict[str, str], *, cwd: Path, log: Path, timeout_s: float = 60.0) -> Iterator[LocalServer]:
    """Start ``branchnet serve`` with the ``BRANCHNET_*`` ``settings`` (the caller's own are dropped), wait until
    ``/healthz`` answers, and stop it (SIGTERM, then SIGKILL) on exit; RuntimeError with its log if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHNET_")} | settings
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([branchnet_command(), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    server = LocalServer(f"http://127.0.0.1:{port}", env, proc, log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"branchnet serve exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"branchnet serve did not answer /healthz in {timeout_s:g} s:\n"
                                   f"{log.read_text(errors='replace')}")  # fmt: skip
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
