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

from layers.assets import STATIC_URL
from layers.login import Lang

__all__ = ["ROUNDS_CSS", "ROUNDS_JS", "RoundsPage", "rounds_page", "rounds_text"]

ROUNDS_CSS = f"{STATIC_URL}/citygrid/rounds.css"
ROUNDS_JS = f"{STATIC_URL}/citygrid/rounds.js"

TEXTS: dict[str, dict[Lang, str]] = {
    "title": {"zh": "交叉考核打分 — citygrid", "en": "Cross-scoring rounds — citygrid"},
    "heading": {"zh": "网格交叉考核打分", "en": "Cross-scoring of grids"},
    "back": {"zh": "返回地图", "en": "Back to the map"},
    "other_lang": {"zh": "English", "en": "中文"},
    "logout": {"zh": "退出登录", "en": "Log out"},
    "rounds": {"zh": "考核轮次", "en": "Inspection rounds"},
    "month": {"zh": "考核月份", "en": "Month"},
    "show": {"zh": "查询", "en": "Show"},
    "name": {"zh": "名称", "en": "Name"},
    "period": {"zh": "考核期", "en": "Period"},
    "state": {"zh": "状态", "en": "State"},
    "progress": {"zh": "已提交/应提交", "en": "Submitted / assigned"},
    "none_yet": {"zh": "本月暂无考核轮次。", "en": "No round in this month."},
    "rotation": {"zh": "轮换方案（评分人 → 网格）", "en": "Rotation (scorer → grids)"},
    "rule": {
        "zh": "系统自动生成轮换方案：任何人不得给本人所属网格打分。",
        "en": "The system proposes the rotation: nobody scores their own grid.",
    },
    "scorer": {"zh": "评分人", "en": "Scorer"},
    "grids": {"zh": "网格", "en": "Grids"},
    "grid": {"zh": "网格", "en": "Grid"},
    "edit": {"zh": "编辑分配", "en": "Edit the assignments"},
    "add_row": {"zh": "添加一行", "en": "Add a row"},
    "save": {"zh": "保存分配", "en": "Save the assignments"},
    "propose": {"zh": "重新生成轮换方案", "en": "Propose the rotation again"},
    "open": {"zh": "开启考核", "en": "Open the round"},
    "close": {"zh": "结束考核", "en": "Close the round"},
    "results": {"zh": "考核结果", "en": "Results"},
    "cross_score": {"zh": "交叉考核得分", "en": "Checklist score"},
    "combined": {"zh": "综合得分", "en": "Combined score"},
    "grade": {"zh": "等级", "en": "Grade"},
    "list": {"zh": "红黄榜", "en": "Red/yellow list"},
    "mine": {"zh": "我的评分任务", "en": "My assignments"},
    "round": {"zh": "考核轮次", "en": "Round"},
    "no_assignments": {
        "zh": "您目前没有待完成的评分任务。",
        "en": "You have no assignments in draft or open rounds.",
    },
    "sheet": {"zh": "考核评分表", "en": "Scoresheet"},
    "item": {"zh": "考核项目", "en": "Item"},
    "max": {"zh": "满分", "en": "Max."},
    "points": {"zh": "得分", "en": "Points"},
    "note": {"zh": "扣分说明", "en": "Note"},
    "notes": {"zh": "总体情况说明", "en": "Notes"},
    "submit": {"zh": "提交评分表", "en": "Submit the scoresheet"},
    "cancel": {"zh": "取消", "en": "Cancel"},
    "once": {
        "zh": "评分表提交后不可修改，请核对后提交。",
        "en": "A scoresheet cannot be changed once submitted.",
    },
}


def rounds_text(key: str, lang: Lang) -> str:
    """One text of the page in ``lang``."""
    return TEXTS[key][lang]


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
    lang: Lang = "zh"
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
    lang = page.lang

    def t(key: str) -> str:
        return _e(rounds_text(key, lang))

    other: Lang = "en" if lang == "zh" else "zh"
    switch = f"{page.page_url}?period={page.period}" + ("&lang=en" if other == "en" else "")
    account = f'<span class="citygrid-account-name">{_e(page.who)}</span>'
    if page.logout_action:
        account = (
            f'<form method="post" action="{_e(page.logout_action)}" class="citygrid-account">'
            f"{account}"
            f'<input type="hidden" name="{_e(page.csrf_field)}" value="{_e(page.csrf_token)}">'
            f'<button type="submit">{t("logout")}</button></form>'
        )
    data = {
        "api": page.rounds_api,
        "scores": page.scores_api,
        "lists": page.lists_api,
        "csrf": page.csrf_token,
        "lang": lang,
        "period": page.period,
    }
    attrs = " ".join(f'data-{k}="{_e(v)}"' for k, v in data.items())
    parts = [
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{t("title")}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{ROUNDS_CSS}">'
        f'<script src="{ROUNDS_JS}" defer></script></head>'
        '<body class="citygrid-rounds">'
        f'<header class="citygrid-rounds-header"><h1>{t("heading")}</h1>'
        f'<nav><a href="{_e(page.map_url)}">{t("back")}</a>'
        f' · <a href="{_e(switch)}" lang="{other}">{t("other_lang")}</a></nav>'
        f"{account}</header>"
        f'<main id="citygrid-rounds" {attrs}>'
        '<p class="citygrid-field-error" data-error-for="" role="alert"></p>'
    ]
    if page.organiser:
        parts.append(_organiser(t, page.period))
    if page.scorer:
        parts.append(_scorer(t))
    parts.append("</main></body></html>")
    return "".join(parts)


def _organiser(t: Callable[[str], str], period: str) -> str:
    return (
        f'<section id="rounds-organiser"><h2>{t("rounds")}</h2>'
        '<form id="rounds-filter" class="citygrid-inline">'
        f'<label for="rounds-period">{t("month")}</label>'
        f'<input type="month" id="rounds-period" name="period" value="{_e(period)}" required>'
        f'<button type="submit">{t("show")}</button></form>'
        '<table id="rounds-list" class="citygrid-table"><thead><tr>'
        f"<th>{t('name')}</th><th>{t('period')}</th><th>{t('state')}</th>"
        f"<th>{t('progress')}</th><th></th></tr></thead><tbody></tbody></table>"
        f'<p id="rounds-empty" class="citygrid-hint" hidden>{t("none_yet")}</p>'
        '<div id="round-detail" hidden><h3 id="round-title"></h3>'
        '<p class="citygrid-actions">'
        f'<button type="button" id="round-propose">{t("propose")}</button>'
        f'<button type="button" id="round-open">{t("open")}</button>'
        f'<button type="button" id="round-close">{t("close")}</button></p>'
        '<p class="citygrid-field-error" data-error-for="state" role="alert"></p>'
        f'<h4>{t("rotation")}</h4><p class="citygrid-hint">{t("rule")}</p>'
        '<table id="rotation" class="citygrid-table"><thead><tr>'
        f"<th>{t('scorer')}</th><th>{t('grids')}</th></tr></thead><tbody></tbody></table>"
        '<form id="assignments-form" novalidate hidden>'
        f"<h4>{t('edit')}</h4>"
        '<table class="citygrid-table"><thead><tr>'
        f"<th>{t('grid')}</th><th>{t('scorer')}</th><th></th></tr></thead><tbody></tbody>"
        "</table>"
        '<datalist id="round-scorers"></datalist>'
        '<p class="citygrid-field-error" data-error-for="assignments" role="alert"></p>'
        '<p class="citygrid-actions">'
        f'<button type="button" id="assignment-add">{t("add_row")}</button>'
        f'<button type="submit">{t("save")}</button></p></form>'
        f"<h4>{t('results')}</h4>"
        '<p id="results-note" class="citygrid-hint"></p>'
        '<table id="results" class="citygrid-table"><thead><tr>'
        f"<th>{t('grid')}</th><th>{t('cross_score')}</th><th>{t('combined')}</th>"
        f"<th>{t('grade')}</th><th>{t('list')}</th></tr></thead><tbody></tbody></table>"
        "</div></section>"
    )


def _scorer(t: Callable[[str], str]) -> str:
    return (
        f'<section id="rounds-scorer"><h2>{t("mine")}</h2>'
        '<table id="my-assignments" class="citygrid-table"><thead><tr>'
        f"<th>{t('round')}</th><th>{t('period')}</th><th>{t('state')}</th>"
        f"<th>{t('grid')}</th><th></th></tr></thead><tbody></tbody></table>"
        f'<p id="mine-empty" class="citygrid-hint" hidden>{t("no_assignments")}</p>'
        '<form id="sheet-form" novalidate hidden>'
        '<h3 id="sheet-title"></h3>'
        f'<p class="citygrid-hint">{t("once")}</p>'
        '<table class="citygrid-table"><thead><tr>'
        f"<th>{t('item')}</th><th>{t('max')}</th><th>{t('points')}</th><th>{t('note')}</th>"
        "</tr></thead><tbody></tbody></table>"
        f'<label for="sheet-notes">{t("notes")}</label>'
        '<textarea id="sheet-notes" name="notes" rows="3" maxlength="5000"></textarea>'
        '<p class="citygrid-field-error" data-error-for="notes" role="alert"></p>'
        '<p class="citygrid-field-error" data-error-for="grid" role="alert"></p>'
        '<p class="citygrid-actions">'
        f'<button type="submit" id="sheet-submit">{t("submit")}</button>'
        f'<button type="button" id="sheet-cancel">{t("cancel")}</button></p></form>'
        '<div id="sheet-result" role="status"></div></section>'
    )
