"""CSRF protection of cookie-authenticated writes: the double-submit cookie of starlette-csrf.

A browser sends the session cookie with any request to the service, even one a hostile site
makes it send; such a request cannot read the service's cookies, though. So every write (any
method but GET, HEAD, OPTIONS, TRACE) that carries the web session's cookies must also carry
the value of the ``csrftoken`` cookie — signed by the service (itsdangerous, as starlette-csrf
makes and checks it) — in the ``X-CSRFToken`` header (scripts) or the ``csrftoken`` form field
(the pages' forms). Without it the answer is 403 and nothing runs.

Requests that say who they are with ``Authorization`` or ``X-API-Key`` are not checked: a
hostile page cannot make a browser add those headers, and API clients keep no cookies. The
login form is checked although it carries no session yet, so a hostile page cannot log a
browser in under another account (login CSRF).

starlette-csrf reads the token from a header only and makes the cookie as the answer leaves;
:class:`CsrfGuard` also reads the pages' form field (from a body of at most 64 KiB, replayed
to the app) and makes the token before the app runs, so a page can put it in its forms
(:func:`csrf_token`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from itsdangerous import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette_csrf.middleware import CSRFMiddleware

from service.http.cookies import cookie_header

COOKIE = "csrftoken"
HEADER = "x-csrftoken"
FORM_FIELD = "csrftoken"
TOKEN_KEY = "csrf_token"  # in the request's state: the token the pages put in their forms
_NEW_KEY = "csrf_new"  # in the request's state: a token made for this answer's cookie
MAX_FORM_BYTES = 64 * 1024
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def csrf_token(request: Request) -> str:
    """The CSRF token for this request's forms (the cookie's, or the one being set)."""
    return str(request.scope.get("state", {}).get(TOKEN_KEY, ""))


class CsrfGuard(CSRFMiddleware):
    """starlette-csrf's middleware, checking the writes of cookie-authenticated requests.

    ``session_cookies`` are the cookies that authenticate (their presence makes a write
    subject to the check); ``always`` are paths whose writes are checked even without them
    (the login form); ``exempt`` are path patterns never checked. ``refused(request)`` makes
    the 403 answer (JSON by default; the pages answer HTML).
    """

    def __init__(
        self,
        app: ASGIApp,
        secret: str,
        *,
        session_cookies: Iterable[str],
        always: Iterable[str] = (),
        exempt: Iterable[str] = (),
        refused: Callable[[Request], Response] | None = None,
    ) -> None:
        super().__init__(
            app,
            secret,
            exempt_urls=[re.compile(p) for p in exempt],
            sensitive_cookies=set(session_cookies),
            cookie_name=COOKIE,
            header_name=HEADER,
            cookie_samesite="lax",
        )
        self.always = frozenset(always)
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request if it must be; give the answer a token cookie if it has none."""
        if scope["type"] != "http" or _says_who(scope):
            await self.app(scope, receive, send)  # token or key: no cookie involved
            return
        request = Request(scope)
        cookie = request.cookies.get(self.cookie_name)
        state = scope.setdefault("state", {})
        if cookie is not None and self._valid(cookie):
            state[TOKEN_KEY] = cookie
        else:
            cookie = None
            state[TOKEN_KEY] = state[_NEW_KEY] = self._generate_csrf_token()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and _NEW_KEY in state:
                # readable by the pages' scripts (double submit); Lax like the session's, so
                # following a link from elsewhere does not replace it under an open form
                header = cookie_header(
                    scope, self.cookie_name, state[_NEW_KEY], None, http_only=False
                )
                MutableHeaders(scope=message).append("set-cookie", header)
            await send(message)

        if self._checked(request):
            submitted = request.headers.get(self.header_name)
            if not submitted and _is_form(request):
                submitted, receive = await _form_token(receive)
            if not cookie or not submitted or not self._csrf_tokens_match(cookie, submitted):
                # refused with a fresh token cookie if it had none: the form shown next works
                await self._get_error_response(request)(scope, receive, send_with_cookie)
                return
        await self.app(scope, receive, send_with_cookie)

    def _checked(self, request: Request) -> bool:
        if request.method in _SAFE:
            return False
        if get_route_path(request.scope) in self.always:
            return True
        return not self._url_is_exempt(request.url) and self._has_sensitive_cookies(request.cookies)

    def _valid(self, token: str) -> bool:
        try:
            self.serializer.loads(token)
        except BadSignature:
            return False
        return True

    def _get_error_response(self, request: Request) -> Response:
        if self.refused is not None:
            return self.refused(request)
        return refused_json(request)


def refused_json(request: Request) -> Response:
    """The 403 of a write without its CSRF token, in the usual error shape."""
    body: dict[str, Any] = {
        "detail": "this write is authenticated by the session cookie and needs the CSRF "
        f"token: send the value of the {COOKIE} cookie in the X-CSRFToken header (or the "
        f"{FORM_FIELD} form field), or authenticate with a bearer token or an API key",
        "field": HEADER,
    }
    return JSONResponse(body, status_code=403)


def refused_html(page: str) -> Response:
    """A 403 HTML answer (for forms)."""
    return HTMLResponse(page, status_code=403)


def _says_who(scope: Scope) -> bool:
    return any(name in _CREDENTIAL_HEADERS for name, _ in scope.get("headers", ()))


def _is_form(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


async def _form_token(receive: Receive) -> tuple[str | None, Receive]:
    """The form's token, and a ``receive`` that replays the body to the app. A form longer
    than :data:`MAX_FORM_BYTES` has no token (the pages' forms are a few hundred bytes)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > MAX_FORM_BYTES or not message.get("more_body", False):
            break
    token = None
    if size <= MAX_FORM_BYTES:
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            if key == FORM_FIELD:
                token = value
                break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return token, replay
