"""Coarsened positions: the centre of the metre cell holding a point, point by point."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Transformer

from gis.coarsen import cell_centres


def _utm(zone: int, south: bool = False) -> tuple[Transformer, Transformer]:
    epsg = (32700 if south else 32600) + zone
    return (
        Transformer.from_crs(4326, epsg, always_xy=True),
        Transformer.from_crs(epsg, 4326, always_xy=True),
    )


def test_points_go_to_the_centre_of_their_cell() -> None:
    to_utm, _ = _utm(49)
    rng = np.random.default_rng(1)
    lon = 113.6 + rng.random(200) * 0.2
    lat = 34.7 + rng.random(200) * 0.1
    clon, clat = cell_centres(lon, lat, 100.0)
    x, y = to_utm.transform(lon, lat)
    cx, cy = to_utm.transform(clon, clat)
    # the shown point is the centre of the 100 m cell the true point lies in
    assert np.allclose(cx, (np.floor(x / 100) + 0.5) * 100, atol=1e-4)
    assert np.allclose(cy, (np.floor(y / 100) + 0.5) * 100, atol=1e-4)
    assert np.hypot(cx - x, cy - y).max() <= 100 * math.sqrt(2) / 2


def test_a_point_is_coarsened_alike_whatever_comes_with_it() -> None:
    alone = cell_centres([113.65], [34.75], 250.0)
    # with a point of another zone (and hemisphere) in the same call
    mixed = cell_centres([113.65, -70.0], [34.75, -33.4], 250.0)
    assert alone[0][0] == mixed[0][0] and alone[1][0] == mixed[1][0]
    to_utm, _ = _utm(19, south=True)
    x, y = to_utm.transform(-70.0, -33.4)
    cx, cy = to_utm.transform(mixed[0][1], mixed[1][1])
    assert (cx, cy) == pytest.approx(((x // 250 + 0.5) * 250, (y // 250 + 0.5) * 250), abs=1e-4)


@pytest.mark.parametrize("size", [0.0, -5.0, float("nan")])
def test_a_cell_size_must_be_positive(size: float) -> None:
    with pytest.raises(ValueError, match="size_m"):
        cell_centres([113.65], [34.75], size)


def test_out_of_range_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        cell_centres([200.0], [34.75], 100.0)
