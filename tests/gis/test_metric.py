"""Metric CRS choice and areas in square metres."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod

from gis.metric import area_m2, to_metric, to_wgs84, utm_crs_for


def test_zhengzhou_is_in_utm_zone_49_north() -> None:
    assert utm_crs_for(113.65, 34.75).to_epsg() == 32649
    assert utm_crs_for(-70.6, -33.4).to_epsg() == 32719


def test_area_matches_geodesic_area() -> None:
    poly = shapely.Polygon([(113.64, 34.74), (113.66, 34.74), (113.66, 34.76), (113.64, 34.75)])
    geodesic, _ = Geod(ellps="WGS84").geometry_area_perimeter(poly)
    assert area_m2(poly) == pytest.approx(abs(geodesic), rel=1e-3)


def test_projection_round_trip_keeps_the_shape() -> None:
    poly = shapely.box(113.64, 34.74, 113.66, 34.76)
    crs = utm_crs_for(113.65, 34.75)
    back = to_wgs84(to_metric(poly, crs), crs)
    # the edges come back with the vertices they were densified with, on the same lines
    assert shapely.hausdorff_distance(back, poly) < 1e-12
    assert shapely.area(shapely.symmetric_difference(back, poly)) < 1e-14  # deg², ~0.1 mm²


def test_out_of_range_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        utm_crs_for(190.0, 0.0)
