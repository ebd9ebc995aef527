"""Webhook tests' helpers: a real HTTP receiver (``http.server`` in a thread on a free port of
127.0.0.1, recording every request and answering as a test tells it to: a list of status codes,
a pause, or hanging until the test ends), and settings that let webhooks reach it quickly."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from service.settings import AppSettings, NotifySettings


def quick(settings: AppSettings, **changes: object) -> AppSettings:
    """``settings`` whose webhooks may reach 127.0.0.1 (the test receiver), with tiny backoff
    and timeout so that retries and hangs take a moment."""
    values: dict[str, object] = {
        "allow_hosts": "127.0.0.1",
        "base_delay_s": 0.001,
        "max_delay_s": 0.005,
        "timeout_s": 0.5,
        "max_attempts": 4,
        **changes,
    }
    return dataclasses.replace(settings, notify=NotifySettings(_env_file=None, **values))  # type: ignore[arg-type]


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got, and how it answers next."""

    url: str
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    hang: bool = False  # never answer (until the test ends)
    pause_s: float = 0.0  # answer after this pause (lets two deliverers overlap)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def receiver(**behaviour: object) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 until the ``with`` ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}", **behaviour)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
            if state.hang:
                state.released.wait(30)  # longer than any deliverer's timeout
                return
            if state.pause_s:
                state.released.wait(state.pause_s)
            status = state.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet tests

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


class SmsGateway:
    """A gateway for tests: keeps what it is asked to send (a real gateway would call the
    operator's SMS or WeChat API here)."""

    name = "sms"
    sent: list[object] = []

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings

    def check(self, address: str) -> str:
        from service.errors import InvalidInput

        if not (address.isdigit() and len(address) == 11):
            raise InvalidInput("an SMS address is an 11-digit mobile number", field="url")
        return address

    def send(self, message: object) -> object:
        from service.notify.transports import Result

        SmsGateway.sent.append(message)
        return Result(True, None, None, 0.0)


def sms_gateway(settings: AppSettings) -> SmsGateway:
    """The factory ``CITYGRID_NOTIFY_GATEWAY=tests.helpers.webhooks:sms_gateway`` names."""
    return SmsGateway(settings)
