"""The pages around logging in: the login form and the "you may not" (403) page.

Chinese first; ``lang="en"`` gives English (each page links the other language). The texts
come from the catalogue (:mod:`layers.i18n`). Plain data in, HTML out: no session, no request.
No inline script or style: the look comes from ``/static/citygrid/login.css``, so the pages
satisfy the strictest Content-Security-Policy.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from layers.assets import STATIC_URL
from layers.i18n import N_, Messages, messages

__all__ = ["Lang", "forbidden_page", "login_page", "text"]

Lang = str  # a locale (zh_CN, en) or a tag layers.i18n.normalize knows
LOGIN_CSS = f"{STATIC_URL}/citygrid/login.css"

# the messages the service shows on the login form, by the key it names them with
TEXTS: dict[str, str] = {
    "wrong": N_("Wrong login name or password; please try again."),
    "locked": N_("Too many failed logins: the account is locked; try again in {minutes} minutes."),
    "empty": N_("Enter your login name and password."),
    "expired": N_("Your session has ended; please log in again."),
    "csrf": N_("The page has expired (security check failed); reload it and try again."),
}


def text(key: str, lang: Lang, **values: object) -> str:
    """One message of the login form in ``lang`` (``values`` fill its ``{holes}``)."""
    return messages(lang).gettext(TEXTS[key], **values)


def _head(title: str, tr: Messages) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{tr.html_lang}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{LOGIN_CSS}"></head>'
    )


def _switch(tr: Messages, href: str) -> str:
    return (
        f'<p class="citygrid-login-lang"><a href="{html.escape(href)}" '
        f'lang="{tr.other_html_lang}">{html.escape(tr.other_label)}</a></p>'
    )


def login_page(
    *,
    action: str,
    next_url: str,
    csrf_token: str,
    lang: Lang = "zh_CN",
    message: str | None = None,
    login: str = "",
    csrf_field: str = "csrftoken",
) -> str:
    """The login form posting ``login``, ``password``, ``next`` and the CSRF token to
    ``action``; ``message`` (already in ``lang``) says why the last try failed."""
    tr = messages(lang)
    _ = tr.gettext
    switch = f"{action}?{urlencode({'next': next_url, 'lang': tr.other})}"
    error = (
        f'<p class="citygrid-login-error" role="alert">{html.escape(message)}</p>'
        if message
        else ""
    )
    return (
        _head(_("Log in — citygrid"), tr)
        + '<body class="citygrid-login"><main class="citygrid-login-box">'
        f"<h1>{html.escape(_('citygrid grid management'))}</h1>{error}"
        f'<form method="post" action="{html.escape(action)}" class="citygrid-login-form">'
        f'<input type="hidden" name="{html.escape(csrf_field)}" value="{html.escape(csrf_token)}">'
        f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
        f'<input type="hidden" name="lang" value="{tr.locale}">'
        f'<label for="login">{html.escape(_("Login name"))}</label>'
        f'<input id="login" name="login" type="text" autocomplete="username" required '
        f'autofocus value="{html.escape(login)}">'
        f'<label for="password">{html.escape(_("Password"))}</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        f'<button type="submit">{html.escape(_("Log in"))}</button></form>'
        f"{_switch(tr, switch)}</main></body></html>"
    )


def forbidden_page(
    *,
    who: str,
    permission: str,
    login_url: str,
    back: str = "/",
    lang: Lang = "zh_CN",
    switch: str | None = None,
) -> str:
    """The 403 page: who is logged in, which permission the page needs, and a way out;
    ``switch`` is this page's URL in the other language."""
    tr = messages(lang)
    _ = tr.gettext
    message = _(
        "Your account ({who}) lacks the permission this page needs: {permission}. "
        "Ask an administrator.",
        who=who,
        permission=permission,
    )
    return (
        _head(_("Not allowed — citygrid"), tr)
        + '<body class="citygrid-login"><main class="citygrid-login-box">'
        f"<h1>{html.escape(_('403 Not allowed'))}</h1>"
        f'<p class="citygrid-error-message">{html.escape(message)}</p>'
        f'<p><a href="{html.escape(login_url)}">{html.escape(_("Log in as someone else"))}</a>'
        f' · <a href="{html.escape(back)}">{html.escape(_("Back to the map"))}</a></p>'
        f"{_switch(tr, switch) if switch else ''}</main></body></html>"
    )
