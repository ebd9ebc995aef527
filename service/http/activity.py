"""How busy the process's HTTP side is, for background work that should wait its turn.

The start-up warm-up (grid snapshot, grid index, the coverage raster of the whole city: tens of
seconds of CPU on a 30,000-grid city) used to start with the server, in every worker process,
and competed with the first visitors for the CPU and the interpreter lock: the first page after a
restart took 4 s instead of 1.5. It now waits until the process has answered everything and
heard nothing for a while (:meth:`Activity.wait_quiet`).
"""

from __future__ import annotations

import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send


class Activity:
    """Requests in flight and the moment the last one came or went (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.last = time.monotonic()

    def begin(self) -> None:
        """A request came in."""
        with self._lock:
            self.active += 1
            self.last = time.monotonic()

    def end(self) -> None:
        """A request was answered (or given up)."""
        with self._lock:
            self.active -= 1
            self.last = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds without a request in flight (0 while one is)."""
        with self._lock:
            return 0.0 if self.active else time.monotonic() - self.last

    def wait_quiet(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Block until no request has been in flight for ``seconds`` (counted from the
        process's start at the earliest); False when ``stop`` is set first."""
        stop = stop or threading.Event()
        while True:
            quiet = self.quiet_for()
            if quiet >= seconds:
                return True
            if stop.wait(min(max(seconds - quiet, 0.05), 1.0)):
                return False


class ActivityMeter:
    """ASGI middleware counting the HTTP requests in flight into an :class:`Activity`."""

    def __init__(self, app: ASGIApp, activity: Activity) -> None:
        self.app = app
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count an HTTP request from its start to its end, errors included."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.activity.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            self.activity.end()
