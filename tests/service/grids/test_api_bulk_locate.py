"""Bulk locate (API and CLI) on the demo city, checked against geopandas/GEOS."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from gis.datum import from_wgs84
from service.clock import now
from service.grids.registry import Registry
from service.grids.repository import GridFilter, geom_of


@pytest.fixture
def units(demo_registry: Registry) -> gpd.GeoDataFrame:
    rows = demo_registry.repo.list(GridFilter(city=demo_registry.city, at=now(), level="unit"))
    return gpd.GeoDataFrame(
        {"code": [g.code for g in rows]}, geometry=[geom_of(g) for g in rows], crs=4326
    )


def _points(units: gpd.GeoDataFrame, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = units.total_bounds
    lon = rng.uniform(minx - 0.002, maxx + 0.002, n)
    lat = rng.uniform(miny - 0.002, maxy + 0.002, n)
    # add shared vertices (covered by several grids) so the tie rule is exercised
    vertices = shapely.get_coordinates(units.geometry.values[:40])
    return np.concatenate([lon, vertices[:, 0]]), np.concatenate([lat, vertices[:, 1]])


def _expected(units: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(pts, units, predicate="intersects")
    lowest = joined.groupby(level=0)["code"].min()
    return [lowest.get(i) for i in range(len(lon))]


def test_bulk_csv_matches_geopandas_including_shared_vertices(
    demo_client: TestClient, units: gpd.GeoDataFrame
) -> None:
    lon, lat = _points(units)
    csv = pd.DataFrame({"id": range(len(lon)), "lon": lon, "lat": lat}).to_csv(
        index=False, float_format="%.17g"
    )
    r = demo_client.post("/api/grids/locate/bulk", files={"file": ("p.csv", csv)})
    assert r.status_code == 200, r.text
    out = pd.read_csv(io.StringIO(r.text), dtype={"grid_code": str})
    got = [None if pd.isna(c) else c for c in out["grid_code"]]
    expected = _expected(units, lon, lat)
    assert got == expected
    assert sum(c is None for c in got) > 50  # some points fall outside the district
    ties = gpd.sjoin(
        gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326),
        units,
        predicate="intersects",
    ).index.value_counts()
    assert (ties > 1).sum() >= 40


def test_bulk_parquet_in_gcj02(demo_client: TestClient, units: gpd.GeoDataFrame) -> None:
    lon, lat = _points(units, 500)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    frame = gpd.GeoDataFrame(
        {"n": range(len(lon))}, geometry=gpd.points_from_xy(glon, glat), crs=4326
    )
    buf = io.BytesIO()
    frame.to_parquet(buf)
    r = demo_client.post(
        "/api/grids/locate/bulk",
        data={"datum": "gcj02"},
        files={"file": ("p.parquet", buf.getvalue())},
    )
    assert r.status_code == 200, r.text
    out = pd.read_parquet(io.BytesIO(r.content))
    interior = [i for i in range(len(lon)) if not _near_edge(units, lon[i], lat[i])]
    expected = _expected(units, lon, lat)
    got = [None if pd.isna(c) else c for c in out["grid_code"]]
    assert [got[i] for i in interior] == [expected[i] for i in interior]


def _near_edge(units: gpd.GeoDataFrame, lon: float, lat: float) -> bool:
    # GCJ-02 inversion is exact to ~1e-9 degrees; skip points that close to an edge
    return bool((shapely.distance(units.boundary.values, shapely.Point(lon, lat)) < 1e-8).any())


def test_bulk_locate_sees_a_new_boundary_version(
    demo_client: TestClient, demo_registry: Registry, units: gpd.GeoDataFrame
) -> None:
    code = units["code"].iloc[0]
    grid = demo_registry.get(code)
    point = geom_of(grid).representative_point()
    csv = f"lon,lat\n{point.x!r},{point.y!r}\n"
    first = demo_client.post("/api/grids/locate/bulk", files={"file": ("p.csv", csv)})
    assert first.text.strip().splitlines()[1].endswith(code)
    # shrink the grid so the point is no longer covered: the cached index must be rebuilt
    smaller = geom_of(grid).difference(point.buffer(0.0002))
    r = demo_client.patch(
        f"/api/grids/{code}", json={"geometry": shapely.geometry.mapping(smaller)}
    )
    assert r.status_code == 200, r.text
    second = demo_client.post("/api/grids/locate/bulk", files={"file": ("p.csv", csv)})
    assert not second.text.strip().splitlines()[1].endswith(code)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("foo,bar\n1,2\n", "file"),
        ("lon,lat\n113.6,95\n", "lon,lat"),
        ("lon,lat\n113.6,\n", "lon,lat"),
    ],
)
def test_bulk_bad_rows_are_422(demo_client: TestClient, content: str, field: str) -> None:
    r = demo_client.post("/api/grids/locate/bulk", files={"file": ("p.csv", content)})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_bulk_accepts_x_y_column_names(demo_client: TestClient, units) -> None:
    point = units.geometry.iloc[3].representative_point()
    r = demo_client.post(
        "/api/grids/locate/bulk", files={"file": ("p.csv", f"x,y\n{point.x!r},{point.y!r}\n")}
    )
    assert r.status_code == 200
    assert r.text.strip().splitlines()[1].endswith(units["code"].iloc[3])


def test_cli_locate_bulk_writes_codes(
    demo_loaded, units: gpd.GeoDataFrame, tmp_path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    lon, lat = _points(units, 400)
    src = tmp_path / "pts.csv"
    pd.DataFrame({"lon": lon, "lat": lat}).to_csv(src, index=False, float_format="%.17g")
    out = tmp_path / "out.csv"
    monkeypatch.setenv("CITYGRID_DATABASE_URL", demo_loaded.database.database_url)
    monkeypatch.setenv("CITYGRID_CITY", demo_loaded.grids.city)
    result = CliRunner().invoke(app, ["locate-bulk", str(src), "-o", str(out), "--chunk", "100"])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype={"grid_code": str})["grid_code"]
    assert [None if pd.isna(c) else c for c in got] == _expected(units, lon, lat)
