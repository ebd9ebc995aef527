"""Open-loop HTTP load: requests leave on a fixed schedule whatever the server does.

A closed loop (send, wait, send) slows down with the server and hides its queueing; here request
``i`` is due at ``start + i / rate`` and its latency runs from that scheduled moment to the last
byte of the answer, so time spent queued anywhere counts (no coordinated omission).

The client is a small HTTP/1.1 keep-alive client on asyncio streams: cheap enough that, on the
same two cores as the server, it costs the server little. Used by ``bench/bench_load.py`` and by
the recovery test in ``tests/service/test_overload.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import numpy as np


@dataclass(frozen=True)
class Request:
    """One request to send: method, path with query, optional body and headers."""

    path: str
    method: str = "GET"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Outcome:
    """What became of one scheduled request."""

    due: float  # seconds after the start of the run
    latency: float  # seconds from ``due`` to the last byte (or to the failure)
    status: int  # HTTP status, 0 when no answer came
    error: str = ""
    retry_after: str | None = None


@dataclass
class Report:
    """All outcomes of a run, with the summaries a bench prints."""

    outcomes: list[Outcome] = field(default_factory=list)

    def statuses(self) -> dict[int, int]:
        """How many answers of each status (0 = no answer)."""
        out: dict[int, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return dict(sorted(out.items()))

    def latencies_ms(self, status: int | None = 200) -> np.ndarray:
        """Latencies in ms of the answers with ``status`` (all answers when None)."""
        return np.array(
            [o.latency * 1000 for o in self.outcomes if status is None or o.status == status]
        )

    def percentile(self, q: float, status: int | None = 200) -> float:
        """The ``q``-th latency percentile in ms (NaN without answers)."""
        ms = self.latencies_ms(status)
        return float(np.percentile(ms, q)) if ms.size else float("nan")

    def summary(self, status: int | None = 200) -> str:
        """``p50 … p99 … max …`` of the answers with ``status``, and the status counts."""
        ms = self.latencies_ms(status)
        if not ms.size:
            return f"no {status} answers; statuses {self.statuses()}"
        p50, p99 = np.percentile(ms, [50, 99])
        return (
            f"p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  max {ms.max():8.1f} ms  "
            f"statuses {self.statuses()}"
        )


class _Client:
    """Keep-alive HTTP/1.1 connections to one host, opened as the load needs them."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.max_connections = max_connections

    async def send(self, req: Request, timeout: float) -> tuple[int, str | None]:
        reused = bool(self.idle)
        try:
            return await self._send_once(req, timeout)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # the server closed an idle keep-alive connection just as we reused it: any
            # HTTP client retries that on a new connection
            return await self._send_once(req, timeout, fresh=True)

    async def _send_once(
        self, req: Request, timeout: float, fresh: bool = False
    ) -> tuple[int, str | None]:
        if self.idle and not fresh:
            reader, writer = self.idle.pop()
        elif self.open >= self.max_connections:
            raise ConnectionError("client connection limit reached")
        else:
            self.open += 1
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except BaseException:
                self.open -= 1
                raise
        try:
            status, retry_after, keep = await asyncio.wait_for(
                self._exchange(reader, writer, req), timeout
            )
        except BaseException:
            self.open -= 1
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            self.open -= 1
            writer.close()
        return status, retry_after

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: Request
    ) -> tuple[int, str | None, bool]:
        head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in req.headers]
        if req.body or req.method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(req.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + req.body)
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers.get("retry-after"), headers.get("connection") != "close"


async def _run(
    base_url: str,
    make: Callable[[int], Request],
    schedule: Sequence[float],
    timeout: float,
    max_connections: int,
) -> Report:
    client = _Client(base_url, max_connections)
    report = Report([Outcome(due, 0.0, 0) for due in schedule])
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(i: int) -> None:
        due = start + schedule[i]
        outcome = report.outcomes[i]
        try:
            outcome.status, outcome.retry_after = await client.send(make(i), timeout)
        except TimeoutError:
            outcome.error = "timeout"
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            outcome.error = type(exc).__name__
        outcome.latency = loop.time() - due

    tasks = []
    for i, offset in enumerate(schedule):
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for reader_writer in client.idle:
        reader_writer[1].close()
    return report


def constant_rate(rate: float, seconds: float) -> list[float]:
    """Send times (s after start) for ``rate`` requests per second during ``seconds``."""
    return [i / rate for i in range(int(rate * seconds))]


def phases(*steps: tuple[float, float]) -> list[float]:
    """Send times for consecutive ``(rate, seconds)`` phases, e.g. a burst then normal load."""
    out: list[float] = []
    t0 = 0.0
    for rate, seconds in steps:
        out += [t0 + t for t in constant_rate(rate, seconds)]
        t0 += seconds
    return out


def run_load(
    base_url: str,
    make: Callable[[int], Request],
    schedule: Sequence[float],
    *,
    timeout: float = 30.0,
    max_connections: int = 4000,
    headers: dict[str, str] | None = None,
) -> Report:
    """Send ``make(i)`` at ``schedule[i]`` seconds after the start; wait for every answer.
    ``headers`` (credentials, say) go with every request."""
    extra = tuple((headers or {}).items())

    def made(i: int) -> Request:
        req = make(i)
        return replace(req, headers=req.headers + extra) if extra else req

    return asyncio.run(_run(base_url, made, schedule, timeout, max_connections))
