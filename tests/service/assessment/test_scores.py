"""Scoring schemes, scores, grades and the 红黄榜: validation, points by hand, deductions for
flagged cases, band edges, ranks in peer groups, publishing, revisions, permissions, scope,
export and the map layer."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from layers.i18n import messages
from layers.styles import ANSWER_TEXTS
from service.assessment.schemes import DEFAULT_DOCUMENT, SchemeDocument
from service.assessment.scoring import points
from service.db.models import AuditEntry, Case, ScoringScheme
from service.factory import create_app
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, STREET, unit_code
from tests.service.assessment.test_indicators import Builder, flow, t

A1, A2, A3 = (unit_code(COMM_A, i) for i in range(1, 4))
B1 = unit_code(COMM_B, 1)
NOV = "2026-11"

# a scheme for the tests: grids of two levels, numbers easy to follow by hand
SCHEME: dict[str, Any] = {
    "name": "测试方案",
    "rules": [
        {
            "subject": "grid",
            "levels": ["unit", "community"],
            "components": [
                {
                    "indicator": "on_time_close_rate",
                    "weight": 50,
                    "points": {"rule": "linear", "zero": 0, "full": 1},
                },
                {
                    "indicator": "close_rate",
                    "weight": 30,
                    "points": {"rule": "below_target", "target": 0.95, "per_point": 2},
                },
                {
                    "indicator": "rework_rate",
                    "weight": 20,
                    "points": {
                        "rule": "bands",
                        "bands": [{"at_most": 0.1, "points": 100}, {"at_most": 0.3, "points": 50}],
                        "otherwise": 0,
                    },
                },
            ],
            "deductions": [
                {"kind": "rework", "points": 2},
                {"kind": "failed_verification", "times": 2, "points": 5},
            ],
            "peer_group": "parent",
            "lists": {"red": {"top": 1, "min_score": 60}, "yellow": {"bottom": 1}},
        }
    ],
    "grades": DEFAULT_DOCUMENT["grades"],
}


def closed_on_time(reg: Any, fb: Any, verify: Any) -> list:
    return flow(reg, ("dispatch", reg), ("feedback", fb), ("verify", verify))


@pytest.fixture
def month(case_city, session: Session, settings: AppSettings) -> Builder:
    """November: A1 with four due cases (one late, one reworked and leader-flagged, one open
    and overdue), A2 with a media-flagged case reworked twice, A3 with one clean case, B1
    with one open overdue case."""
    b = Builder(session, settings.grids.city)
    b.case("a", A1, t(2, 9), t(6, 9), closed_on_time(t(2, 10), t(3, 9), t(4, 9)))
    b.case("b", A1, t(2, 9), t(4, 9), closed_on_time(t(2, 10), t(5, 9), t(6, 9)))
    b.case(
        "c",
        A1,
        t(3, 9),
        t(20, 9),
        flow(
            t(3, 10),
            ("dispatch", t(3, 10)),
            ("feedback", t(4, 9)),
            ("rework", t(4, 12)),
            ("feedback", t(5, 9)),
            ("verify", t(5, 12)),
        ),
    )
    b.case("d", A1, t(5, 9), t(7, 9), flow(t(5, 10), ("dispatch", t(5, 10))))
    b.case(
        "e",
        A2,
        t(6, 9),
        t(25, 9),
        flow(
            t(6, 10),
            ("dispatch", t(6, 10)),
            ("feedback", t(7, 9)),
            ("rework", t(7, 12)),
            ("feedback", t(8, 9)),
            ("rework", t(8, 12)),
            ("feedback", t(9, 9)),
            ("verify", t(9, 12)),
        ),
    )
    b.case("f", A3, t(10, 9), t(15, 9), closed_on_time(t(10, 10), t(11, 9), t(12, 9)))
    b.case("g", B1, t(10, 9), t(12, 9), flow(t(10, 10), ("dispatch", t(10, 10))))
    session.get(Case, b.ids["c"]).fields = {"flags": ["leader"]}  # type: ignore[union-attr]
    session.get(Case, b.ids["e"]).fields = {"flags": ["media", "other"]}  # type: ignore[union-attr]
    session.commit()
    return b


@pytest.fixture
def scheme(month: Builder, client: TestClient) -> dict[str, Any]:
    r = client.post(
        "/api/assessment/schemes", json={"document": SCHEME, "valid_from": "2026-11-01"}
    )
    assert r.status_code == 201, r.text
    return r.json()


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in body["items"]}


# -- points and grades, by hand -----------------------------------------------------------------
def test_points_rules_match_a_hand_calculation() -> None:
    doc = SchemeDocument.model_validate(SCHEME)
    on_time, close, rework = (c.points for c in doc.rules[0].components)
    assert on_time is not None and close is not None and rework is not None
    assert points(on_time, 0.5) == 50 and points(on_time, 1.2) == 100
    # 95 % target, 2 points per percentage point short: 75 % is 20 points short → 60
    assert points(close, 0.75) == 60 and points(close, 0.97) == 100 and points(close, 0) == 0
    assert [points(rework, v) for v in (0, 0.1, 0.1001, 0.3, 0.31)] == [100, 100, 50, 50, 0]
    lower = SchemeDocument.model_validate(DEFAULT_DOCUMENT).rules[1].components[2].points
    assert lower is not None and points(lower, 0.05) == 75  # 返工率 linear from 20 % to 0


def test_grades_at_the_band_edges() -> None:
    doc = SchemeDocument.model_validate(DEFAULT_DOCUMENT)
    assert [doc.grade(x) for x in (100, 90, 89.99, 75, 74.99, 60, 40, 39.99, 0)] == [
        "A",
        "A",
        "B",
        "B",
        "C",
        "C",
        "D",
        "E",
        "E",
    ]


# -- schemes ------------------------------------------------------------------------------------
def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(SCHEME)
    node: Any = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        (["rules", 0, "components", 0, "weight"], 40, "document.rules.0", "add up to 90"),
        (
            ["rules", 0, "components", 1, "indicator"],
            "happiness",
            "document.rules.0.components.1.indicator",
            "happiness",
        ),
        (
            ["rules", 0, "components", 2, "points", "bands"],
            [{"at_most": 0.3, "points": 50}, {"at_most": 0.1, "points": 100}],
            "document.rules.0.components.2.points.bands",
            "ascending",
        ),
        (
            ["rules", 0, "components", 2, "points", "bands"],
            [{"at_most": 0.1, "points": 150}],
            "document.rules.0.components.2.points.bands.bands.0.points",
            "100",
        ),
        (["grades", 4, "min"], 10, "document.grades", "last grade"),
        (["rules", 0, "levels"], ["unit", "village"], "document.rules.0", "village"),
    ],
)
def test_bad_schemes_are_422_naming_the_field_and_nothing_is_stored(
    case_city,
    client: TestClient,
    session: Session,
    path: list[Any],
    value: Any,
    field: str,
    words: str,
) -> None:
    before = session.scalar(select(func.count()).select_from(ScoringScheme))
    r = client.post("/api/assessment/schemes", json={"document": _broken(path, value)})
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith(field) and words in r.text
    assert session.scalar(select(func.count()).select_from(ScoringScheme)) == before


def test_a_new_version_applies_from_its_date_and_the_old_ones_stay(
    scheme: dict[str, Any], client: TestClient, session: Session
) -> None:
    listing = client.get("/api/assessment/schemes", params={"period": NOV}).json()
    assert listing["in_force"] == scheme["id"] and scheme["version"] == 1
    october = client.get("/api/assessment/schemes", params={"period": "2026-10"}).json()
    default = client.get(f"/api/assessment/schemes/{october['in_force']}").json()
    assert default["default"] and default["document"]["name"] == DEFAULT_DOCUMENT["name"]
    assert len(listing["items"]) == 2
    # October is scored by the default (every subject type), November by the test scheme
    oct_scores = client.get("/api/assessment/scores", params={"period": "2026-10"}).json()
    assert oct_scores["scheme"]["id"] == default["id"]
    nov = client.get("/api/assessment/scores", params={"period": NOV}).json()
    assert {s["kind"] for s in nov["items"]} == {"grid"}
    assert {s["level"] for s in nov["items"]} == {"unit", "community"}
    audit = session.scalars(select(AuditEntry).where(AuditEntry.entity == "scoring_scheme")).all()
    assert [a.entity_key for a in audit] == [str(scheme["id"])]


def test_the_migration_seeds_the_default_scheme(session: Session) -> None:
    row = session.scalars(select(ScoringScheme).where(ScoringScheme.city.is_(None))).one()
    assert row.document == SchemeDocument.model_validate(DEFAULT_DOCUMENT).model_dump(
        mode="json", exclude_none=True
    )
    worker = row.document["rules"][2]
    assert [(c["indicator"], c["weight"]) for c in worker["components"]] == [
        ("valid_report_rate", 40),
        ("missed", 20),
        ("on_time_check_rate", 40),
    ]


# -- scores -------------------------------------------------------------------------------------
def test_scores_are_the_hand_computed_points_weights_and_deductions(
    scheme: dict[str, Any], client: TestClient, month: Builder
) -> None:
    r = client.get(f"/api/assessment/scores/grid/{A1}", params={"period": NOV})
    assert r.status_code == 200, r.text
    a1 = r.json()
    # A1: due 4 (a, b, c closed; d open and overdue), on time 2 (a, c), 1 rework
    comps = {c["indicator"]: c for c in a1["components"]}
    assert comps["on_time_close_rate"]["value"] == 0.5
    assert comps["on_time_close_rate"]["points"] == 50
    assert comps["on_time_close_rate"]["weighted_points"] == 25
    assert comps["close_rate"]["value"] == 0.75 and comps["close_rate"]["points"] == 60
    assert comps["close_rate"]["weighted_points"] == 18
    assert comps["rework_rate"]["value"] == 0.25 and comps["rework_rate"]["points"] == 50
    assert comps["rework_rate"]["weighted_points"] == 10
    # one rework of a leader-assigned case: 2 points doubled
    (rework,) = a1["deductions"]
    assert rework["kind"] == "rework" and rework["points"] == 4
    assert rework["case_ids"] == [month.ids["c"]] and rework["cases"][0]["flags"] == ["leader"]
    assert a1["total"] == 49 and a1["grade"] == "D"

    a2 = client.get(f"/api/assessment/scores/grid/{A2}", params={"period": NOV}).json()
    # 80 weighted; two reworks × 2 × 2 (media) = 8; failed twice: 5 × 2 = 10
    assert sum(c["weighted_points"] for c in a2["components"]) == 80
    ded = {d["kind"]: d for d in a2["deductions"]}
    assert ded["rework"]["points"] == 8 and ded["failed_verification"]["points"] == 10
    assert ded["failed_verification"]["case_ids"] == [month.ids["e"]]
    assert a2["total"] == 62 and a2["grade"] == "C"

    comm = client.get(f"/api/assessment/scores/grid/{COMM_A}", params={"period": NOV}).json()
    # community A: due 6, closed 5, on time 4, reworks 3
    on_time = round(100 * round(4 / 6, 4), 2)
    close = round(100 - 2 * (0.95 - round(5 / 6, 4)) * 100, 2)
    expected = on_time * 0.5 + close * 0.3 + 0 - (4 + 8 + 10)
    assert a2 and comm["total"] == pytest.approx(expected, abs=0.01)


def test_ranks_and_lists_within_peer_groups(scheme: dict[str, Any], client: TestClient) -> None:
    units = by_key(
        client.get("/api/assessment/scores", params={"period": NOV, "subject": "grid:unit"}).json()
    )
    assert (units[A3]["rank"], units[A2]["rank"], units[A1]["rank"]) == (1, 2, 3)
    assert {units[k]["group"] for k in (A1, A2, A3)} == {COMM_A} and units[B1]["group"] == COMM_B
    assert units[B1]["rank"] == 1  # alone in community B
    # red: the best and at least 60; yellow: the worst — B1 is best and worst but scores 20
    assert (units[A3]["list"], units[A2]["list"], units[A1]["list"]) == ("red", None, "yellow")
    assert units[B1]["list"] == "yellow" and units[B1]["total"] == 20
    idle = units[unit_code(COMM_A, 5)]
    assert not idle["active"] and idle["rank"] is None and idle["list"] is None
    lists = client.get(
        "/api/assessment/lists", params={"period": NOV, "subject": "grid:unit", "group": COMM_A}
    ).json()
    (section,) = lists["sections"]
    (group,) = section["groups"]
    assert [r["key"] for r in group["red"]] == [A3] and [r["key"] for r in group["yellow"]] == [A1]
    comms = by_key(
        client.get(
            "/api/assessment/scores", params={"period": NOV, "subject": "grid:community"}
        ).json()
    )
    assert comms[COMM_A]["group"] == STREET and comms[COMM_A]["rank"] == 1
    assert comms[COMM_B]["rank"] == 2


def test_externals_weigh_in_and_a_missing_one_is_scaled_away(
    month: Builder, session: Session, settings: AppSettings
) -> None:
    from service.assessment.lists import ListService
    from service.assessment.periods import parse_period

    doc = SchemeDocument.model_validate(
        {
            **SCHEME,
            "rules": [
                {
                    "subject": "grid",
                    "levels": ["unit"],
                    "components": [
                        {
                            "indicator": "on_time_close_rate",
                            "weight": 80,
                            "points": {"rule": "linear", "zero": 0, "full": 1},
                        },
                        {"external": "cross_scoring", "weight": 20},
                    ],
                }
            ],
        }
    )
    store = ListService(session, settings)
    from service.accounts.principal import SYSTEM

    store.schemes.add(doc.model_dump(mode="json"), t(1, 0), SYSTEM, {"on_time_close_rate"})
    p = parse_period(NOV, settings.grids.timezone)
    board = store.compute(p, [("grid", "unit")], lambda _p: {"cross_scoring": {A1: 90.0}})
    scores = {s["key"]: s for s in board["sections"][0]["scores"]}
    # A1: 50 points × 80 % + 90 × 20 % = 58
    assert scores[A1]["total"] == 58
    # A3 has no round score: on-time closure alone (100) carries the whole weight
    assert scores[A3]["total"] == 100
    assert [c["effective_weight"] for c in scores[A3]["components"]] == [100]
    assert scores[A3]["left_out"] == ["cross_scoring"]
    # the service's own provider is what every method uses by default (publishing too)
    wired = ListService(session, settings, externals=lambda _p: {"cross_scoring": {A3: 50.0}})
    row = wired.publish(p, SYSTEM)
    frozen = {s["key"]: s for s in row.snapshot["sections"][0]["scores"]}
    assert frozen[A3]["total"] == 90  # 100 × 80 % + 50 × 20 %


# -- publishing ---------------------------------------------------------------------------------
def test_publishing_freezes_and_revisions_keep_the_old_one(
    scheme: dict[str, Any], client: TestClient, session: Session, month: Builder
) -> None:
    r = client.post("/api/assessment/lists/publish", json={"period": NOV})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["revision"] == 1
    # a late edit: A3 gets an open overdue case in November
    month.case("late_edit", A3, t(20, 9), t(21, 9), flow(t(20, 10), ("dispatch", t(20, 10))))
    session.commit()
    frozen = by_key(client.get("/api/assessment/scores", params={"period": NOV}).json())
    assert frozen[A3]["total"] == 100 and frozen[A3]["list"] == "red"
    explained = client.get(f"/api/assessment/scores/grid/{A3}", params={"period": NOV}).json()
    assert explained["published"]["revision"] == 1 and explained["total"] == 100
    # an unpublished period recomputes on read
    dec = client.get("/api/assessment/scores", params={"period": "2026-11-01..2026-11-30"})
    assert by_key(dec.json())[A3]["total"] < 100
    # publishing again, correcting without a reason, correcting an old revision
    again = client.post("/api/assessment/lists/publish", json={"period": NOV})
    assert again.status_code == 409 and again.json()["field"] == "period"
    r = client.post(f"/api/assessment/lists/{first['id']}/revisions", json={"reason": ""})
    assert r.status_code == 422 and "reason" in r.text
    r = client.post(
        f"/api/assessment/lists/{first['id']}/revisions", json={"reason": "补录漏登案件"}
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["revision"] == 2 and second["reason"] == "补录漏登案件"
    stale = client.post(f"/api/assessment/lists/{first['id']}/revisions", json={"reason": "x"})
    assert stale.status_code == 409
    edit = client.patch(f"/api/assessment/lists/{second['id']}", json={"reason": "x"})
    assert edit.status_code == 409 and edit.json()["field"] == "id" and "revision" in edit.text
    assert client.delete(f"/api/assessment/lists/{first['id']}").status_code == 409
    latest = client.get("/api/assessment/lists", params={"period": NOV}).json()
    assert latest["published"]["revision"] == 2
    assert [r["revision"] for r in latest["revisions"]] == [1, 2]
    new = by_key(client.get("/api/assessment/scores", params={"period": NOV}).json())
    old = by_key(client.get("/api/assessment/scores", params={"period": NOV, "revision": 1}).json())
    assert new[A3]["total"] < 100 and old[A3]["total"] == 100
    missing = client.get("/api/assessment/lists", params={"period": NOV, "revision": 7})
    assert missing.status_code == 404 and missing.json()["field"] == "revision"
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "assessment_list").order_by(AuditEntry.id)
    ).all()
    assert [(a.action, a.entity_key) for a in audit] == [
        ("publish", f"{NOV}#1"),
        ("revise", f"{NOV}#2"),
    ]


def test_publishing_an_empty_period_is_422(case_city, client: TestClient) -> None:
    r = client.post("/api/assessment/lists/publish", json={"period": "2026-09"})
    assert r.status_code == 422 and r.json()["field"] == "period"
    bad = client.post("/api/assessment/lists/publish", json={"period": "2026-13"})
    assert bad.status_code == 422 and bad.json()["field"] == "period"


# -- permissions and scope ----------------------------------------------------------------------
def test_permissions_to_publish_and_to_edit_schemes(
    scheme: dict[str, Any],
    settings: AppSettings,
    sessions: sessionmaker[Session],
    session: Session,
) -> None:
    worker = make_user(session, settings, "grid_worker", scope_grids=[COMM_A])
    leader = make_user(session, settings, "leader")
    session.commit()
    with TestClient(create_app(settings, sessions=sessions)) as c:
        c.headers.update(bearer(session, settings, worker))
        r = c.post("/api/assessment/lists/publish", json={"period": NOV})
        assert r.status_code == 403 and "assessment.publish" in r.text
        c.headers.update(bearer(session, settings, leader))
        r = c.post("/api/assessment/schemes", json={"document": SCHEME})
        assert r.status_code == 403 and "assessment.schemes" in r.text
        r = c.post("/api/assessment/lists/publish", json={"period": NOV})
        assert r.status_code == 201, r.text
    with TestClient(create_app(settings, sessions=sessions)) as anonymous:
        assert anonymous.get("/api/assessment/lists", params={"period": NOV}).status_code == 401


def test_lists_keep_to_the_callers_scope(
    scheme: dict[str, Any],
    settings: AppSettings,
    sessions: sessionmaker[Session],
    session: Session,
) -> None:
    user = make_user(session, settings, "leader", scope_grids=[COMM_B])
    session.commit()
    with TestClient(create_app(settings, sessions=sessions)) as c:
        c.headers.update(bearer(session, settings, user))
        units = c.get("/api/assessment/scores", params={"period": NOV, "subject": "grid:unit"})
        assert {s["key"][:12] for s in units.json()["items"]} == {COMM_B[:12]}
        lists = c.get("/api/assessment/lists", params={"period": NOV}).json()
        keys = {g["key"] for sec in lists["sections"] for g in sec["groups"]}
        assert keys == {COMM_B, STREET}  # community A's units are not shown; B's street is
        listed = {
            r["key"]
            for sec in lists["sections"]
            for g in sec["groups"]
            for r in g["red"] + g["yellow"]
        }
        assert listed and all(k.startswith(COMM_B[:12]) for k in listed)
        r = c.get(f"/api/assessment/scores/grid/{A1}", params={"period": NOV})
        assert r.status_code == 403 and "scope" in r.text


# -- export and map -----------------------------------------------------------------------------
def test_export_has_chinese_headers_one_row_per_unit(
    scheme: dict[str, Any], client: TestClient
) -> None:
    r = client.get("/api/assessment/lists/export", params={"period": NOV, "subject": "grid:unit"})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    head = rows[0]
    for h in (
        "应结案数",
        "结案数",
        "按期结案数",
        "超期结案数",
        "超期未结数",
        "综合得分",
        "等级",
        "红/黄榜",
    ):
        assert h in head
    a1 = next(row for row in rows if row[0] == A1)
    assert a1[head.index("应结案数")] == "4" and a1[head.index("综合得分")] == "49.0"
    assert a1[head.index("按期结案率(%)")] == "50.0" and a1[head.index("红/黄榜")] == "黄榜"
    x = client.get(
        "/api/assessment/lists/export",
        params={"period": NOV, "subject": "grid:unit", "format": "xlsx"},
    )
    assert x.status_code == 200 and x.content[:2] == b"PK"


def test_map_layer_colours_grids_by_grade_and_list(
    scheme: dict[str, Any], client: TestClient
) -> None:
    r = client.get("/api/assessment/map", params={"period": NOV, "level": "unit", "by": "list"})
    assert r.status_code == 200, r.text
    body = r.json()
    feats = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    assert feats[A3]["list"] == "red list" and feats[A1]["list"] == "yellow list"
    assert "按期结案率" in feats[A1]["components"] and "返工扣分" in feats[A1]["components"]
    assert {row["label"] for row in body["legend"]["rows"]} >= {"red list", "yellow list"}
    # the page shows the answer's words from its catalogue: Chinese by default
    texts = messages("zh_CN").browser(ANSWER_TEXTS)["messages"]
    assert texts[body["legend"]["title"]] == "红黄榜"
    assert [texts[row["label"]] for row in body["legend"]["rows"]] == [
        "红榜",
        "黄榜",
        "未上榜",
        "本期无案件",
    ]
    g = client.get("/api/assessment/map", params={"period": NOV, "level": "unit"}).json()
    fills = {f["properties"]["code"]: f["properties"]["fill"] for f in g["features"]}
    assert fills[A3] != fills[A1]


def test_migration_document_is_loadable() -> None:
    path = next(Path("alembic/versions").glob("*scoring.py"))
    spec = importlib.util.spec_from_file_location("m0010", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert SchemeDocument.model_validate(mod.DOCUMENT).name == DEFAULT_DOCUMENT["name"]


def test_the_default_scheme_groups_departments_together_and_workers_by_street(
    month: Builder, client: TestClient, session: Session, settings: AppSettings
) -> None:
    from service.db.models import Worker

    session.add(Worker(city=settings.grids.city, code="W1", name="网格员一", grid_codes=[A1, A2]))
    session.add(Worker(city=settings.grids.city, code="W2", name="网格员二", grid_codes=[B1]))
    session.commit()
    body = client.get("/api/assessment/scores", params={"period": NOV}).json()
    assert body["scheme"]["default"] is True
    kinds = {(s["kind"], s["level"]) for s in body["items"]}
    assert {("department", None), ("worker", None), ("dispatcher", None)} <= kinds
    assert ("grid", "unit") in kinds and ("grid", "city") not in kinds
    depts = [s for s in body["items"] if s["kind"] == "department" and s["active"]]
    assert depts and {s["group"] for s in depts} == {"all"}
    workers = {s["key"]: s for s in body["items"] if s["kind"] == "worker"}
    assert workers["W1"]["group"] == workers["W2"]["group"] == STREET
    w1 = client.get("/api/assessment/scores/worker/W1", params={"period": NOV}).json()
    names = [c["name"] for c in w1["components"]]
    assert names == ["有效上报率", "漏报数", "按时核查率"]
    # the grids' external weight (交叉考核, 20) is scaled away when no round scored the grid
    a1 = client.get(f"/api/assessment/scores/grid/{A1}", params={"period": NOV}).json()
    assert sum(c["effective_weight"] for c in a1["components"]) == pytest.approx(100)
    assert "cross_scoring" not in {c["external"] for c in a1["components"]}
