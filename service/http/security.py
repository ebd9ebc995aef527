"""Security headers on every answer, and a per-request nonce for the pages' inline scripts.

One pure ASGI middleware (:class:`SecurityHeaders`) sets, on every answer — JSON, pages, tiles,
static files, errors, even the 503 of admission control:

- ``Content-Security-Policy``: scripts only from the service itself or inline blocks carrying
  this request's nonce (the pages add it: :func:`csp_nonce`); data only from the service
  (``connect-src 'self'``); images from the service, ``data:`` URIs and the configured base
  map's tile hosts; no plugins, no ``<base>`` elsewhere, forms post only here, and no framing
  (``frame-ancestors 'none'``). Styles allow ``'unsafe-inline'``: folium writes the map's
  ``<style>`` blocks and the legends colour their swatches with ``style`` attributes, and
  styles cannot run code.
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers that predate
  ``frame-ancestors``), ``Referrer-Policy: strict-origin-when-cross-origin`` (tile servers
  such as OpenStreetMap's want to know the site, never the page's query).
- ``Strict-Transport-Security`` on answers over HTTPS (``scope["scheme"]``, which a trusted
  proxy may set: see :func:`trusted_proxies`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_KEY = "csp_nonce"  # in the request's state (scope["state"])


def csp_nonce(request: Request) -> str:
    """This request's script nonce (set by :class:`SecurityHeaders`; empty without it)."""
    return str(request.scope.get("state", {}).get(NONCE_KEY, ""))


def content_security_policy(nonce: str, img_sources: Iterable[str] = ()) -> str:
    """The policy of one answer whose inline scripts carry ``nonce``."""
    images = " ".join(["'self'", "data:", *img_sources])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Sets the security headers on every HTTP answer (see the module's docstring)."""

    def __init__(self, app: ASGIApp, img_sources: Sequence[str] = ()) -> None:
        self.app = app
        self.img_sources = tuple(img_sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Make the nonce, run the app, add the headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})[NONCE_KEY] = nonce
        policy = content_security_policy(nonce, self.img_sources)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
                if https:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def trusted_proxies(value: str) -> list[str]:
    """Addresses whose ``X-Forwarded-Proto``/``X-Forwarded-For`` are believed (comma-separated
    setting; ``*`` is anyone, empty is no one)."""
    return [part.strip() for part in value.split(",") if part.strip()]
