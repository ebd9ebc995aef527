"""The cross-scoring page (交叉考核打分): inspection rounds, their rotation and results for the
organiser, the scorer's own assignments and the checklist form.

Plain data in (:class:`RoundsPage`), HTML out; no session, no request. The page is a shell:
``/static/citygrid/rounds.js`` fills it from the JSON API (``/api/assessment/rounds``) and
sends its writes with the CSRF token given here in ``data-csrf`` (the ``X-CSRFToken`` header of
:mod:`service.http.csrf`). No inline script or style, so the strictest Content-Security-Policy
holds; the look comes from ``/static/citygrid/rounds.css``. Chinese first; ``lang="en"`` gives
English, as on the login page.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from layers.assets import STATIC_URL
from layers.i18n import N_, catalogue_script, messages
from layers.login import Lang

__all__ = ["BAD_PERIOD", "LINK_TITLE", "ROUNDS_CSS", "ROUNDS_JS", "RoundsPage", "rounds_page"]

ROUNDS_CSS = f"{STATIC_URL}/citygrid/rounds.css"
ROUNDS_JS = f"{STATIC_URL}/citygrid/rounds.js"
LINK_TITLE = N_("Cross-scoring")  # the map panel's link to this page
BAD_PERIOD = N_("period {value} is not a month (YYYY-MM, e.g. 2026-11)")


@dataclass(frozen=True)
class RoundsPage:
    """What the page needs: who is logged in, what they may do, and where the API is.

    ``organiser``: holds ``assessment.rounds`` (sees the rounds of a month, edits the rotation,
    opens and closes rounds, reads the results); ``scorer``: holds ``assessment.score`` (sees
    their own assignments and fills scoresheets). ``period`` is the month shown first
    (``YYYY-MM``).
    """

    who: str
    period: str
    organiser: bool
    scorer: bool
    csrf_token: str
    csrf_field: str = "csrftoken"
    lang: Lang = "zh_CN"
    timezone: str = "Asia/Shanghai"
    rounds_api: str = "/api/assessment/rounds"
    scores_api: str = "/api/assessment/scores"
    lists_api: str = "/api/assessment/lists"
    page_url: str = "/assessment/rounds"
    map_url: str = "/"
    logout_action: str | None = "/logout"  # None: not a web session (nothing to log out of)

    def __post_init__(self) -> None:
        for url in (self.rounds_api, self.scores_api, self.lists_api, self.page_url):
            if not url.startswith("/"):
                raise ValueError("the page's URLs are paths on this service")


def _e(value: str) -> str:
    return html.escape(value)


def rounds_page(page: RoundsPage) -> str:
    """The whole page (the script fills its tables from the API)."""
    tr = messages(page.lang, page.timezone)

    def _(msgid: str) -> str:
        return _e(tr.gettext(msgid))

    switch = f"{page.page_url}?{urlencode({'period': page.period, 'lang': tr.other})}"
    account = f'<span class="citygrid-account-name">{_e(page.who)}</span>'
    if page.logout_action:
        account = (
            f'<form method="post" action="{_e(page.logout_action)}" class="citygrid-account">'
            f"{account}"
            f'<input type="hidden" name="{_e(page.csrf_field)}" value="{_e(page.csrf_token)}">'
            f'<button type="submit">{_("Log out")}</button></form>'
        )
    data = {
        "api": page.rounds_api,
        "scores": page.scores_api,
        "lists": page.lists_api,
        "csrf": page.csrf_token,
        "lang": tr.locale,
        "period": page.period,
    }
    attrs = " ".join(f'data-{k}="{_e(v)}"' for k, v in data.items())
    parts = [
        f'<!DOCTYPE html>\n<html lang="{tr.html_lang}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{_("Cross-scoring rounds — citygrid")}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{ROUNDS_CSS}">{catalogue_script(tr)}'
        f'<script src="{ROUNDS_JS}" defer></script></head>'
        '<body class="citygrid-rounds">'
        f'<header class="citygrid-rounds-header"><h1>{_("Cross-scoring of grids")}</h1>'
        f'<nav><a href="{_e(page.map_url)}">{_("Back to the map")}</a>'
        f' · <a href="{_e(switch)}" lang="{tr.other_html_lang}">{_e(tr.other_label)}</a></nav>'
        f"{account}</header>"
        f'<main id="citygrid-rounds" {attrs}>'
        '<p class="citygrid-field-error" data-error-for="" role="alert"></p>'
    ]
    if page.organiser:
        parts.append(_organiser(_, page.period))
    if page.scorer:
        parts.append(_scorer(_))
    parts.append("</main></body></html>")
    return "".join(parts)


def _organiser(_: Callable[[str], str], period: str) -> str:
    return (
        f'<section id="rounds-organiser"><h2>{_("Inspection rounds")}</h2>'
        '<form id="rounds-filter" class="citygrid-inline">'
        f'<label for="rounds-period">{_("Month")}</label>'
        f'<input type="month" id="rounds-period" name="period" value="{_e(period)}" required>'
        f'<button type="submit">{_("Show")}</button></form>'
        '<table id="rounds-list" class="citygrid-table"><thead><tr>'
        f"<th>{_('Name')}</th><th>{_('Period')}</th><th>{_('State')}</th>"
        f"<th>{_('Submitted / assigned')}</th><th></th></tr></thead><tbody></tbody></table>"
        f'<p id="rounds-empty" class="citygrid-hint" hidden>{_("No round in this month.")}</p>'
        '<div id="round-detail" hidden><h3 id="round-title"></h3>'
        '<p class="citygrid-actions">'
        f'<button type="button" id="round-propose">{_("Propose the rotation again")}</button>'
        f'<button type="button" id="round-open">{_("Open the round")}</button>'
        f'<button type="button" id="round-close">{_("Close the round")}</button></p>'
        '<p class="citygrid-field-error" data-error-for="state" role="alert"></p>'
        f"<h4>{_('Rotation (scorer → grids)')}</h4>"
        f'<p class="citygrid-hint">'
        f"{_('The system proposes the rotation: nobody scores their own grid.')}</p>"
        '<table id="rotation" class="citygrid-table"><thead><tr>'
        f"<th>{_('Scorer')}</th><th>{_('Grids')}</th></tr></thead><tbody></tbody></table>"
        '<form id="assignments-form" novalidate hidden>'
        f"<h4>{_('Edit the assignments')}</h4>"
        '<table class="citygrid-table"><thead><tr>'
        f"<th>{_('Grid')}</th><th>{_('Scorer')}</th><th></th></tr></thead><tbody></tbody>"
        "</table>"
        '<datalist id="round-scorers"></datalist>'
        '<p class="citygrid-field-error" data-error-for="assignments" role="alert"></p>'
        '<p class="citygrid-actions">'
        f'<button type="button" id="assignment-add">{_("Add a row")}</button>'
        f'<button type="submit">{_("Save the assignments")}</button></p></form>'
        f"<h4>{_('Results')}</h4>"
        '<p id="results-note" class="citygrid-hint"></p>'
        '<table id="results" class="citygrid-table"><thead><tr>'
        f"<th>{_('Grid')}</th><th>{_('Checklist score')}</th><th>{_('Combined score')}</th>"
        f"<th>{_('Grade')}</th><th>{_('Red/yellow list')}</th></tr></thead><tbody></tbody></table>"
        "</div></section>"
    )


def _scorer(_: Callable[[str], str]) -> str:
    return (
        f'<section id="rounds-scorer"><h2>{_("My assignments")}</h2>'
        '<table id="my-assignments" class="citygrid-table"><thead><tr>'
        f"<th>{_('Round')}</th><th>{_('Period')}</th><th>{_('State')}</th>"
        f"<th>{_('Grid')}</th><th></th></tr></thead><tbody></tbody></table>"
        '<p id="mine-empty" class="citygrid-hint" hidden>'
        f"{_('You have no assignments in draft or open rounds.')}</p>"
        '<form id="sheet-form" novalidate hidden>'
        '<h3 id="sheet-title"></h3>'
        f'<p class="citygrid-hint">{_("A scoresheet cannot be changed once submitted.")}</p>'
        '<table class="citygrid-table"><thead><tr>'
        f"<th>{_('Item')}</th><th>{_('Max.')}</th><th>{_('Points')}</th><th>{_('Note')}</th>"
        "</tr></thead><tbody></tbody></table>"
        f'<label for="sheet-notes">{_("Notes")}</label>'
        '<textarea id="sheet-notes" name="notes" rows="3" maxlength="5000"></textarea>'
        '<p class="citygrid-field-error" data-error-for="notes" role="alert"></p>'
        '<p class="citygrid-field-error" data-error-for="grid" role="alert"></p>'
        '<p class="citygrid-actions">'
        f'<button type="submit" id="sheet-submit">{_("Submit the scoresheet")}</button>'
        f'<button type="button" id="sheet-cancel">{_("Cancel")}</button></p></form>'
        '<div id="sheet-result" role="status"></div></section>'
    )
