"""List endpoints: bounding boxes test the shapes themselves, and pages never end silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, Polygon

from service.accounts.principal import SYSTEM
from service.grids.registry import GridInput, Registry
from service.hotspots.hotspots import HotspotInput, HotspotService
from tests.helpers.city import COMM_A, lonlat, mbox, small_city, unit_code

ROOT = Path(__file__).resolve().parents[3]


def _odd_city() -> list[GridInput]:
    """The small city with community A's units replaced by shapes whose envelopes lie: an L,
    a diamond and a multipolygon of two far-apart squares."""
    items = [i for i in small_city() if not i.code.startswith(COMM_A[:12]) or i.level != "unit"]
    ell = Polygon([(0, 0), (200, 0), (200, 40), (40, 40), (40, 200), (0, 200)])
    diamond = Polygon([(300, 20), (380, 100), (300, 180), (220, 100)])
    pair = shapely.MultiPolygon([mbox(50, 150, 90, 190), mbox(140, 60, 180, 100)])
    for seq, geom in enumerate([ell, diamond], start=1):
        moved = shapely.affinity.translate(geom, *mbox(0, 0, 0, 0).bounds[:2])
        items.append(GridInput(unit_code(COMM_A, seq), "unit", f"奇形{seq}", lonlat(moved)))
    items.append(GridInput(unit_code(COMM_A, 3), "unit", "两块", lonlat(pair)))
    return items


def _corner_boxes(geoms: list[shapely.Geometry], n: int, seed: int) -> list[tuple[float, ...]]:
    """Small boxes in the corners of each shape's envelope, plus random boxes anywhere."""
    rng = np.random.default_rng(seed)
    boxes = []
    for g in geoms:
        x0, y0, x1, y1 = g.bounds
        w, h = (x1 - x0) / 10, (y1 - y0) / 10
        boxes += [(x0, y0, x0 + w, y0 + h), (x1 - w, y1 - h, x1, y1)]
        boxes += [(x0, y1 - h, x0 + w, y1), (x1 - w, y0, x1, y0 + h)]
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    for _ in range(n):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        s = rng.uniform(1e-5, 6e-4)
        boxes.append((x, y, x + s, y + s * 0.8))
    return boxes


def test_grid_bbox_returns_exactly_the_grids_whose_shape_meets_the_box(
    client: TestClient, registry: Registry
) -> None:
    registry.write(_odd_city(), by=SYSTEM)
    units = client.get("/api/grids", params={"level": "unit"}).json()["features"]
    shapes = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in units}
    boxes = _corner_boxes(list(shapes.values()), 60, seed=2)
    envelope_only = 0
    for b in boxes:
        r = client.get("/api/grids", params={"level": "unit", "bbox": ",".join(map(str, b))})
        assert r.status_code == 200
        got = {f["properties"]["code"] for f in r.json()["features"]}
        box = shapely.box(*b)
        expected = {c for c, g in shapes.items() if g.intersects(box)}
        assert got == expected, b
        envelope_only += sum(
            1
            for g in shapes.values()
            if shapely.box(*g.bounds).intersects(box) and not g.intersects(box)
        )
    assert envelope_only > 0  # the boxes did probe envelope corners the shapes leave empty


def test_hotspot_bbox_tests_the_zone_not_its_envelope(
    client: TestClient, case_city: Registry, session
) -> None:
    diagonal = LineString([(0, 0), (400, 200)])
    origin = mbox(0, 0, 0, 0).bounds[:2]
    HotspotService(session, case_city.settings).create(
        [
            HotspotInput(
                "rail-diag",
                "rail_corridor",
                "斜线铁路",
                lonlat(shapely.affinity.translate(diagonal, *origin)),
                buffer_m=10,
            )
        ],
        by=SYSTEM,
    )
    spots = client.get("/api/hotspots", params={"zones": True}).json()["features"]
    (spot,) = [f for f in spots if f["properties"]["key"] == "rail-diag"]
    zone = shapely.geometry.shape(spot["properties"]["zone"])
    x0, y0, x1, y1 = zone.bounds
    corner = (x0, y1 - (y1 - y0) / 8, x0 + (x1 - x0) / 8, y1)  # north-west: far from the line
    assert not zone.intersects(shapely.box(*corner))
    r = client.get("/api/hotspots", params={"bbox": ",".join(map(str, corner))})
    assert "rail-diag" not in [f["properties"]["key"] for f in r.json()["features"]]
    on_line = zone.representative_point()
    near = (on_line.x - 1e-5, on_line.y - 1e-5, on_line.x + 1e-5, on_line.y + 1e-5)
    r = client.get("/api/hotspots", params={"bbox": ",".join(map(str, near))})
    assert "rail-diag" in [f["properties"]["key"] for f in r.json()["features"]]


def _follow(client: TestClient, url: str, params: dict | None = None) -> tuple[list, list]:
    """Every feature of every page, following the `next` links; and each page's body."""
    features, pages = [], []
    r = client.get(url, params=params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        features += body["features"]
        nxt = [x["href"] for x in body["links"] if x["rel"] == "next"]
        if not nxt:
            assert 'rel="next"' not in r.headers.get("link", "")
            return features, pages
        assert f'<{nxt[0]}>; rel="next"' in r.headers["link"]
        r = client.get(nxt[0])


def test_unit_grid_list_pages_through_every_grid_with_counts_and_links(
    demo_client: TestClient, demo_registry: Registry
) -> None:
    from service.clock import now
    from service.grids.repository import GridFilter

    total = demo_registry.repo.count(GridFilter(city=demo_registry.city, at=now(), level="unit"))
    assert total > 1000
    first = demo_client.get("/api/grids", params={"level": "unit"}).json()
    assert first["numberMatched"] == total  # no silent cut at the default page size
    assert first["numberReturned"] == 1000
    features, pages = _follow(demo_client, "/api/grids", {"level": "unit", "limit": 400})
    codes = [f["properties"]["code"] for f in features]
    assert len(codes) == total and len(set(codes)) == total
    assert [p["numberReturned"] for p in pages] == [400] * (total // 400) + [total % 400]
    assert all(p["numberMatched"] == total for p in pages)
    assert any(x["rel"] == "prev" for x in pages[-1]["links"])


def test_a_page_past_the_end_is_empty_and_still_counts(demo_client: TestClient) -> None:
    body = demo_client.get("/api/grids", params={"level": "unit", "offset": 100_000}).json()
    assert body["features"] == [] and body["numberReturned"] == 0
    assert body["numberMatched"] > 1000


def test_hotspot_list_pages(client: TestClient, case_city: Registry) -> None:
    features, pages = _follow(client, "/api/hotspots", {"limit": 1})
    assert len(features) == 2 == pages[0]["numberMatched"]
    assert len(pages) == 2
    assert len({f["properties"]["key"] for f in features}) == 2


def test_no_query_filters_by_envelope_alone() -> None:
    """GeoAlchemy2's ``column.intersects()`` reads like ST_Intersects but is the ``&&`` envelope
    operator; queries use ``repository.intersects_bbox`` / ``ST_Intersects`` instead."""
    import re

    pattern = re.compile(r"\.(geom|zone|wkb_geometry)\.intersects\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "service").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
