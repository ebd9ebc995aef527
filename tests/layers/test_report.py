"""Static heat maps: PNG pixels against the polygons' areas, and an HTML page that needs
no network."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import box, mapping

from layers.assets import STATIC_DIR, external_urls
from layers.report import heat_html, heat_png, inline_assets

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00ff00"
LEGEND = {"title": "Cases per km²", "rows": [{"color": RED, "label": "many"}]}


def collection(*cells: tuple[shapely.Geometry, str, str]) -> dict:
    return {
        "type": "FeatureCollection",
        "legend": LEGEND,
        "features": [
            {"type": "Feature", "geometry": mapping(g), "properties": {"code": c, "fill": f}}
            for g, c, f in cells
        ],
    }


# west cell twice the area of the east cell (same latitude band)
WEST = box(113.640, 34.745, 113.650, 34.750)
EAST = box(113.652, 34.745, 113.657, 34.750)
LAYER = collection((WEST, "41010500100101", RED), (EAST, "41010500100102", BLUE))


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def mask(img: np.ndarray, colour: str) -> np.ndarray:
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return np.all(img == rgb, axis=2)


def test_png_is_the_asked_size() -> None:
    for size in ((800, 500), (1234, 777)):
        png = heat_png(LAYER, title="t", size=size)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert Image.open(io.BytesIO(png)).size == size


def test_png_fills_each_polygon_with_its_colour_in_proportion_to_its_area() -> None:
    img = pixels(heat_png(LAYER, title="Cases per km²", subtitle="2026-11-16 – 22"))
    legend = mask(img[:, int(0.75 * img.shape[1]) :], RED)
    assert 0 < legend.sum() < 1000  # the legend swatch, right of the map
    img = img[:, : int(0.75 * img.shape[1])]  # the map alone
    red, blue = mask(img, RED), mask(img, BLUE)
    # same latitude band: pixel areas keep the ratio of the areas (shapely: exactly 2)
    assert red.sum() / blue.sum() == pytest.approx(WEST.area / EAST.area, rel=0.03)
    # west is drawn left of east, in the same rows
    (red_rows, red_cols), (blue_rows, blue_cols) = np.nonzero(red), np.nonzero(blue)
    assert red_cols.max() < blue_cols.min()
    assert abs(red_rows.mean() - blue_rows.mean()) < 2
    # the drawn cell keeps the ground's proportions: 0.010° × cos(lat) wide, 0.005° high
    width = red_cols.max() - red_cols.min() + 1
    height = red_rows.max() - red_rows.min() + 1
    expected = 0.010 * np.cos(np.radians(34.7475)) / 0.005
    assert width / height == pytest.approx(expected, rel=0.03)


def test_png_holes_stay_empty() -> None:
    ring = box(113.64, 34.74, 113.66, 34.76).difference(box(113.645, 34.745, 113.655, 34.755))
    img = pixels(heat_png(collection((ring, "1", RED)), title="t", size=(600, 600)))
    red = mask(img, RED)
    rows, cols = np.nonzero(red)
    centre = (int(rows.mean()), int(cols.mean()))
    assert not red[centre]  # the hole in the middle is not painted
    assert red.sum() > 0


def test_png_draws_a_surface_under_the_outlines() -> None:
    surface = Image.new("RGBA", (20, 10), (0, 255, 0, 255))
    buf = io.BytesIO()
    surface.save(buf, format="PNG")
    layer = {
        "type": "ImageOverlay",
        "image": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "bounds": [[34.745, 113.640], [34.750, 113.657]],
        "legend": {
            "title": "Cases per km² (kernel density)",
            "rows": [{"color": GREEN, "label": "x"}],
        },
    }
    outlines = collection((WEST, "a", RED), (EAST, "b", BLUE))
    img = pixels(heat_png(layer, title="kde", outlines=outlines, size=(900, 600)))
    assert mask(img, GREEN).sum() > 50_000
    assert mask(img, RED).sum() == 0  # outlines are lines, not fills
    # thin grey outlines (#555555) darken the surface where they cross it
    r, g = img[..., 0].astype(int), img[..., 1].astype(int)
    assert np.count_nonzero((r > 0) & (g < 255) & (g - r > 100)) > 500


def test_png_refuses_a_silly_size_and_an_empty_layer() -> None:
    with pytest.raises(ValueError, match="size"):
        heat_png(LAYER, title="t", size=(50, 50000))
    with pytest.raises(ValueError, match="nothing to draw"):
        heat_png({"type": "FeatureCollection", "features": []}, title="t")


SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def test_html_has_the_data_and_no_external_url() -> None:
    page = heat_html(
        LAYER, title="citygrid grids", subtitle="2026-11-16 – 2026-11-22", popup_fields=("code",)
    )
    assert "/static/" not in page
    assert not re.search(r"<script\s+src=|<link[^>]+stylesheet[^>]+href=", page)
    # outside the inlined libraries nothing names another host; the libraries are the
    # vendored files byte for byte (their own strings — an SVG namespace — load nothing)
    vendored = {p.read_text(encoding="utf-8") for p in STATIC_DIR.rglob("*.js")}
    outside = SCRIPT.sub(lambda m: "" if m.group(1) in vendored else m.group(0), page)
    outside = re.sub(r"/\*.*?\*/", "", outside, flags=re.S)  # stylesheet comments load nothing
    assert external_urls(outside) == []
    assert len(outside) < len(page) - 100_000  # Leaflet itself is inlined
    for url in re.findall(r"url\(([^)]*)\)", outside):
        assert url.strip("'\"").startswith(("data:", "#")), url  # inlined, or a fragment
    # the data: both codes with their fills, and the legend
    for code in ("41010500100101", "41010500100102"):
        assert code in page
    assert RED in page and BLUE in page
    assert "Cases per km" in page and "L.Citygrid.legends" in page


def test_inline_assets_refuses_files_outside_the_static_folder() -> None:
    with pytest.raises(ValueError, match="not a vendored file"):
        inline_assets('<script src="/static/../pyproject.toml"></script>')
    with pytest.raises(ValueError, match="not a local asset"):
        inline_assets('<script src="https://cdn.example/x.js"></script>')
