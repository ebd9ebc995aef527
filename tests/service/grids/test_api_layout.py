"""Generating unit grids inside a parent and checking a level's topology, over HTTP."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient

from gis.metric import area_m2
from service.accounts.principal import SYSTEM
from service.clock import now
from service.grids.registry import Registry
from service.grids.repository import new_grid
from tests.helpers.city import COMM_A, COMM_B, lonlat, mbox, small_city, unit_code


@pytest.fixture
def no_units_in_b(registry: Registry) -> Registry:
    registry.write(
        [i for i in small_city() if not i.code.startswith(COMM_B[:12]) or i.level != "unit"],
        by=SYSTEM,
    )
    registry.session.commit()
    return registry


@pytest.mark.parametrize("shape", ["square", "hexagon"])
def test_generated_cells_tile_the_community_in_code_order(
    client: TestClient, no_units_in_b: Registry, shape: str
) -> None:
    r = client.post(
        f"/api/grids/{COMM_B}/generate", params={"target_area_m2": 5000, "shape": shape}
    )
    assert r.status_code == 201, r.text
    feats = r.json()["features"]
    codes = [f["id"] for f in feats]
    assert codes == [unit_code(COMM_B, i) for i in range(1, len(feats) + 1)]
    cells = [shapely.geometry.shape(f["geometry"]) for f in feats]
    parent = next(i.geometry for i in small_city() if i.code == COMM_B)
    union = shapely.union_all(cells)
    assert abs(area_m2(union) - area_m2(parent)) / area_m2(parent) < 1e-6
    assert area_m2(shapely.symmetric_difference(union, parent)) < 1.0
    # first code is the north-west cell, last is the south-east cell
    firsts = cells[0].representative_point()
    lasts = cells[-1].representative_point()
    assert firsts.y > lasts.y and firsts.x < lasts.x
    # every generated cell is now locatable
    centre = cells[len(cells) // 2].representative_point()
    located = client.get("/api/grids/locate", params={"lon": centre.x, "lat": centre.y}).json()
    assert located["grid"]["code"] == codes[len(cells) // 2]


def test_generate_refuses_a_parent_that_has_children(client: TestClient, no_units_in_b) -> None:
    r = client.post(f"/api/grids/{COMM_A}/generate")
    assert r.status_code == 409 and "already has 8" in r.json()["detail"]


def test_generate_refuses_more_cells_than_codes(client: TestClient, no_units_in_b) -> None:
    # 80,000 m² at 500 m² per cell would need more than 99 two-digit sequences
    r = client.post(f"/api/grids/{COMM_B}/generate", params={"target_area_m2": 500})
    assert r.status_code == 422 and "fit" in r.json()["detail"]
    assert client.get("/api/grids", params={"parent": COMM_B}).json()["features"] == []


def test_generate_bad_parameters(client: TestClient, no_units_in_b) -> None:
    assert (
        client.post(f"/api/grids/{COMM_B}/generate", params={"shape": "triangle"}).status_code
        == 422
    )
    assert (
        client.post(f"/api/grids/{COMM_B}/generate", params={"target_area_m2": -5}).status_code
        == 422
    )
    assert client.post("/api/grids/41010599999900/generate").status_code == 404


def test_topology_of_clean_community_is_ok(client: TestClient, registry: Registry) -> None:
    registry.write(small_city(), by=SYSTEM)
    registry.session.commit()
    body = client.get("/api/grids/topology", params={"level": "unit", "parent": COMM_A}).json()
    assert body["ok"] is True and body["checked"] == 8


def test_topology_finds_the_lake_gap_and_legacy_overlap(
    client: TestClient, registry: Registry
) -> None:
    registry.write(small_city(), by=SYSTEM)
    # legacy data written behind the registry's back: an overlapping cell in community B
    registry.repo.add(
        new_grid(
            city=registry.city,
            code=unit_code(COMM_B, 9),
            version=1,
            level="unit",
            parent_code=COMM_B,
            name="旧数据",
            area_m2=0.0,
            valid_from=now(),
            valid_to=None,
            geom=lonlat(mbox(650, 0, 750, 50)),
        )
    )
    registry.session.commit()
    body = client.get("/api/grids/topology", params={"level": "unit", "parent": COMM_B}).json()
    assert body["ok"] is False
    kinds = {f["properties"]["kind"]: f for f in body["features"]}
    gap = kinds["gap"]
    assert gap["properties"]["area_m2"] == pytest.approx(10_000, rel=5e-3)
    lake = lonlat(mbox(500, 50, 600, 150))
    assert shapely.geometry.shape(gap["geometry"]).symmetric_difference(lake).area < 1e-12
    overlaps = [f for f in body["features"] if f["properties"]["kind"] == "overlap"]
    assert {tuple(sorted(f["properties"]["codes"])) for f in overlaps} == {
        (unit_code(COMM_B, 1), unit_code(COMM_B, 9)),
        (unit_code(COMM_B, 2), unit_code(COMM_B, 9)),
    }


def test_topology_needs_existing_parent(client: TestClient) -> None:
    r = client.get("/api/grids/topology", params={"level": "unit", "parent": "41010599999900"})
    assert r.status_code == 404
