"""The brief's charts and map as PNG bytes (matplotlib, Agg, a CJK font from the system).

Figures are built with ``matplotlib.figure.Figure`` (never pyplot's global state), so the
scheduler's thread and request threads can draw at once.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# the CJK fonts looked for, best first (fonts-noto-cjk, fonts-wqy-zenhei)
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
)
DPI = 96


@lru_cache(maxsize=1)
def _cjk() -> tuple[str, str] | None:
    """(family, file) of the first CJK font installed, or ``None`` (Chinese would be drawn
    as boxes)."""
    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FONTS:
        if family in by_name:
            return family, by_name[family]
    return None


def cjk_font() -> str | None:
    """The family name of the CJK font the documents use (``None``: none installed)."""
    found = _cjk()
    return found[0] if found else None


def _figure(width: float, height: float, left: float = 0.08) -> Figure:
    # fixed margins: the tight layout engine doubles the time of a small chart
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=left, right=0.97, top=0.86, bottom=0.16)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _font() -> dict[str, Any]:
    # the font by its file: looking a family up by name warns and searches on every call
    found = _cjk()
    return {"fontproperties": font_manager.FontProperties(fname=found[1])} if found else {}


def bars(labels: list[str], values: list[float], title: str, colour: str = "#c0392b") -> bytes:
    """A bar chart with the values written on the bars."""
    fig = _figure(6.0, 2.8)
    ax = fig.add_subplot()
    xs = range(len(labels))
    ax.bar(xs, values, color=colour, width=0.6)
    ax.set_xticks(list(xs), labels, **_font())
    ax.set_title(title, **_font())
    ax.spines[["top", "right"]].set_visible(False)
    for x, v in zip(xs, values, strict=True):
        ax.annotate(f"{v:g}", (x, v), ha="center", va="bottom", fontsize=9)
    ax.margins(y=0.2)
    return _png(fig)


def compare(labels: list[str], series: dict[str, list[float]], title: str) -> bytes:
    """Grouped bars: one group per label, one bar per series (this period and the others)."""
    fig = _figure(6.4, 3.0)
    ax = fig.add_subplot()
    n = max(len(series), 1)
    width = 0.8 / n
    colours = ("#c0392b", "#7f8c8d", "#bdc3c7")
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (n - 1) / 2) * width for x in range(len(labels))]
        ax.bar(xs, values, width=width, label=name, color=colours[i % len(colours)])
    ax.set_xticks(list(range(len(labels))), labels, **_font())
    ax.set_title(title, **_font())
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, prop=_font().get("fontproperties"))
    return _png(fig)


def shares(labels: list[str], values: list[float], title: str) -> bytes:
    """Horizontal bars of counts with their share of the total, largest on top."""
    fig = _figure(6.0, 0.45 * max(len(labels), 1) + 1.0, left=0.25)
    ax = fig.add_subplot()
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, values, color="#e67e22", height=0.6)
    ax.set_yticks(ys, labels, **_font())
    total = sum(values) or 1
    for y, v in zip(ys, values, strict=True):
        ax.annotate(f" {v:g}（{v / total:.0%}）", (v, y), va="center", fontsize=9, **_font())
    ax.set_title(title, **_font())
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(x=0.25)
    return _png(fig)


def heat_map(
    outlines: list[tuple[str, Any]],
    overlay: dict[str, Any] | None,
    title: str,
) -> bytes:
    """The scope's units (``(label, shapely geometry)`` in lon/lat) under the heat layer's
    kernel density PNG (``overlay``: the ``kde`` layer of :mod:`service.maps.heat`, or
    ``None`` when there were no cases)."""
    from PIL import Image

    fig = _figure(6.4, 5.0, left=0.02)
    ax = fig.add_subplot()
    if overlay is not None:
        raw = overlay["image"].split(",", 1)[1]
        image = Image.open(io.BytesIO(base64.b64decode(raw)))
        image.thumbnail((800, 800))  # the map is 15 cm wide: more pixels only cost time
        (south, west), (north, east) = overlay["bounds"]
        ax.imshow(image, extent=(west, east, south, north), origin="upper", zorder=2)
    for label, geom in outlines:
        parts = getattr(geom, "geoms", [geom])
        for part in parts:
            x, y = part.exterior.xy
            ax.plot(x, y, color="#34495e", linewidth=0.8, zorder=3)
        p = geom.representative_point()
        if len(outlines) <= 40:
            ax.annotate(label, (p.x, p.y), ha="center", fontsize=7, zorder=4, **_font())
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_axis_off()
    ax.set_title(title, **_font())
    return _png(fig)


def data_url(png: bytes) -> str:
    """``png`` as a data URL for the HTML rendering."""
    return "data:image/png;base64," + base64.b64encode(png).decode()
