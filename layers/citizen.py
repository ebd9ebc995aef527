"""The citizen's pages (随手拍): the report form, the status by tracking number and the public
problem map.

Plain data in, HTML out; no session, no request. The report form and the problem map are
shells filled by ``/static/citygrid/citizen.js`` (Leaflet served by citygrid itself, never a
CDN); the status page is written here whole. No inline script or style, so the strictest
Content-Security-Policy holds. Chinese first; ``lang="en"`` gives English. Built for a phone
(360 px wide and up).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from layers.assets import DATUM_JS, LEAFLET_CSS, LEAFLET_JS, STATIC_URL
from layers.i18n import N_, Messages, catalogue_script, messages
from layers.login import Lang

__all__ = [
    "NOT_FOUND",
    "STATUS_TEXTS",
    "CategoryChoice",
    "MapPage",
    "ReportPage",
    "StatusPage",
    "StatusView",
    "map_page",
    "report_page",
    "status_page",
]

CITIZEN_CSS = f"{STATIC_URL}/citygrid/citizen.css"
CITIZEN_JS = f"{STATIC_URL}/citygrid/citizen.js"

# a case's status as a citizen reads it (the office's own words are for its staff)
STATUS_TEXTS: dict[str, str] = {
    "reported": N_("Received"),
    "registered": N_("Accepted"),
    "dispatched": N_("Sent to the responsible department"),
    "handling": N_("Being handled"),
    "fed_back": N_("Handled, being checked"),
    "closed": N_("Fixed and closed"),
    "rejected": N_("Not accepted"),
    "merged": N_("Merged with an earlier report of the same problem"),
}


NOT_FOUND = N_("No report has this tracking number; check the number you were given.")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class CategoryChoice:
    """One category a citizen may choose."""

    code: str
    name: str
    group: str


@dataclass(frozen=True)
class ReportPage:
    """What the report form needs: the choices, the city's extent and where the API is."""

    categories: tuple[CategoryChoice, ...]
    bounds: tuple[float, float, float, float]  # west, south, east, north in ``datum``
    tiles: tuple[dict[str, Any], ...] = ()  # Leaflet tile layers (empty: no base map)
    datum: str = "wgs84"  # of the base map: positions picked on it are sent in it
    lang: Lang = "zh_CN"
    timezone: str = "Asia/Shanghai"
    api: str = "/api/public/reports"
    page_url: str = "/report"
    status_url: str = "/report/status"
    map_url: str | None = "/public/map"  # None: the city publishes no problem map


@dataclass(frozen=True)
class StatusView:
    """A report's public status (no personal data; the position coarsened)."""

    tracking_number: str
    category: str
    status: str
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    precision_m: float


@dataclass(frozen=True)
class StatusPage:
    """The status page: a lookup form, and the report when a number was asked."""

    number: str = ""
    found: StatusView | None = None
    error: str | None = None  # already in ``lang``
    lang: Lang = "zh_CN"
    timezone: str = "Asia/Shanghai"
    page_url: str = "/report/status"
    report_url: str | None = "/report"


@dataclass(frozen=True)
class MapPage:
    """The public problem map: its data URL and what its filters offer."""

    categories: tuple[CategoryChoice, ...]
    bounds: tuple[float, float, float, float]
    data_url: str = "/api/public/cases"
    tiles: tuple[dict[str, Any], ...] = ()
    datum: str = "wgs84"
    precision_m: float = 100.0
    days: int = 30
    lang: Lang = "zh_CN"
    timezone: str = "Asia/Shanghai"
    page_url: str = "/public/map"
    report_url: str | None = "/report"
    statuses: tuple[str, ...] = field(default=tuple(STATUS_TEXTS))


def _head(tr: Messages, title: str, with_map: bool) -> str:
    leaflet = (
        f'<link rel="stylesheet" href="{LEAFLET_CSS}"><script src="{LEAFLET_JS}" defer></script>'
        if with_map
        else ""
    )
    script = (
        f'<script src="{DATUM_JS}" defer></script><script src="{CITIZEN_JS}" defer></script>'
        if with_map
        else ""
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{tr.html_lang}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{CITIZEN_CSS}">{leaflet}'
        f"{catalogue_script(tr, STATUS_TEXTS.values())}{script}"
        "</head>"
    )


def _header(tr: Messages, title: str, switch: str, links: list[tuple[str, str]]) -> str:
    nav = " · ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for text, href in links)
    other = f'<a href="{_e(switch)}" lang="{tr.other_html_lang}">{_e(tr.other_label)}</a>'
    return (
        f'<header class="citizen-header"><h1>{_e(title)}</h1>'
        f"<nav>{nav}{' · ' if nav else ''}{other}</nav></header>"
    )


def _options(tr: Messages, categories: tuple[CategoryChoice, ...], blank: str) -> str:
    parts = [f'<option value="">{_e(blank)}</option>']
    group = None
    for c in categories:
        if c.group != group:
            if group is not None:
                parts.append("</optgroup>")
            parts.append(f'<optgroup label="{_e(c.group)}">')
            group = c.group
        parts.append(f'<option value="{_e(c.code)}">{_e(c.name)}</option>')
    if group is not None:
        parts.append("</optgroup>")
    return "".join(parts)


def _map_data(tiles: tuple[dict[str, Any], ...], bounds: tuple[float, ...], datum: str) -> str:
    data = {"tiles": list(tiles), "bounds": list(bounds), "datum": datum}
    return _e(json.dumps(data, ensure_ascii=False))


def report_page(page: ReportPage) -> str:
    """The report form (photo, category, position, description, optional phone)."""
    tr = messages(page.lang, page.timezone)
    _ = tr.gettext
    links = [(_("Look up a report"), page.status_url)]
    if page.map_url:
        links.append((_("Problem map"), page.map_url))
    attrs = {
        "api": page.api,
        "status": page.status_url,
        "map": _map_data(page.tiles, page.bounds, page.datum),
    }
    data = " ".join(f'data-{k}="{v if k == "map" else _e(v)}"' for k, v in attrs.items())
    intro = _("Take a photo, pick what is wrong and where; we answer with a tracking number.")
    phone = _("Your phone number (optional, only the office sees it)")
    duplicate = _("The same problem was already reported nearby: the office is on it.")
    return (
        _head(tr, _("Report a problem — citygrid"), with_map=True)
        + '<body class="citizen">'
        + _header(tr, _("Report a problem"), f"{page.page_url}?lang={tr.other}", links)
        + f'<main id="citizen-report" {data}>'
        f'<form id="report-form" class="citizen-form" novalidate>'
        f'<p class="citizen-hint">{_e(intro)}</p>'
        f'<label for="report-photo">{_e(_("Photo"))}</label>'
        '<input id="report-photo" name="media" type="file" accept="image/*" capture="environment">'
        '<p class="citizen-error" data-error-for="media" role="alert"></p>'
        f'<label for="report-category">{_e(_("What is the problem?"))}</label>'
        f'<select id="report-category" name="service_code" required>'
        f"{_options(tr, page.categories, _('Choose a category'))}</select>"
        '<p class="citizen-error" data-error-for="service_code" role="alert"></p>'
        f"<label>{_e(_('Where? Tap the map, or use your position'))}</label>"
        '<div id="report-map" class="citizen-map"></div>'
        f'<button type="button" id="report-locate">{_e(_("Use my position"))}</button>'
        '<p id="report-where" class="citizen-hint" aria-live="polite"></p>'
        '<input type="hidden" name="lat" id="report-lat">'
        '<input type="hidden" name="long" id="report-long">'
        '<input type="hidden" name="datum" id="report-datum">'
        '<p class="citizen-error" data-error-for="lat,long" role="alert"></p>'
        f'<label for="report-description">{_e(_("Description (optional)"))}</label>'
        '<textarea id="report-description" name="description" rows="3" maxlength="4000">'
        "</textarea>"
        f'<label for="report-phone">{_e(phone)}</label>'
        '<input id="report-phone" name="phone" type="tel" maxlength="40" autocomplete="tel">'
        '<p class="citizen-error" data-error-for="phone" role="alert"></p>'
        '<p class="citizen-error" data-error-for="" role="alert"></p>'
        f'<button type="submit" id="report-submit">{_e(_("Send the report"))}</button>'
        "</form>"
        '<section id="report-done" class="citizen-done" hidden>'
        f"<h2>{_e(_('Thank you: your report was received'))}</h2>"
        f"<p>{_e(_('Your tracking number'))}</p>"
        '<p id="report-number" class="citizen-number"></p>'
        f'<p id="report-duplicate" class="citizen-hint" hidden>{_e(duplicate)}</p>'
        f'<p><a id="report-status-link" href="{_e(page.status_url)}">{_e(_("See its status"))}</a>'
        f' · <a href="{_e(page.page_url)}">{_e(_("Report another problem"))}</a></p>'
        "</section></main></body></html>"
    )


def status_page(page: StatusPage) -> str:
    """The status of a report by tracking number (and the form to ask for one)."""
    tr = messages(page.lang, page.timezone)
    _ = tr.gettext
    links = [(_("Report a problem"), page.report_url)] if page.report_url else []
    query = {"number": page.number, "lang": tr.other} if page.number else {"lang": tr.other}
    parts = [
        _head(tr, _("Report status — citygrid"), with_map=False),
        '<body class="citizen">',
        _header(tr, _("Report status"), f"{page.page_url}?{urlencode(query)}", links),
        '<main id="citizen-status">',
        f'<form method="get" action="{_e(page.page_url)}" class="citizen-form">'
        f'<label for="status-number">{_e(_("Tracking number"))}</label>'
        f'<input id="status-number" name="number" type="text" required maxlength="40" '
        f'value="{_e(page.number)}" autocapitalize="characters">'
        f'<input type="hidden" name="lang" value="{tr.locale}">'
        f'<button type="submit">{_e(_("Look up"))}</button></form>',
    ]
    if page.error:
        parts.append(
            f'<p class="citizen-error" data-error-for="number" role="alert">{_e(page.error)}</p>'
        )
    if page.found is not None:
        parts.append(_status(tr, page.found))
    parts.append("</main></body></html>")
    return "".join(parts)


def _status(tr: Messages, view: StatusView) -> str:
    _ = tr.gettext
    rows = [
        (_("Tracking number"), view.tracking_number, "number"),
        (_("Problem"), view.category, "category"),
        (_("Status"), _(STATUS_TEXTS.get(view.status, view.status)), "status"),
        (_("Reported"), tr.moment(view.reported_at), "reported"),
        (_("Last change"), tr.moment(view.updated_at), "updated"),
    ]
    if view.closed_at is not None:
        rows.append((_("Closed"), tr.moment(view.closed_at), "closed"))
    body = "".join(
        f'<dt>{_e(label)}</dt><dd data-field="{key}">{_e(value)}</dd>' for label, value, key in rows
    )
    note = _(
        "Positions are shown to the public only to within {metres} m.",
        metres=tr.number(view.precision_m, 0),
    )
    return (
        f'<section id="status-result" class="citizen-done"><dl>{body}</dl>'
        f'<p class="citizen-hint">{_e(note)}</p></section>'
    )


def map_page(page: MapPage) -> str:
    """The public problem map (the script loads ``data_url`` and draws its points)."""
    tr = messages(page.lang, page.timezone)
    _ = tr.gettext
    links = [(_("Report a problem"), page.report_url)] if page.report_url else []
    statuses = "".join(
        f'<option value="{_e(s)}">{_e(_(STATUS_TEXTS[s]))}</option>'
        for s in page.statuses
        if s in STATUS_TEXTS
    )
    note = _(
        "Reports of the last {days} days; each point is shown to within {metres} m, "
        "and nothing about who reported.",
        days=page.days,
        metres=tr.number(page.precision_m, 0),
    )
    data = (
        f'data-cases="{_e(page.data_url)}" '
        f'data-map="{_map_data(page.tiles, page.bounds, page.datum)}"'
    )
    return (
        _head(tr, _("Problem map — citygrid"), with_map=True)
        + '<body class="citizen">'
        + _header(tr, _("Problem map"), f"{page.page_url}?lang={tr.other}", links)
        + f'<main id="citizen-map" {data}>'
        '<form id="map-filter" class="citizen-inline">'
        f'<label for="map-category">{_e(_("Problem"))}</label>'
        f'<select id="map-category">{_options(tr, page.categories, _("All"))}</select>'
        f'<label for="map-status">{_e(_("Status"))}</label>'
        f'<select id="map-status"><option value="">{_e(_("All"))}</option>{statuses}</select>'
        "</form>"
        '<div id="public-map" class="citizen-map citizen-map-large"></div>'
        f'<p id="map-count" class="citizen-hint" aria-live="polite"></p>'
        f'<p class="citizen-hint">{_e(note)}</p>'
        "</main></body></html>"
    )
