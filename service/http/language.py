"""The pages' language: ``?lang=`` (remembered in a cookie), the cookie, else Chinese (the
browser's ``Accept-Language`` is not consulted: Chinese first, English as a switch). The texts
themselves live in ``layers`` (:mod:`layers.i18n`); this only chooses.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query
from starlette.requests import Request

from layers.i18n import negotiate, normalize
from service.http.cookies import cookie_header, set_cookie_later

LANG_COOKIE = "citygrid_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600


def request_locale(request: Request) -> str:
    """The locale of a page answering ``request`` (no cookie set: for refusals)."""
    return negotiate(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def page_locale(
    request: Request,
    lang: Annotated[
        str | None,
        Query(
            description="Page language: zh_CN (default) or en; remembered in a cookie. "
            "Without it: the cookie, else zh_CN."
        ),
    ] = None,
) -> str:
    """The page's locale; a ``lang`` the pages know is remembered in the language cookie."""
    asked = normalize(lang)
    if asked and asked != normalize(request.cookies.get(LANG_COOKIE)):
        header = cookie_header(request.scope, LANG_COOKIE, asked, LANG_COOKIE_SECONDS)
        set_cookie_later(request, header)
    return request_locale(request)


PageLocale = Annotated[str, Depends(page_locale)]


def switch_url(request: Request, locale: str) -> str:
    """This request's page in ``locale`` (the other query parameters kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*params, ('lang', locale)])}"
