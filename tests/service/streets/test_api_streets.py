"""Streets over HTTP and from the command line: import (GeoJSON, GeoPackage, zipped Shapefile),
create, edit, delete, every write audited; street coverage on imported streets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, MultiLineString
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.accounts import AccountService, UserInput
from service.accounts.principal import SYSTEM
from service.cli import app
from service.db.models import AuditEntry, Street
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, X0, Y0, lonlat, mbox, unit_code
from tests.helpers.patrol import walk

PATH = [(2, 50), (398, 50)]  # the patrol walk: along the middle of community A's south row
DIAGONAL = [(10, 10), (390, 190)]  # a street crossing community A corner to corner
NORTH = [(0, 150), (400, 150)]  # a street along the north row, 100 m from the walk


def _m(points) -> LineString:
    return LineString([(X0 + x, Y0 + y) for x, y in points])


def _frame(lines, names=None, kinds=None) -> gpd.GeoDataFrame:
    n = len(lines)
    return gpd.GeoDataFrame(
        {"name": names or [f"路{i}" for i in range(n)], "highway": kinds or ["primary"] * n},
        geometry=[lonlat(g) for g in lines],
        crs=4326,
    )


def _file(tmp_path: Path, frame: gpd.GeoDataFrame, suffix: str = ".geojson") -> Path:
    if suffix == ".zip":
        folder = tmp_path / "shp"
        folder.mkdir()
        frame.to_file(folder / "roads.shp")
        path = tmp_path / "roads.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for part in folder.iterdir():
                zf.write(part, part.name)
        return path
    path = tmp_path / f"roads{suffix}"
    frame.to_file(path)
    return path


def _upload(client: TestClient, path: Path, headers=None, **form):
    with path.open("rb") as fh:
        return client.post(
            "/api/streets/import", files={"file": (path.name, fh)}, data=form, headers=headers
        )


def _counts(session: Session) -> tuple[int, int]:
    session.expire_all()
    streets = session.scalar(select(func.count()).select_from(Street))
    audit = session.scalar(select(func.count()).select_from(AuditEntry))
    return int(streets or 0), int(audit or 0)


@pytest.fixture
def editor(session: Session, settings: AppSettings, case_city) -> dict[str, str]:
    return bearer(
        session, settings, make_user(session, settings, "gis_editor", login="editor-chen")
    )


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip"])
def test_import_splits_multilines_and_is_one_audit_row(
    client: TestClient, editor, session: Session, tmp_path: Path, suffix: str
) -> None:
    frame = _frame(
        [_m(DIAGONAL), MultiLineString([_m([(0, 5), (100, 5)]), _m([(200, 5), (300, 5)])])],
        names=["对角路", "南路"],
        kinds=["primary", "residential"],
    )
    path = _file(tmp_path, frame, suffix)
    before = _counts(session)
    r = _upload(client, path, headers=editor)
    assert r.status_code == 200, r.text
    assert r.json()["features"] == 2 and r.json()["created"] == 3
    assert _counts(session) == (before[0] + 3, before[1] + 1)
    rows = client.get("/api/streets").json()["features"]
    assert sorted((f["properties"]["name"], f["properties"]["kind"]) for f in rows) == [
        ("南路", "residential"),
        ("南路", "residential"),
        ("对角路", "primary"),
    ]
    diagonal = next(f for f in rows if f["properties"]["name"] == "对角路")
    assert shapely.geometry.shape(diagonal["geometry"]).equals_exact(lonlat(_m(DIAGONAL)), 1e-9)
    audit = client.get("/api/audit", params={"entity": "streets"}).json()["items"][0]
    assert audit["action"] == "street.import" and audit["entity_key"] == path.name
    assert "editor-chen" in audit["actor"] and audit["after"]["created"] == 3
    assert sorted(audit["after"]["ids"]) == sorted(r.json()["ids"])


def test_replace_swaps_the_network_in_one_go(
    client: TestClient, editor, session: Session, tmp_path: Path
) -> None:
    _upload(client, _file(tmp_path, _frame([_m(DIAGONAL), _m(NORTH)])), headers=editor)
    new = tmp_path / "new"
    new.mkdir()
    r = _upload(
        client, _file(new, _frame([_m(PATH)], names=["新路"])), headers=editor, replace="true"
    )
    assert r.status_code == 200, r.text
    names = [f["properties"]["name"] for f in client.get("/api/streets").json()["features"]]
    assert names == ["新路"]
    audit = client.get("/api/audit", params={"entity": "streets"}).json()["items"][0]
    assert audit["after"]["replace"] is True and audit["after"]["replaced"] == 2


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lonlat(mbox(500, 50, 600, 150)), id="polygon"),
        pytest.param(LineString([(113.65, 34.75), (113.65, 34.75)]), id="zero-length"),
    ],
)
def test_bad_imports_store_nothing(
    client: TestClient, editor, session: Session, tmp_path: Path, bad
) -> None:
    frame = gpd.GeoDataFrame({"name": ["路", "坏"]}, geometry=[lonlat(_m(DIAGONAL)), bad], crs=4326)
    field = "features"
    before = _counts(session)
    r = _upload(client, _file(tmp_path, frame), headers=editor)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["errors"][0]["feature"] == 1
    assert _counts(session) == before
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    r = _upload(client, empty, headers=editor)
    assert r.status_code == 422 and r.json()["field"] == "file"
    assert _counts(session) == before


def test_create_edit_delete_are_audited_with_before_and_after(
    client: TestClient, editor, session: Session
) -> None:
    line = shapely.geometry.mapping(lonlat(_m(NORTH)))
    r = client.post("/api/streets", json={"geometry": line, "name": "北路"}, headers=editor)
    assert r.status_code == 201, r.text
    street_id = r.json()["id"]
    r = client.patch(
        f"/api/streets/{street_id}",
        json={"name": "北大街", "geometry": shapely.geometry.mapping(lonlat(_m(PATH)))},
        headers=editor,
    )
    assert r.status_code == 200, r.text
    assert shapely.geometry.shape(r.json()["geometry"]).equals_exact(lonlat(_m(PATH)), 1e-9)
    assert client.delete(f"/api/streets/{street_id}", headers=editor).status_code == 204
    assert client.get(f"/api/streets/{street_id}").status_code == 404
    rows = client.get("/api/audit", params={"entity": "street", "entity_key": street_id}).json()
    actions = [(a["action"], a["before"], a["after"]) for a in rows["items"]]
    assert [a for a, _, _ in actions] == ["street.delete", "street.update", "street.create"]
    (_, gone_before, gone_after), (_, upd_before, upd_after), _ = actions
    assert gone_after is None and gone_before["name"] == "北大街"
    assert (upd_before["name"], upd_after["name"]) == ("北路", "北大街")
    assert upd_before["geom"]["wkb_sha256"] != upd_after["geom"]["wkb_sha256"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"geometry": {"type": "Point", "coordinates": [113.65, 34.75]}}, "geometry"),
        ({"geometry": {"type": "LineString", "coordinates": [[500, 1], [501, 2]]}}, "geometry"),
        ({"geometry": {"type": "LineString"}}, "geometry"),
        ({"kind": "x" * 21}, "kind"),
        ({"id": 5}, "id"),
    ],
)
def test_bad_street_writes_name_the_field_and_change_nothing(
    client: TestClient, editor, session: Session, body, field
) -> None:
    line = shapely.geometry.mapping(lonlat(_m(NORTH)))
    street_id = client.post("/api/streets", json={"geometry": line}, headers=editor).json()["id"]
    before = _counts(session)
    r = client.patch(f"/api/streets/{street_id}", json=body, headers=editor)
    assert 400 <= r.status_code < 500, r.text
    assert field in (r.json().get("field") or "") or field in r.text
    create = client.post("/api/streets", json={"geometry": line} | body, headers=editor)
    assert 400 <= create.status_code < 500, create.text
    assert _counts(session) == before


def test_street_writes_need_their_permissions(
    client: TestClient, session: Session, settings: AppSettings, case_city, tmp_path: Path
) -> None:
    line = shapely.geometry.mapping(lonlat(_m(NORTH)))
    street_id = client.post("/api/streets", json={"geometry": line}).json()["id"]
    inspector = bearer(session, settings, make_user(session, settings, "inspector"))
    before = _counts(session)
    for r in (
        client.post("/api/streets", json={"geometry": line}, headers=inspector),
        client.patch(f"/api/streets/{street_id}", json={"name": "x"}, headers=inspector),
        client.delete(f"/api/streets/{street_id}", headers=inspector),
    ):
        assert r.status_code == 403 and "streets.edit" in r.json()["detail"]
    r = _upload(client, _file(tmp_path, _frame([_m(PATH)])), headers=inspector)
    assert r.status_code == 403 and "grids.import" in r.json()["detail"]
    assert _counts(session) == before


# -- street coverage on imported streets ----------------------------------------------------------
def _street_shares(client: TestClient) -> dict[str, float | None]:
    r = client.get("/api/coverage/grids", params={"period": "day", "start": "2026-11-17"})
    assert r.status_code == 200, r.text
    return {g["code"]: g["street_share"] for g in r.json()["grids"]}


def _exact_street_share(street_m: LineString, cell: shapely.Polygon) -> float | None:
    inside = street_m.intersection(cell)
    if inside.length == 0:
        return None
    seen = _m(PATH).buffer(25.0)
    return inside.intersection(seen).length / inside.length


def test_street_coverage_works_on_imported_streets(
    client: TestClient, editor, tmp_path: Path
) -> None:
    r = client.put(
        "/api/patrol/workers/W001", json={"code": "W001", "name": "王伟", "devices": ["phone-1"]}
    )
    assert r.status_code == 201, r.text
    fixes = walk(PATH)
    assert client.post(
        "/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes}
    ).is_success
    assert _upload(client, _file(tmp_path, _frame([_m(DIAGONAL)])), headers=editor).is_success
    shares = _street_shares(client)
    checked = 0
    for seq, (x, y) in enumerate(
        [(x, y) for y in (100, 0) for x in range(0, 400, 100)], start=1
    ):  # north row A-01..04, then south row A-05..08
        expected = _exact_street_share(_m(DIAGONAL), mbox(x, y, x + 100, y + 100))
        got = shares[unit_code(COMM_A, seq)]
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=0.06), unit_code(COMM_A, seq)
            checked += 1
    assert checked >= 4
    assert shares[unit_code(COMM_B, 1)] is None  # no street there
    # an edit in place moves the answer: the street now runs along the walk
    street_id = client.get("/api/streets").json()["features"][0]["id"]
    moved = shapely.geometry.mapping(lonlat(_m([(0, 50), (400, 50)])))
    assert client.patch(
        f"/api/streets/{street_id}", json={"geometry": moved}, headers=editor
    ).is_success
    after = _street_shares(client)
    for seq in range(5, 9):
        assert after[unit_code(COMM_A, seq)] == pytest.approx(1.0, abs=0.02)
    for seq in range(1, 5):
        assert after[unit_code(COMM_A, seq)] is None


# -- the command line -----------------------------------------------------------------------------
CLI_CITY = "990230"  # committed by the CLI (audit rows are append-only; the database is dropped)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine):
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYGRID_CITY", CLI_CITY)
    yield
    with Session(engine) as session:
        session.query(Street).filter(Street.city == CLI_CITY).delete()
        session.commit()


def _cli_state(engine: Engine) -> tuple[list[str | None], list[tuple[str, str]]]:
    with Session(engine) as session:
        names = list(
            session.scalars(select(Street.name).where(Street.city == CLI_CITY).order_by(Street.id))
        )
        audit = [
            (a.action, a.actor_name)
            for a in session.scalars(
                select(AuditEntry).where(AuditEntry.city == CLI_CITY).order_by(AuditEntry.id)
            )
            if a.entity == "streets"
        ]
    return names, audit


def test_cli_streets_import_as_system_and_as_a_named_operator(
    cli_env, engine: Engine, tmp_path: Path, settings_for
) -> None:
    path = _file(tmp_path, _frame([_m(DIAGONAL), _m(NORTH)], names=["对角路", "北路"]))
    result = CliRunner().invoke(app, ["streets", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "added 2 streets" in result.output
    names, audit = _cli_state(engine)
    assert names == ["对角路", "北路"] and audit == [("street.import", "system")]
    # a named operator: recorded by name, with their permission checked
    settings = settings_for(CLI_CITY)
    with Session(engine) as session:
        accounts = AccountService(session, settings)
        accounts.seed()
        for login, roles in (("gis-liu", ["gis_editor"]), ("insp-liu", ["inspector"])):
            if accounts.user_by_login(login) is None:
                accounts.create_user(
                    UserInput(
                        login=login,
                        display_name="刘工",
                        password="correct horse battery",
                        roles=roles,
                    ),
                    SYSTEM,
                )
        session.commit()
    again = tmp_path / "again"
    again.mkdir()
    path = _file(again, _frame([_m(PATH)], names=["南路"]))
    refused = CliRunner().invoke(app, ["streets", "import", str(path), "--as", "insp-liu"])
    assert refused.exit_code == 1 and "grids.import" in refused.output
    assert _cli_state(engine)[0] == ["对角路", "北路"]
    result = CliRunner().invoke(
        app, ["streets", "import", str(path), "--replace", "--as", "gis-liu"]
    )
    assert result.exit_code == 0, result.output
    names, audit = _cli_state(engine)
    assert names == ["南路"]
    assert audit[-1] == ("street.import", "刘工 (gis-liu)")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    result = CliRunner().invoke(app, ["streets", "import", str(bad)])
    assert result.exit_code == 1 and _cli_state(engine)[0] == ["南路"]


def test_a_scoped_editor_may_draw_streets_only_inside_the_scope(
    client: TestClient, session: Session, settings: AppSettings, case_city, tmp_path: Path
) -> None:
    user = make_user(session, settings, "gis_editor", scope_grids=[COMM_A])
    headers = bearer(session, settings, user)
    along_edge = shapely.geometry.mapping(lonlat(_m([(0, 0), (400, 0)])))  # A's southern edge
    r = client.post("/api/streets", json={"geometry": along_edge}, headers=headers)
    assert r.status_code == 201, r.text
    own = r.json()["id"]
    other = client.post(
        "/api/streets",
        json={"geometry": shapely.geometry.mapping(lonlat(_m([(450, 20), (750, 20)])))},
    ).json()["id"]  # drawn by the admin, in community B
    before = _counts(session)
    crossing = shapely.geometry.mapping(lonlat(_m([(300, 20), (500, 20)])))  # into community B
    for r in (
        client.post("/api/streets", json={"geometry": crossing}, headers=headers),
        client.patch(f"/api/streets/{own}", json={"geometry": crossing}, headers=headers),
        client.patch(f"/api/streets/{other}", json={"name": "乙路"}, headers=headers),
        client.delete(f"/api/streets/{other}", headers=headers),
        _upload(client, _file(tmp_path, _frame([_m(DIAGONAL)])), headers=headers, replace="true"),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["field"] == "scope" and COMM_A[:12] in r.json()["detail"]
    assert _counts(session) == before
    # inside the scope an import is fine
    assert _upload(client, _file(tmp_path, _frame([_m(DIAGONAL)])), headers=headers).is_success
