"""The dispatcher's map page: one folium map whose layers fetch aggregates and tiles.

:func:`dispatcher_page` builds the whole HTML from plain data (:class:`PageOptions`); it never
touches a database. Nothing heavy is embedded: the heat layers fetch ``/api/heat/{layer}`` when
shown, grid boundaries and open cases come as vector tiles, hotspots from ``/api/hotspots``.
The heat layers are mutually exclusive (radio buttons in the layer control, with "no heat
layer"), so their legends never pile up; boundaries, hotspots and cases are overlays on top.
Every script and stylesheet comes from ``/static`` (:func:`layers.assets.render_offline`); the
only external URL a page may name is the configured base-map tile template.

With an AMap base map (GCJ-02 tiles) every data URL asks for ``datum=gcj02`` so the overlays
sit on the shifted streets; the bounds given must then be in GCJ-02 too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import folium
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from layers.assets import LOCAL_BY_URL, render_offline, with_nonce
from layers.controls import Account, Choice, FilterPanel, NoLayer
from layers.i18n import (
    DEFAULT_LOCALE,
    DEFAULT_TIMEZONE,
    N_,
    Messages,
    catalogue_script,
    messages,
)
from layers.remote import RUNTIME_CSS, RemoteGeoJson, RemoteImageOverlay
from layers.styles import ANSWER_TEXTS
from layers.vectortiles import CaseTiles, GridBoundaryTiles, HeatTiles

__all__ = [
    "LAYER_TITLES",
    "BaseMap",
    "CategoryOption",
    "FilterError",
    "PageFilter",
    "PageOptions",
    "dispatcher_page",
    "error_page",
    "layer_titles",
]

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
TIANDITU_TILES = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)
AMAP_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)

# Titles in the layer control (and keys of L.Citygrid.layers in the browser), as msgids:
# :func:`layer_titles` gives them in a locale.
LAYER_TITLES: dict[str, str] = {
    "density": N_("Problems: cases per km²"),
    "per_patrol_hour": N_("Problems: cases per patrol hour"),
    "hexbins": N_("Problems: hexagon bins"),
    "kde": N_("Problems: kernel density"),
    "gi": N_("Problems: hot/cold spots (Gi*)"),
    "coverage": N_("Patrol: covered share"),
    "since": N_("Patrol: hours since last visit"),
    "tracks": N_("Patrol: track density"),
    "blind": N_("Blind spots: many problems, little patrol"),
    "grades": N_("Assessment: grades of the month"),
    "red_yellow": N_("Assessment: red/yellow list"),
    "no_heat": N_("No heat layer"),
    "boundaries": N_("Grid boundaries"),
    "hotspots": N_("Hotspots"),
    "cases": N_("Open cases"),
}
DEFAULT_HEAT = "density"

# open statuses (service.cases.workflow.OPEN_STATUSES) → point colour; overdue cases are red
STATUS_COLOURS = {
    "reported": "#807dba",
    "registered": "#6baed6",
    "dispatched": "#2171b5",
    "handling": "#41ab5d",
    "fed_back": "#fd8d3c",
}
# the open statuses' names on the page (msgids)
STATUS_TITLES = {
    "reported": N_("reported"),
    "registered": N_("registered"),
    "dispatched": N_("dispatched"),
    "handling": N_("handling"),
    "fed_back": N_("fed back"),
}
OVERDUE_COLOUR = "#e31a1c"
CLUSTER_COLOUR = "#3182bd"
CLUSTER_OVERDUE_COLOUR = "#cb181d"
LEVEL_STYLES: dict[str, dict[str, Any]] = {
    "city": {"color": "#000000", "weight": 3.5},
    "district": {"color": "#252525", "weight": 3},
    "street": {"color": "#4d4d4d", "weight": 2},
    "community": {"color": "#525252", "weight": 1.6, "dashArray": "6 4"},
    "unit": {"color": "#737373", "weight": 0.8},
}
# hotspot kinds in the order given → these colours (ColorBrewer Dark2, then Set1)
KIND_PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
)

# Popups: a title (a template) and rows (label msgid, template); :func:`_popup` writes the
# HTML in the page's language. Holes are ``{field}`` or ``{field|format}`` (dispatcher.js).
Popup = tuple[str, tuple[tuple[str, str], ...]]
GRID_POPUP: Popup = (
    "{name}",
    (
        (N_("Grid code"), "{code}"),
        (N_("Responsible unit"), "{responsible_unit}"),
        (N_("Responsible person"), "{responsible_person}"),
        (N_("Phone"), "{responsible_phone}"),
        (N_("Cases in period"), "{cases}"),
        (N_("… per km²"), "{per_km2|num}"),
        (N_("… per patrol hour"), "{per_patrol_hour|num}"),
        (N_("Open now"), "{open}"),
        (N_("Overdue now"), "{overdue}"),
        (N_("Covered by patrols"), "{covered_share|pct}"),
        (N_("Patrol visits"), "{visits}"),
    ),
)
HEXBIN_POPUP: Popup = (N_("{count} cases in this hexagon"), ())
GI_POPUP: Popup = (
    "{code}",
    (
        (N_("Class"), "{class}"),
        (N_("Density"), "{value|num}"),
        (N_("Gi* z-score"), "{z}"),
        (N_("p (permutations)"), "{p}"),
    ),
)
COVERAGE_POPUP: Popup = (
    "{code}",
    (
        (N_("Covered share"), "{covered_share|pct}"),
        (N_("Visits"), "{visits}"),
        (N_("Value shown"), "{value|num}"),
    ),
)
BLIND_POPUP: Popup = (
    "{code}",
    (
        (N_("Cases"), "{cases}"),
        (N_("Patrol hours"), "{patrol_hours|num}"),
        (N_("Cases per patrol hour"), "{cases_per_patrol_hour|num}"),
    ),
)
ASSESSMENT_POPUP: Popup = (
    "{name}",
    (
        (N_("Grid code"), "{code}"),
        (N_("Score"), "{total|num}"),
        (N_("Grade"), "{grade}"),
        (N_("Rank in group"), "{rank}"),
        (N_("Red/yellow list"), "{list|tr}"),
        (N_("Components of the score"), "{components}"),
    ),
)
HOTSPOT_POPUP: Popup = (
    "{name}",
    (
        (N_("Kind"), "{kind_label}"),
        (N_("Influence zone"), "{buffer_m|num} m"),
        (N_("Owner unit"), "{owner_unit}"),
        (N_("Contact"), "{owner_name} {owner_phone}"),
    ),
)
CASE_POPUP: Popup = (
    N_("Case {id}"),
    (
        (N_("Category"), "{category_code}"),
        (N_("Status"), "{status_label}"),
        (N_("Overdue"), "{late|yesno}"),
        (N_("Reported"), "{reported_at|time}"),
    ),
)


_ONLY_HOLE = re.compile(r"\{\w+\}")


def _popup(popup: Popup, tr: Messages) -> str:
    """A popup's HTML template in ``tr``'s language (the holes stay for the browser)."""
    title, rows = popup
    # a title that is only a hole ("{name}") is data, not a text of the catalogue
    head = html.escape(title if _ONLY_HOLE.fullmatch(title) else tr.gettext(title), quote=False)
    if not rows:
        return head
    body = "".join(
        f"<tr><th>{html.escape(tr.gettext(label))}</th><td>{value}</td></tr>"
        for label, value in rows
    )
    return f'<div class="citygrid-popup-title">{head}</div><table>{body}</table>'


def layer_titles(locale: str = DEFAULT_LOCALE) -> dict[str, str]:
    """:data:`LAYER_TITLES` in ``locale`` (the layer control's labels on that page)."""
    tr = messages(locale)
    return {key: tr.gettext(msgid) for key, msgid in LAYER_TITLES.items()}


class FilterError(ValueError):
    """A page filter value that cannot be used; ``field`` names the query parameter.

    ``message`` is English (the CLI's); :meth:`localized` says it in a page's language: the
    msgid and its values are kept for that.
    """

    def __init__(self, msgid: str, field: str, **values: object) -> None:
        self.message = msgid.format(**values) if values else msgid
        super().__init__(self.message)
        self.msgid = msgid
        self.values = values
        self.field = field

    def localized(self, tr: Messages) -> str:
        """The message in ``tr``'s language."""
        return tr.gettext(self.msgid, **self.values)


@dataclass(frozen=True)
class PageFilter:
    """What the heat layers aggregate: cases reported from ``first_day`` to ``last_day``
    (both included, local dates), optionally one category (code or prefix) and one grid's
    subtree. Open cases are always the ones open now; ``campaign`` (an id) keeps the case
    layer to the cases of one campaign (专项行动)."""

    first_day: date
    last_day: date
    category: str | None = None
    grid: str | None = None
    campaign: int | None = None

    @classmethod
    def parse(
        cls,
        first: str | None,
        last: str | None,
        category: str | None,
        grid: str | None,
        *,
        today: date,
        default_days: int = 30,
        campaign: int | None = None,
    ) -> PageFilter:
        """The filter from query strings (``YYYY-MM-DD`` dates; empty means default).

        Raises
        ------
        FilterError
            A value that is not a date, a period that ends before it starts, or a category
            or grid code with characters no code has.
        """
        last_day = _date(last, "to") or today
        first_day = _date(first, "from") or last_day - timedelta(days=default_days - 1)
        if last_day < first_day:
            raise FilterError(
                N_("the period ends ({last}) before it starts ({first})"),
                field="to",
                last=last_day.isoformat(),
                first=first_day.isoformat(),
            )
        category = (category or "").strip() or None
        grid = (grid or "").strip() or None
        if category is not None and not (
            category.isascii() and category.isalnum() and len(category) <= 8
        ):
            raise FilterError(
                N_("category must be a category code or prefix such as 05 or 0102, got {value}"),
                field="category",
                value=repr(category),
            )
        if grid is not None and not (grid.isascii() and grid.isdigit() and len(grid) <= 15):
            raise FilterError(
                N_("grid must be a grid code (digits), got {value}"), field="grid", value=repr(grid)
            )
        return cls(first_day, last_day, category, grid, campaign)

    def window(self, tz: str) -> tuple[datetime, datetime]:
        """``[start, end)``: local midnight of the first day to midnight after the last."""
        zone = ZoneInfo(tz)
        start = datetime.combine(self.first_day, time(0), zone)
        end = datetime.combine(self.last_day + timedelta(days=1), time(0), zone)
        return start, end

    def query(self) -> dict[str, str]:
        """The filter as ``/api/heat`` parameters (``to`` is exclusive there)."""
        params = {
            "from": self.first_day.isoformat(),
            "to": (self.last_day + timedelta(days=1)).isoformat(),
        }
        if self.category:
            params["category"] = self.category
        if self.grid:
            params["grid"] = self.grid
        return params


def _date(value: str | None, name: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(
            N_("{name} must be a date like 2026-11-16, got {value}"),
            field=name,
            name=repr(name),
            value=repr(value),
        ) from None


@dataclass(frozen=True)
class BaseMap:
    """The base map under the overlays (see ``service.settings.MapSettings``)."""

    kind: Literal["none", "osm", "tianditu", "amap"] = "none"
    tile_url: str = OSM_TILES
    tianditu_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("none", "osm", "tianditu", "amap"):
            raise ValueError(f"unknown base map {self.kind!r}")
        if self.kind == "tianditu" and not self.tianditu_key:
            raise ValueError("the tianditu base map needs a key")

    @property
    def datum(self) -> str:
        """Datum the overlays must be drawn in: AMap tiles are GCJ-02."""
        return "gcj02" if self.kind == "amap" else "wgs84"

    def tile_layers(self) -> list[dict[str, Any]]:
        """``folium.TileLayer`` arguments, bottom first (Tianditu: streets, then labels)."""
        if self.kind == "osm":
            attr = "© OpenStreetMap contributors" if self.tile_url == OSM_TILES else "base map"
            return [{"tiles": self.tile_url, "attr": attr, "max_zoom": 19}]
        if self.kind == "tianditu":
            return [
                {
                    "tiles": TIANDITU_TILES.format(
                        layer=layer, key=self.tianditu_key, s="{s}", z="{z}", x="{x}", y="{y}"
                    ),
                    "attr": "© 天地图 Tianditu",
                    "subdomains": "01234567",
                    "max_zoom": 18,
                }
                for layer in ("vec", "cva")
            ]
        if self.kind == "amap":
            return [
                {
                    "tiles": AMAP_TILES,
                    "attr": "© 高德地图 AutoNavi",
                    "subdomains": "1234",
                    "max_zoom": 18,
                }
            ]
        return []

    def image_sources(self) -> list[str]:
        """The tile hosts as Content-Security-Policy sources (``https://*.tianditu.gov.cn``):
        a host label holding a ``{s}`` subdomain placeholder becomes ``*``."""
        sources = []
        for layer in self.tile_layers():
            scheme, _, rest = layer["tiles"].partition("://")
            host = rest.split("/", 1)[0].split("?", 1)[0]
            labels = host.split(".")
            templated = [i for i, label in enumerate(labels) if "{" in label]
            if templated:
                labels = ["*", *labels[templated[-1] + 1 :]]
            source = f"{scheme}://{'.'.join(labels)}"
            if source not in sources:
                sources.append(source)
        return sources

    def allowed_urls(self) -> list[str]:
        """Prefixes of the external URLs the page may name: the tile templates (up to their
        first ``&``, which the page writes escaped)."""
        return [layer["tiles"].split("&")[0] for layer in self.tile_layers()]


@dataclass(frozen=True)
class CategoryOption:
    """A catalogue category for the filter's select."""

    code: str
    name: str
    major_code: str
    major_name: str
    family: str = "event"

    @property
    def major_prefix(self) -> str:
        """The code prefix of its major class (``01``, or ``B01`` for components)."""
        return self.code[:-2]


@dataclass(frozen=True)
class PageOptions:
    """Everything the page shows, as plain data.

    ``bounds`` (west, south, east, north) is the area the map opens on, in the base map's
    datum; ``grid_name`` names the filter's grid in the note; ``status_labels`` names the
    open statuses (default: the catalogue's); ``hotspot_kinds`` lists ``(key, name)`` in legend
    order. ``locale`` (``zh_CN`` or ``en``) is the page's language, ``timezone`` the city's.
    """

    bounds: tuple[float, float, float, float]
    filter: PageFilter
    categories: Sequence[CategoryOption] = ()
    hotspot_kinds: Sequence[tuple[str, str]] = ()
    status_labels: Mapping[str, str] = field(default_factory=dict)
    grid_name: str | None = None
    campaign_name: str | None = None
    basemap: BaseMap = field(default_factory=BaseMap)
    heat_url: str = "/api/heat"
    # choropleths of unit grids come as vector tiles from here (None: one GeoJSON each)
    heat_tiles_url: str | None = "/tiles/heat"
    assessment_url: str = "/api/assessment/map"
    assessment_level: str = "community"
    tiles_url: str = "/tiles"
    hotspots_url: str = "/api/hotspots"
    page_url: str = "/"
    title: str | None = None  # None: the catalogue's "citygrid dispatcher map"
    account: Account | None = None
    locale: str = DEFAULT_LOCALE
    timezone: str = DEFAULT_TIMEZONE

    @property
    def messages(self) -> Messages:
        """The page's texts and formats."""
        return messages(self.locale, self.timezone)

    @property
    def page_title(self) -> str:
        """The title given, else the catalogue's in the page's language."""
        return self.title or self.messages.gettext("citygrid dispatcher map")

    def switch_url(self) -> str:
        """This page (its filter) in the other language."""
        flt = self.filter
        return _url(
            self.page_url,
            "",
            {
                "from": flt.first_day.isoformat(),
                "to": flt.last_day.isoformat(),
                "category": flt.category,
                "grid": flt.grid,
                "campaign": None if flt.campaign is None else str(flt.campaign),
                "lang": self.messages.other,
            },
        )

    def __post_init__(self) -> None:
        west, south, east, north = self.bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ValueError(f"bounds must be (west, south, east, north) in degrees: {self.bounds}")


def dispatcher_page(options: PageOptions, nonce: str = "") -> str:
    """The dispatcher's map page as one HTML string (assets from ``/static``); its inline
    scripts carry ``nonce`` (the Content-Security-Policy's) when one is given."""
    m = _map(options)
    west, south, east, north = options.bounds
    # the filter panel sits on the left, the layer control and legends on the right; fitted
    # before any layer is added, so the tile layers ask only for the tiles of this view (not
    # first those of the initial zoom)
    m.fit_bounds(
        [[south, west], [north, east]], padding_top_left=(330, 10), padding_bottom_right=(340, 10)
    )
    for kind in LAYER_TITLES:
        layer = _layer(kind, options)
        if layer is not None:
            layer.add_to(m)
    _filter_panel(options).add_to(m)
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    _LocalControls().add_to(m)
    html = render_offline(m, allowed_urls=options.basemap.allowed_urls())
    # branca writes a bare <html>: say the page's language (fonts, screen readers, translators)
    html = html.replace("<html>", f'<html lang="{options.messages.html_lang}">', 1)
    return with_nonce(html, nonce) if nonce else html


def error_page(
    status: int,
    message: str,
    field: str | None = None,
    back: str = "/",
    lang: str = DEFAULT_LOCALE,
    switch: str | None = None,
) -> str:
    """A small HTML page for a refused request: the status, the message (already in
    ``lang``) and the field; ``switch`` is the same request in the other language."""
    tr = messages(lang)
    _ = tr.gettext
    reasons = {
        400: N_("Bad request"),
        403: N_("Not allowed"),
        404: N_("Not found"),
        422: N_("Cannot show this"),
    }
    reason = html.escape(_(reasons.get(status, N_("Error"))))
    where = (
        f"<p>{html.escape(_('Parameter:'))} <code>{html.escape(field)}</code></p>" if field else ""
    )
    other = (
        f'<p class="citygrid-lang"><a href="{html.escape(switch)}" '
        f'lang="{tr.other_html_lang}">{html.escape(tr.other_label)}</a></p>'
        if switch
        else ""
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{tr.html_lang}"><head><meta charset="utf-8">'
        f"<title>{status} {reason} — citygrid</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{RUNTIME_CSS[1]}"></head>'
        f'<body><main class="citygrid-error-page"><h1>{status} {reason}</h1>'
        f'<p class="citygrid-error-message">{html.escape(message)}</p>{where}'
        f'<p><a href="{html.escape(back)}">{html.escape(_("Back to the map"))}</a></p>'
        f"{other}</main></body></html>"
    )


class _LocalControls(MacroElement):
    """Leaflet's attribution prefix ("Leaflet" and a flag) replaced by "citygrid", so the
    attribution names citygrid and the base map's provider (its tile layer's ``attr``) only;
    and a metric scale bar (Leaflet's default adds feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        {{ this._parent.get_name() }}.attributionControl.setPrefix("citygrid");
        L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {%- endmacro %}
        """
    )


# -- building blocks ---------------------------------------------------------------------------
def _map(options: PageOptions) -> folium.Map:
    west, south, east, north = options.bounds
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=13,
        tiles=None,
        max_zoom=19,
        control_scale=False,  # metric only: _LocalControls
    )
    # only Leaflet: the page uses no folium marker, popup or Bootstrap element
    leaflet_js = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"
    leaflet_css = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"
    assert leaflet_js in LOCAL_BY_URL and leaflet_css in LOCAL_BY_URL
    m.default_js = [("leaflet", leaflet_js)]
    m.default_css = [("leaflet_css", leaflet_css)]
    root = cast(Figure, m.get_root())
    root.title = options.page_title
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    # the texts of dispatcher.js, read before any layer is made
    root.header.add_child(
        Element(catalogue_script(options.messages, ANSWER_TEXTS)), name="citygrid_i18n"
    )
    for spec in options.basemap.tile_layers():
        folium.TileLayer(**spec, name="base map", overlay=False, control=False).add_to(m)
    return m


def _url(base: str, path: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{base.rstrip('/')}/{path}" if path else base
    return url + (f"?{query}" if query else "")


# Heat layers drawn as GeoJSON: key → (path under the heat URL, extra query, drawing options).
_GEOJSON_HEAT: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "density": ("grids", {}, {"popup": GRID_POPUP, "stroke": "#7f7f7f", "weight": 0.5}),
    "per_patrol_hour": (
        "grids",
        {"per": "patrol_hour"},
        {"popup": GRID_POPUP, "stroke": "#7f7f7f", "weight": 0.5},
    ),
    "hexbins": ("hexbins", {}, {"popup": HEXBIN_POPUP, "stroke": "#ffffff", "weight": 0.5}),
    "gi": ("gi", {}, {"popup": GI_POPUP, "stroke": "#999999", "weight": 0.4}),
    "coverage": (
        "coverage",
        {"metric": "share"},
        {"popup": COVERAGE_POPUP, "stroke": "#999999", "weight": 0.4},
    ),
    "since": (
        "coverage",
        {"metric": "since"},
        {"popup": COVERAGE_POPUP, "stroke": "#999999", "weight": 0.4},
    ),
    "blind": (
        "blind",
        {},
        {"popup": BLIND_POPUP, "stroke": "#67000d", "weight": 1.2, "fill_opacity": 0.75},
    ),
}


# heat layers with one feature per unit grid: drawn from /tiles/heat (service.maps.heattiles)
_TILED_HEAT = frozenset({"grids", "gi", "coverage", "blind"})


def _layer(kind: str, options: PageOptions) -> Any:
    """One layer of the page by its key in :data:`LAYER_TITLES` (heat layers are radio)."""
    tr = options.messages
    title = tr.gettext(LAYER_TITLES[kind])
    datum = {"datum": options.basemap.datum} if options.basemap.datum != "wgs84" else {}
    flt = {**options.filter.query(), **datum}
    show = kind == DEFAULT_HEAT

    def heat(layer: str, **extra: str) -> str:
        return _url(options.heat_url, layer, {**flt, **extra})

    radio: dict[str, Any] = {"overlay": False, "show": show, "legend_order": 0}  # legend first
    if kind in _GEOJSON_HEAT:
        path, query, style = _GEOJSON_HEAT[kind]
        style = {**style, "popup": _popup(style["popup"], tr)}
        if path in _TILED_HEAT and options.heat_tiles_url is not None:
            # tiles carry each grid's values; the legend is the stored layer's (one request)
            tiles = _url(options.heat_tiles_url, f"{path}/{{z}}/{{x}}/{{y}}.mvt", {**flt, **query})
            return HeatTiles(
                tiles,
                title,
                legend_url=heat(path, **query, features="false"),
                popup=style["popup"],
                stroke=style["stroke"],
                weight=style["weight"],
                fill_opacity=style.get("fill_opacity", 0.7),
                **radio,
            )
        return RemoteGeoJson(heat(path, **query), title, **style, **radio)
    if kind in ("grades", "red_yellow"):
        # the month of the filter's last day, community grids (the peer groups of a street)
        month = {
            "period": options.filter.last_day.strftime("%Y-%m"),
            "level": options.assessment_level,
            "by": "grade" if kind == "grades" else "list",
            **datum,
        }
        return RemoteGeoJson(
            _url(options.assessment_url, "", month),
            title,
            popup=_popup(ASSESSMENT_POPUP, tr),
            stroke="#525252",
            weight=0.8,
            **radio,
        )
    if kind in ("kde", "tracks"):
        return RemoteImageOverlay(heat(kind), title, **radio)
    if kind == "no_heat":
        return NoLayer(title, show=False)
    if kind == "boundaries":
        return GridBoundaryTiles(
            _url(options.tiles_url, "grids/{z}/{x}/{y}.mvt", datum),
            title,
            level_styles=LEVEL_STYLES,
            legend=_boundary_legend(tr),
        )
    if kind == "hotspots":
        return _hotspots(options, title, datum)
    if kind == "cases":
        only = options.filter
        cases_filter = {
            "category": only.category,
            "grid": only.grid,
            "campaign": None if only.campaign is None else str(only.campaign),
        }
        labels = {
            **{s: tr.gettext(msgid) for s, msgid in STATUS_TITLES.items()},
            **options.status_labels,
        }
        return CaseTiles(
            _url(options.tiles_url, "cases/{z}/{x}/{y}.mvt", {**cases_filter, **datum}),
            title,
            status_colors=STATUS_COLOURS,
            status_labels=labels,
            overdue_color=OVERDUE_COLOUR,
            cluster_color=CLUSTER_COLOUR,
            cluster_overdue_color=CLUSTER_OVERDUE_COLOUR,
            popup=_popup(CASE_POPUP, tr),
            legend=_case_legend(labels, tr),
            show=False,  # thousands of points would hide the heat layer; one click away
        )
    raise KeyError(kind)


def _hotspots(options: PageOptions, title: str, datum: Mapping[str, str]) -> RemoteGeoJson:
    colours = {
        key: KIND_PALETTE[i % len(KIND_PALETTE)] for i, (key, _) in enumerate(options.hotspot_kinds)
    }
    names = dict(options.hotspot_kinds)
    tr = options.messages
    legend = {
        "title": tr.gettext("Hotspots by kind (dashed: influence zone)"),
        "rows": [{"color": colours[k], "label": names[k]} for k in colours],
    }
    active = datetime.combine(options.filter.last_day, time(12)).isoformat()
    return RemoteGeoJson(
        _url(options.hotspots_url, "", {"zones": "true", "active_at": active, **datum}),
        title,
        popup=_popup(HOTSPOT_POPUP, tr),
        color_by=("kind", colours),
        lookups={"kind": names},
        zone_property="zone",
        weight=2.5,
        fill_opacity=0.35,
        legend=legend,
        pane="citygridHotspots",
        show=True,
    )


def _boundary_legend(tr: Messages) -> dict[str, Any]:
    rows = [
        {
            "color": style["color"],
            "label": tr.gettext(label),
            "shape": "dash" if "dashArray" in style else "line",
            "width": max(1, round(style["weight"])),
        }
        for label, style in (
            (N_("district"), LEVEL_STYLES["district"]),
            (N_("street (from zoom 10)"), LEVEL_STYLES["street"]),
            (N_("community (from zoom 13)"), LEVEL_STYLES["community"]),
            (N_("unit grid (from zoom 15)"), LEVEL_STYLES["unit"]),
        )
    ]
    return {"title": tr.gettext("Grid boundaries"), "rows": rows}


def _case_legend(labels: Mapping[str, str], tr: Messages) -> dict[str, Any]:
    _ = tr.gettext
    rows = [
        {"color": colour, "label": labels.get(status, status), "shape": "circle"}
        for status, colour in STATUS_COLOURS.items()
    ]
    rows += [
        {"color": OVERDUE_COLOUR, "label": _("overdue"), "shape": "circle"},
        {"color": CLUSTER_COLOUR, "label": _("cluster (number of cases)"), "shape": "circle"},
        {
            "color": CLUSTER_OVERDUE_COLOUR,
            "label": _("cluster with overdue cases"),
            "shape": "circle",
        },
    ]
    return {"title": _("Open cases now (points from zoom 14)"), "rows": rows}


def _filter_panel(options: PageOptions) -> FilterPanel:
    flt = options.filter
    tr = options.messages
    _ = tr.gettext
    choices = _category_choices(options.categories, tr)
    names = {c.value: c.label for c in choices}
    if flt.category and flt.category not in names:
        choices.append(Choice(flt.category, f"{flt.category} ({_('code prefix')})", "other"))
        names[flt.category] = choices[-1].label
    grid = flt.grid and (f"{flt.grid} {options.grid_name}" if options.grid_name else flt.grid)
    note = [
        (_("Cases reported"), tr.period(flt.first_day, flt.last_day)),
        (_("Category"), names[flt.category] if flt.category else _("all categories")),
        (_("Area"), grid or _("whole city")),
        (_("Open cases"), _("as of now")),
    ]
    if flt.campaign is not None:
        note.append((_("Campaign"), f"{flt.campaign} {options.campaign_name or ''}".strip()))
    note = [(_("{label}:", label=label), value) for label, value in note]
    return FilterPanel(
        first_day=flt.first_day.isoformat(),
        last_day=flt.last_day.isoformat(),
        category=flt.category,
        grid=flt.grid,
        categories=choices,
        note=note,
        title=options.page_title,
        action=options.page_url,
        account=options.account,
        messages=tr,
        language=(tr.other_label, options.switch_url(), tr.other_html_lang),
    )


def _category_choices(categories: Sequence[CategoryOption], tr: Messages) -> list[Choice]:
    """Per major class: the whole class (its prefix), then each category."""
    _ = tr.gettext
    choices: list[Choice] = []
    seen: set[str] = set()
    for c in sorted(categories, key=lambda c: c.code):
        family = _("component") if c.family == "component" else _("event")
        group = f"{c.major_prefix} {c.major_name} ({family})"
        if c.major_prefix not in seen:
            seen.add(c.major_prefix)
            label = f"{c.major_prefix} {c.major_name} ({_('all')})"
            choices.append(Choice(c.major_prefix, label, group))
        choices.append(Choice(c.code, f"{c.code} {c.name}", group))
    return choices
