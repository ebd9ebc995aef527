"""Children that share their parent's edges exactly are inside it, however long the edges.

Issue 9 item 6: a street drawn as a lon/lat rectangle and communities cutting it along
meridians (shapely's ``within`` is true) were refused as "6.0 m² … outside its parent", because
parent and children were projected vertex by vertex and a long straight lon/lat edge is a curve
in UTM. These tests write such files through the API import and the registry, check that the
topology report is clean, and that real mistakes (5 m outside, siblings overlapping) are still
refused with their true areas (geodesic areas on the ellipsoid, computed with pyproj.Geod).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod, Transformer

from service.accounts.principal import SYSTEM
from service.grids.registry import GridInput, Registry

CITY, DISTRICT, STREET = "41010000000000", "41010500000000", "41010500100000"
COMMUNITIES = [f"410105001{n:03d}00" for n in (1, 2, 3, 4)]
GEOD = Geod(ellps="WGS84")


def geodesic_area(geom) -> float:
    """Area on the ellipsoid; edges split every ~1 m so the geodesics follow lon/lat lines."""
    return abs(GEOD.geometry_area_perimeter(shapely.segmentize(geom, 1e-5))[0])


def metres_of_lon(metres: float, lat: float) -> float:
    return metres / (111_320.0 * np.cos(np.radians(lat)))


def street_file(street: shapely.Polygon, communities: list[shapely.Polygon]) -> dict:
    """A GeoJSON FeatureCollection: city, district and street share one outline."""
    rows = [(CITY, "city", street), (DISTRICT, "district", street), (STREET, "street", street)]
    rows += [(code, "community", g) for code, g in zip(COMMUNITIES, communities, strict=False)]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code, "level": level, "name": f"{level} {code}"},
                "geometry": shapely.geometry.mapping(geom),
            }
            for code, level, geom in rows
        ],
    }


def upload(client: TestClient, tmp_path: Path, body: dict, name: str = "grids.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(body))
    with path.open("rb") as fh:
        return client.post("/api/grids/import", files={"file": (path.name, fh)})


def cut(bounds: tuple[float, float, float, float], at: list[float]) -> list[shapely.Polygon]:
    """The lon/lat box cut along the meridians ``at``: children sharing its edges exactly."""
    minx, miny, maxx, maxy = bounds
    xs = [minx, *at, maxx]
    return [shapely.box(a, miny, b, maxy) for a, b in zip(xs[:-1], xs[1:], strict=False)]


ISSUE = (113.700, 34.800, 113.714, 34.808)
CASES = {
    "issue": (ISSUE, [113.706, 113.712]),
    "long-edges": ((113.60, 34.80, 113.80, 34.83), [113.613, 113.7, 113.7777]),  # 18 km
    "zone-boundary": ((113.95, 34.80, 114.05, 34.83), [113.98, 114.0]),  # UTM 49/50 at 114°E
}


@pytest.mark.parametrize("name", list(CASES))
def test_import_of_exactly_nested_rectangles_is_accepted_and_reports_clean(
    client: TestClient, tmp_path: Path, name: str
) -> None:
    bounds, at = CASES[name]
    street, communities = shapely.box(*bounds), cut(bounds, at)
    assert all(c.within(street) for c in communities)
    r = upload(client, tmp_path, street_file(street, communities))
    assert r.status_code == 200, r.text
    assert sorted(r.json()["created"]) == sorted(
        [CITY, DISTRICT, STREET, *COMMUNITIES[: len(at) + 1]]
    )
    report = client.get("/api/grids/topology", params={"level": "community", "parent": STREET})
    assert report.status_code == 200
    assert report.json()["ok"] is True and report.json()["features"] == []
    assert report.json()["checked"] == len(at) + 1


def test_registry_write_of_exactly_nested_rectangles_is_accepted(registry: Registry) -> None:
    street = shapely.box(*ISSUE)
    parents = [
        GridInput(CITY, "city", "市", street),
        GridInput(DISTRICT, "district", "区", street),
        GridInput(STREET, "street", "街道", street),
    ]
    assert len(registry.write(parents, by=SYSTEM).created) == 3
    # each community on its own, against the stored street
    pieces = cut(ISSUE, [113.706, 113.712])
    for i, (code, geom) in enumerate(zip(COMMUNITIES, pieces, strict=False), 1):
        report = registry.write([GridInput(code, "community", f"社区{i}", geom)], by=SYSTEM)
        assert report.created == [code]


def test_child_five_metres_outside_its_parent_is_refused_with_its_area(
    client: TestClient, tmp_path: Path
) -> None:
    street = shapely.box(*ISSUE)
    communities = cut(ISSUE, [113.706, 113.712])
    five_m = metres_of_lon(5.0, 34.804)
    communities[2] = shapely.box(113.712, 34.800, 113.714 + five_m, 34.808)
    r = upload(client, tmp_path, street_file(street, communities))
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["code"] == COMMUNITIES[2] and error["field"] == "geometry"
    strip = shapely.box(113.714, 34.800, 113.714 + five_m, 34.808)
    assert error["outside_m2"] == pytest.approx(geodesic_area(strip), rel=2e-3)  # ~4,440 m²
    assert client.get("/api/grids", params={"level": "city"}).json()["features"] == []


def test_siblings_overlapping_by_more_than_a_square_metre_are_a_conflict(
    client: TestClient, tmp_path: Path
) -> None:
    bounds = (113.60, 34.80, 113.80, 34.83)
    street, communities = shapely.box(*bounds), cut(bounds, [113.7])
    # the east community reaches 1.8 m west over the shared 3.3 km edge
    communities[1] = shapely.box(113.69998, 34.80, 113.80, 34.83)
    r = upload(client, tmp_path, street_file(street, communities))
    assert r.status_code == 409, r.text
    (error,) = r.json()["errors"]
    overlap = shapely.box(113.69998, 34.80, 113.7, 34.83)
    assert {error["code"], error["other"]} == set(COMMUNITIES[:2])
    assert error["overlap_m2"] == pytest.approx(geodesic_area(overlap), rel=2e-3)


def test_overlap_under_a_square_metre_is_rounding_and_accepted(
    client: TestClient, tmp_path: Path
) -> None:
    # 0.2 m² of overlap (2 mm over 100 m): below the documented 1 m² tolerance.
    bounds = (113.700, 34.800, 113.702, 34.8009)
    street, communities = shapely.box(*bounds), cut(bounds, [113.701])
    communities[1] = shapely.box(113.701 - metres_of_lon(0.002, 34.8), 34.800, 113.702, 34.8009)
    r = upload(client, tmp_path, street_file(street, communities))
    assert r.status_code == 200, r.text


def test_file_drawn_in_gauss_kruger_stays_nested_after_conversion(
    client: TestClient, tmp_path: Path
) -> None:
    # CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547): a 6 km street whose communities
    # have corners along its long edges. Straight in metres, those edges must stay straight in
    # lon/lat, or the corners fall ~0.4 m off the converted street (~990 m² outside it).
    to_gk = Transformer.from_crs(4326, 4547, always_xy=True)
    x0, y0 = (round(v, -2) for v in to_gk.transform(113.70, 34.80))
    street = shapely.box(x0, y0, x0 + 6_000, y0 + 1_500)
    communities = [
        shapely.box(x0 + a, y0, x0 + b, y0 + 1_500)
        for a, b in ((0, 1_700), (1_700, 4_100), (4_100, 6_000))
    ]
    rows = [(CITY, "city", street), (DISTRICT, "district", street), (STREET, "street", street)]
    rows += [(c, "community", g) for c, g in zip(COMMUNITIES, communities, strict=False)]
    frame = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "level": [r[1] for r in rows], "name": [r[0] for r in rows]},
        geometry=[r[2] for r in rows],
        crs="EPSG:4547",
    )
    path = tmp_path / "gk.gpkg"
    frame.to_file(path, engine="pyogrio")
    with path.open("rb") as fh:
        r = client.post("/api/grids/import", files={"file": (path.name, fh)})
    assert r.status_code == 200, r.text
    report = client.get("/api/grids/topology", params={"level": "community", "parent": STREET})
    assert report.json()["ok"] is True
    # the stored street still covers the drawing's area (6 km x 1.5 km, GK scale ~1.00003)
    stored = client.get(f"/api/grids/{STREET}").json()
    area = geodesic_area(shapely.geometry.shape(stored["geometry"]))
    assert area == pytest.approx(9_000_000.0, rel=1e-3)
