"""What GIS editors do to the registry, and the audit trail of it: who, what, before and after;
permissions and grid scope; retiring a grid (refused while cases or workers depend on it,
allowed when they move)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.cases.workflow import OPEN_STATUSES
from service.db.models import AuditEntry, Case, Grid, Worker
from service.grids.retire import OPEN_CASE_STATUSES
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, lonlat, mbox, point_lonlat, small_city, unit_code

A1, A2, A3 = unit_code(COMM_A, 1), unit_code(COMM_A, 2), unit_code(COMM_A, 3)


def _audit(client: TestClient, **params) -> list[dict]:
    r = client.get("/api/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _audit_rows(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _grid_rows(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Grid)) or 0)


@pytest.fixture
def editor(session: Session, settings: AppSettings, case_city) -> dict[str, str]:
    """Headers of a city-wide GIS editor."""
    user = make_user(session, settings, "gis_editor", login="editor-wang")
    return bearer(session, settings, user)


def _report(client: TestClient, x: float, y: float) -> dict:
    lon, lat = point_lonlat(x, y)
    r = client.post(
        "/api/cases", json={"category_code": "0102", "lon": lon, "lat": lat, "description": "垃圾"}
    )
    assert r.status_code == 201, r.text
    return r.json()


# -- the audit trail of grid writes ---------------------------------------------------------------
def test_attribute_edit_is_audited_with_the_editor_and_before_after(
    client: TestClient, editor: dict[str, str]
) -> None:
    r = client.patch(f"/api/grids/{A1}", json={"name": "新名字"}, headers=editor)
    assert r.status_code == 200, r.text
    row = _audit(client, entity="grid", entity_key=A1)[0]
    assert row["action"] == "grid.update"
    assert row["actor_kind"] == "user" and "editor-wang" in row["actor"]
    assert row["before"]["name"] == "甲社区第01网格" and row["after"]["name"] == "新名字"
    # geometry is summarised (bounds and a digest), never copied vertex by vertex
    assert set(row["after"]["geom"]) == {"bounds", "wkb_sha256"}
    assert row["before"]["geom"] == row["after"]["geom"]


def test_boundary_edit_is_audited_as_a_new_version(
    client: TestClient, editor: dict[str, str]
) -> None:
    smaller = shapely.geometry.mapping(lonlat(mbox(0, 120, 100, 200)))
    r = client.patch(f"/api/grids/{A1}", json={"geometry": smaller}, headers=editor)
    assert r.status_code == 200, r.text
    row = _audit(client, entity="grid", entity_key=A1)[0]
    assert row["action"] == "grid.version"
    assert (row["before"]["version"], row["after"]["version"]) == (1, 2)
    assert row["before"]["geom"]["wkb_sha256"] != row["after"]["geom"]["wkb_sha256"]
    expected = lonlat(mbox(0, 120, 100, 200)).bounds
    assert row["after"]["geom"]["bounds"] == pytest.approx(expected, abs=1e-6)


def test_created_grid_is_audited(client: TestClient, editor: dict[str, str], session) -> None:
    # a community-B cell over the lake (no grid there yet)
    code = unit_code(COMM_B, 4)
    body = {
        "code": code,
        "level": "unit",
        "name": "湖区网格",
        "geometry": shapely.geometry.mapping(lonlat(mbox(500, 50, 600, 150))),
    }
    r = client.post("/api/grids", json=body, headers=editor)
    assert r.status_code == 201, r.text
    row = _audit(client, entity="grid", entity_key=code)[0]
    assert row["action"] == "grid.create" and row["before"] is None
    assert row["after"]["code"] == code and row["after"]["version"] == 1


def test_import_is_one_audit_row_naming_the_file_and_what_changed(
    client: TestClient, editor: dict[str, str], session: Session, tmp_path: Path
) -> None:
    items = [i for i in small_city() if i.level == "unit"]
    items[0].name = "改名网格"
    path = tmp_path / "units.geojson"
    gpd.GeoDataFrame(
        {"code": [i.code for i in items], "level": "unit", "name": [i.name for i in items]},
        geometry=[i.geometry for i in items],
        crs=4326,
    ).to_file(path)
    before = _audit_rows(session)
    with path.open("rb") as fh:
        r = client.post(
            "/api/grids/import", files={"file": ("单元网格.geojson", fh)}, headers=editor
        )
    assert r.status_code == 200, r.text
    assert _audit_rows(session) == before + 1  # not one row per grid
    row = _audit(client, entity="grids")[0]
    assert row["action"] == "grid.import" and row["entity_key"] == "单元网格.geojson"
    after = row["after"]
    assert after["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert after["bytes"] == path.stat().st_size
    assert after["features"] == len(items) and after["updated"] == len(items)
    assert set(after["updated_codes"]) == {i.code for i in items}
    assert after["created"] == after["versioned"] == 0


def test_generated_children_are_one_audit_row(
    client: TestClient, session: Session, settings: AppSettings, registry
) -> None:
    from service.accounts.principal import SYSTEM

    without_b_units = [i for i in small_city() if i.level != "unit" or i.code.startswith(A1[:12])]
    registry.write(without_b_units, by=SYSTEM)
    editor = bearer(session, settings, make_user(session, settings, "gis_editor"))
    before = _audit_rows(session)
    r = client.post(
        f"/api/grids/{COMM_B}/generate", params={"target_area_m2": 10_000}, headers=editor
    )
    assert r.status_code == 201, r.text
    assert _audit_rows(session) == before + 1
    row = _audit(client, entity="grids", entity_key=COMM_B)[0]
    assert row["action"] == "grid.generate" and row["after"]["parent"] == COMM_B
    assert row["after"]["created"] == r.json()["count"]
    assert row["after"]["created_codes"] == [f["properties"]["code"] for f in r.json()["features"]]


def test_editor_without_the_permission_gets_403_and_nothing_changes(
    client: TestClient, session: Session, settings: AppSettings, case_city
) -> None:
    inspector = bearer(session, settings, make_user(session, settings, "inspector"))
    before = (_audit_rows(session), _grid_rows(session))
    r = client.patch(f"/api/grids/{A1}", json={"name": "x"}, headers=inspector)
    assert r.status_code == 403 and "grids.edit" in r.json()["detail"]
    r = client.post(f"/api/grids/{A1}/retire", json={}, headers=inspector)
    assert r.status_code == 403 and "grids.edit" in r.json()["detail"]
    assert (_audit_rows(session), _grid_rows(session)) == before
    assert client.get(f"/api/grids/{A1}").json()["properties"]["name"] == "甲社区第01网格"


def test_a_scoped_editor_may_edit_only_grids_in_scope(
    client: TestClient, session: Session, settings: AppSettings, case_city, tmp_path: Path
) -> None:
    user = make_user(session, settings, "gis_editor", scope_grids=[COMM_A])
    headers = bearer(session, settings, user)
    assert client.patch(f"/api/grids/{A1}", json={"name": "甲一"}, headers=headers).is_success
    before = (_audit_rows(session), _grid_rows(session))
    b1 = unit_code(COMM_B, 1)
    r = client.patch(f"/api/grids/{b1}", json={"name": "乙一"}, headers=headers)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["field"] == "scope" and COMM_A[:12] in body["detail"] and b1 in body["detail"]
    r = client.post(f"/api/grids/{b1}/retire", json={}, headers=headers)
    assert r.status_code == 403 and r.json()["field"] == "scope"
    # an import touching one grid outside the scope is refused whole
    items = [i for i in small_city() if i.level == "unit"]
    path = tmp_path / "units.geojson"
    gpd.GeoDataFrame(
        {"code": [i.code for i in items], "level": "unit", "name": "改"},
        geometry=[i.geometry for i in items],
        crs=4326,
    ).to_file(path)
    with path.open("rb") as fh:
        r = client.post("/api/grids/import", files={"file": ("u.geojson", fh)}, headers=headers)
    assert r.status_code == 403 and r.json()["field"] == "scope"
    assert (_audit_rows(session), _grid_rows(session)) == before
    assert client.get(f"/api/grids/{b1}").json()["properties"]["name"] == "乙社区第01网格"
    assert client.get(f"/api/grids/{A2}").json()["properties"]["name"] == "甲社区第02网格"


# -- retiring a grid ------------------------------------------------------------------------------
def test_open_statuses_agree_with_the_workflow() -> None:
    assert tuple(OPEN_CASE_STATUSES) == tuple(OPEN_STATUSES)


def test_retire_without_dependants_closes_the_grid_and_keeps_its_history(
    client: TestClient, editor: dict[str, str]
) -> None:
    lon, lat = point_lonlat(250, 150)  # inside A-03
    assert (
        client.get("/api/grids/locate", params={"lon": lon, "lat": lat}).json()["grid"]["code"]
        == A3
    )
    r = client.post(f"/api/grids/{A3}/retire", json={}, headers=editor)
    assert r.status_code == 200, r.text
    retired_at = datetime.fromisoformat(r.json()["retired_at"])
    assert client.get(f"/api/grids/{A3}").status_code == 404
    located = client.get("/api/grids/locate", params={"lon": lon, "lat": lat})
    assert located.status_code == 404  # no grid covers the place any more
    # as of before the retirement the grid is there, with every version
    past = client.get(f"/api/grids/{A3}", params={"at": "2025-06-01T00:00:00+00:00"})
    assert past.status_code == 200
    versions = client.get(f"/api/grids/{A3}/versions").json()["features"]
    assert [datetime.fromisoformat(v["properties"]["valid_to"]) for v in versions] == [retired_at]
    row = _audit(client, entity="grid", entity_key=A3)[0]
    assert row["action"] == "grid.retire" and "editor-wang" in row["actor"]
    assert row["before"]["valid_to"] is None
    assert datetime.fromisoformat(row["after"]["valid_to"]) == retired_at


def test_retire_is_refused_while_open_cases_or_workers_depend_on_it(
    client: TestClient, editor: dict[str, str], session: Session
) -> None:
    case = _report(client, 150, 150)  # in A-02
    assert case["grid_code"] == A2
    r = client.put(
        "/api/patrol/workers/W001",
        json={"code": "W001", "name": "王伟", "grid_codes": [A2], "devices": []},
    )
    assert r.status_code in (200, 201), r.text
    before = (_audit_rows(session), _grid_rows(session))
    r = client.post(f"/api/grids/{A2}/retire", json={}, headers=editor)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["field"] == "move_to"
    assert "1 open case(s)" in body["detail"] and str(case["id"]) in body["detail"]
    assert "W001" in body["detail"]
    assert (_audit_rows(session), _grid_rows(session)) == before
    assert client.get(f"/api/grids/{A2}").status_code == 200
    # a community with current unit grids is refused too, naming them
    r = client.post(f"/api/grids/{COMM_A}/retire", json={}, headers=editor)
    assert r.status_code == 409 and A1 in r.json()["detail"]


def test_retire_with_move_to_moves_cases_and_workers_in_one_go(
    client: TestClient, editor: dict[str, str], session: Session, settings: AppSettings
) -> None:
    city = settings.grids.city
    case = _report(client, 150, 150)  # in A-02
    client.put(
        "/api/patrol/workers/W001",
        json={"code": "W001", "name": "王伟", "grid_codes": [A1, A2], "devices": []},
    )
    r = client.post(f"/api/grids/{A2}/retire", json={"move_to": A1, "absorb": True}, headers=editor)
    assert r.status_code == 200, r.text
    assert r.json()["moved_case_ids"] == [case["id"]]
    assert r.json()["moved_workers"] == ["W001"]
    moved = client.get(f"/api/cases/{case['id']}").json()
    assert moved["grid_code"] == A1
    session.expire_all()
    assert session.get(Worker, (city, "W001")).grid_codes == [A1]
    # A-01 took over A-02's area: the case's place now locates to A-01
    lon, lat = point_lonlat(150, 150)
    located = client.get("/api/grids/locate", params={"lon": lon, "lat": lat}).json()
    assert located["grid"]["code"] == A1
    new_a1 = to_shape(
        session.scalars(
            select(Grid).where(Grid.city == city, Grid.code == A1, Grid.valid_to.is_(None))
        )
        .one()
        .geom
    )
    expected = lonlat(mbox(0, 100, 200, 200))
    assert new_a1.symmetric_difference(expected).area < 1e-12  # the union of the two cells
    assert shapely.covers(new_a1, shapely.Point(lon, lat))
    # the case's grid id names the version valid now
    assert session.get(Case, case["id"]).grid_id == session.scalar(
        select(Grid.id).where(Grid.city == city, Grid.code == A1, Grid.valid_to.is_(None))
    )
    actions = {row["action"] for row in _audit(client, entity="grid")}
    assert {"grid.retire", "grid.version"} <= actions


def test_retire_moves_to_a_grid_that_keeps_its_own_area_without_absorb(
    client: TestClient, editor: dict[str, str]
) -> None:
    case = _report(client, 150, 150)
    r = client.post(f"/api/grids/{A2}/retire", json={"move_to": A3}, headers=editor)
    assert r.status_code == 200, r.text
    assert client.get(f"/api/cases/{case['id']}").json()["grid_code"] == A3
    assert (
        client.get(f"/api/grids/{A3}/versions").json()["features"][-1]["properties"]["version"] == 1
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"move_to": "41010500100199"}, "move_to"),  # no such grid
        ({"move_to": COMM_A}, "move_to"),  # a community for a unit
        ({"move_to": A2}, "move_to"),  # itself
        ({"absorb": True}, "absorb"),  # absorb by whom?
        ({"move_to": 12}, "move_to"),
    ],
)
def test_bad_retire_requests_name_the_field_and_change_nothing(
    client: TestClient, editor: dict[str, str], session: Session, body, field
) -> None:
    _report(client, 150, 150)
    before = (_audit_rows(session), _grid_rows(session))
    r = client.post(f"/api/grids/{A2}/retire", json=body, headers=editor)
    assert 400 <= r.status_code < 500 and r.status_code != 409, r.text
    assert field in (r.json().get("field") or "") or field in r.text
    assert (_audit_rows(session), _grid_rows(session)) == before
    assert client.get(f"/api/grids/{A2}").status_code == 200
