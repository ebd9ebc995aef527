"""Reads in scope on the demo city: a principal sees the cases of its grid subtrees, of its
department (once dispatched there) and its own reports — in lists, by id, in the history, the
counts, the exports, Open311 and the map layers — and nothing else; and scoping keeps the case
queries on their indexes."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM, Principal
from service.cases.ledger import CaseFilter, Ledger
from service.maps.heat import HeatService
from service.maps.tiles import TileService, tile_request
from service.settings import AppSettings
from tests.helpers.accounts import headers_of
from tests.helpers.scope import Places, act, demo_places, report_at


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


def _ids(client: TestClient, headers: dict[str, str], **params: Any) -> set[int]:
    r = client.get("/api/cases", params={"limit": 1000} | params, headers=headers)
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["items"]}


def test_a_case_on_a_shared_edge_belongs_to_the_grid_it_was_mapped_to(
    demo_client: TestClient, places: Places
) -> None:
    case = report_at(demo_client, places.edge_point)
    owner = case["grid_code"]
    assert owner in (places.edge_a, places.edge_b)
    assert {c["code"] for c in case["grid_candidates"]} == {places.edge_a, places.edge_b}
    other = places.edge_b if owner == places.edge_a else places.edge_a
    mine = headers_of(demo_client, "grid_worker", scope_grids=[owner])
    theirs = headers_of(demo_client, "grid_worker", scope_grids=[other])

    assert demo_client.get(f"/api/cases/{case['id']}", headers=mine).status_code == 200
    assert case["id"] in _ids(demo_client, mine)
    # the neighbour's worker: as if the case did not exist
    for path in (f"/api/cases/{case['id']}", f"/api/cases/{case['id']}/history"):
        r = demo_client.get(path, headers=theirs)
        assert r.status_code == 404 and r.json()["detail"] == f"no case {case['id']}"
    assert case["id"] not in _ids(demo_client, theirs)
    counts = demo_client.get("/api/cases/counts", headers=theirs).json()
    assert owner not in {row["grid"] for row in counts}


def test_a_subtree_sees_its_cases_and_a_sibling_subtree_does_not(
    demo_client: TestClient, places: Places
) -> None:
    inside = report_at(demo_client, places.unit_point)["id"]
    next_door = report_at(demo_client, places.sibling_point)["id"]
    community = headers_of(demo_client, "inspector", scope_grids=[places.community])
    sibling = headers_of(demo_client, "inspector", scope_grids=[places.sibling])
    street = headers_of(demo_client, "inspector", scope_grids=[places.street])

    assert _ids(demo_client, community) == {inside}
    assert _ids(demo_client, sibling) == {next_door}
    assert _ids(demo_client, street) == {inside, next_door}
    assert demo_client.get(f"/api/cases/{next_door}", headers=community).status_code == 404
    # asking for the sibling's subtree by filter does not widen the scope
    assert _ids(demo_client, community, grid=places.sibling) == set()
    # counts per community: only the principal's own
    rows = demo_client.get(
        "/api/cases/counts", params={"level": "community"}, headers=community
    ).json()
    assert [(r["grid"], r["cases"]) for r in rows] == [(places.community, 1)]


def test_a_department_sees_the_cases_dispatched_to_it_and_its_own_reports(
    demo_client: TestClient, places: Places
) -> None:
    sanitation = headers_of(demo_client, "department", department="环卫所")
    routed = report_at(demo_client, places.unit_point)  # routed to 环卫所, not dispatched
    assert routed["department"] == "环卫所"
    assert _ids(demo_client, sanitation) == set()
    assert demo_client.get(f"/api/cases/{routed['id']}", headers=sanitation).status_code == 404
    for step in ("register", "dispatch"):
        assert act(demo_client, routed["id"], step).status_code == 200
    elsewhere = report_at(demo_client, places.sibling_point)
    for step in ("register", "dispatch"):
        act(demo_client, elsewhere["id"], step, department="城管执法中队")
    assert _ids(demo_client, sanitation) == {routed["id"]}
    assert demo_client.get(f"/api/cases/{routed['id']}", headers=sanitation).status_code == 200
    # a hotline key reports (cases.report) and reads what it reported, nothing else
    worker = headers_of(demo_client, "grid_worker", scope_grids=[places.sibling])
    own = report_at(demo_client, places.unit_point, headers=worker)
    assert own["id"] in _ids(demo_client, worker)
    assert routed["id"] not in _ids(demo_client, worker)


def test_a_replayed_idempotency_key_never_shows_a_case_out_of_scope(
    demo_client: TestClient, places: Places
) -> None:
    body = {"idempotency_key": "phone-42-0001"}
    first = report_at(demo_client, places.unit_point, **body)
    stranger = headers_of(demo_client, "grid_worker", scope_grids=[places.sibling])
    point = {"lon": places.unit_point[0], "lat": places.unit_point[1]}
    again = demo_client.post(
        "/api/cases", json={"category_code": "0102", **point, **body}, headers=stranger
    )
    assert again.status_code == 409
    assert again.json() == {
        "detail": "idempotency key 'phone-42-0001' was used for another report; "
        "use a new key for a new report",
        "field": "idempotency_key",
    }  # nothing of case first["id"]
    assert demo_client.get(f"/api/cases/{first['id']}").json()["version"] == first["version"]


def test_exports_and_open311_show_only_the_scope(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    from tests.helpers.accounts import seeded

    inside = report_at(demo_client, places.unit_point)["id"]
    outside = report_at(demo_client, places.sibling_point)["id"]
    seeded(session, demo_loaded).save_role(
        "community_exporter", "社区导出", "exporter", ["cases.read", "cases.export"], by=SYSTEM
    )
    session.commit()
    exporter = headers_of(demo_client, "community_exporter", scope_grids=[places.community])
    r = demo_client.get("/api/cases/export", params={"lang": "en"}, headers=exporter)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [int(row["id"]) for row in rows] == [inside]

    reader = headers_of(demo_client, "inspector", scope_grids=[places.community])
    listed = demo_client.get("/open311/v2/requests.json", headers=reader).json()
    assert [int(x["service_request_id"]) for x in listed] == [inside]
    both = demo_client.get(
        "/open311/v2/requests.json",
        params={"service_request_id": f"{inside},{outside}"},
        headers=reader,
    ).json()
    assert [int(x["service_request_id"]) for x in both] == [inside]
    one = demo_client.get(f"/open311/v2/requests/{outside}.json", headers=reader)
    assert one.status_code == 404


def test_heat_layers_and_case_tiles_count_only_the_scope(
    demo_client: TestClient, places: Places
) -> None:
    report_at(demo_client, places.unit_point)
    report_at(demo_client, places.sibling_point)
    community = headers_of(demo_client, "inspector", scope_grids=[places.community])
    heat = demo_client.get("/api/heat/grids", params={"per": "grid"}, headers=community)
    assert heat.status_code == 200, heat.text
    features = heat.json()["features"]
    assert {f["properties"]["code"][:12] for f in features} == {places.community[:12]}
    assert sum(f["properties"]["cases"] for f in features) == 1
    admin = demo_client.get("/api/heat/grids", params={"per": "grid"}).json()["features"]
    assert sum(f["properties"]["cases"] for f in admin) == 2
    # the whole city in one tile at zoom 10: one cluster of one case for the community
    z, x, y = _tile_of(places.unit_point, 10)
    tile = demo_client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=community)
    assert tile.status_code == 200
    clusters = decode(tile.content)["case_clusters"]["features"]
    assert sum(f["properties"]["count"] for f in clusters) == 1
    everyone = decode(demo_client.get(f"/tiles/cases/{z}/{x}/{y}.mvt").content)
    assert sum(f["properties"]["count"] for f in everyone["case_clusters"]["features"]) == 2


def test_case_tiles_need_maps_read_even_when_grids_are_public(
    demo_client: TestClient, places: Places
) -> None:
    department = headers_of(demo_client, "department", department="环卫所")  # no maps.read
    z, x, y = _tile_of(places.unit_point, 10)
    r = demo_client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", headers=department)
    assert r.status_code == 403 and "maps.read" in r.json()["detail"]


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def _tile_of(point: tuple[float, float], z: int) -> tuple[int, int, int]:
    import math

    lon, lat = point
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


# -- plans ----------------------------------------------------------------------------------------
def _seq_scans_on_cases(session: Session, sql: str, params: dict[str, Any]) -> list[str]:
    """Node types of the plan of ``sql`` that read the cases table sequentially."""
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params)
    found, pending = [], [plan.scalar_one()[0]["Plan"]]
    while pending:
        node = pending.pop()
        if node.get("Relation Name") == "cases" and node["Node Type"] == "Seq Scan":
            found.append(node["Node Type"])
        pending.extend(node.get("Plans", []))
    return found


@pytest.fixture
def demo_cases(session: Session, demo_loaded: AppSettings, places: Places) -> int:
    """The demo's 20,000 cases (rolled back after the test), with fresh statistics."""
    from service.demo import load_demo_cases

    n = load_demo_cases(session, demo_loaded, 20_000)
    session.execute(text("ANALYZE cases"))
    return n


def _principals(session: Session, settings: AppSettings, places: Places) -> list[Principal]:
    from service.accounts.accounts import AccountService
    from tests.helpers.accounts import make_user

    users = [
        make_user(session, settings, "grid_worker", scope_grids=[places.unit]),
        make_user(session, settings, "inspector", scope_grids=[places.community]),
        make_user(session, settings, "dispatcher", scope_grids=[places.street]),
        make_user(session, settings, "department", department="环卫所"),
    ]
    accounts = AccountService(session, settings)
    return [accounts.principal_for_user(u) for u in users]


def test_scoped_case_list_heat_and_tile_queries_use_indexes(
    session: Session, demo_loaded: AppSettings, places: Places, demo_cases: int
) -> None:
    assert demo_cases > 15_000
    dialect = session.get_bind().dialect
    ledger = Ledger(session, demo_loaded)
    heat = HeatService(session, demo_loaded)
    tiles = TileService(session, demo_loaded)
    z, x, y = _tile_of(places.unit_point, 15)
    first, last = session.execute(
        text("SELECT min(reported_at), max(reported_at) FROM cases")
    ).one()
    for by in _principals(session, demo_loaded, places):
        for flt in (CaseFilter(), CaseFilter(statuses=("dispatched",))):
            compiled = ledger.query(flt, by, 101).compile(
                dialect=dialect, compile_kwargs={"render_postcompile": True}
            )
            assert _seq_scans_on_cases(session, str(compiled), compiled.params) == [], by
        window = heat.checked(first, last + timedelta(seconds=1), by=by)  # every case
        compiled = heat.counts_query(window).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        assert _seq_scans_on_cases(session, str(compiled), compiled.params) == [], by
        for zoom in (z, 12):
            req = tile_request("cases", zoom, x >> (z - zoom), y >> (z - zoom))
            sql, params = tiles.case_statements(req, (None, None, None), window.end, by)
            for name in ("count", "points", "clusters"):
                given = params | {"limit": 10_001, "cell": 512}
                used = {k: v for k, v in given.items() if re.search(rf":{k}\b", sql[name])}
                bound = text(sql[name]).bindparams(**used)
                compiled = bound.compile(
                    dialect=dialect, compile_kwargs={"render_postcompile": True}
                )
                assert _seq_scans_on_cases(session, str(compiled), compiled.params) == [], (
                    by,
                    name,
                )
