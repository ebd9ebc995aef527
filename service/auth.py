"""Authentication and permissions of requests: who is asking, and may they.

Every route declares what it needs with :func:`Allow` (a permission, possibly public by a
setting) or :func:`Anyone` (no permission: the login page, the health probe, static files);
``tests/service/test_permissions.py`` fails for a route that declares neither.

A request names its caller with ``Authorization: Bearer <access token>``, ``X-API-Key: <key>``
(system clients), or the session cookie of the web pages. Saying nothing makes it anonymous:
public reads only. A missing or invalid credential is 401 (who are you); a valid one without
the permission or the scope is 403 naming what is missing.

The web pages' login is two cookies (both ``HttpOnly``): :data:`SESSION_COOKIE`, a short-lived
access token (``CITYGRID_ACCESS_TOKEN_MINUTES``), and :data:`RENEWAL_COOKIE`, which mints the
next access token when that one has run out, until the working day of the login ends
(``CITYGRID_SESSION_HOURS``) or the user logs out. A browser whose cookies no longer name
anyone (expired, logged out elsewhere, account disabled) is anonymous and its stale cookies
are deleted, so the pages send it to the login form instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from service.accounts.authenticate import Authenticator
from service.accounts.credentials import digest
from service.accounts.principal import ANONYMOUS, Principal
from service.errors import Forbidden, Unauthenticated
from service.http.cookies import cookie_header, set_cookie_later
from service.settings import AppSettings

SESSION_COOKIE = "citygrid_session"
RENEWAL_COOKIE = "citygrid_renewal"
OPEN311_PREFIX = "/open311"
API_KEY_HEADER = "x-api-key"


def authenticator(request: Request) -> Authenticator:
    """The app's authenticator (made on first use; it caches principals per process)."""
    auth = getattr(request.app.state, "authenticator", None)
    if auth is None:
        auth = Authenticator(
            request.app.state.sessions,
            request.app.state.settings,
            getattr(request.app.state, "changes", None),
        )
        request.app.state.authenticator = auth
    return auth


async def current_principal(request: Request) -> Principal:
    """Who is asking (anonymous when the request says nothing); once per request."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    principal = await _resolve(request)
    request.state.principal = principal
    return principal


async def _resolve(request: Request) -> Principal:
    auth = authenticator(request)
    header = request.headers.get("authorization", "")
    key = request.headers.get(API_KEY_HEADER)
    cookie = request.cookies.get(SESSION_COOKIE)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send Authorization: Bearer <access token>")
        return await _user(auth, auth.claims(token.strip()))
    if key:
        return await _key(auth, key.strip())
    if cookie or request.cookies.get(RENEWAL_COOKIE):
        return await _web_user(request, auth)
    if request.url.path.startswith(OPEN311_PREFIX + "/"):
        # Open311 GeoReport v2 sends its key as the api_key argument (URL or POST body)
        secret = request.query_params.get("api_key") or await _posted_api_key(request)
        if secret:
            return await _key(auth, secret.strip())
    return ANONYMOUS


async def _web_user(request: Request, auth: Authenticator) -> Principal:
    """The user of the web session's cookies: the access token's while it is valid, else a
    renewed one (whose cookie goes out with the answer); anonymous when neither works."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            claims = auth.claims(cookie)
        except Unauthenticated:
            pass  # ran out: renew it
        else:
            try:
                return await _user(auth, claims)
            except Unauthenticated:
                forget_web_session(request)  # the account is gone or disabled
                return ANONYMOUS
    renewal = request.cookies.get(RENEWAL_COOKIE)
    if renewal:
        try:
            principal, token, seconds = await run_in_threadpool(auth.renew, renewal)
        except Unauthenticated:
            forget_web_session(request)
            return ANONYMOUS
        set_cookie_later(request, cookie_header(request.scope, SESSION_COOKIE, token, seconds))
        return principal
    forget_web_session(request)
    return ANONYMOUS


def forget_web_session(request: Request) -> None:
    """Delete the web session's cookies with this request's answer."""
    for name in (SESSION_COOKIE, RENEWAL_COOKIE):
        if name in request.cookies:
            set_cookie_later(request, cookie_header(request.scope, name, "", 0))


async def _posted_api_key(request: Request) -> str | None:
    if request.method != "POST":
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get("api_key")
        return value if isinstance(value, str) else None
    if media == "application/json":
        body = await request.json()
        value = body.get("api_key") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None
    return None


async def _user(auth: Authenticator, claims: dict[str, object]) -> Principal:
    user_id = int(str(claims["sub"]))
    principal = auth.cached(f"user:{user_id}")
    if principal is None:
        principal = await run_in_threadpool(auth.user, user_id)
    return principal


async def _key(auth: Authenticator, secret: str) -> Principal:
    principal = auth.cached(f"key:{digest(secret)}")
    if principal is None:
        return await run_in_threadpool(auth.key, secret)
    if principal.id is not None and auth.mark_due(principal.id):
        await run_in_threadpool(auth.mark, principal.id)
    return principal


class Permission:
    """A route's requirement: any one of ``permissions`` (none: anyone), or nothing at all
    when ``public(settings)`` says so."""

    def __init__(
        self, permissions: tuple[str, ...], public: Callable[[AppSettings], bool] | None = None
    ) -> None:
        self.permissions = permissions
        self.public = public

    async def __call__(self, request: Request) -> Principal:
        """The caller, once it may do this (401 for nobody, 403 for someone not allowed)."""
        principal = await current_principal(request)
        if not self.permissions:
            return principal
        if self.public is not None and self.public(request.app.state.settings):
            return principal
        if any(principal.can(p) for p in self.permissions):
            return principal
        wanted = " or ".join(self.permissions)
        if principal is ANONYMOUS:
            raise Unauthenticated(
                f"log in or send a token or an API key: this needs the permission {wanted}",
                field="authorization",
                permission=wanted,
            )
        if len(self.permissions) == 1:
            principal.require(self.permissions[0])  # 403 naming it, with its description
        raise Forbidden(
            f"{principal.label} may not do this: it needs one of the permissions {wanted}",
            field="permission",
            permission=wanted,
        )


def Allow(  # noqa: N802 - reads as a declaration in a route's signature
    *permissions: str, public: Callable[[AppSettings], bool] | None = None
) -> Any:
    """``Depends`` on one of ``permissions`` (none needed when ``public(settings)`` holds)."""
    if not permissions:
        raise ValueError("name the permission; use Anyone() for routes open to anyone")
    return Depends(Permission(permissions, public))


def Anyone() -> Any:  # noqa: N802
    """``Depends`` on nothing but knowing the caller: the route is open to anyone."""
    return Depends(Permission(()))


def public_grids(settings: AppSettings) -> bool:
    """Whether this city publishes its grid boundaries."""
    return settings.auth.public_grids


def public_reports(settings: AppSettings) -> bool:
    """Whether citizens may report without an API key (Open311)."""
    return settings.auth.public_reports
