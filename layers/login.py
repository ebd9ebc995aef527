"""The pages around logging in: the login form and the "you may not" (403) page.

Chinese first; ``lang="en"`` gives English (the pages link each other's language, as the
ledger export takes ``lang``). Plain data in, HTML out: no session, no request. No inline script
or style: the look comes from ``/static/citygrid/login.css``, so the pages satisfy the strictest
Content-Security-Policy.
"""

from __future__ import annotations

import html
from typing import Literal
from urllib.parse import urlencode

from layers.assets import STATIC_URL

__all__ = ["Lang", "forbidden_page", "login_page", "text"]

Lang = Literal["zh", "en"]
LOGIN_CSS = f"{STATIC_URL}/citygrid/login.css"

TEXTS: dict[str, dict[Lang, str]] = {
    "title": {"zh": "登录 — citygrid 网格化城市管理", "en": "Log in — citygrid"},
    "heading": {"zh": "网格化城市管理平台", "en": "citygrid grid management"},
    "login": {"zh": "用户名", "en": "Login name"},
    "password": {"zh": "密码", "en": "Password"},
    "submit": {"zh": "登录", "en": "Log in"},
    "other_lang": {"zh": "English", "en": "中文"},
    "wrong": {
        "zh": "用户名或密码错误，请重新输入。",
        "en": "Wrong login name or password; please try again.",
    },
    "locked": {
        "zh": "登录失败次数过多，账号已被暂时锁定，请 {minutes} 分钟后再试。",
        "en": "Too many failed logins: the account is locked; try again in {minutes} minutes.",
    },
    "empty": {"zh": "请输入用户名和密码。", "en": "Enter your login name and password."},
    "expired": {
        "zh": "登录已过期或已退出，请重新登录。",
        "en": "Your session has ended; please log in again.",
    },
    "csrf": {
        "zh": "页面已过期（安全校验失败），请刷新页面后重试。",
        "en": "The page has expired (security check failed); reload it and try again.",
    },
    "forbidden_title": {"zh": "无权访问 — citygrid", "en": "Not allowed — citygrid"},
    "forbidden_heading": {"zh": "403 无权访问", "en": "403 Not allowed"},
    "forbidden_needs": {
        "zh": "您的账号（{who}）没有此页面所需的权限：{permission}。如需开通，请联系管理员。",
        "en": "Your account ({who}) lacks the permission this page needs: {permission}. "
        "Ask an administrator.",
    },
    "switch_user": {"zh": "换一个账号登录", "en": "Log in as someone else"},
    "back": {"zh": "返回地图", "en": "Back to the map"},
}


def text(key: str, lang: Lang, **values: object) -> str:
    """One text of these pages in ``lang`` (``values`` fill its ``{holes}``)."""
    return TEXTS[key][lang].format(**values)


def _head(title: str, lang: Lang) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{LOGIN_CSS}"></head>'
    )


def login_page(
    *,
    action: str,
    next_url: str,
    csrf_token: str,
    lang: Lang = "zh",
    message: str | None = None,
    login: str = "",
    csrf_field: str = "csrftoken",
) -> str:
    """The login form posting ``login``, ``password``, ``next`` and the CSRF token to
    ``action``; ``message`` (already in ``lang``) says why the last try failed."""
    other: Lang = "en" if lang == "zh" else "zh"
    switch = f"{action}?{urlencode({'next': next_url, 'lang': other})}"
    error = (
        f'<p class="citygrid-login-error" role="alert">{html.escape(message)}</p>'
        if message
        else ""
    )
    return (
        _head(text("title", lang), lang)
        + '<body class="citygrid-login"><main class="citygrid-login-box">'
        f"<h1>{html.escape(text('heading', lang))}</h1>{error}"
        f'<form method="post" action="{html.escape(action)}" class="citygrid-login-form">'
        f'<input type="hidden" name="{html.escape(csrf_field)}" value="{html.escape(csrf_token)}">'
        f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<label for="login">{html.escape(text("login", lang))}</label>'
        f'<input id="login" name="login" type="text" autocomplete="username" required '
        f'autofocus value="{html.escape(login)}">'
        f'<label for="password">{html.escape(text("password", lang))}</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        f'<button type="submit">{html.escape(text("submit", lang))}</button></form>'
        f'<p class="citygrid-login-lang"><a href="{html.escape(switch)}">'
        f"{html.escape(text('other_lang', lang))}</a></p></main></body></html>"
    )


def forbidden_page(
    *, who: str, permission: str, login_url: str, back: str = "/", lang: Lang = "zh"
) -> str:
    """The 403 page: who is logged in, which permission the page needs, and a way out."""
    message = text("forbidden_needs", lang, who=who, permission=permission)
    return (
        _head(text("forbidden_title", lang), lang)
        + '<body class="citygrid-login"><main class="citygrid-login-box">'
        f"<h1>{html.escape(text('forbidden_heading', lang))}</h1>"
        f'<p class="citygrid-error-message">{html.escape(message)}</p>'
        f'<p><a href="{html.escape(login_url)}">{html.escape(text("switch_user", lang))}</a>'
        f' · <a href="{html.escape(back)}">{html.escape(text("back", lang))}</a></p>'
        "</main></body></html>"
    )
