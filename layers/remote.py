"""Map layers whose data the browser fetches from the service the first time they are shown.

The page itself stays light: it names a URL, and the layer fetches the aggregate (GeoJSON with a
``fill`` colour per feature and a ``legend``, or a PNG overlay with its bounds) when the
dispatcher switches it on. Each layer adds its legend to the map while it is on and reports
loading and failures in a status line. The JavaScript lives in
``layers/static/citygrid/dispatcher.js`` (``L.Citygrid``); these classes validate their options
and render one template each, in the style of folium's plugins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from layers.assets import STATIC_URL
from layers.styles import Legend

__all__ = [
    "RUNTIME_CSS",
    "RUNTIME_JS",
    "LayerOptions",
    "RemoteGeoJson",
    "RemoteImageOverlay",
    "RemoteOptions",
    "layer_script",
    "legend_json",
]

RUNTIME_JS = ("citygrid_dispatcher", f"{STATIC_URL}/citygrid/dispatcher.js")
RUNTIME_CSS = ("citygrid_dispatcher_css", f"{STATIC_URL}/citygrid/dispatcher.css")

POPUP_FORMATS = ("pct", "num", "yesno", "time", "tr")  # see C.format in dispatcher.js
_PLACEHOLDER = re.compile(r"\{(\w+)(?:\|(\w+))?\}")
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
LEGEND_SHAPES = ("box", "line", "dash", "circle")


def check_colour(value: str, what: str) -> str:
    """``value`` if it is a ``#rgb``/``#rrggbb`` colour, else ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or not _HEX_COLOUR.match(value):
        raise ValueError(f"{what} must be a colour like #a1b2c3, got {value!r}")
    return value


def check_template(template: str | None, what: str = "popup") -> str | None:
    """A popup/tooltip template: HTML with ``{field}`` or ``{field|pct|num|yesno}`` holes.

    The template is trusted HTML written by the page author; the values filled in are
    escaped by the browser code.
    """
    if template is None:
        return None
    if not template.strip():
        raise ValueError(f"{what} template is empty")
    for _field, fmt in _PLACEHOLDER.findall(template):
        if fmt and fmt not in POPUP_FORMATS:
            raise ValueError(
                f"{what} template uses unknown format {fmt!r}; formats are "
                + ", ".join(POPUP_FORMATS)
            )
    return template


def check_url(url: str, what: str = "url") -> str:
    """A URL on this service (``/…``): the page must not fetch data from elsewhere."""
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        raise ValueError(f"{what} must be a path on this service such as /api/heat/grids")
    return url


def legend_json(legend: Legend | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A legend as the browser code takes it: ``{"title", "rows": [{"color", "label"}]}``.

    Rows may carry ``shape`` (box, line, dash, circle) for lines and points.
    """
    if legend is None:
        return None
    body: dict[str, Any] = legend.as_json() if isinstance(legend, Legend) else dict(legend)
    if not isinstance(body.get("title"), str) or not isinstance(body.get("rows"), list | tuple):
        raise ValueError("a legend needs a title and a list of rows")
    rows = []
    for row in body["rows"]:
        check_colour(row.get("color"), "legend colour")
        shape = row.get("shape", "box")
        if shape not in LEGEND_SHAPES:
            raise ValueError(f"legend shape must be one of {', '.join(LEGEND_SHAPES)}")
        rows.append({**row, "label": str(row.get("label", "")), "shape": shape})
    return {"title": body["title"], "rows": rows}


def layer_script(factory: str) -> Template:
    """The one template of a citygrid layer: ``var <name> = <factory>(url, options);``.

    ``factory`` is the browser-side constructor (``L.Citygrid`` in ``dispatcher.js``), which
    fetches ``url`` and reads every option; the Python class only validates the options.
    """
    return Template(
        """
        {% macro script(this, kwargs) -%}
        var {{ this.get_name() }} = FACTORY(
            {{ this.url|tojson }}, {{ this.options|tojson }}
        );
        {%- endmacro %}
        """.replace("FACTORY", factory)
    )


class LayerOptions(TypedDict, total=False):
    """Keyword options every citygrid layer takes and hands to its base class unchanged.

    ``legend`` is shown while the layer is on (a fetched answer's own ``legend`` wins);
    ``pane`` is the Leaflet pane it is drawn in; ``overlay``, ``control`` and ``show`` are
    folium's layer-control flags (an overlay rather than a base layer, listed in the layer
    control, on when the page opens). Defaults are those of the layer's base class.
    """

    legend: Legend | Mapping[str, Any] | None
    pane: str | None
    overlay: bool
    control: bool
    show: bool


class RemoteOptions(LayerOptions, total=False):
    """:class:`LayerOptions` of the fetched layers, plus ``legend_order``: legends are listed
    by this number (then by when they arrived)."""

    legend_order: int


class _RemoteLayer(JSCSSMixin, Layer):
    """Common options of the fetched layers (name, pane, legend, control flags)."""

    default_js = [RUNTIME_JS]
    default_css = [RUNTIME_CSS]

    def __init__(
        self,
        url: str,
        name: str,
        *,
        legend: Legend | Mapping[str, Any] | None = None,
        legend_order: int = 1,
        pane: str | None = None,
        overlay: bool = True,
        control: bool = True,
        show: bool = False,
    ) -> None:
        if not name:
            raise ValueError("a layer needs a name (it is its title in the layer control)")
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self.url = check_url(url)
        self.options: dict[str, Any] = {
            "title": name,
            "legend": legend_json(legend),
            "legendOrder": legend_order,
        }
        if pane:
            self.options["pane"] = pane


class RemoteGeoJson(_RemoteLayer):
    """GeoJSON fetched from ``url``: each feature filled with ``properties.fill``.

    Parameters
    ----------
    url : str
        A path on this service answering a GeoJSON FeatureCollection (its ``legend``, when
        present, is shown while the layer is on; else ``legend``).
    name : str
        Title in the layer control, legend and status line.
    popup, tooltip : str, optional
        HTML templates with ``{field}`` / ``{field|pct}`` holes filled from the properties.
    color_by : (property, {value: colour}), optional
        Colour for features without ``fill`` (say hotspots by kind); ``fallback`` otherwise.
    lookups : {property: {value: label}}, optional
        Adds ``<property>_label`` to the properties for the templates.
    zone_property : str, optional
        A property holding a second geometry drawn as a dashed, click-through outline.
    stroke : str, optional
        Outline colour (default: the fill colour).
    **layer
        :class:`RemoteOptions` (legend, legend order, pane, layer-control flags; hidden at
        first by default).
    """

    _template = layer_script("new L.Citygrid.RemoteGeoJson")

    def __init__(
        self,
        url: str,
        name: str,
        *,
        popup: str | None = None,
        tooltip: str | None = None,
        color_by: tuple[str, Mapping[str, str]] | None = None,
        fallback: str = "#888888",
        lookups: Mapping[str, Mapping[str, str]] | None = None,
        zone_property: str | None = None,
        stroke: str | None = None,
        weight: float = 1.0,
        fill_opacity: float = 0.7,
        radius: float = 6.0,
        **layer: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(url, name, **layer)
        self._name = "RemoteGeoJson"
        if not 0.0 <= fill_opacity <= 1.0:
            raise ValueError("fill_opacity must be between 0 and 1")
        if weight < 0 or radius <= 0:
            raise ValueError("weight must be >= 0 and radius > 0")
        options: dict[str, Any] = {
            "popup": check_template(popup, "popup"),
            "tooltip": check_template(tooltip, "tooltip"),
            "defaultFill": check_colour(fallback, "fallback"),
            "stroke": None if stroke is None else check_colour(stroke, "stroke"),
            "weight": weight,
            "fillOpacity": fill_opacity,
            "radius": radius,
            "zoneProperty": zone_property,
            "lookups": {k: dict(v) for k, v in (lookups or {}).items()},
        }
        if color_by is not None:
            prop, colours = color_by
            options["colorBy"] = {
                "property": prop,
                "colors": {k: check_colour(c, f"colour of {k!r}") for k, c in colours.items()},
                "fallback": fallback,
            }
        self.options.update(options)


class RemoteImageOverlay(_RemoteLayer):
    """A PNG overlay fetched as JSON ``{"image": data-URL, "bounds": [[s, w], [n, e]]}``.

    Leaflet stretches the image over the bounds (``L.imageOverlay``); the answer's ``legend``
    is shown while the layer is on. ``**layer`` takes :class:`RemoteOptions`.
    """

    _template = layer_script("new L.Citygrid.RemoteImageOverlay")

    def __init__(
        self,
        url: str,
        name: str,
        *,
        opacity: float = 0.75,
        **layer: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(url, name, **layer)
        self._name = "RemoteImageOverlay"
        if not 0.0 <= opacity <= 1.0:
            raise ValueError("opacity must be between 0 and 1")
        self.options["opacity"] = opacity
