"""Datum conversion checked against prcoords, an independent implementation."""

from __future__ import annotations

import numpy as np
import prcoords
import pytest

from gis import datum

rng = np.random.default_rng(3)
LON = rng.uniform(73.5, 135.0, 200)
LAT = rng.uniform(18.0, 53.5, 200)


def test_wgs84_to_gcj02_matches_prcoords() -> None:
    glon, glat = datum.wgs84_to_gcj02(LON, LAT)
    for i in range(len(LON)):
        ref = prcoords.wgs_gcj(prcoords.Coords(LAT[i], LON[i]))
        assert (glon[i], glat[i]) == pytest.approx((ref.lon, ref.lat), abs=1e-9)


def test_wgs84_to_bd09_matches_prcoords() -> None:
    blon, blat = datum.from_wgs84(LON, LAT, "bd09")
    for i in range(len(LON)):
        ref = prcoords.wgs_bd(prcoords.Coords(LAT[i], LON[i]))
        assert (blon[i], blat[i]) == pytest.approx((ref.lon, ref.lat), abs=1e-9)


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_round_trip_is_within_a_millimetre(name: str) -> None:
    lon, lat = datum.to_wgs84(*datum.from_wgs84(LON, LAT, name), name)
    assert np.abs(lon - LON).max() < 1e-8
    assert np.abs(lat - LAT).max() < 1e-8


def test_offset_in_zhengzhou_is_hundreds_of_metres() -> None:
    glon, glat = datum.wgs84_to_gcj02(113.65, 34.75)
    metres = np.hypot(
        (glon - 113.65) * 111_320 * np.cos(np.radians(34.75)), (glat - 34.75) * 110_574
    )
    assert 100 < metres < 700


def test_outside_china_is_unchanged() -> None:
    assert datum.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)


def test_unknown_datum_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="wgs84, gcj02, bd09"):
        datum.to_wgs84(113.0, 34.0, "cgcs2000")
