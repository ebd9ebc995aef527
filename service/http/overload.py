"""Admission control: a bounded amount of work inside each server process.

Without it a burst beyond what the cores serve piles requests into the thread pool, where they
wait for database connections held by requests that wait for a thread to finish their answer:
the service locks up long after the burst. Here at most ``limit`` requests are inside the app;
up to ``queue`` more wait (first come, first served) at most ``wait_s`` seconds for a place, and
everything beyond is answered at once with 503 and ``Retry-After``. With the thread and database
pools sized above ``limit`` (see ``ServerSettings``), an admitted request always finds a thread
and a connection, so the service keeps answering during overload and is back to normal as soon
as the queue drains (at most ``wait_s`` after a burst).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import get_route_path

from service.http.errors import ErrorShapes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Liveness probes must answer while the service sheds load, or an orchestrator would restart
# a process that is merely busy.
EXEMPT_PATHS = frozenset({"/healthz"})


class AdmissionControl:
    """Pure ASGI middleware: ``limit`` requests at once, ``queue`` waiting, the rest 503.

    Runs on the event loop only, so its counters need no lock.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        queue: int,
        wait_s: float,
        shapes: ErrorShapes | None = None,
        retry_after_s: int = 1,
    ) -> None:
        self.app = app
        self.shapes = shapes or ErrorShapes()
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.active = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.shed = 0  # answered 503 since start (for logs and tests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit, queue or refuse the request."""
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            self.shed += 1
            await self._busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _admit(self) -> bool:
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return True
        if len(self.waiting) >= self.queue:
            return False
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(place)
        try:
            await asyncio.wait_for(asyncio.shield(place), self.wait_s)
        except TimeoutError:
            return self._settle(place)  # handed over at the last moment: use it
        except asyncio.CancelledError:
            if self._settle(place):
                self._release()  # pass on the place this request can no longer use
            raise
        return True  # a finishing request handed its place over (``active`` unchanged)

    def _settle(self, place: asyncio.Future[None]) -> bool:
        """Whether a waiter that stops waiting holds a place; if not, it leaves the queue."""
        if place.done() and not place.cancelled():
            return True
        place.cancel()
        try:
            self.waiting.remove(place)
        except ValueError:
            pass
        return False

    def _release(self) -> None:
        while self.waiting:
            place = self.waiting.popleft()
            if not place.done():
                place.set_result(None)  # hand the place over: ``active`` stays the same
                return
        self.active -= 1

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"the service is busy ({self.limit} requests in progress, {len(self.waiting)} "
            f"waiting); retry after {self.retry_after_s} s"
        )
        response = self.shapes.response(
            get_route_path(scope),
            503,
            {"detail": message},
            {"Retry-After": str(self.retry_after_s)},
        )
        await response(scope, receive, send)
