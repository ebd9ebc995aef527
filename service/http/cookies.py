"""Cookies the service sets: how they are written, and cookies set by code that has no answer
in hand (a dependency renewing the web session) through the request's state.

Every cookie of the web login is ``HttpOnly`` (scripts never read it), ``SameSite=Lax`` (not
sent with cross-site POSTs, iframes or images; sent when following a link to the map), and
``Secure`` when the request came over HTTPS (``scope["scheme"]``: a proxy's
``X-Forwarded-Proto`` counts only from ``CITYGRID_TRUSTED_PROXIES``).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PENDING_KEY = "set_cookies"  # in the request's state: Set-Cookie values for the answer


def is_https(scope: Scope) -> bool:
    """Whether the request came over HTTPS (as the server, or a trusted proxy, says)."""
    return scope.get("scheme") in ("https", "wss")


def cookie_header(
    scope: Scope,
    name: str,
    value: str,
    max_age: int | None,
    *,
    http_only: bool = True,
    path: str = "/",
    same_site: str = "lax",
) -> str:
    """A ``Set-Cookie`` value (``max_age`` 0 deletes the cookie)."""
    response = Response()
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=is_https(scope),
        httponly=http_only,
        samesite=same_site,  # type: ignore[arg-type]
    )
    return response.headers["set-cookie"]


def set_cookie_later(request: Request, header: str) -> None:
    """Have :class:`PendingCookies` add ``Set-Cookie: header`` to this request's answer."""
    pending = request.scope.setdefault("state", {}).setdefault(PENDING_KEY, [])
    pending.append(header)


class PendingCookies:
    """Adds the cookies queued with :func:`set_cookie_later` to the answer, whatever answers
    (the route, an error handler, a page's redirect)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; add the queued cookies to its answer's headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                pending = scope.get("state", {}).get(PENDING_KEY) or []
                if pending:
                    headers = MutableHeaders(scope=message)
                    for header in pending:
                        headers.append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_cookies)
