"""Real server processes for tests that need one: ``citygrid serve`` on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def serve(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[str]:
    """``citygrid serve`` with ``env`` on top of this process's environment; yields its URL.

    The log goes to ``log_path`` (a pipe nobody reads would block the server once full) and is
    printed when the server stops, so pytest shows it for a failed test.
    """
    port = free_port()
    with log_path.open("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
            + ["--workers", str(workers), "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_for(lambda: _up(base), 60):
                raise RuntimeError("server did not start")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)
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
