"""Real server processes for tests that need one: ``citygrid serve`` on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Poll until ``condition`` holds (something asynchronous), or give up after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _spawn(env: dict[str, str], log: object, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``citygrid serve`` in a process group of its own (so that all of it can be signalled)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
        + ["--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: _up(base) or proc.poll() is not None, 60) or proc.poll() is not None:
        _kill_group(proc)
        raise RuntimeError("server did not start")
    return proc, base


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # nothing of the group is left
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@contextmanager
def serve(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[str]:
    """``citygrid serve`` with ``env`` on top of this process's environment; yields its URL.

    The log goes to ``log_path`` (a pipe nobody reads would block the server once full) and is
    printed when the server stops, so pytest shows it for a failed test.
    """
    with log_path.open("w+") as log:
        proc, base = _spawn(env, log, workers)
        try:
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.seek(0)
            print(log.read()[-20_000:])


@dataclass
class Killable:
    """A running ``citygrid serve`` (all its processes) that a test may kill at any moment."""

    proc: subprocess.Popen[bytes]
    base: str

    def kill(self) -> None:
        """SIGKILL to every process of the server at once: no shutdown code runs anywhere."""
        _kill_group(self.proc)


@contextmanager
def killable(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[Killable]:
    """Like :func:`serve`, but the test holds the process group and may ``kill()`` it; it is
    killed on the way out if it still runs. The log is appended to ``log_path``."""
    with log_path.open("a+") as log:
        proc, base = _spawn(env, log, workers)
        server = Killable(proc, base)
        try:
            yield server
        finally:
            server.kill()
            log.seek(0)
            print(log.read()[-20_000:])


@contextmanager
def in_thread(app: object) -> Iterator[str]:
    """``app`` served by uvicorn on a free port in a thread of this process (so it shares the
    test's database transaction); yields its URL. The app should admit one request at a time
    (``CITYGRID_MAX_ACTIVE_REQUESTS=1``): its requests take turns on the test's connection."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not wait_for(lambda: server.started, 20):
        raise RuntimeError("test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
