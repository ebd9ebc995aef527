"""Patrol coverage on a raster, checked against exact GEOS buffers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from gis import metric
from gis.coverage import CoverageRaster, FixTable, grid_coverage, zone_coverage
from gis.locate import GridIndex

CRS = metric.utm_crs_for(111.0, 34.75)
X0, Y0 = 500_000.0, 3_850_000.0  # near the central meridian of UTM zone 49N


def _m(geom):
    """Metric test geometry → lon/lat."""
    return metric.to_wgs84(shapely.affinity.translate(geom, X0, Y0), CRS)


@pytest.fixture(scope="module")
def grids():
    """Four 100 m squares in a row, the second with a hole, the fourth a multipolygon."""
    square = [box(i * 100, 0, (i + 1) * 100, 100) for i in range(4)]
    square[1] = Polygon(square[1].exterior, [box(130, 30, 170, 70).exterior.coords])
    square[3] = MultiPolygon([box(300, 0, 400, 45), box(300, 55, 400, 100)])
    codes = [f"41010500100100{i}" for i in range(1, 5)]
    geoms = [_m(g) for g in square]
    # 2 m cells: the service default
    raster = CoverageRaster.build(codes, np.array(geoms, dtype=object), cell_m=2.0)
    return codes, geoms, raster


def _fixes(points_by_track, dt=10.0, worker=None):
    track, t, x, y, w = [], [], [], [], []
    clock = 0.0
    for k, pts in enumerate(points_by_track):
        for px, py in pts:
            track.append(k)
            t.append(clock)
            x.append(px + X0)
            y.append(py + Y0)
            w.append(k if worker is None else worker[k])
            clock += dt
        clock += 3_600
    return FixTable(np.array(track), np.array(w), np.array(t), np.array(x), np.array(y))


def _locate(codes, geoms, fixes):
    lon, lat = metric._transformer(CRS, metric.WGS84).transform(fixes.x, fixes.y)
    return GridIndex(codes, geoms).locate(np.asarray(lon), np.asarray(lat))


def test_covered_share_matches_geos_buffer_intersection(grids):
    codes, geoms, raster = grids
    path = [(-20, 80), (150, 80), (150, 20), (390, 20), (390, 95)]
    line = LineString(path).segmentize(8)
    fixes = _fixes([list(line.coords)])
    table = grid_coverage(raster, fixes, _locate(codes, geoms, fixes), radius_m=25)
    zone = LineString(path).buffer(25)
    for code, geom in zip(codes, geoms, strict=True):
        exact_geom = shapely.affinity.translate(metric.to_metric(geom, CRS), -X0, -Y0)
        exact = exact_geom.intersection(zone).area / exact_geom.area
        got = table.set_index("code").loc[code, "covered_share"]
        assert got == pytest.approx(exact, abs=0.03), code


def test_a_grid_nobody_walked_near_has_zero_share_and_no_visits(grids):
    codes, geoms, raster = grids
    fixes = _fixes([[(10, 10), (20, 10), (30, 10)]])
    table = grid_coverage(raster, fixes, _locate(codes, geoms, fixes)).set_index("code")
    assert table.loc[codes[3], "covered_share"] == 0
    assert table.loc[codes[3], "visits"] == 0
    assert np.isnan(table.loc[codes[3], "last_visit_t"])
    assert table.loc[codes[0], "visits"] == 1


def test_a_fix_on_a_shared_edge_counts_for_the_lowest_code(grids):
    codes, geoms, raster = grids
    fixes = _fixes([[(50, 50), (100, 50), (100, 50.5)]])
    grid = _locate(codes, geoms, fixes)
    assert list(grid) == [0, 0, 0]  # GridIndex rule: the shared edge goes to the lower code
    table = grid_coverage(raster, fixes, grid).set_index("code")
    assert table.loc[codes[0], "visits"] == 1 and table.loc[codes[1], "visits"] == 0


def test_the_hole_of_a_grid_is_outside_it(grids):
    codes, geoms, raster = grids
    fixes = _fixes([[(150, 50), (151, 50), (152, 50)]])  # inside the hole of grid 2
    grid = _locate(codes, geoms, fixes)
    assert (grid == -1).all()
    table = grid_coverage(raster, fixes, grid).set_index("code")
    assert table["visits"].sum() == 0
    assert table.loc[codes[1], "covered_share"] > 0  # the ring around the hole is within 25 m


def test_visits_dwell_workers_and_revisits(grids):
    codes, geoms, raster = grids
    inside = [(20, 50), (30, 50), (40, 50)]
    out_and_back = [(20, 50), (120, 50), (30, 50)]  # pops into the next grid for 10 s
    fixes = _fixes([inside, out_and_back, inside], worker=[7, 8, 7])
    table = grid_coverage(raster, fixes, _locate(codes, geoms, fixes), merge_s=600)
    first = table.set_index("code").loc[codes[0]]
    # three tracks, the second leaves and comes back within merge_s: one visit each
    assert first["visits"] == 3
    assert first["workers"] == 2
    # dwell: 20 s + (10 s, then 10 s in grid 2) + 20 s
    assert first["dwell_s"] == pytest.approx(50.0)
    assert table.set_index("code").loc[codes[1], "dwell_s"] == pytest.approx(10.0)
    starts = np.array([0.0, 3_630.0, 7_260.0])
    assert first["mean_revisit_s"] == pytest.approx((starts[-1] - starts[0]) / 2)
    assert first["last_visit_t"] == pytest.approx(7_280.0)


def test_coming_back_later_is_a_new_visit(grids):
    codes, geoms, raster = grids
    pts = [(20, 50), (120, 50)] + [(120 + i, 50) for i in range(1, 70)] + [(30, 50)]
    fixes = _fixes([pts])  # ~11 minutes in grid 2, then back in grid 1
    table = grid_coverage(raster, fixes, _locate(codes, geoms, fixes), merge_s=600)
    assert table.set_index("code").loc[codes[0], "visits"] == 2


def test_street_share_counts_covered_street_cells(grids):
    codes, geoms, raster = grids
    streets = np.array(
        [shapely.affinity.translate(LineString([(0, 10), (400, 10)]), X0, Y0)], dtype=object
    )
    streets = np.r_[streets, [shapely.affinity.translate(LineString([(0, 90), (400, 90)]), X0, Y0)]]
    fixes = _fixes([[(0, 5), (200, 5)]])  # walks the southern street of the first two grids
    table = grid_coverage(raster, fixes, _locate(codes, geoms, fixes), streets=streets)
    row = table.set_index("code").loc[codes[0]]
    assert row["street_share"] == pytest.approx(0.5, abs=0.02)  # south street yes, north no
    assert table.set_index("code").loc[codes[3], "street_share"] == 0


def test_zone_coverage_of_overlapping_zones(grids):
    codes, geoms, raster = grids
    zones = np.array(
        [
            shapely.affinity.translate(box(0, 0, 60, 60), X0, Y0),
            shapely.affinity.translate(box(30, 30, 90, 90), X0, Y0),
            shapely.affinity.translate(box(300, 0, 400, 100), X0, Y0),
        ],
        dtype=object,
    )
    path = [(0, 45), (90, 45)]
    fixes = _fixes([list(LineString(path).segmentize(5).coords)])
    table = zone_coverage(raster, fixes, zones, radius_m=20)
    exact = [
        shapely.affinity.translate(z, -X0, -Y0).intersection(LineString(path).buffer(20)).area
        / z.area
        for z in zones
    ]
    assert table["covered_share"].to_numpy() == pytest.approx(exact, abs=0.03)
    assert list(table["visits"]) == [1, 1, 0]


def test_fixes_must_be_sorted():
    with pytest.raises(ValueError, match="sorted"):
        FixTable(
            np.array([0, 0]), np.array([1, 1]), np.array([10.0, 0.0]), np.zeros(2), np.zeros(2)
        )


def test_burning_in_chunks_marks_the_same_cells(grids, monkeypatch):
    from gis import coverage

    codes, geoms, raster = grids
    paths = [[(10 * k, 5), (10 * k + 40, 95), (390 - 10 * k, 50)] for k in range(6)]
    fixes = _fixes([list(LineString(p).segmentize(7).coords) for p in paths])
    whole = raster.burn_lines(fixes)
    monkeypatch.setattr(coverage, "_BURN_CHUNK", 10)  # every few tracks a chunk
    assert len(coverage._track_chunks(fixes.track, 10)) > 3
    assert (raster.burn_lines(fixes) == whole).all()
