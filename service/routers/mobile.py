"""The grid worker's phone page: ``/m/`` (HTML) and ``/m/sw.js`` (its service worker).

The page is a :class:`~service.routers.pages.PageRoute`: someone not logged in is sent to the
login form (``/login?next=/m/``), and the web session's cookies and CSRF token of the other
pages apply. It opens to anyone who may report (``cases.report``), verify (``cases.verify``)
or patrol (``patrol.fixes``) — the seeded grid worker holds all three — and shows the parts
the caller's permissions open. Its data comes from the JSON API, read with the caller's own
scope.

The service worker must be served from under ``/m/`` for its scope to cover the page; it is
code, not data, and open to anyone (a browser re-checks it with no page open).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from layers.mobile import mobile_page, service_worker
from service.accounts.principal import Principal
from service.auth import Allow, Anyone
from service.deps import SessionDep, SettingsDep
from service.errors import CitygridError, status_for
from service.http.csrf import FORM_FIELD, csrf_token
from service.http.language import PageLocale
from service.maps.mobile import mobile_options
from service.routers.pages import LOGOUT_PATH, PageRoute, refused_page

router = APIRouter(tags=["pages"], route_class=PageRoute)

MOBILE_PATH = "/m/"
WORKER_PATH = "/m/sw.js"


@router.get(
    MOBILE_PATH,
    summary="The grid worker's phone page (HTML, Chinese; lang=en for English)",
    description="My grids and position on a map, my tasks (cases to verify, open cases in my "
    "grids, supervision orders), 随手拍 reports with an offline outbox, verification and "
    "feedback, patrol sessions. The page's script calls `/api/cases`, `/api/grids`, "
    "`/api/categories`, `/api/orders` and `/api/patrol`.",
    response_class=HTMLResponse,
    responses={404: {"content": {"text/html": {}}}},
)
def phone_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.report", "cases.verify", "patrol.fixes")],
    locale: PageLocale,
) -> HTMLResponse:
    base = str(request.scope.get("root_path", ""))
    try:
        page = mobile_options(
            session,
            settings,
            principal,
            csrf_token=csrf_token(request),
            csrf_field=FORM_FIELD,
            lang=locale,
            base=base,
            logout_action=f"{base}{LOGOUT_PATH}" if principal.kind == "user" else None,
        )
    except CitygridError as exc:
        return refused_page(request, status_for(exc), exc.message, exc.field, locale)
    # the service worker refreshes the shell itself; the browser must not keep a stale one
    return HTMLResponse(mobile_page(page), headers={"Cache-Control": "no-cache"})


@router.get(WORKER_PATH, include_in_schema=False, dependencies=[Anyone()])
def phone_service_worker(request: Request) -> Response:
    return Response(
        service_worker(str(request.scope.get("root_path", ""))),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
