"""The grid worker's phone page (``/m/``): my grids and position on a map, my tasks, 随手拍
reports, feedback and verification of a case, and patrol sessions.

Plain data in (:class:`MobilePage`), HTML out; no session, no request. The page is a shell:
``/static/citygrid/m.js`` fills it from the JSON API and sends its writes with the CSRF token
given here (the ``X-CSRFToken`` header of :mod:`service.http.csrf`). No inline script or
style, so the strictest Content-Security-Policy holds.

Every text of the page, the script's messages included, is a msgid of the pages' message
catalogues (:mod:`layers.i18n`), listed by key in :data:`TEXTS`: the HTML takes its labels
from the translated dict and the script gets the same dict as a JSON data block.

Offline: :func:`service_worker` is the service worker's script. It keeps the app shell (the
page, its script and style, Leaflet) in the Cache Storage, answers the shell from it when
there is no network, and the API's reads from the last answer seen. Reports and photos are
queued by the page itself in IndexedDB (see ``m.js``), never by the worker.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from layers.assets import DATUM_JS, LEAFLET_CSS, LEAFLET_JS, STATIC_DIR, STATIC_URL
from layers.i18n import N_, Messages, messages
from layers.login import Lang

__all__ = [
    "MOBILE_CSS",
    "MOBILE_JS",
    "TEXTS",
    "MobilePage",
    "mobile_page",
    "mobile_texts",
    "service_worker",
    "shell_assets",
]

MOBILE_CSS = f"{STATIC_URL}/citygrid/m.css"
MOBILE_JS = f"{STATIC_URL}/citygrid/m.js"
WORKER_SOURCE = STATIC_DIR / "citygrid" / "m-sw.js"

# every text of the page and its script: key → msgid (the English text; the catalogues
# layers/locale/*/messages.po translate it); the script receives the chosen language's dict
TEXTS: dict[str, str] = {
    "title": N_("Grid worker — citygrid"),
    "heading": N_("Grid worker"),
    "logout": N_("Log out"),
    "online": N_("online"),
    "offline": N_("offline"),
    "tab_map": N_("Map"),
    "tab_tasks": N_("Tasks"),
    "tab_report": N_("Report"),
    "tab_patrol": N_("Patrol"),
    "my_grids": N_("My grids"),
    "whole_city": N_("the whole city"),
    "my_position": N_("My position"),
    "no_position": N_("No position yet (allow the browser to use your location)"),
    "position": N_("lon {lon}, lat {lat} (about {accuracy} m)"),
    "to_verify": N_("Cases to verify"),
    "in_my_grids": N_("Cases in my grids"),
    "orders": N_("Supervision orders"),
    "none": N_("none"),
    "refresh": N_("Refresh"),
    "case_title": N_("Case {id}: {category}"),
    "overdue": N_("overdue"),
    "deadline": N_("due {at}"),
    "grid": N_("Grid"),
    "order_title": N_("Order {number}"),
    "report": N_("Snap and report"),
    "photo": N_("Photo"),
    "category": N_("Category"),
    "choose": N_("Choose"),
    "description": N_("Description"),
    "locate": N_("Locate again"),
    "located": N_("Grid: {name} ({code})"),
    "near_edge": N_("Near a grid boundary: confirm the grid:"),
    "distance": N_("{name} ({code}), {d} m away"),
    "not_located": N_("This position lies in no grid"),
    "need_position": N_("Wait for a position before reporting"),
    "need_category": N_("Choose a category"),
    "required_field": N_("{name} (required)"),
    "need_field": N_("Fill in {name}"),
    "submit_report": N_("Send the report"),
    "queued": N_("Saved in the outbox; it is sent when the network returns."),
    "sent": N_("Reported: case {id}."),
    "replayed": N_("Already sent: case {id}."),
    "outbox": N_("Outbox"),
    "outbox_empty": N_("Nothing waiting"),
    "send_now": N_("Send now"),
    "remove": N_("Remove"),
    "item_case": N_("Report: {category}"),
    "item_photo": N_("Photo ({stage})"),
    "state_waiting": N_("waiting for the network"),
    "state_pending": N_("the photo service is not available yet; kept"),
    "state_failed": N_("refused: {detail}"),
    "state_login": N_("log in again"),
    "stage_before": N_("before"),
    "stage_during": N_("during"),
    "stage_after": N_("after"),
    "case_actions": N_("Verification and feedback"),
    "note": N_("Note"),
    "action_photo": N_("Photo (after)"),
    "act_verify": N_("Verified: close"),
    "act_rework": N_("Not fixed: rework"),
    "act_feedback": N_("Report handled"),
    "act_done": N_("Done: {label}"),
    "needs_network": N_("This needs the network; try again later."),
    "close": N_("Close"),
    "patrol": N_("Patrol"),
    "device": N_("Device id"),
    "start_patrol": N_("Start patrol"),
    "stop_patrol": N_("Stop patrol"),
    "patrol_on": N_("Patrolling (session {id}): {sent} fixes sent, {waiting} waiting"),
    "patrol_off": N_("Not patrolling"),
    "need_device": N_("Enter the device id"),
    "failed": N_("The request failed ({status}): {detail}"),
    "login_again": N_("Your session has ended; log in again"),
}


def mobile_texts(tr: Messages) -> dict[str, str]:
    """Every text of the page in ``tr``'s language (the dict the script receives; its
    ``{holes}`` are filled by the script)."""
    return {key: tr.gettext(msgid) for key, msgid in TEXTS.items()}


@dataclass(frozen=True)
class MobilePage:
    """What the phone page needs.

    ``datum``: the base map's datum (``gcj02`` under AMap tiles: the grids are asked for in
    it and the phone's WGS 84 position is shifted the same way before drawing; reports and
    fixes are always sent in WGS 84). ``tile_layers``: Leaflet tile layer options of the base
    map (``url``, ``attribution``, ``subdomains``, ``maxZoom``). ``scope``: grid code prefixes
    of my grids (``None``: the whole city); ``bounds``: their extent in WGS 84 (west, south,
    east, north). ``actions``: the case actions the worker holds (``verify``, ``rework``,
    ``feedback``); ``report``, ``patrol`` and ``orders`` say whether those parts are shown.
    ``base``: the service's root path, prefixed to every API URL; ``extra``: more settings
    handed to the script as they are.
    """

    who: str
    csrf_token: str
    bounds: tuple[float, float, float, float]
    scope: tuple[str, ...] | None = None
    lang: Lang = "zh_CN"
    timezone: str = "Asia/Shanghai"
    datum: str = "wgs84"
    tile_layers: Sequence[Mapping[str, Any]] = ()
    actions: tuple[str, ...] = ()
    report: bool = True
    patrol: bool = True
    orders: bool = True
    base: str = ""
    page_url: str = "/m/"
    worker_url: str = "/m/sw.js"
    logout_action: str | None = "/logout"
    csrf_field: str = "csrftoken"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for url in (self.page_url, self.worker_url):
            if not url.startswith("/"):
                raise ValueError("the page's URLs are paths on this service")
        if self.datum not in ("wgs84", "gcj02"):
            raise ValueError(f"the phone page draws in wgs84 or gcj02, not {self.datum!r}")


def _e(value: object) -> str:
    return html.escape(str(value))


def mobile_page(page: MobilePage) -> str:
    """The whole page (the script fills it from the API)."""
    tr = messages(page.lang, page.timezone)
    t = mobile_texts(tr)
    config = {
        "base": page.base,
        "user": page.who,
        "csrf": page.csrf_token,
        "lang": tr.html_lang,
        "datum": page.datum,
        "tiles": list(page.tile_layers),
        "scope": list(page.scope) if page.scope is not None else None,
        "bounds": list(page.bounds),
        "actions": list(page.actions),
        "report": page.report,
        "patrol": page.patrol,
        "orders": page.orders,
        "worker": page.worker_url,
        "page": page.page_url,
        **page.extra,
    }
    account = f'<span class="m-who">{_e(page.who)}</span>'
    if page.logout_action:
        account = (
            f'<form method="post" action="{_e(page.logout_action)}" class="m-account" '
            'id="m-logout">'
            f'{account}<input type="hidden" name="{_e(page.csrf_field)}" '
            f'value="{_e(page.csrf_token)}"><button type="submit">{_e(t["logout"])}</button></form>'
        )
    tabs = [("map", "tab_map"), ("tasks", "tab_tasks")]
    if page.report:
        tabs.append(("report", "tab_report"))
    if page.patrol:
        tabs.append(("patrol", "tab_patrol"))
    nav = "".join(
        f'<button type="button" role="tab" data-tab="{k}" id="tab-{k}">{_e(t[label])}</button>'
        for k, label in tabs
    )
    parts = [
        f'<!DOCTYPE html>\n<html lang="{tr.html_lang}"><head>'
        '<meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1,viewport-fit=cover">'
        f'<title>{_e(t["title"])}</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{page.base}{LEAFLET_CSS}">'
        f'<link rel="stylesheet" href="{page.base}{MOBILE_CSS}">'
        f'<script src="{page.base}{LEAFLET_JS}" defer></script>'
        f'<script src="{page.base}{DATUM_JS}" defer></script>'
        f'<script src="{page.base}{MOBILE_JS}" defer></script></head>'
        '<body class="m">'
        f'<script type="application/json" id="m-config">{_json(config)}</script>'
        f'<script type="application/json" id="m-texts">{_json(t)}</script>'
        f'<header class="m-header"><h1>{_e(t["heading"])}</h1>'
        f'<span id="m-net" class="m-net" role="status">{_e(t["online"])}</span>'
        f'<a href="{_e(page.page_url)}?lang={tr.other}" lang="{tr.other_html_lang}">'
        f"{_e(tr.other_label)}</a>"
        f"{account}</header>"
        f'<nav class="m-tabs" role="tablist">{nav}</nav>'
        '<main id="m-main">'
        '<p class="m-error" data-error-for="" role="alert"></p>',
        _map_part(t),
        _tasks_part(t, page),
    ]
    if page.report:
        parts.append(_report_part(t))
    if page.patrol:
        parts.append(_patrol_part(t))
    parts.append(_outbox_part(t))
    parts.append("</main></body></html>")
    return "".join(parts)


def _json(value: object) -> str:
    # inside <script type="application/json">: no "<" at all, so neither "</script>" nor
    # "<!--" can change how the HTML parser reads the block (JSON reads \u003c back as "<")
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _map_part(t: Mapping[str, str]) -> str:
    return (
        '<section id="m-map-tab" data-tab-panel="map">'
        '<div id="m-map" class="m-map"></div>'
        f'<p class="m-hint"><b>{_e(t["my_grids"])}</b> <span id="m-grids"></span></p>'
        f'<p class="m-hint"><b>{_e(t["my_position"])}</b> '
        f'<span id="m-position">{_e(t["no_position"])}</span></p></section>'
    )


def _tasks_part(t: Mapping[str, str], page: MobilePage) -> str:
    orders = (
        f'<h2>{_e(t["orders"])}</h2><ul id="tasks-orders" class="m-list"></ul>'
        if page.orders
        else ""
    )
    buttons = "".join(
        f'<button type="button" data-action="{a}">{_e(t["act_" + a])}</button>'
        for a in page.actions
    )
    detail = (
        '<form id="case-detail" class="m-card" novalidate hidden>'
        f'<h3 id="case-detail-title"></h3><p id="case-detail-info" class="m-hint"></p>'
        f'<label for="action-note">{_e(t["note"])}</label>'
        '<textarea id="action-note" name="note" rows="2" maxlength="4000"></textarea>'
        '<p class="m-error" data-error-for="note" role="alert"></p>'
        f'<label for="action-photo">{_e(t["action_photo"])}</label>'
        '<input id="action-photo" name="photo" type="file" accept="image/*" '
        'capture="environment">'
        f'<p class="m-actions">{buttons}'
        f'<button type="button" id="case-detail-close">{_e(t["close"])}</button></p>'
        '<p class="m-error" data-error-for="action" role="alert"></p>'
        '<p id="case-detail-result" role="status"></p></form>'
        if page.actions
        else ""
    )
    return (
        '<section id="m-tasks-tab" data-tab-panel="tasks" hidden>'
        f'<p class="m-actions"><button type="button" id="tasks-refresh">{_e(t["refresh"])}'
        "</button></p>"
        f'<h2>{_e(t["to_verify"])}</h2><ul id="tasks-verify" class="m-list"></ul>'
        f'<h2>{_e(t["in_my_grids"])}</h2><ul id="tasks-cases" class="m-list"></ul>'
        f"{orders}{detail}</section>"
    )


def _report_part(t: Mapping[str, str]) -> str:
    return (
        '<section id="m-report-tab" data-tab-panel="report" hidden>'
        f'<form id="report-form" class="m-card" novalidate><h2>{_e(t["report"])}</h2>'
        f'<label for="report-photo">{_e(t["photo"])}</label>'
        '<input id="report-photo" name="photo" type="file" accept="image/*" '
        'capture="environment">'
        f'<label for="report-category">{_e(t["category"])}</label>'
        f'<select id="report-category" name="category_code" required>'
        f'<option value="">{_e(t["choose"])}</option></select>'
        '<p class="m-error" data-error-for="category_code" role="alert"></p>'
        '<div id="report-fields"></div>'
        f'<label for="report-description">{_e(t["description"])}</label>'
        '<textarea id="report-description" name="description" rows="3" maxlength="4000">'
        "</textarea>"
        '<p class="m-error" data-error-for="description" role="alert"></p>'
        '<div id="report-where" class="m-where"><p id="report-grid" class="m-hint"></p>'
        '<fieldset id="report-candidates" hidden>'
        f"<legend>{_e(t['near_edge'])}</legend><div></div></fieldset>"
        f'<button type="button" id="report-locate">{_e(t["locate"])}</button></div>'
        '<p class="m-error" data-error-for="lon,lat" role="alert"></p>'
        f'<p class="m-actions"><button type="submit" id="report-submit">'
        f"{_e(t['submit_report'])}</button></p>"
        '<p id="report-result" role="status"></p></form></section>'
    )


def _patrol_part(t: Mapping[str, str]) -> str:
    return (
        '<section id="m-patrol-tab" data-tab-panel="patrol" hidden>'
        f'<form id="patrol-form" class="m-card" novalidate><h2>{_e(t["patrol"])}</h2>'
        f'<label for="patrol-device">{_e(t["device"])}</label>'
        '<input id="patrol-device" name="device_id" maxlength="64" autocomplete="off">'
        '<p class="m-error" data-error-for="device_id" role="alert"></p>'
        f'<p class="m-actions"><button type="button" id="patrol-start">'
        f"{_e(t['start_patrol'])}</button>"
        f'<button type="button" id="patrol-stop" hidden>{_e(t["stop_patrol"])}</button></p>'
        f'<p id="patrol-status" role="status">{_e(t["patrol_off"])}</p></form></section>'
    )


def _outbox_part(t: Mapping[str, str]) -> str:
    return (
        '<aside id="m-outbox" class="m-card">'
        f'<h2>{_e(t["outbox"])} <span id="outbox-count" class="m-badge">0</span></h2>'
        f'<ul id="outbox-items" class="m-list"></ul>'
        f'<p id="outbox-empty" class="m-hint">{_e(t["outbox_empty"])}</p>'
        f'<p class="m-actions"><button type="button" id="outbox-send">{_e(t["send_now"])}'
        "</button></p></aside>"
    )


def shell_assets(base: str = "") -> list[str]:
    """The URLs the service worker keeps for offline use: the page and what it loads."""
    return [f"{base}/m/", f"{base}{DATUM_JS}", f"{base}{MOBILE_JS}", f"{base}{MOBILE_CSS}"] + [
        f"{base}{LEAFLET_JS}",
        f"{base}{LEAFLET_CSS}",
    ]


def service_worker(base: str = "") -> str:
    """The service worker's script: its cache list and version, then ``m-sw.js``.

    The version hashes the shell's own files, so a changed script or style makes a new
    worker (the browser compares the script byte for byte) that drops the old cache.
    """
    digest = hashlib.sha256(WORKER_SOURCE.read_bytes())
    for name in ("m.js", "m.css"):
        digest.update((STATIC_DIR / "citygrid" / name).read_bytes())
    head = {
        "version": digest.hexdigest()[:16],
        "shell": shell_assets(base),
        "page": f"{base}/m/",
        "api": f"{base}/api/",
        "static": f"{base}{STATIC_URL}/",
    }
    return f"self.CITYGRID = {json.dumps(head)};\n" + WORKER_SOURCE.read_text(encoding="utf-8")
