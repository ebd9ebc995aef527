"""Vector tiles over HTTP, checked against shapely + pyproj on the same rows (real PostGIS)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from pyproj import Transformer
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Grid
from service.maps import tiles
from service.maps.tiles import TileCache, grid_levels
from service.settings import AppSettings
from tests.helpers.city import COMM_A, point_lonlat

SHANGHAI = ZoneInfo("Asia/Shanghai")
HALF_WORLD = math.pi * 6378137.0  # Web Mercator half-width in metres
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32649, always_xy=True)
MVT = "application/vnd.mapbox-vector-tile"


# -- independent tile arithmetic ----------------------------------------------------------------
def merc_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF_WORLD / 2**z
    minx = -HALF_WORLD + x * size
    maxy = HALF_WORLD - y * size
    return minx, maxy - size, minx + size, maxy


def lonlat_box(z: int, x: int, y: int, margin: float = 0.0) -> shapely.Polygon:
    """The tile (grown by ``margin`` × its size) as a lon/lat rectangle."""
    minx, miny, maxx, maxy = merc_bounds(z, x, y)
    pad = margin * (maxx - minx)
    (x0, x1), (y0, y1) = TO_LONLAT.transform([minx - pad, maxx + pad], [miny - pad, maxy + pad])
    return shapely.box(x0, y0, x1, y1)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    mx, my = TO_MERC.transform(lon, lat)
    size = 2 * HALF_WORLD / 2**z
    return int((mx + HALF_WORLD) // size), int((HALF_WORLD - my) // size)


def to_tile_units(z: int, x: int, y: int, lon: float, lat: float) -> tuple[float, float]:
    minx, _, maxx, maxy = merc_bounds(z, x, y)
    mx, my = TO_MERC.transform(lon, lat)
    return 4096 * (mx - minx) / (maxx - minx), 4096 * (maxy - my) / (maxx - minx)


def tile_geometry_to_lonlat(z: int, x: int, y: int, geom: dict) -> shapely.Geometry:
    minx, _, maxx, maxy = merc_bounds(z, x, y)
    unit = (maxx - minx) / 4096

    def back(xy: np.ndarray) -> np.ndarray:
        lon, lat = TO_LONLAT.transform(minx + xy[:, 0] * unit, maxy - xy[:, 1] * unit)
        return np.column_stack([lon, lat])

    return shapely.transform(shape(geom), back)


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def metres(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))


# -- grids --------------------------------------------------------------------------------------
@pytest.fixture
def demo_grids(session: Session, demo_loaded: AppSettings) -> list[Grid]:
    city = demo_loaded.grids.city
    return list(session.scalars(select(Grid).where(Grid.city == city, Grid.valid_to.is_(None))))


@pytest.fixture
def fresh_cache(demo_client: TestClient) -> TileCache:
    """Tiles re-read the data version on every request (no 1 s memo) for change tests."""
    cache = TileCache(version_ttl=0.0)
    demo_client.app.state.tile_cache = cache
    return cache


def expected_grids(grids: list[Grid], z: int, x: int, y: int, level=None) -> dict[str, Grid]:
    box = lonlat_box(z, x, y)
    levels = grid_levels(z, level)
    return {g.code: g for g in grids if g.level in levels and to_shape(g.geom).intersects(box)}


def grid_tile(client: TestClient, z: int, x: int, y: int, **params) -> dict[str, dict]:
    r = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    layer = decode(r.content).get("grids", {"features": []})
    return {f["properties"]["code"]: f for f in layer["features"]}


def demo_centre(grids: list[Grid]) -> tuple[float, float]:
    c = shapely.union_all([to_shape(g.geom) for g in grids if g.level == "district"]).centroid
    return c.x, c.y


@pytest.mark.parametrize("z", [11, 13, 14, 15, 16])
def test_grid_tile_holds_exactly_the_grids_meeting_the_tile(
    demo_client: TestClient, demo_grids: list[Grid], z: int
) -> None:
    lon, lat = demo_centre(demo_grids)
    x, y = tile_of(lon, lat, z)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (-1, -1)):  # the centre tile and some neighbours
        got = grid_tile(demo_client, z, x + dx, y + dy)
        want = expected_grids(demo_grids, z, x + dx, y + dy)
        assert set(got) == set(want), (z, x + dx, y + dy)
        assert {f["properties"]["level"] for f in got.values()} <= set(grid_levels(z))


def test_grid_on_the_tile_edge_is_in_both_tiles(
    demo_client: TestClient, demo_grids: list[Grid]
) -> None:
    z = 15
    x, y = tile_of(*demo_centre(demo_grids), z)
    west, east = lonlat_box(z, x, y), lonlat_box(z, x + 1, y)
    straddling = {
        g.code
        for g in demo_grids
        if g.level == "unit"
        and to_shape(g.geom).intersection(west).area > 0
        and to_shape(g.geom).intersection(east).area > 0
    }
    assert straddling, "the demo city should have unit grids across this tile edge"
    assert straddling <= set(grid_tile(demo_client, z, x, y))
    assert straddling <= set(grid_tile(demo_client, z, x + 1, y))


def test_grid_features_carry_attributes_id_and_true_geometry(
    demo_client: TestClient, demo_grids: list[Grid]
) -> None:
    z = 15
    x, y = tile_of(*demo_centre(demo_grids), z)
    got = grid_tile(demo_client, z, x, y)
    box = lonlat_box(z, x, y)
    by_code = {g.code: g for g in demo_grids}
    inside = 0
    for code, feature in got.items():
        g = by_code[code]
        assert feature["id"] == g.id
        want = {"code": g.code, "name": g.name, "level": g.level}
        if g.responsible_unit is not None:
            want["responsible_unit"] = g.responsible_unit
        assert feature["properties"] == want
        truth = to_shape(g.geom)
        if truth.within(box):  # unclipped: the tile's polygon is the grid, to a tile unit
            inside += 1
            drawn = tile_geometry_to_lonlat(z, x, y, feature["geometry"])
            # one tile unit is ~0.25 m on the ground here: simplification + snapping stay < 1 m
            assert metres(drawn).hausdorff_distance(metres(truth)) < 1.0, code
            assert abs(metres(drawn).area - metres(truth).area) / metres(truth).area < 0.02
    assert inside > 20


def test_level_parameter_forces_one_level(demo_client: TestClient, demo_grids: list[Grid]) -> None:
    z = 13
    x, y = tile_of(*demo_centre(demo_grids), z)
    got = grid_tile(demo_client, z, x, y, level="unit")
    assert set(got) == set(expected_grids(demo_grids, z, x, y, level="unit"))
    assert {f["properties"]["level"] for f in got.values()} == {"unit"}


def test_tile_far_from_the_city_is_empty(demo_client: TestClient) -> None:
    r = demo_client.get("/tiles/grids/12/0/0.mvt")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert decode(r.content) == {}


def test_etag_answers_304_and_cache_control(
    demo_client: TestClient, demo_grids: list[Grid]
) -> None:
    x, y = tile_of(*demo_centre(demo_grids), 14)
    url = f"/tiles/grids/14/{x}/{y}.mvt"
    first = demo_client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "public, max-age=60"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = demo_client.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    assert demo_client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    cases = demo_client.get(f"/tiles/cases/14/{x}/{y}.mvt")
    assert cases.headers["cache-control"] == "no-cache"


def test_grid_change_invalidates_the_cached_tile(
    demo_client: TestClient, demo_grids: list[Grid], fresh_cache: TileCache
) -> None:
    z = 16
    x, y = tile_of(*demo_centre(demo_grids), z)
    url = f"/tiles/grids/{z}/{x}/{y}.mvt"
    before = demo_client.get(url)
    assert demo_client.get(url).content == before.content
    assert len(fresh_cache) == 1  # the second answer came from the cache
    code = next(c for c, f in grid_tile(demo_client, z, x, y).items() if f["properties"])
    r = demo_client.patch(f"/api/grids/{code}", json={"responsible_unit": "新的责任单位"})
    assert r.status_code == 200, r.text
    after = demo_client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    feature = {f["properties"]["code"]: f for f in decode(after.content)["grids"]["features"]}
    assert feature[code]["properties"]["responsible_unit"] == "新的责任单位"
    assert len(fresh_cache) == 2


# -- cases --------------------------------------------------------------------------------------
def report(client: TestClient, x: float, y: float, category: str = "0102", **extra) -> dict:
    lon, lat = point_lonlat(x, y)
    body = {"category_code": category, "lon": lon, "lat": lat, "description": "t"} | extra
    r = client.post("/api/cases", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def reject(client: TestClient, case_id: int) -> None:
    version = client.get(f"/api/cases/{case_id}").json()["version"]
    r = client.post(
        f"/api/cases/{case_id}/actions",
        json={"action": "reject", "actor": "调度员", "note": "非城管职责", "version": version},
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def reported(client: TestClient, case_city) -> list[dict]:
    """Open cases across the small city (one overdue) and one rejected case."""
    long_ago = datetime(2025, 6, 2, 10, 0, tzinfo=SHANGHAI).isoformat()
    cases = [
        report(client, 50, 50),
        report(client, 150, 150, "0501"),  # at the market
        report(client, 250, 50, "0102", reported_at=long_ago),  # long past its deadline
        report(client, 450, 20),  # community B
        report(client, 750, 150, "0301", fields={"site_name": "工地"}),
        report(client, 790, 10, "0502"),
    ]
    gone = report(client, 300, 150, "0104")
    reject(client, gone["id"])
    client.app.state.tile_cache = TileCache(version_ttl=0.0)
    return [*cases, client.get(f"/api/cases/{gone['id']}").json()]


def open_cases(cases: list[dict]) -> list[dict]:
    return [c for c in cases if c["status"] != "rejected"]


def case_tile(client: TestClient, z: int, x: int, y: int, **params) -> dict:
    r = client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    return decode(r.content)


def city_tiles(z: int) -> set[tuple[int, int]]:
    return {tile_of(*point_lonlat(px, py), z) for px in (0, 400, 800) for py in (0, 200)}


def test_case_points_are_the_open_cases_in_the_buffered_tile(
    client: TestClient, reported: list[dict]
) -> None:
    z = 16
    seen: set[int] = set()
    for x, y in city_tiles(z):
        layer = case_tile(client, z, x, y)["cases"]["features"]
        box = lonlat_box(z, x, y, margin=64 / 4096)
        want = {
            c["id"] for c in open_cases(reported) if box.contains(shapely.Point(c["lon"], c["lat"]))
        }
        assert {f["id"] for f in layer} == want
        by_id = {c["id"]: c for c in reported}
        for f in layer:
            case = by_id[f["id"]]
            assert f["properties"]["category_code"] == case["category_code"]
            assert f["properties"]["status"] == case["status"]
            assert f["properties"]["overdue"] == case["overdue"]
            stamp = f["properties"]["reported_at"]
            assert stamp.endswith("+08:00")
            assert datetime.fromisoformat(stamp) == datetime.fromisoformat(
                case["reported_at"]
            ).replace(microsecond=0)
            px, py = to_tile_units(z, x, y, case["lon"], case["lat"])
            assert f["geometry"]["coordinates"] == [round(px), round(py)]
        seen |= {f["id"] for f in layer}
    assert seen == {c["id"] for c in open_cases(reported)}
    assert sum(c["overdue"] for c in reported) == 1


def test_case_filters_by_category_prefix_and_grid_subtree(
    client: TestClient, reported: list[dict]
) -> None:
    z = 15
    for params, keep in (
        ({"category": "05"}, lambda c: c["category_code"].startswith("05")),
        ({"category": "0102"}, lambda c: c["category_code"] == "0102"),
        ({"grid": COMM_A}, lambda c: c["grid_code"].startswith(COMM_A[:12])),
    ):
        got = set()
        for x, y in city_tiles(z):
            got |= {
                f["id"]
                for f in case_tile(client, z, x, y, **params).get("cases", {}).get("features", [])
            }
        assert got == {c["id"] for c in open_cases(reported) if keep(c)}, params
        assert got  # each filter keeps something here


def expected_clusters(cases: list[dict], z: int, x: int, y: int) -> dict[tuple[int, int], dict]:
    cells: dict[tuple[int, int], list[tuple[float, float, bool]]] = {}
    cell = tiles.CLUSTER_CELL
    for c in open_cases(cases):
        px, py = to_tile_units(z, x, y, c["lon"], c["lat"])
        if 0 <= px < 4096 and 0 < py <= 4096:
            cells.setdefault((int(px // cell), int(py // cell)), []).append((px, py, c["overdue"]))
    return {
        cell: {
            "count": len(pts),
            "overdue": sum(p[2] for p in pts),
            "at": (np.mean([p[0] for p in pts]), np.mean([p[1] for p in pts])),
        }
        for cell, pts in cells.items()
    }


@pytest.mark.parametrize("z", [10, 12, 13])
def test_low_zoom_tiles_carry_one_cluster_per_cell(
    client: TestClient, reported: list[dict], z: int
) -> None:
    total = 0
    for x, y in city_tiles(z):
        layer = case_tile(client, z, x, y)
        assert "cases" not in layer
        clusters = layer.get("case_clusters", {"features": []})["features"]
        want = expected_clusters(reported, z, x, y)
        assert len(clusters) == len(want)
        for f in clusters:
            cx, cy = f["geometry"]["coordinates"]
            match = [
                w for w in want.values() if abs(w["at"][0] - cx) <= 1 and abs(w["at"][1] - cy) <= 1
            ]
            assert len(match) == 1
            assert f["properties"] == {"count": match[0]["count"], "overdue": match[0]["overdue"]}
        total += sum(f["properties"]["count"] for f in clusters)
    assert total == len(open_cases(reported))  # each case in exactly one tile


def test_too_many_points_fall_back_to_clusters(
    client: TestClient, reported: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    z = 16
    x, y = tile_of(reported[0]["lon"], reported[0]["lat"], z)
    points = case_tile(client, z, x, y)["cases"]["features"]
    assert len(points) >= 2
    monkeypatch.setattr(tiles, "MAX_POINTS", len(points) - 1)
    client.app.state.tile_cache = TileCache(version_ttl=0.0)  # the points tile is cached
    layer = case_tile(client, z, x, y)
    assert "cases" not in layer
    clusters = layer["case_clusters"]["features"]
    want = expected_clusters(reported, z, x, y)
    assert sorted(f["properties"]["count"] for f in clusters) == sorted(
        w["count"] for w in want.values()
    )


def test_closing_a_case_removes_it_from_the_tile(client: TestClient, reported: list[dict]) -> None:
    z = 16
    lon, lat = reported[0]["lon"], reported[0]["lat"]
    x, y = tile_of(lon, lat, z)
    url = f"/tiles/cases/{z}/{x}/{y}.mvt"
    before = client.get(url)
    assert reported[0]["id"] in {f["id"] for f in decode(before.content)["cases"]["features"]}
    reject(client, reported[0]["id"])
    after = client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert reported[0]["id"] not in {
        f["id"] for f in decode(after.content).get("cases", {}).get("features", [])
    }
    new = report(client, 60, 60)  # a new report appears at once too
    ids = {f["id"] for f in decode(client.get(url).content)["cases"]["features"]}
    assert new["id"] in ids


def test_data_version_is_read_once_per_ttl() -> None:
    cache = TileCache(version_ttl=3600)
    reads = []
    for _ in range(3):
        cache.version("k", lambda: reads.append(1) or len(reads))
    assert reads == [1]
    assert TileCache(version_ttl=0).version("k", lambda: 7) == 7


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "status", "field"),
    [
        ("/tiles/roads/1/0/0.mvt", 404, "layer"),
        ("/tiles/grids/23/0/0.mvt", 400, "z"),
        ("/tiles/grids/-1/0/0.mvt", 400, "z"),
        ("/tiles/grids/2/4/0.mvt", 400, "x"),
        ("/tiles/grids/2/0/4.mvt", 400, "y"),
        ("/tiles/grids/2/0/-1.mvt", 400, "y"),
        ("/tiles/grids/99999999999999999999/0/0.mvt", 400, "z"),
        ("/tiles/cases/14/0/0.mvt?category=77", 404, "category"),
        ("/tiles/cases/14/0/0.mvt?grid=41010599999999", 404, "grid"),
        ("/tiles/cases/14/0/0.mvt?level=unit", 400, "level"),
        ("/tiles/grids/14/0/0.mvt?category=01", 400, "category"),
        ("/tiles/grids/14/0/0.mvt?grid=41010500100100", 400, "grid"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_parameter(
    client: TestClient, case_city, url: str, status: int, field: str
) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    if field == "layer":
        assert r.json()["layers"] == ["grids", "cases"]


@pytest.mark.parametrize(
    "url", ["/tiles/grids/a/0/0.mvt", "/tiles/grids/1/0/0.5.mvt", "/tiles/grids/1/0/0.mvt?level=x"]
)
def test_unparseable_input_is_422(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] in {"z", "y", "level"}


@pytest.mark.parametrize("param", ["category", "grid"])
def test_a_malformed_filter_is_a_400_naming_it(client: TestClient, case_city, param: str) -> None:
    r = client.get("/tiles/cases/14/0/0.mvt", params={param: "05\x00"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == param


def test_reported_at_of_a_case_from_long_ago(client: TestClient, reported: list[dict]) -> None:
    old = next(c for c in reported if c["overdue"])
    x, y = tile_of(old["lon"], old["lat"], 18)
    (feature,) = [
        f for f in case_tile(client, 18, x, y)["cases"]["features"] if f["id"] == old["id"]
    ]
    assert feature["properties"]["reported_at"] == "2025-06-02T10:00:00+08:00"
    assert datetime.fromisoformat(old["deadline_at"]) < datetime.now(SHANGHAI) - timedelta(days=1)


def test_gcj02_tiles_line_up_with_a_gcj02_base_map(
    demo_client: TestClient, demo_grids: list[Grid]
) -> None:
    from gis.datum import transform_geometries

    z = 16
    lon, lat = demo_centre(demo_grids)
    glon, glat = transform_geometries(shapely.Point(lon, lat), "wgs84", "gcj02").coords[0]
    x, y = tile_of(glon, glat, z)  # the tile the AMap base map draws there
    got = grid_tile(demo_client, z, x, y, datum="gcj02")
    box = lonlat_box(z, x, y)
    by_code = {g.code: g for g in demo_grids}
    checked = 0
    for code, feature in got.items():
        shifted = transform_geometries(to_shape(by_code[code].geom), "wgs84", "gcj02")
        if shifted.within(box):
            drawn = tile_geometry_to_lonlat(z, x, y, feature["geometry"])
            # one shift per tile: the offset drifts ~1 m across a zoom-16 tile (+ snapping)
            assert metres(drawn).hausdorff_distance(metres(shifted)) < 2.5, code
            checked += 1
    assert checked > 0
    r = demo_client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"datum": "bd09"})
    assert r.status_code == 400 and r.json()["field"] == "datum"


def test_data_version_changes_with_writes_and_when_a_deadline_passes(
    client: TestClient, reported: list[dict], session: Session, settings: AppSettings
) -> None:
    service = tiles.TileService(session, settings)
    at = datetime.now(SHANGHAI)
    before = service.data_version("cases", at)
    assert service.data_version("cases", at) == before  # nothing changed: same version
    report(client, 60, 60)
    after = service.data_version("cases", at)
    assert after != before
    # the next deadline among open cases: just after it passes, an overdue flag flips
    upcoming = min(
        datetime.fromisoformat(c["deadline_at"])
        for c in open_cases(reported)
        if datetime.fromisoformat(c["deadline_at"]) > at
    )
    assert service.data_version("cases", upcoming + timedelta(seconds=1)) != after
    assert service.data_version("cases", upcoming - timedelta(seconds=1)) == after
