"""Cross-scoring inspection rounds (交叉考核): the rotation never lets anyone score their own
grid and spreads the load, bad input is refused naming the field with nothing stored, the
round's score is the mean of its scoresheets, permissions and the audit log."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from statistics import fmean
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.assessment.inspection import (
    Scorer,
    conflicts,
    propose_rotation,
    round_details,
    round_scores,
)
from service.assessment.periods import parse_period
from service.db.models import AuditEntry, Grid, RoundAssignment, Scoresheet, User
from service.errors import InvalidInput
from service.factory import create_app
from service.grids.registry import Registry
from service.hotspots.hotspots import HotspotInput, HotspotService
from service.settings import AppSettings
from tests.helpers.accounts import admin_headers, bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, lonlat, mbox, unit_code

A1, A2, A3 = (unit_code(COMM_A, i) for i in (1, 2, 3))
B1, B3 = unit_code(COMM_B, 1), unit_code(COMM_B, 3)
NOV = "2026-11"
BASE = "/api/assessment/rounds"


# -- the rotation, as a pure function -------------------------------------------------------------
def _codes() -> list[tuple[str, str]]:
    """36 unit grids in 3 communities of 2 streets (code, own subtree prefix)."""
    out = []
    for street in ("410105001", "410105002"):
        for comm in ("001", "002", "003"):
            for unit in range(1, 7):
                code = f"{street}{comm}{unit:02d}"
                out.append((code, code))
    return out[:36]


@pytest.mark.parametrize("seed", range(40))
def test_rotation_never_assigns_self_scoring(seed: int) -> None:
    rng = random.Random(seed)
    grids = rng.sample(_codes(), rng.randint(4, 20))
    scorers = []
    for i in range(rng.randint(3, 8)):
        kind = rng.choice(["none", "street", "community", "units"])
        if kind == "none":
            prefixes = None
        elif kind == "street":
            prefixes = (rng.choice(["410105001", "410105002"]),)
        elif kind == "community":
            prefixes = tuple({c[:12] for c, _ in rng.sample(_codes(), 2)})
        else:
            prefixes = tuple(c for c, _ in rng.sample(_codes(), 3))
        scorers.append(Scorer(i + 1, prefixes))
    per_grid = rng.choice([1, 1, 2])
    try:
        pairs = propose_rotation(grids, scorers, per_grid, offset=seed)
    except InvalidInput as exc:  # a grid with too few outsiders: said, naming the grid
        assert exc.field == "grids"
        code = exc.extra["grid"]
        prefix = dict(grids)[code]
        assert sum(not conflicts(s, code, prefix) for s in scorers) < per_grid
        return
    by_id = {s.id: s for s in scorers}
    for code, scorer in pairs:
        assert not conflicts(by_id[scorer], code, dict(grids)[code])
        assert by_id[scorer].prefixes is None or not any(
            code.startswith(p) for p in by_id[scorer].prefixes or ()
        )
    for code, _ in grids:
        mine = [s for c, s in pairs if c == code]
        assert len(mine) == per_grid == len(set(mine))


def test_rotation_is_balanced() -> None:
    grids = _codes()[:17]
    free = [Scorer(i, None) for i in range(1, 6)]
    loads = _loads(propose_rotation(grids, free, 2))
    assert sum(loads.values()) == 34 and max(loads.values()) - min(loads.values()) <= 1
    # two street offices and a city inspector: each office scores only the other street
    grids = _codes()
    offices = [Scorer(1, ("410105001",)), Scorer(2, ("410105002",)), Scorer(3, None)]
    pairs = propose_rotation(grids, offices, 1)
    loads = _loads(pairs)
    assert max(loads.values()) - min(loads.values()) <= 1
    assert all(not c.startswith("410105001") for c, s in pairs if s == 1)


def test_rotation_avoids_the_previous_pairs() -> None:
    grids = _codes()[:4]
    scorers = [Scorer(i, None) for i in range(1, 5)]
    first = propose_rotation(grids, scorers, 1)
    second = propose_rotation(grids, scorers, 1, previous=first)
    assert not set(first) & set(second)
    assert max(_loads(second).values()) == 1


def _loads(pairs: list[tuple[str, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for _, s in pairs:
        out[s] = out.get(s, 0) + 1
    return out


# -- the service through the API ---------------------------------------------------------------
class World:
    def __init__(self, session: Session, settings: AppSettings, client: TestClient) -> None:
        self.session, self.settings, self.client = session, settings, client
        self.users = {
            "office_a": make_user(session, settings, "inspector", scope_grids=[COMM_A]),
            "office_b": make_user(session, settings, "inspector", scope_grids=[COMM_B]),
            "city": make_user(session, settings, "inspector"),
            "worker": make_user(session, settings, "grid_worker", scope_grids=[A1]),
            "leader_a": make_user(session, settings, "leader", scope_grids=[COMM_A]),
        }
        session.commit()
        self.admin = admin_headers(session, settings)

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.session, self.settings, self.users[who])

    def login(self, who: str) -> str:
        return self.users[who].login

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("period", NOV)
        body.setdefault("grids", [A1, A2, B1])
        body.setdefault(
            "scorers", [self.login("office_a"), self.login("office_b"), self.login("city")]
        )
        r = self.client.post(BASE, json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return r.json()

    def sheet(self, grid: str, points: dict[str, float], **extra: Any) -> dict[str, Any]:
        items = [{"code": c, "points": p, "note": extra.get("note")} for c, p in points.items()]
        return {"grid": grid, "items": items, "notes": extra.get("notes"), "photos": []}


FULL = {"mqsb": 20, "zdjy": 20, "ljqy": 15, "ldlf": 10, "ggzp": 10, "lhss": 10, "tczx": 5}


@pytest.fixture
def world(
    case_city: Registry, session: Session, settings: AppSettings, sessions: sessionmaker[Session]
) -> Any:
    with TestClient(create_app(settings, sessions=sessions)) as c:
        yield World(session, settings, c)


def _scorer_of(rnd: dict[str, Any], grid: str) -> str:
    return next(a["scorer"] for a in rnd["assignments"] if a["grid"] == grid)


def test_default_checklist_totals_100_and_dust_only_on_sites(world: World) -> None:
    r = world.client.get(f"{BASE}/checklists/cross_inspection", headers=world.h("city"))
    assert r.status_code == 200
    body = r.json()
    assert body["max_points"] == 100 and body["version"] == 1
    assert {i["code"]: i["hotspot_kind"] for i in body["items"]}["yc"] == "construction_site"
    assert "门前三包" in body["items"][0]["name_zh"]


def test_proposed_rotation_keeps_offices_off_their_own_grids(world: World) -> None:
    rnd = world.create()
    assert rnd["state"] == "draft"
    pairs = {(a["grid"], a["scorer"]) for a in rnd["assignments"]}
    assert len(pairs) == 3 and {g for g, _ in pairs} == {A1, A2, B1}
    for grid, scorer in pairs:
        assert not (scorer == world.login("office_a") and grid.startswith(COMM_A[:12]))
        assert not (scorer == world.login("office_b") and grid.startswith(COMM_B[:12]))


def test_editing_assignments_into_self_scoring_is_refused(world: World) -> None:
    rnd = world.create()
    before = world.client.get(f"{BASE}/{rnd['id']}", headers=world.admin).json()["assignments"]
    r = world.client.put(
        f"{BASE}/{rnd['id']}/assignments",
        json={
            "assignments": [
                {"grid": B1, "scorer": world.login("office_a")},
                {"grid": A1, "scorer": world.login("office_a")},
            ]
        },
        headers=world.admin,
    )
    assert r.status_code == 422
    assert r.json()["field"] == "assignments[1]" and A1 in r.text
    after = world.client.get(f"{BASE}/{rnd['id']}", headers=world.admin).json()["assignments"]
    assert after == before
    # a worker account cannot be made a scorer; a grid outside the round is refused
    for bad, field in (
        ({"grid": A1, "scorer": world.login("worker")}, "assignments"),
        ({"grid": A3, "scorer": world.login("city")}, "assignments[0]"),
    ):
        r = world.client.put(
            f"{BASE}/{rnd['id']}/assignments", json={"assignments": [bad]}, headers=world.admin
        )
        assert r.status_code == 422 and r.json()["field"] == field
    ok = world.client.put(
        f"{BASE}/{rnd['id']}/assignments",
        json={
            "assignments": [
                {"grid": A1, "scorer": world.login("office_b")},
                {"grid": A2, "scorer": world.login("city")},
                {"grid": B1, "scorer": world.login("office_a")},
            ]
        },
        headers=world.admin,
    )
    assert ok.status_code == 200
    assert _scorer_of(ok.json(), A1) == world.login("office_b")
    edits = world.session.scalars(
        select(AuditEntry).where(
            AuditEntry.entity == "inspection_round",
            AuditEntry.entity_key == str(rnd["id"]),
            AuditEntry.action == "assign",
        )
    ).all()
    assert len(edits) == 1  # the refused edits left no row
    assert edits[0].after is not None
    assert sorted(map(tuple, edits[0].after["assignments"])) == sorted(
        [
            (A1, world.users["office_b"].id),
            (A2, world.users["city"].id),
            (B1, world.users["office_a"].id),
        ]
    )


def test_next_months_rotation_changes_the_pairs(world: World) -> None:
    scorers = [world.login("city"), world.login("office_b")]
    october = world.create(period="2026-10", grids=[A1, A2], scorers=scorers)
    november = world.create(period=NOV, grids=[A1, A2], scorers=scorers)
    first = {(a["grid"], a["scorer"]) for a in october["assignments"]}
    second = {(a["grid"], a["scorer"]) for a in november["assignments"]}
    assert len(first) == len(second) == 2 and not first & second


def test_bad_rounds_are_refused_naming_the_field(world: World) -> None:
    count = world.session.scalar(select(func.count()).select_from(RoundAssignment))
    scorers = [world.login("office_a")]
    for body, field in (
        ({"period": "2026-13", "grids": [A1], "scorers": scorers}, "period"),
        ({"period": NOV, "grids": ["41019999999999"], "scorers": scorers}, "grids"),
        ({"period": NOV, "grids": [B1], "scorers": ["nobody"]}, "scorers"),
        ({"period": NOV, "grids": [B1], "scorers": [world.login("worker")]}, "scorers"),
        ({"period": NOV, "grids": [A1], "scorers": scorers}, "grids"),  # only self-scorers
        ({"period": NOV, "level": "unit", "count": 99, "scorers": scorers}, "count"),
        ({"period": NOV, "level": "block", "count": 1, "scorers": scorers}, "level"),
        (
            {"period": NOV, "level": "unit", "count": 1, "within": "4101", "scorers": scorers},
            "within",
        ),
        ({"period": NOV, "grids": [B1], "scorers": scorers, "checklist": "nope"}, "checklist"),
        (
            {"period": NOV, "grids": [B1], "scorers": scorers, "scorers_per_grid": 2},
            "scorers_per_grid",
        ),
    ):
        r = world.client.post(BASE, json=body, headers=world.admin)
        assert r.status_code in (404, 422), (body, r.text)
        assert r.json()["field"] == field, (body, r.text)
    assert world.session.scalar(select(func.count()).select_from(RoundAssignment)) == count


def test_scoring_rules_and_the_round_score(world: World) -> None:
    rnd = world.create(scorers_per_grid=2)
    rid = rnd["id"]
    grid = B1
    first, second = (a["scorer"] for a in rnd["assignments"] if a["grid"] == grid)
    who = {world.login(k): k for k in world.users}
    outsider = next(
        k for k in ("office_a", "office_b", "city") if world.login(k) not in (first, second)
    )
    # not open yet
    r = world.client.post(
        f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, FULL), headers=world.h(who[first])
    )
    assert r.status_code == 409 and r.json()["field"] == "state"
    assert world.client.post(f"{BASE}/{rid}/open", headers=world.admin).status_code == 200
    # editing the rotation of an open round
    r = world.client.post(f"{BASE}/{rid}/rotation", headers=world.admin)
    assert r.status_code == 409
    h1 = world.h(who[first])
    for points, field in (
        ({**FULL, "mqsb": 21}, "items[mqsb]"),
        ({**FULL, "zdjy": -1}, "items[zdjy]"),
        ({**FULL, "bogus": 1}, "items[bogus]"),
        ({**FULL, "yc": 5}, "items[yc]"),  # no construction site touches B1
        ({k: v for k, v in FULL.items() if k != "tczx"}, "items[tczx]"),
    ):
        r = world.client.post(
            f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, points), headers=h1
        )
        assert r.status_code == 422 and r.json()["field"] == field, (points, r.text)
    assert world.session.scalar(select(func.count()).select_from(Scoresheet)) == 0
    # not assigned to this grid
    r = world.client.post(
        f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, FULL), headers=world.h(outsider)
    )
    assert r.status_code == 403 and r.json()["field"] == "grid"
    # two good sheets, the first twice
    one = {**FULL, "mqsb": 14, "zdjy": 17.5}
    two = {**FULL, "ljqy": 9, "tczx": 2}
    r = world.client.post(
        f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, one, note="门前堆物"), headers=h1
    )
    assert r.status_code == 201, r.text
    assert r.json()["score"] == pytest.approx((90 - 8.5) / 90 * 100)
    again = world.client.post(f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, FULL), headers=h1)
    assert again.status_code == 409 and again.json()["field"] == "grid"
    r = world.client.post(
        f"{BASE}/{rid}/scoresheets", json=world.sheet(grid, two), headers=world.h(who[second])
    )
    assert r.status_code == 201
    mine = world.client.get(f"{BASE}/mine", headers=h1).json()["assignments"]
    assert {(m["grid"], m["scored"]) for m in mine if m["round"] == rid} >= {(grid, True)}
    view = world.client.get(f"{BASE}/{rid}", headers=world.admin).json()
    assert view["progress"] == {"assigned": 6, "submitted": 2}
    # open rounds do not count yet
    period = parse_period(NOV, world.settings.grids.timezone)
    assert round_scores(world.session, world.settings, period) == {}
    assert world.client.post(f"{BASE}/{rid}/close", headers=world.admin).status_code == 200
    r = world.client.post(
        f"{BASE}/{rid}/scoresheets", json=world.sheet(A1, FULL), headers=world.h("city")
    )
    assert r.status_code == 409
    # independent mean: each sheet's points over the 90 points that apply to B1
    expected = fmean([sum(one.values()) / 90 * 100, sum(two.values()) / 90 * 100])
    scores = round_scores(world.session, world.settings, period)
    assert scores == {grid: pytest.approx(expected, abs=0.01)}
    details = round_details(world.session, world.settings, period)[grid]
    lost = {
        (s["scorer"], item["code"], item["lost"])
        for part in details["rounds"]
        for s in part["scoresheets"]
        for item in s["lost"]
    }
    assert lost == {
        (first, "mqsb", 6),
        (first, "zdjy", 2.5),
        (second, "ljqy", 6),
        (second, "tczx", 3),
    }
    results = world.client.get(f"{BASE}/{rid}/results", headers=world.admin).json()
    assert results["grids"][grid]["score"] == pytest.approx(expected, abs=0.01)
    # audit: created, opened, two sheets, closed
    actions = set(
        world.session.execute(
            select(AuditEntry.action, AuditEntry.entity).where(
                AuditEntry.entity.in_(["inspection_round", "scoresheet"])
            )
        ).all()
    )
    assert actions >= {
        ("create", "inspection_round"),
        ("open", "inspection_round"),
        ("close", "inspection_round"),
        ("submit", "scoresheet"),
    }


def test_dust_applies_where_a_construction_site_touches_the_grid(
    world: World, session: Session, settings: AppSettings
) -> None:
    HotspotService(session, settings).create(
        [
            HotspotInput(
                "site-01",
                "construction_site",
                "甲工地",
                lonlat(mbox(20, 120, 60, 160)),  # inside A-01
                active_from=datetime(2025, 1, 1, tzinfo=UTC),
            )
        ],
        by=SYSTEM,
    )
    session.commit()
    rnd = world.create(grids=[A1], scorers=[world.login("office_b")])
    world.client.post(f"{BASE}/{rnd['id']}/open", headers=world.admin)
    h = world.h("office_b")
    r = world.client.post(f"{BASE}/{rnd['id']}/scoresheets", json=world.sheet(A1, FULL), headers=h)
    assert r.status_code == 422 and r.json()["field"] == "items[yc]"
    r = world.client.post(
        f"{BASE}/{rnd['id']}/scoresheets", json=world.sheet(A1, {**FULL, "yc": 4}), headers=h
    )
    assert r.status_code == 201 and r.json()["max_points"] == 100 and r.json()["score"] == 94


def test_permissions_and_scope(world: World) -> None:
    body = {"period": NOV, "grids": [B1], "scorers": [world.login("city")]}
    for who in ("worker", "city", "office_a"):
        r = world.client.post(BASE, json=body, headers=world.h(who))
        assert r.status_code == 403 and "assessment.rounds" in r.text
    r = world.client.get(BASE, headers=world.h("worker"))
    assert r.status_code == 403
    # a leader of community A may not organise a round over community B
    r = world.client.post(BASE, json=body, headers=world.h("leader_a"))
    assert r.status_code == 403 and r.json()["field"] == "scope"
    # drawn by level, a scoped leader's round keeps to its own community
    drawn = world.client.post(
        BASE,
        json={"period": NOV, "level": "unit", "count": 3, "scorers": [world.login("office_b")]},
        headers=world.h("leader_a"),
    )
    assert drawn.status_code == 201, drawn.text
    assert all(g.startswith(COMM_A[:12]) for g in drawn.json()["grids"])
    within = world.create(level="unit", count=2, within=COMM_B, grids=[])
    assert all(g.startswith(COMM_B[:12]) for g in within["grids"])
    rnd = world.create(grids=[B1], scorers=[world.login("city")])
    assert world.client.get(f"{BASE}/{rnd['id']}", headers=world.h("leader_a")).status_code == 403
    assert world.client.get(f"{BASE}/{rnd['id']}", headers=world.h("city")).status_code == 200
    listed = world.client.get(BASE, headers=world.h("leader_a")).json()["rounds"]
    assert rnd["id"] not in [x["id"] for x in listed]
    r = world.client.post(
        f"{BASE}/checklists",
        json={"key": "x", "name_zh": "x", "name_en": "x", "items": []},
        headers=world.h("city"),
    )
    assert r.status_code == 403
    assert world.client.get(BASE).status_code == 401


def test_a_new_checklist_version_and_its_bad_items(world: World) -> None:
    item = {"code": "mqsb", "name_zh": "门前三包", "name_en": "frontage", "max_points": 60}
    base = {"key": "cross_inspection", "name_zh": "细则", "name_en": "rules"}
    for items, field in (
        ([{**item, "max_points": 0}], "items[0].max_points"),
        ([item, item], "items[1]"),
        ([{**item, "hotspot_kind": "volcano"}], "items[0].hotspot_kind"),
        ([], "items"),
    ):
        r = world.client.post(
            f"{BASE}/checklists", json={**base, "items": items}, headers=world.admin
        )
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    r = world.client.post(
        f"{BASE}/checklists",
        json={**base, "items": [item, {**item, "code": "zdjy", "max_points": 40}]},
        headers=world.admin,
    )
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["max_points"] == 100
    old = world.client.get(f"{BASE}/checklists/cross_inspection?version=1", headers=world.admin)
    assert len(old.json()["items"]) == 8


# -- the demo --------------------------------------------------------------------------------------
def test_demo_round_scores_ten_grids_visibly_differently(
    session: Session, demo_loaded: AppSettings
) -> None:
    from service.assessment.inspection import Inspections, load_demo_round
    from service.demo import load_demo_accounts

    load_demo_accounts(session, demo_loaded)
    rnd = load_demo_round(session, demo_loaded, NOV)
    assert rnd is not None and rnd.state == "closed" and len(rnd.grid_codes) == 10
    svc = Inspections(session, demo_loaded)
    assignments = svc.assignments(rnd)
    assert len(assignments) == 20 and len(svc.sheets(rnd)) == 20
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(rnd.scorer_ids)))}
    levels = dict(
        session.execute(
            select(Grid.code, Grid.level).where(
                Grid.city == demo_loaded.grids.city, Grid.valid_to.is_(None)
            )
        ).all()
    )
    width = demo_loaded.scheme.prefix_length
    for a in assignments:  # nobody scored a community that overlaps their own scope
        own = [c[: width(levels[c])] for c in users[a.scorer_id].scope_grids]
        community = a.grid_code[:12]
        assert levels[a.grid_code] == "community"
        assert not any(community.startswith(p) or p.startswith(community) for p in own)
    assert any(users[a.scorer_id].scope_grids for a in assignments)  # offices did score
    scores = round_scores(session, demo_loaded, parse_period(NOV, "Asia/Shanghai"))
    assert set(scores) == set(rnd.grid_codes)
    assert all(40 <= s <= 100 for s in scores.values())
    assert max(scores.values()) - min(scores.values()) >= 10
    assert load_demo_round(session, demo_loaded, NOV) is None  # once per period


# -- the migration grants the new permissions to roles already stored -----------------------------
def test_migration_grants_the_new_permissions_to_stored_roles(admin_url: str) -> None:
    import uuid

    from sqlalchemy import create_engine, make_url, text

    from service.db import migrations
    from service.db.engine import make_engine

    name = f"citygrid_rounds_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(admin_url).set(database=name).render_as_string(False))
    try:
        migrations.upgrade(engine, "0009_assessment")
        with engine.begin() as conn:
            for key in ("admin", "leader", "inspector", "grid_worker"):
                conn.execute(
                    text(
                        "INSERT INTO roles (city, key, name_zh, name_en, permissions) "
                        "VALUES ('990999', :k, '角色', 'role', ARRAY['cases.read'])"
                    ),
                    {"k": key},
                )
        migrations.upgrade(engine)
        with engine.connect() as conn:
            perms = dict(conn.execute(text("SELECT key, permissions FROM roles")).all())
        assert {"assessment.rounds", "assessment.score", "assessment.checklists"} <= set(
            perms["admin"]
        )
        assert {"assessment.rounds", "assessment.score"} <= set(perms["leader"])
        assert "assessment.rounds" not in perms["inspector"]
        assert "assessment.score" in perms["inspector"]
        assert not [p for p in perms["grid_worker"] if p.startswith("assessment.")]
        migrations.downgrade(engine, "0009_assessment")
        with engine.connect() as conn:
            perms = dict(conn.execute(text("SELECT key, permissions FROM roles")).all())
        assert all(p == ["cases.read"] for p in perms.values())
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_round_is_for_the_current_month_by_default(world: World) -> None:
    from datetime import datetime as dt
    from zoneinfo import ZoneInfo

    body = {"grids": [B1], "scorers": [world.login("city")]}
    sh = ZoneInfo("Asia/Shanghai")
    before = dt.now(sh).strftime("%Y-%m")
    r = world.client.post(BASE, json=body, headers=world.admin)
    after = dt.now(sh).strftime("%Y-%m")
    assert r.status_code == 201
    assert r.json()["period"] in {before, after}  # both, should a month end fall in between


def test_a_scorer_whose_scope_grew_over_the_grid_may_not_score_it(world: World) -> None:
    rnd = world.create(grids=[B1], scorers=[world.login("office_a")])
    assert world.client.post(f"{BASE}/{rnd['id']}/open", headers=world.admin).status_code == 200
    user = world.users["office_a"]
    moved = world.client.patch(
        f"/api/users/{user.id}", json={"scope_grids": [COMM_B]}, headers=world.admin
    )
    assert moved.status_code == 200, moved.text
    r = world.client.post(
        f"{BASE}/{rnd['id']}/scoresheets", json=world.sheet(B1, FULL), headers=world.h("office_a")
    )
    assert r.status_code == 403 and r.json()["field"] == "scope"
    assert world.session.scalar(select(func.count()).select_from(Scoresheet)) == 0


# -- the rounds feed the red/yellow list -------------------------------------------------------
def test_a_closed_rounds_grid_scores_are_the_lists_cross_scoring_component(
    session: Session, demo_loaded: AppSettings, demo_client: TestClient
) -> None:
    from service.assessment.inspection import load_demo_round
    from service.demo import load_demo_accounts

    load_demo_accounts(session, demo_loaded)
    rnd = load_demo_round(session, demo_loaded, NOV)
    assert rnd is not None
    expected = round_scores(session, demo_loaded, parse_period(NOV, "Asia/Shanghai"))
    for code in rnd.grid_codes[:3]:
        answer = demo_client.get(f"/api/assessment/scores/grid/{code}", params={"period": NOV})
        assert answer.status_code == 200, answer.text
        parts = {c["external"]: c for c in answer.json()["components"] if c["external"]}
        assert parts["cross_scoring"]["value"] == pytest.approx(expected[code])
