"""How a message leaves: the :class:`Transport` interface, the webhook (the only built-in
transport), and the optional SMS/WeChat gateway (``CITYGRID_NOTIFY_GATEWAY``, off by default).

A gateway is any object with a ``name``, a ``check`` of the address a subscriber gives
(a phone number, a WeChat openid…) and a ``send`` of one :class:`Message`; the setting names a
factory ``module:function`` that receives the settings and returns it. Subscriptions then name
that transport and an address instead of a URL.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx2 as httpx

from service.notify.safety import UnsafeAddress, check_url, resolve_safe
from service.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)
from service.settings import AppSettings

USER_AGENT = "citygrid-webhooks/1"


@dataclass(frozen=True)
class Message:
    """One delivery to send: the JSON body and what identifies and signs it."""

    delivery_id: int
    event_id: int | None  # None for a test ping
    kind: str
    address: str  # the webhook URL (or the gateway's address)
    secret: str
    body: bytes


@dataclass(frozen=True)
class Result:
    """What one attempt came to (``status_code`` when the receiver answered)."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


@runtime_checkable
class Transport(Protocol):
    """A way to send messages (the webhook, or an SMS/WeChat gateway)."""

    name: str

    def check(self, address: str) -> str:
        """The address as stored, or ``InvalidInput`` naming ``url`` (at subscription)."""
        ...

    def send(self, message: Message) -> Result:
        """Send ``message`` once; never raises for a failed send (the result says why)."""
        ...


class WebhookTransport:
    """Signed HTTP POSTs of the JSON body, with a bounded timeout and no redirects, to the
    addresses the URL's host resolves to at the moment of sending (checked again then)."""

    name = "webhook"

    def __init__(self, settings: AppSettings) -> None:
        self.allow = settings.notify.allowed()
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.notify.timeout_s),
            follow_redirects=False,  # a redirect could lead anywhere, the private net included
            trust_env=False,  # no proxy from the environment: the address checked is the one used
        )

    def check(self, address: str) -> str:
        """The URL, refused unless http(s) to a public (or allowed) address."""
        return check_url(address, self.allow).url

    def send(self, message: Message) -> Result:
        """POST the body, signed; 2xx is delivered, anything else (an answer, a refused
        address, a timeout, a broken connection) a failed attempt."""
        started = time.perf_counter()

        def result(ok: bool, status: int | None, error: str | None) -> Result:
            return Result(ok, status, error, round((time.perf_counter() - started) * 1000, 1))

        try:
            target = resolve_safe(message.address, self.allow)
        except UnsafeAddress as exc:
            return result(False, None, f"refused: {exc}")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: message.kind,
            DELIVERY_HEADER: str(message.delivery_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(message.secret, timestamp, message.body),
        }
        request = self._pinned(target, message.body, headers)
        try:
            response = self.client.send(request, stream=True)
            response.close()  # the answer's body is not needed: never read a large one
        except httpx.TimeoutException as exc:
            return result(False, None, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return result(False, None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return result(True, response.status_code, None)
        return result(False, response.status_code, f"HTTP {response.status_code}")

    def _pinned(self, target, body: bytes, headers: dict[str, str]) -> httpx.Request:  # noqa: ANN001
        """A request to the first checked address with the URL's Host (and TLS name), so that
        a new DNS answer between the check and the connection changes nothing."""
        url = httpx.URL(target.url)
        address = target.addresses[0]
        host = f"[{address}]" if ":" in address else address
        default = 443 if target.scheme == "https" else 80
        headers["Host"] = target.host if target.port == default else f"{target.host}:{target.port}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        return self.client.build_request(
            "POST",
            url.copy_with(host=host.strip("[]")),
            content=body,
            headers=headers,
            extensions=extensions,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def transports(settings: AppSettings) -> dict[str, Transport]:
    """The transports of this deployment: the webhook, and the gateway when configured."""
    found: dict[str, Transport] = {"webhook": WebhookTransport(settings)}
    if settings.notify.gateway:
        gateway = load_gateway(settings.notify.gateway, settings)
        found[gateway.name] = gateway
    return found


def load_gateway(spec: str, settings: AppSettings) -> Transport:
    """The gateway made by the factory ``module:function`` named in ``spec``."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(
            f"CITYGRID_NOTIFY_GATEWAY {spec!r} must look like 'package.module:factory'"
        )
    factory = getattr(importlib.import_module(module), name)
    gateway = factory(settings)
    if not isinstance(gateway, Transport):
        raise ValueError(f"{spec} made {gateway!r}, which has no name, check and send")
    return gateway
