"""Static heat maps for reports: a PNG drawn with matplotlib and a self-contained HTML page.

Input is a heat layer as ``/api/heat/{layer}`` answers it (a FeatureCollection whose features
carry ``properties.fill`` and whose collection carries ``legend``, or an ``ImageOverlay`` with a
PNG data URL and its bounds) plus, optionally, outlines to draw over a surface (unit grids).
Output is bytes or a string; nothing here reads a database.

The HTML page embeds the data and inlines every script, stylesheet and stylesheet image, so it
opens from a file or an e-mail attachment with no network at all.
"""

from __future__ import annotations

import base64
import io
import math
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import folium
import numpy as np
import shapely
from branca.element import Element
from branca.element import Figure as Page
from folium.elements import JSCSSMixin
from folium.template import Template
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from PIL import Image

from layers.assets import STATIC_DIR, STATIC_URL, check_offline, localize
from layers.remote import RUNTIME_CSS, RUNTIME_JS, legend_json

__all__ = ["POPUP_FIELDS", "StaticLegend", "heat_html", "heat_png", "inline_assets", "layer_bounds"]

MAX_PIXELS = 8000

# properties a click shows in the HTML page, per heat layer
POPUP_FIELDS: dict[str, tuple[str, ...]] = {
    "grids": (
        "code",
        "name",
        "responsible_unit",
        "responsible_person",
        "responsible_phone",
        "cases",
        "per_km2",
        "per_patrol_hour",
        "open",
        "overdue",
        "covered_share",
        "visits",
    ),
    "hexbins": ("count",),
    "gi": ("code", "class", "value", "z", "p"),
    "coverage": ("code", "covered_share", "visits", "value"),
    "blind": ("code", "cases", "patrol_hours", "cases_per_patrol_hour"),
}


class StaticLegend(JSCSSMixin):
    """A legend control with fixed content (the map's data is embedded, not fetched)."""

    default_js = [RUNTIME_JS]
    default_css = [RUNTIME_CSS]

    _template = Template(
        """
        {% macro script(this, kwargs) -%}
        L.Citygrid.legends({{ this._parent.get_name() }}).show(
            {{ this.key|tojson }}, {{ this.legend|tojson }}
        );
        {%- endmacro %}
        """
    )

    def __init__(self, legend: Mapping[str, Any], key: str = "legend") -> None:
        super().__init__()
        self._name = "StaticLegend"
        self.key = key
        self.legend = legend_json(legend)


def layer_bounds(
    layer: Mapping[str, Any], outlines: Mapping[str, Any] | None = None
) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the layer's features or image and the outlines."""
    boxes = []
    if layer.get("type") == "ImageOverlay":
        (south, west), (north, east) = layer["bounds"]
        boxes.append((west, south, east, north))
    for collection in (layer if layer.get("type") == "FeatureCollection" else None, outlines):
        if collection and collection.get("features"):
            geoms = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
            boxes.append(tuple(shapely.total_bounds(np.asarray(geoms, dtype=object))))
    if not boxes:
        raise ValueError("the layer has nothing to draw (no features, no image)")
    b = np.asarray(boxes, dtype=float)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


# -- PNG ------------------------------------------------------------------------------------------
def heat_png(
    layer: Mapping[str, Any],
    *,
    title: str,
    subtitle: str = "",
    outlines: Mapping[str, Any] | None = None,
    size: tuple[int, int] = (1600, 1200),
    dpi: int = 100,
) -> bytes:
    """The layer drawn in lon/lat (aspect corrected for latitude), with a title and legend.

    Polygons are filled with their ``fill``; an image layer is drawn under ``outlines``.
    The PNG is exactly ``size`` pixels (width, height).
    """
    width, height = size
    if not (100 <= width <= MAX_PIXELS and 100 <= height <= MAX_PIXELS):
        raise ValueError(f"size must be between 100 and {MAX_PIXELS} pixels each way")
    west, south, east, north = layer_bounds(layer, outlines)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.04, 0.72, 0.84))
    ax.set_axis_off()
    if layer.get("type") == "ImageOverlay":
        ax.imshow(
            _decode_png(layer["image"]),
            extent=(west, east, south, north),
            origin="upper",
            interpolation="bilinear",
            zorder=1,
        )
        if outlines:
            _draw(ax, outlines.get("features", []), fill=False, edge="#555555", width=0.3)
    else:
        if outlines:
            _draw(ax, outlines.get("features", []), fill=False, edge="#bbbbbb", width=0.3)
        _draw(ax, layer.get("features", []), fill=True, edge="#666666", width=0.2)
    pad_x, pad_y = (east - west) * 0.02, (north - south) * 0.02
    ax.set_xlim(west - pad_x, east + pad_x)
    ax.set_ylim(south - pad_y, north + pad_y)
    ax.set_aspect(1.0 / math.cos(math.radians((south + north) / 2)))
    fig.suptitle(title, x=0.02, y=0.975, ha="left", fontsize=16, fontweight="bold")
    if subtitle:
        fig.text(0.02, 0.925, subtitle, ha="left", fontsize=11, color="#333333")
    legend = layer.get("legend")
    if legend:
        handles = [
            Patch(facecolor=row["color"], edgecolor="#666666", label=row["label"])
            for row in legend["rows"]
        ]
        fig.legend(
            handles=handles,
            title=legend["title"],
            loc="center left",
            bbox_to_anchor=(0.76, 0.5),
            frameon=False,
            fontsize=10,
            title_fontsize=11,
            alignment="left",
        )
    fig.text(0.98, 0.015, "lon/lat (WGS 84) · citygrid", ha="right", fontsize=8, color="#777")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _draw(ax: Any, features: Iterable[Mapping[str, Any]], *, fill: bool, edge: str, width: float):
    patches, colours = [], []
    for feature in features:
        geom = shapely.geometry.shape(feature["geometry"])
        colour = feature.get("properties", {}).get("fill", "#cccccc")
        for polygon in getattr(geom, "geoms", [geom]):
            if isinstance(polygon, shapely.Polygon) and not polygon.is_empty:
                patches.append(PathPatch(_polygon_path(polygon)))
                colours.append(colour)
    if not patches:
        return
    collection = PatchCollection(
        patches,
        facecolors=colours if fill else "none",
        edgecolors=edge,
        linewidths=width,
        zorder=2,
    )
    ax.add_collection(collection)


def _polygon_path(polygon: shapely.Polygon) -> MplPath:
    """A matplotlib path of the shell and holes (holes drawn by the even-odd of the rings)."""
    vertices, codes = [], []
    for ring in (polygon.exterior, *polygon.interiors):
        xy = np.asarray(ring.coords)
        vertices.append(xy)
        ring_codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
        ring_codes[0], ring_codes[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
        codes.append(ring_codes)
    return MplPath(np.concatenate(vertices), np.concatenate(codes))


def _decode_png(data_url: str) -> np.ndarray:
    head, _, payload = data_url.partition(",")
    if not head.startswith("data:image/png;base64"):
        raise ValueError("the image must be a base64 PNG data URL")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGBA"))


# -- HTML -----------------------------------------------------------------------------------------
def heat_html(
    layer: Mapping[str, Any],
    *,
    title: str,
    subtitle: str = "",
    outlines: Mapping[str, Any] | None = None,
    popup_fields: Sequence[str] = (),
) -> str:
    """A folium page with the layer's data embedded and every asset inlined (works offline,
    from a file). ``popup_fields`` are properties shown when a feature is clicked."""
    west, south, east, north = layer_bounds(layer, outlines)
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], tiles=None, max_zoom=19)
    leaflet = "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/"
    m.default_js = [("leaflet", leaflet + "leaflet.js")]  # no folium element needs more
    m.default_css = [("leaflet_css", leaflet + "leaflet.css")]
    root = cast(Page, m.get_root())
    root.title = title
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="favicon")
    heading = f"<b>{_escape(title)}</b>" + (f"<br>{_escape(subtitle)}" if subtitle else "")
    root.html.add_child(
        Element(
            '<div style="position:absolute;z-index:1000;top:10px;left:60px;background:#fff;'
            "padding:6px 10px;border-radius:4px;box-shadow:0 1px 5px rgba(0,0,0,.35);"
            f'font:14px system-ui,sans-serif">{heading}</div>'
        ),
        name="heading",
    )
    if layer.get("type") == "ImageOverlay":
        (s, w), (n, e) = layer["bounds"]
        folium.raster_layers.ImageOverlay(
            layer["image"], bounds=[[s, w], [n, e]], opacity=0.8, name="surface"
        ).add_to(m)
    if outlines and outlines.get("features"):
        folium.GeoJson(
            dict(outlines),
            name="grids",
            style_function=lambda f: {"fill": False, "color": "#666666", "weight": 0.5},
        ).add_to(m)
    if layer.get("type") == "FeatureCollection":
        fields = [f for f in popup_fields if _has_field(layer, f)]
        folium.GeoJson(
            {"type": "FeatureCollection", "features": layer.get("features", [])},
            name="heat",
            style_function=_fill_style,
            popup=folium.GeoJsonPopup(fields=fields) if fields else None,
        ).add_to(m)
    if layer.get("legend"):
        StaticLegend(layer["legend"]).add_to(m)
    m.fit_bounds([[south, west], [north, east]])
    localize(m)
    page = m.get_root().render()
    check_offline(page)  # before inlining: the page links nothing outside
    return inline_assets(page)


def _fill_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    fill = feature["properties"].get("fill", "#cccccc")
    return {"fillColor": fill, "fillOpacity": 0.75, "color": "#666666", "weight": 0.3}


def _has_field(layer: Mapping[str, Any], name: str) -> bool:
    features = layer.get("features") or []
    return bool(features) and name in features[0].get("properties", {})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SCRIPT = re.compile(r'<script src="([^"]+)"></script>')
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)"/?>')
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


def inline_assets(html: str, static_dir: Path = STATIC_DIR, static_url: str = STATIC_URL) -> str:
    """``html`` with every ``<script src>`` and stylesheet under ``static_url`` inlined, and
    the files a stylesheet names (images, fonts) turned into data URLs."""
    prefix = static_url.rstrip("/") + "/"

    def local(url: str) -> Path:
        if not url.startswith(prefix):
            raise ValueError(f"{url} is not a local asset under {prefix}")
        path = (static_dir / url.removeprefix(prefix)).resolve()
        if static_dir.resolve() not in path.parents or not path.is_file():
            raise ValueError(f"{url} is not a vendored file")
        return path

    def script(match: re.Match[str]) -> str:
        code = local(match.group(1)).read_text(encoding="utf-8")
        return "<script>" + code.replace("</script", "<\\/script") + "</script>"

    def stylesheet(match: re.Match[str]) -> str:
        path = local(match.group(1))
        css = _CSS_URL.sub(lambda u: _data_url(u, path.parent), path.read_text(encoding="utf-8"))
        return "<style>" + css.replace("</style", "<\\/style") + "</style>"

    html = _SCRIPT.sub(script, html)
    return _STYLESHEET.sub(stylesheet, html)


def _data_url(match: re.Match[str], folder: Path) -> str:
    ref = match.group(1)
    if ref.startswith(("data:", "#")):
        return match.group(0)
    path = (folder / ref.split("?")[0].split("#")[0]).resolve()
    if not path.is_file():
        # a stylesheet may name files that are not vendored (old-browser fallbacks): drop them
        return "url(data:,)"
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"url(data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"
