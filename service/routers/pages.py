"""The web pages: ``/`` (the dispatcher's map), ``/assessment/rounds`` (cross-scoring rounds),
``/login`` and ``/logout``, ``/docs`` (Swagger UI), ``/static`` (Leaflet, Swagger UI and
the pages' own files) and ``/i18n/{locale}.json`` (the scripts' texts).

Every page speaks Chinese first and English on request (:mod:`service.http.language` picks,
:mod:`layers.i18n` holds the catalogues); JSON errors of the API stay as they are.

The map page is built by :func:`layers.page.dispatcher_page` from plain data read here; the
layers fetch their data from ``/api/heat``, ``/api/hotspots`` and ``/tiles`` in the browser. A
filter that cannot be shown (a date that is no date, an unknown category or grid, a period
longer than the heat layers allow) answers a 4xx HTML page that says why, never an empty map.

Pages are routes of :class:`PageRoute`: someone who is not logged in is sent to
``/login?next=<the page>``, someone logged in without the page's permission gets a 403 page
naming it (in the page's language). Logging in sets the web session's cookies (see
:mod:`service.auth`); the login throttle and lock of the API's login apply (a locked
account's page answers 429).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import get_route_path

from layers.assets import STATIC_DIR, STATIC_URL, SWAGGER_UI, with_nonce
from layers.controls import Account
from layers.i18n import LOCALES, messages, normalize
from layers.login import Lang, forbidden_page, login_page, text
from layers.page import (
    FilterError,
    PageFilter,
    dispatcher_page,
    error_page,
)
from layers.rounds import BAD_PERIOD, LINK_TITLE, RoundsPage, rounds_page
from service.accounts.permissions import describe
from service.accounts.principal import Principal
from service.auth import RENEWAL_COOKIE, SESSION_COOKIE, Allow, Anyone, forget_web_session
from service.deps import AccountsDep, SessionDep, SettingsDep
from service.errors import (
    CitygridError,
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
    status_for,
)
from service.http.bodyguard import GuardedRoute
from service.http.cookies import cookie_header
from service.http.csrf import FORM_FIELD, csrf_token, refused_json
from service.http.language import PageLocale, request_locale, switch_url
from service.http.security import csp_nonce
from service.maps.page import page_options

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


class PageRoute(GuardedRoute):
    """A page: no login sends the browser to the login form (303), a missing permission
    answers the 403 page — where an API route answers JSON 401/403."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the route's handler: refusals become the pages' answers."""
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                forget_web_session(request)
                return RedirectResponse(login_url(request), status_code=303)
            except Forbidden as exc:
                principal: Principal | None = getattr(request.state, "principal", None)
                needed = str(exc.extra.get("permission") or "")
                locale = request_locale(request)
                body = forbidden_page(
                    who=principal.label if principal else "?",
                    permission=" / ".join(describe(p) for p in needed.split(" or ") if p)
                    or exc.message,
                    login_url=f"{_base(request)}{LOGIN_PATH}",
                    back=f"{_base(request)}/",
                    lang=locale,
                    switch=switch_url(request, messages(locale).other),
                )
                return HTMLResponse(body, status_code=403)

        return page


def login_url(request: Request) -> str:
    """``/login?next=<this page>``."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{_base(request)}{LOGIN_PATH}?{urlencode({'next': here})}"


def local_path(next_url: str | None, default: str) -> str:
    """``next_url`` if it is a path on this site (no scheme, no host, no ``//`` or ``\\``
    that a browser would take for another host), else ``default``: no open redirect."""
    value = (next_url or "").strip()
    if (
        not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or "\\" in value
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    if parts.path.rstrip("/").endswith((LOGIN_PATH, LOGOUT_PATH)):
        return default  # no loop back to the form
    return value


router = APIRouter(tags=["pages"], route_class=PageRoute)


def mount_static(app: FastAPI) -> None:
    """Serve the vendored Leaflet files and the page's own scripts at ``/static``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")


@router.get(
    "/",
    summary="The dispatcher's map page (HTML)",
    description="Heat layers of cases reported from `from` to `to` (dates, both included; "
    "default the last 30 days), optionally one `category` (code or prefix) and one `grid` "
    "(its subtree); grid boundaries, hotspots and open cases on top.",
    response_class=HTMLResponse,
    responses={404: {"content": {"text/html": {}}}, 422: {"content": {"text/html": {}}}},
)
def dispatcher_map(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("maps.read")],
    locale: PageLocale,
    first: Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
    last: Annotated[str | None, Query(alias="to", description="Last day, YYYY-MM-DD")] = None,
    category: Annotated[str | None, Query(description="Category code or prefix")] = None,
    grid: Annotated[str | None, Query(description="Grid code (any level)")] = None,
    campaign: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="Only this campaign's cases on the case layer"),
    ] = None,
) -> HTMLResponse:
    base = _base(request)
    tr = messages(locale, settings.grids.timezone)
    try:
        flt = PageFilter.parse(
            first,
            last,
            category,
            grid,
            today=datetime.now(ZoneInfo(settings.grids.timezone)).date(),
            campaign=campaign,
        )
        options = page_options(session, settings, flt, base)
    except FilterError as exc:
        return refused_page(request, 422, exc.localized(tr), exc.field, locale)
    except CitygridError as exc:
        return refused_page(request, status_for(exc), exc.message, exc.field, locale)
    options = dataclasses.replace(options, locale=tr.locale, timezone=tr.timezone)
    if principal.kind == "user":
        links = (
            ((tr.gettext(LINK_TITLE), f"{base}{ROUNDS_PATH}"),)
            if principal.can("assessment.rounds") or principal.can("assessment.score")
            else ()
        )
        account = Account(
            principal.label, f"{base}{LOGOUT_PATH}", csrf_token(request), FORM_FIELD, links
        )
        options = dataclasses.replace(options, account=account)
    return HTMLResponse(dispatcher_page(options, nonce=csp_nonce(request)))


# -- cross-scoring rounds (交叉考核打分) -----------------------------------------------------------
ROUNDS_PATH = "/assessment/rounds"


@router.get(
    ROUNDS_PATH,
    summary="The cross-scoring page (HTML, Chinese; lang=en for English)",
    description="Organisers (`assessment.rounds`) see the rounds of a month, their rotation, "
    "assignments and results; scorers (`assessment.score`) their own assignments and the "
    "checklist form. The page's script calls `/api/assessment/rounds`.",
    response_class=HTMLResponse,
    responses={422: {"content": {"text/html": {}}}},
)
def inspection_rounds(
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("assessment.rounds", "assessment.score")],
    locale: PageLocale,
    period: Annotated[
        str | None, Query(max_length=40, description="Month shown first, YYYY-MM")
    ] = None,
) -> HTMLResponse:
    base = _base(request)
    month = period or datetime.now(ZoneInfo(settings.grids.timezone)).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        message = messages(locale).gettext(BAD_PERIOD, value=repr(month))
        return refused_page(request, 422, message, "period", locale, back=f"{base}{ROUNDS_PATH}")
    page = RoundsPage(
        who=principal.label,
        period=month,
        organiser=principal.can("assessment.rounds"),
        scorer=principal.can("assessment.score"),
        csrf_token=csrf_token(request),
        csrf_field=FORM_FIELD,
        lang=locale,
        timezone=settings.grids.timezone,
        rounds_api=f"{base}/api/assessment/rounds",
        scores_api=f"{base}/api/assessment/scores",
        lists_api=f"{base}/api/assessment/lists",
        page_url=f"{base}{ROUNDS_PATH}",
        map_url=f"{base}/",
        logout_action=f"{base}{LOGOUT_PATH}" if principal.kind == "user" else None,
    )
    return HTMLResponse(rounds_page(page))


def refused_page(
    request: Request,
    status: int,
    message: str,
    field: str | None,
    locale: str,
    back: str | None = None,
) -> HTMLResponse:
    page = error_page(
        status,
        message,
        field,
        back=back or f"{_base(request)}/",
        lang=locale,
        switch=switch_url(request, messages(locale).other),
    )
    return HTMLResponse(page, status_code=status)


# -- logging in and out ------------------------------------------------------------------------


@router.get(
    LOGIN_PATH,
    summary="The login page (HTML, Chinese; lang=en for English)",
    response_class=HTMLResponse,
    dependencies=[Anyone()],
)
def login_form(
    request: Request,
    locale: PageLocale,
    next_url: Annotated[str | None, Query(alias="next", description="Page to go to")] = None,
) -> HTMLResponse:
    base = _base(request)
    return _login_page(request, local_path(next_url, f"{base}/"), locale, None, "", 200)


@router.post(
    LOGIN_PATH,
    summary="Log in from the login page: sets the session cookies and goes to `next`",
    response_class=HTMLResponse,
    responses={303: {"description": "logged in"}, 401: {}, 429: {}},
    dependencies=[Anyone()],
)
def login(
    request: Request,
    accounts: AccountsDep,
    settings: SettingsDep,
    login: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
    lang: Annotated[str, Form(max_length=35, description="zh_CN or en")] = "",
) -> Response:
    target = local_path(next_url, f"{_base(request)}/")
    lang = normalize(lang) or request_locale(request)
    if not login.strip() or not password:
        return _login_page(request, target, lang, text("empty", lang), login, 401)
    try:
        user = accounts.login(login.strip(), password)
    except TooManyAttempts as exc:
        wait = int(exc.extra.get("retry_after_s", 60))
        message = text("locked", lang, minutes=max(1, math.ceil(wait / 60)))
        page = _login_page(request, target, lang, message, login, 429)
        page.headers["Retry-After"] = str(wait)
        return page
    except Unauthenticated:
        return _login_page(request, target, lang, text("wrong", lang), login, 401)
    web = accounts.start_web_session(user)
    response = RedirectResponse(target, status_code=303)
    until = round((web.expires_at - datetime.now(web.expires_at.tzinfo)).total_seconds())
    for name, value, max_age in (
        (SESSION_COOKIE, web.access_token, web.access_seconds),
        (RENEWAL_COOKIE, web.renewal_token, until),
    ):
        response.headers.append("set-cookie", cookie_header(request.scope, name, value, max_age))
    return response


@router.post(
    LOGOUT_PATH,
    summary="Log out of the web pages: the session ends and its cookies are deleted",
    responses={303: {"description": "to the login page"}},
    dependencies=[Anyone()],
    include_in_schema=False,  # the logout button's target: no input, nothing for API clients
)
def logout(request: Request, accounts: AccountsDep) -> Response:
    renewal = request.cookies.get(RENEWAL_COOKIE)
    if renewal:
        accounts.revoke_refresh(renewal)  # no access token is minted from it any more
    response = RedirectResponse(f"{_base(request)}{LOGIN_PATH}", status_code=303)
    for name in (SESSION_COOKIE, RENEWAL_COOKIE):
        response.headers.append("set-cookie", cookie_header(request.scope, name, "", 0))
    return response


def _login_page(
    request: Request, next_url: str, lang: Lang, message: str | None, login: str, status: int
) -> HTMLResponse:
    page = login_page(
        action=f"{_base(request)}{LOGIN_PATH}",
        next_url=next_url,
        csrf_token=csrf_token(request),
        csrf_field=FORM_FIELD,
        lang=lang,
        message=message,
        login=login,
    )
    return HTMLResponse(page, status_code=status)


def csrf_refused(request: Request) -> Response:
    """The 403 of a write without its CSRF token: for the pages' forms (login, logout) the
    login form again, saying the page had expired and carrying a fresh token; JSON
    otherwise."""
    if get_route_path(request.scope) in (LOGIN_PATH, LOGOUT_PATH):
        lang = request_locale(request)
        target = local_path(request.query_params.get("next"), f"{_base(request)}/")
        return _login_page(request, target, lang, text("csrf", lang), "", 403)
    return refused_json(request)


# -- the pages' script texts ------------------------------------------------------------------
I18N_PATH = "/i18n/{locale}.json"


@router.get(
    I18N_PATH,
    summary="The pages' script texts in one language (JSON: locale, timezone, messages)",
    description="What the pages embed for their scripts (`zh_CN` or `en`): msgid → text, the "
    "BCP 47 locale and the city's time zone. Other pages (and their service workers) may "
    "fetch and cache it.",
    dependencies=[Anyone()],
    responses={404: {"description": "not one of the pages' languages"}},
)
def script_texts(locale: str, settings: SettingsDep) -> JSONResponse:
    if locale not in LOCALES:
        raise NotFound(
            f"no texts in {locale!r}: the pages speak {', '.join(LOCALES)}", field="locale"
        )
    body = messages(locale, settings.grids.timezone).browser()
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


# -- API documentation (Swagger UI from /static, under the CSP) ---------------------------------
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


@router.get(DOCS_PATH, include_in_schema=False, dependencies=[Anyone()])
def swagger_ui(request: Request) -> HTMLResponse:
    base = _base(request)
    static = f"{base}{STATIC_URL}/{SWAGGER_UI.directory}"
    page = get_swagger_ui_html(
        openapi_url=f"{base}{request.app.openapi_url}",
        title=f"{request.app.title} — API",
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url="data:,",
        oauth2_redirect_url=f"{base}{OAUTH2_REDIRECT_PATH}",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    return HTMLResponse(with_nonce(bytes(page.body).decode(), csp_nonce(request)))


@router.get(OAUTH2_REDIRECT_PATH, include_in_schema=False, dependencies=[Anyone()])
def swagger_ui_redirect(request: Request) -> HTMLResponse:
    page = get_swagger_ui_oauth2_redirect_html()
    return HTMLResponse(with_nonce(bytes(page.body).decode(), csp_nonce(request)))
