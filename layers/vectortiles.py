"""Vector tile layers of the dispatcher map (Leaflet.VectorGrid, protobuf tiles from ``/tiles``).

VectorGrid 1.3.0 is drawn with its SVG renderer; its canvas renderer calls
``L.DomEvent.fakeStop``, which Leaflet 1.8 removed, and ``dispatcher.js`` (loaded first)
defines a shim for it anyway. Heat layers (choropleths of unit grids) come as tiles too,
drawn on canvas (the shim makes that renderer work; 30,000 grids as SVG paths cost seconds):
each feature carries the layer's values and ``fill`` colour, and the legend is fetched once
from the layer's legend URL. Clustering of open cases happens on the server (the ``cases``
tiles carry ``case_clusters`` below zoom 14): the browser only draws circles sized by count
with the count as a label, and single cases from zoom 14 on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Unpack

from folium.elements import JSCSSMixin
from folium.map import Layer

from layers.assets import STATIC_URL, VECTORGRID
from layers.remote import (
    RUNTIME_CSS,
    RUNTIME_JS,
    LayerOptions,
    check_colour,
    check_template,
    check_url,
    layer_script,
    legend_json,
)
from layers.styles import Legend

__all__ = ["CaseTiles", "GridBoundaryTiles", "HeatTiles", "TileOptions"]

VECTORGRID_JS = (
    "vectorGrid",
    f"{STATIC_URL}/{VECTORGRID.path('Leaflet.VectorGrid.bundled.min.js')}",
)


def _check_tile_url(url: str) -> str:
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        raise ValueError("a tile URL must be a path on this service such as /tiles/grids/…")
    for part in ("{z}", "{x}", "{y}"):
        if part not in url:
            raise ValueError(f"a tile URL template needs {{z}}, {{x}} and {{y}}; {part} is missing")
    return url


class TileOptions(LayerOptions, total=False):
    """:class:`layers.remote.LayerOptions` of the tile layers, plus ``max_native_zoom``: the
    deepest zoom the tiles are fetched at (deeper zooms stretch them)."""

    max_native_zoom: int


class _VectorTiles(JSCSSMixin, Layer):
    # the runtime first, so its fakeStop shim is defined before VectorGrid loads
    default_js = [RUNTIME_JS, VECTORGRID_JS]
    default_css = [RUNTIME_CSS]
    default_pane: ClassVar[str]  # each layer draws in its own pane unless told otherwise

    def __init__(
        self,
        url: str,
        name: str,
        *,
        legend: Legend | Mapping[str, Any] | None = None,
        pane: str | None = None,
        max_native_zoom: int = 20,
        overlay: bool = True,
        control: bool = True,
        show: bool = True,
    ) -> None:
        if not name:
            raise ValueError("a layer needs a name (it is its title in the layer control)")
        if not 0 <= max_native_zoom <= 22:
            raise ValueError("max_native_zoom must be between 0 and 22")
        super().__init__(name=name, overlay=overlay, control=control, show=show)
        self.url = _check_tile_url(url)
        self.options: dict[str, Any] = {
            "title": name,
            "pane": self.default_pane if pane is None else pane,
            "legend": legend_json(legend),
            "maxNativeZoom": max_native_zoom,
        }


class GridBoundaryTiles(_VectorTiles):
    """Grid boundaries from the ``grids`` tiles: one line style per level.

    The tiles choose the levels by zoom (district and street lines below zoom 13, community
    and unit grids from zoom 15; see ``service/tiles.py``); ``level_styles`` maps a level to
    Leaflet path options (``color``, ``weight``, ``dashArray``, ``opacity``). ``**layer``
    takes :class:`TileOptions` (shown at first by default).
    """

    default_pane = "citygridBoundaries"

    _template = layer_script("L.Citygrid.gridBoundaries")

    def __init__(
        self,
        url: str,
        name: str,
        *,
        level_styles: Mapping[str, Mapping[str, Any]],
        **layer: Unpack[TileOptions],
    ) -> None:
        super().__init__(url, name, **layer)
        self._name = "GridBoundaryTiles"
        allowed = {"color", "weight", "dashArray", "opacity"}
        styles: dict[str, dict[str, Any]] = {}
        for level, style in level_styles.items():
            unknown = set(style) - allowed
            if unknown:
                raise ValueError(f"unknown style option(s) for {level}: {', '.join(unknown)}")
            if "color" in style:
                check_colour(style["color"], f"colour of level {level!r}")
            styles[level] = dict(style)
        self.options["levelStyles"] = styles


class CaseTiles(_VectorTiles):
    """Open cases from the ``cases`` tiles: clusters below ``points_from_zoom``, then points.

    Points are filled by ``status_colors[status]`` (red ``overdue_color`` when overdue) and
    open ``popup`` (a template over ``id, category_code, status, status_label, overdue, late,
    reported_at``) on click; a cluster circle grows with its ``count``, shows it as a label,
    is ``cluster_overdue_color`` when any of its cases is overdue and zooms in on click.
    ``**layer`` takes :class:`TileOptions` (shown at first by default).
    """

    default_pane = "citygridCases"

    _template = layer_script("L.Citygrid.caseTiles")

    def __init__(
        self,
        url: str,
        name: str,
        *,
        status_colors: Mapping[str, str],
        status_labels: Mapping[str, str] | None = None,
        overdue_color: str = "#e31a1c",
        cluster_color: str = "#3182bd",
        cluster_overdue_color: str = "#de2d26",
        popup: str | None = None,
        points_from_zoom: int = 14,
        **layer: Unpack[TileOptions],
    ) -> None:
        super().__init__(url, name, **layer)
        self._name = "CaseTiles"
        if not status_colors:
            raise ValueError("status_colors needs a colour per open status")
        self.options.update(
            {
                "statusColors": {
                    s: check_colour(c, f"colour of status {s!r}") for s, c in status_colors.items()
                },
                "statusLabels": dict(status_labels or {}),
                "overdueColor": check_colour(overdue_color, "overdue_color"),
                "clusterColor": check_colour(cluster_color, "cluster_color"),
                "clusterOverdueColor": check_colour(cluster_overdue_color, "cluster_overdue_color"),
                "popup": check_template(popup, "popup"),
                "pointsFromZoom": points_from_zoom,
            }
        )


class HeatTiles(_VectorTiles):
    """A heat layer of unit grids from ``/tiles/heat/{layer}`` tiles: each grid filled with
    its ``fill`` property, outlined in ``stroke`` (default: the fill), ``popup`` (a template
    over the feature's properties) on click. The legend is fetched from ``legend_url`` (an
    ``/api/heat/{layer}?features=false`` answer) when the layer is first shown, and listed by
    ``legend_order``. ``**layer`` takes :class:`TileOptions` (hidden at first by default).
    """

    default_pane = "overlayPane"  # under the boundaries, hotspots and cases

    _template = layer_script("L.Citygrid.heatTiles")

    def __init__(
        self,
        url: str,
        name: str,
        *,
        legend_url: str,
        popup: str | None = None,
        stroke: str | None = None,
        weight: float = 0.5,
        fill_opacity: float = 0.7,
        fallback: str = "#888888",
        legend_order: int = 1,
        **layer: Unpack[TileOptions],
    ) -> None:
        layer.setdefault("show", False)
        super().__init__(url, name, **layer)
        self._name = "HeatTiles"
        if not 0.0 <= fill_opacity <= 1.0:
            raise ValueError("fill_opacity must be between 0 and 1")
        if weight < 0:
            raise ValueError("weight must be >= 0")
        self.options.update(
            {
                "legendUrl": check_url(legend_url, "legend_url"),
                "legendOrder": legend_order,
                "popup": check_template(popup, "popup"),
                "stroke": None if stroke is None else check_colour(stroke, "stroke"),
                "weight": weight,
                "fillOpacity": fill_opacity,
                "defaultFill": check_colour(fallback, "fallback"),
                # 512-pixel tiles, each the server's tile one zoom out: a quarter of the
                # requests for a view (52 → ~15 on the large city's dispatcher page)
                "tileSize": 512,
                "tileZoomOffset": -1,
            }
        )
