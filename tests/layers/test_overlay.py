"""The kernel density's PNG overlay, placed as Leaflet places it (linear in Web Mercator)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyproj import Geod, Transformer

from gis.density import kernel_density
from layers.overlay import raster_to_png

TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)


def leaflet_lonlat(overlay, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where Leaflet draws image pixels (px, py): linear in Web Mercator between the bounds."""
    (south, west), (north, east) = overlay.bounds
    (x0, x1), (y0, y1) = TO_MERC.transform([west, east], [north, south])
    x = x0 + (np.asarray(px) + 0.5) / overlay.width * (x1 - x0)
    y = y0 + (np.asarray(py) + 0.5) / overlay.height * (y1 - y0)
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def test_png_overlay_puts_each_hot_spot_where_it_is_on_the_map() -> None:
    # Near the east edge of UTM zone 49, where UTM north is ~1.6° off true north: an image
    # of the UTM raster stretched over its lon/lat box would put these spots 130-250 m off.
    spots = [(113.75, 34.75), (113.85, 34.75), (113.80, 34.80)]
    lon = np.repeat([s[0] for s in spots], 50)
    lat = np.repeat([s[1] for s in spots], 50)
    raster = kernel_density(lon, lat, bandwidth_m=60.0, cell_m=20.0)
    overlay = raster_to_png(raster)

    image = np.asarray(Image.open(io.BytesIO(overlay.png)))
    assert image.shape == (overlay.height, overlay.width, 4)
    assert image[0, 0, 3] == 0 and image[-1, -1, 3] == 0  # empty corners let the map show
    alpha = image[..., 3].astype(float)
    rows, cols = np.indices(alpha.shape)
    pixel_lon, pixel_lat = leaflet_lonlat(overlay, cols.ravel(), rows.ravel())
    geod = Geod(ellps="WGS84")
    for slon, slat in spots:
        _, _, dist = geod.inv(
            np.full(alpha.size, slon), np.full(alpha.size, slat), pixel_lon, pixel_lat
        )
        brightest = np.argmax(np.where(dist < 1_000, alpha.ravel(), -1))  # within 1 km
        assert dist[brightest] < 25.0  # about a pixel (20 m)
    assert overlay.vmax == pytest.approx(raster.values.max())


def test_png_overlay_refuses_an_unknown_colormap() -> None:
    raster = kernel_density(np.array([113.65]), np.array([34.75]), 100.0, 50.0)
    with pytest.raises(ValueError, match="colormap"):
        raster_to_png(raster, cmap="no-such-ramp")
