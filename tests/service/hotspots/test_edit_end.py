"""Editing and ending hotspots, and the audit trail of hotspot and catalogue writes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import AuditEntry, Hotspot
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import X0, Y0, lonlat, point_lonlat

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def editor(session: Session, settings: AppSettings, case_city) -> dict[str, str]:
    return bearer(session, settings, make_user(session, settings, "gis_editor", login="editor-li"))


def _market(client: TestClient) -> dict:
    rows = client.get("/api/hotspots", params={"kind": "farmer_market"}).json()["features"]
    return rows[0]


def _audit(client: TestClient, **params) -> list[dict]:
    r = client.get("/api/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _state(session: Session) -> tuple:
    session.expire_all()
    spots = session.scalars(select(Hotspot).order_by(Hotspot.id)).all()
    audit = session.scalar(select(func.count()).select_from(AuditEntry))
    return audit, [(h.name, h.kind, h.buffer_m, h.risk_weight, h.active_to) for h in spots]


def _report_at_market(client: TestClient) -> dict:
    lon, lat = point_lonlat(150, 150)
    r = client.post(
        "/api/cases", json={"category_code": "0501", "lon": lon, "lat": lat, "description": "摆摊"}
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_patch_changes_attributes_and_is_audited(client: TestClient, editor) -> None:
    spot = _market(client)
    r = client.patch(
        f"/api/hotspots/{spot['id']}",
        json={"name": "甲农贸市场（新）", "risk_weight": 2.5, "owner_phone": "13900000000"},
        headers=editor,
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["name"], props["risk_weight"]) == ("甲农贸市场（新）", 2.5)
    assert props["buffer_m"] == 20  # unchanged
    row = _audit(client, entity="hotspot", entity_key="market-01")[0]
    assert row["action"] == "hotspot.update" and "editor-li" in row["actor"]
    assert row["before"]["name"] == "甲农贸市场" and row["after"]["name"] == "甲农贸市场（新）"
    assert row["before"]["risk_weight"] != 2.5
    assert row["after"]["risk_weight"] == 2.5
    assert row["before"]["zone"] == row["after"]["zone"]  # the zone did not move


def test_patch_buffer_remakes_the_zone_in_metres(client: TestClient, editor) -> None:
    r = client.post(
        "/api/hotspots",
        json={
            "key": "school-01",
            "kind": "school_gate",
            "name": "第一小学校门",
            "geometry": shapely.geometry.mapping(lonlat(Point(X0 + 50, Y0 + 50))),
        },
        headers=editor,
    )
    assert r.status_code == 201, r.text
    created = _audit(client, entity="hotspot", entity_key="school-01")[0]
    assert created["action"] == "hotspot.create" and created["before"] is None
    spot_id = r.json()["id"]
    r = client.patch(f"/api/hotspots/{spot_id}", json={"buffer_m": 50}, headers=editor)
    assert r.status_code == 200, r.text
    zone = shapely.geometry.shape(r.json()["properties"]["zone"])
    area, _ = GEOD.geometry_area_perimeter(zone)
    assert abs(area) == pytest.approx(3.14159 * 50**2, rel=0.01)
    # a kind change keeps the buffer it has
    r = client.patch(f"/api/hotspots/{spot_id}", json={"kind": "construction_site"}, headers=editor)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["buffer_m"] == 50
    row = _audit(client, entity="hotspot", entity_key="school-01")[0]
    assert row["before"]["kind"] == "school_gate" and row["after"]["kind"] == "construction_site"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "volcano"}, "kind"),
        ({"buffer_m": -5}, "buffer_m"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                }
            },
            "geometry",
        ),
        ({"geometry": {"type": "Point", "coordinates": [500, 20]}}, "geometry"),
        ({"geometry": "here"}, "geometry"),
        (
            {
                "geometry": {
                    "type": "GeometryCollection",
                    "geometries": [{"type": "Point", "coordinates": [113.65, 34.75]}],
                }
            },
            "geometry",
        ),
        ({"active_to": "2020-01-01T00:00:00+08:00"}, "active_to"),
        ({"key": "other"}, "key"),
    ],
)
def test_bad_patches_name_the_field_and_change_nothing(
    client: TestClient, editor, session: Session, body, field
) -> None:
    spot = _market(client)
    before = _state(session)
    r = client.patch(f"/api/hotspots/{spot['id']}", json=body, headers=editor)
    assert 400 <= r.status_code < 500, r.text
    assert field in (r.json().get("field") or "") or field in r.text
    assert _state(session) == before


def test_end_drops_the_hotspot_from_matching_and_lists_but_keeps_history(
    client: TestClient, editor
) -> None:
    spot = _market(client)
    matched = _report_at_market(client)
    assert matched["hotspot_ids"] == [spot["id"]]
    r = client.post(f"/api/hotspots/{spot['id']}/end", json={}, headers=editor)
    assert r.status_code == 200, r.text
    ended_at = r.json()["properties"]["active_to"]
    assert ended_at is not None
    # a report at the same place now matches nothing; the earlier case keeps its match
    assert _report_at_market(client)["hotspot_ids"] == []
    assert client.get(f"/api/cases/{matched['id']}").json()["hotspot_ids"] == [spot["id"]]
    current = client.get("/api/hotspots").json()["features"]
    assert spot["id"] not in [f["id"] for f in current]
    everything = client.get("/api/hotspots", params={"include_ended": True}).json()["features"]
    assert spot["id"] in [f["id"] for f in everything]
    then = client.get("/api/hotspots", params={"active_at": "2025-06-01T00:00:00+08:00"})
    assert spot["id"] in [f["id"] for f in then.json()["features"]]
    assert client.get(f"/api/hotspots/{spot['id']}").status_code == 200
    row = _audit(client, entity="hotspot", entity_key="market-01")[0]
    assert row["action"] == "hotspot.end"
    assert row["before"]["active_to"] is None and row["after"]["active_to"] is not None
    # ending twice is a conflict, and changes nothing
    again = client.delete(f"/api/hotspots/{spot['id']}", headers=editor)
    assert again.status_code == 409 and again.json()["field"] == "active_to"


def test_end_with_a_date_and_delete_end_now(client: TestClient, editor) -> None:
    spots = client.get("/api/hotspots").json()["features"]
    market, rail = spots[0]["id"], spots[1]["id"]
    r = client.post(
        f"/api/hotspots/{market}/end", json={"at": "2026-01-31T18:00:00"}, headers=editor
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["active_to"].startswith("2026-01-31T18:00:00")
    bad = client.post(
        f"/api/hotspots/{rail}/end", json={"at": "2020-01-01T00:00:00"}, headers=editor
    )
    assert bad.status_code == 422 and bad.json()["field"] == "at"
    r = client.delete(f"/api/hotspots/{rail}", headers=editor)
    assert r.status_code == 200 and r.json()["properties"]["active_to"] is not None
    assert client.get("/api/hotspots").json()["features"] == []


def test_hotspot_writes_need_hotspots_edit(
    client: TestClient, session: Session, settings: AppSettings, case_city
) -> None:
    dispatcher = bearer(session, settings, make_user(session, settings, "dispatcher"))
    spot = _market(client)
    before = _state(session)
    for r in (
        client.patch(f"/api/hotspots/{spot['id']}", json={"name": "x"}, headers=dispatcher),
        client.post(f"/api/hotspots/{spot['id']}/end", json={}, headers=dispatcher),
        client.delete(f"/api/hotspots/{spot['id']}", headers=dispatcher),
    ):
        assert r.status_code == 403 and "hotspots.edit" in r.json()["detail"]
    assert _state(session) == before


def test_hotspot_import_is_one_audit_row(
    client: TestClient, editor, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "sites.geojson"
    gpd.GeoDataFrame(
        {"key": ["site-01", "site-02"], "kind": "construction_site", "name": ["工地一", "工地二"]},
        geometry=[lonlat(Point(X0 + 20, Y0 + 20)), lonlat(Point(X0 + 620, Y0 + 20))],
        crs=4326,
    ).to_file(path)
    count = session.scalar(select(func.count()).select_from(AuditEntry))
    with path.open("rb") as fh:
        r = client.post(
            "/api/hotspots/import", files={"file": ("工地.geojson", fh)}, headers=editor
        )
    assert r.status_code == 200, r.text
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == count + 1
    row = _audit(client, entity="hotspots")[0]
    assert row["action"] == "hotspot.import" and row["entity_key"] == "工地.geojson"
    assert row["after"]["keys"] == ["site-01", "site-02"] and row["after"]["created"] == 2


def test_catalogue_writes_are_audited(
    client: TestClient, session: Session, settings: AppSettings, case_city
) -> None:
    admin = make_user(session, settings, "admin", login="admin-zhao")
    headers = bearer(session, settings, admin)
    r = client.post(
        "/api/routing-rules",
        json={"category_prefix": "02", "department": "园林局"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    created = _audit(client, entity="routing_rule", entity_key=str(rule_id))[0]
    assert created["action"] == "routing_rule.create" and "admin-zhao" in created["actor"]
    assert created["after"]["department"] == "园林局"
    assert client.delete(f"/api/routing-rules/{rule_id}", headers=headers).status_code == 204
    gone = _audit(client, entity="routing_rule", entity_key=str(rule_id))[0]
    assert gone["action"] == "routing_rule.delete" and gone["after"] is None
    assert gone["before"]["department"] == "园林局"
    r = client.post(
        "/api/categories",
        json={
            "code": "9901",
            "family": "event",
            "major_name": "其他",
            "name": "本地类别",
            "deadline_amount": 1,
            "deadline_unit": "days",
            "department": "城管执法局",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    row = _audit(client, entity="category", entity_key="9901")[0]
    assert row["action"] == "category.create" and row["after"]["name"] == "本地类别"


def test_a_scoped_editor_may_place_and_end_hotspots_only_inside_the_scope(
    client: TestClient, session: Session, settings: AppSettings, case_city
) -> None:
    from tests.helpers.city import COMM_A

    user = make_user(session, settings, "gis_editor", scope_grids=[COMM_A])
    headers = bearer(session, settings, user)
    inside = shapely.geometry.mapping(lonlat(Point(X0 + 50, Y0 + 50)))  # in community A
    outside = shapely.geometry.mapping(lonlat(Point(X0 + 450, Y0 + 50)))  # in community B
    body = {"key": "site-a", "kind": "construction_site", "name": "甲工地", "geometry": inside}
    assert client.post("/api/hotspots", json=body, headers=headers).status_code == 201
    before = _state(session)
    r = client.post(
        "/api/hotspots", json=body | {"key": "site-b", "geometry": outside}, headers=headers
    )
    assert r.status_code == 403 and r.json()["field"] == "scope", r.text
    assert COMM_A[:12] in r.json()["detail"]
    spots = {
        f["properties"]["key"]: f["id"] for f in client.get("/api/hotspots").json()["features"]
    }
    # moving its own site into community B is refused; so is ending the rail line, which runs
    # beyond community A (north and south out of the city)
    moved = client.patch(
        f"/api/hotspots/{spots['site-a']}", json={"geometry": outside}, headers=headers
    )
    assert moved.status_code == 403 and moved.json()["field"] == "scope"
    ended = client.post(f"/api/hotspots/{spots['rail-01']}/end", json={}, headers=headers)
    assert ended.status_code == 403 and ended.json()["field"] == "scope"
    assert _state(session) == before
    # the market lies inside community A: this editor may end it
    r = client.post(f"/api/hotspots/{spots['market-01']}/end", json={}, headers=headers)
    assert r.status_code == 200, r.text
