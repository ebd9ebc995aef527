"""Campaigns (专项行动) against real PostGIS: the tag on existing and new cases, the burn-down of
each target kind against plain SQL counts over the cases table, scoped reads, the map filter,
and bad input refused naming the field with nothing stored."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.campaigns.campaigns import CampaignService
from service.cases.cases import CaseInput, CaseService
from service.cases.importer import CaseImporter
from service.db.models import AuditEntry, Campaign, CampaignCase, Hotspot, User
from service.factory import create_app
from service.grids.registry import Registry
from service.patrol.coverage import CoverageService
from service.settings import AppSettings
from tests.helpers.accounts import admin_headers, bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, point_lonlat, unit_code

TZ = ZoneInfo("Asia/Shanghai")
BASE = "/api/campaigns"
A1 = unit_code(COMM_A, 1)
REGISTERED = ("registered", "dispatched", "handling", "fed_back", "closed")
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
HALF_WORLD = math.pi * 6378137.0


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), TZ)


def day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), TZ)


PEOPLE: dict[str, tuple[str, list[str]]] = {
    "leader": ("leader", []),
    "leader_b": ("leader", [COMM_B]),
    "worker_a1": ("grid_worker", [A1]),
    "office_b": ("inspector", [COMM_B]),
}


class World:
    """The small city with cases before a campaign over community A and the market."""

    def __init__(self, session: Session, settings: AppSettings, client: TestClient) -> None:
        self.session, self.settings, self.client = session, settings, client
        self.today = datetime.now(TZ).date()
        self.start = self.today - timedelta(days=9)
        self.end = self.today + timedelta(days=10)
        self.users: dict[str, User] = {}  # made on first use: a password hash is slow
        self.admin = admin_headers(session, settings)
        self.market = session.scalar(
            select(Hotspot.id).where(
                Hotspot.city == settings.grids.city, Hotspot.key == "market-01"
            )
        )
        cases = CaseService(session, settings)

        def report(x: float, y: float, code: str, day: date) -> int:
            lon, lat = point_lonlat(x, y)
            case, _ = cases.intake(
                CaseInput(code, lon, lat, source="patrol", reported_at=noon(day)), SYSTEM
            )
            return case.id

        s = self.start
        # in scope: 占道经营 in community A (four days, the first in unit A1), one at the
        # market, one 渣土 (0103)
        spots = ((50, 150, 0), (110, 50, 1), (170, 50, 3), (230, 50, 5))
        self.a = [report(x, y, "0502", s + timedelta(days=d)) for x, y, d in spots]
        self.at_market = report(150, 150, "0502", s + timedelta(days=2))
        self.muck = report(250, 150, "0103", s + timedelta(days=4))
        # out of scope: another category, another community, before the period
        self.garbage = report(60, 60, "0102", s + timedelta(days=1))
        self.in_b = report(450, 40, "0502", s + timedelta(days=2))
        self.early = report(70, 70, "0502", s - timedelta(days=3))
        # states: three registered and closed on given days, one left a bare report, one
        # rejected; the rest registered and open
        self._set(self.a[0], "closed", s + timedelta(days=2))
        self._set(self.a[1], "closed", s + timedelta(days=6))
        self._set(self.at_market, "closed", s + timedelta(days=3))
        self._set(self.a[2], "reported")
        self._set(self.a[3], "dispatched")
        self._set(self.muck, "rejected")
        for other in (self.garbage, self.in_b, self.early):
            self._set(other, "registered")
        # a recurrence of the market case, reported in the period
        session.execute(
            text("UPDATE cases SET recurring_of = :old WHERE id = :id"),
            {"old": self.early, "id": self.a[3]},
        )
        session.commit()

    def _set(self, case_id: int, status: str, closed_on: date | None = None) -> None:
        self.session.execute(
            text("UPDATE cases SET status = :s, closed_at = :c WHERE id = :id"),
            {"s": status, "c": noon(closed_on) if closed_on else None, "id": case_id},
        )

    def user(self, who: str) -> User:
        if who not in self.users:
            role, scope = PEOPLE[who]
            self.users[who] = make_user(self.session, self.settings, role, scope_grids=scope)
            self.session.commit()
        return self.users[who]

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.session, self.settings, self.user(who))

    def body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "占道经营专项整治百日会战",
            "description": "整改一个、销号一个",
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "scope": {"grids": [COMM_A], "hotspots": ["market-01"], "categories": ["0502", "0103"]},
            "targets": [
                {"kind": "close_rate", "goal": 1.0, "categories": ["0502"]},
                {"kind": "hotspot_coverage", "goal": 0.5},
                {"kind": "recurrence_max", "goal": 0},
            ],
            "milestones": [
                {"date": (self.start + timedelta(days=4)).isoformat(), "share": 0.5},
                {"date": self.end.isoformat(), "share": 1.0},
            ],
            "owners": [{"user": self.user("leader").login}, {"department": "城管执法中队"}],
        }
        body.update(changes)
        return body

    def create(self, headers: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
        r = self.client.post(BASE, json=self.body(**changes), headers=headers or self.admin)
        assert r.status_code == 201, r.text
        return r.json()

    def tagged(self, campaign_id: int) -> set[int]:
        return set(
            self.session.scalars(
                select(CampaignCase.case_id).where(CampaignCase.campaign_id == campaign_id)
            )
        )

    def plain_counts(self, day: date, prefix: str | None = None) -> tuple[int, int]:
        """(registered, closed) of 占道经营 in scope by the end of ``day``: straight from
        ``cases``, without the tag table."""
        row = self.session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE closed_at < :e) FROM cases "
                "WHERE city = :city AND category_code = '0502' AND status = ANY(:st) "
                "AND reported_at >= :s AND reported_at < :e "
                "AND (grid_code LIKE :a OR :market = ANY(hotspot_ids)) "
                "AND (CAST(:p AS text) IS NULL OR grid_code LIKE :p || '%')"
            ),
            {
                "city": self.settings.grids.city,
                "st": list(REGISTERED),
                "s": noon(self.start) - timedelta(hours=12),
                "e": day_end(day),
                "a": COMM_A[:12] + "%",
                "market": self.market,
                "p": prefix,
            },
        ).one()
        return int(row[0]), int(row[1])


@pytest.fixture
def world(
    case_city: Registry, session: Session, settings: AppSettings, sessions: sessionmaker[Session]
) -> Any:
    with TestClient(create_app(settings, sessions=sessions)) as c:
        yield World(session, settings, c)


def _planned(w: World, day: date) -> float:
    """The milestones by hand: 0 the day before the start, 50 % four days in, 100 % at the end."""
    m1 = w.start + timedelta(days=4)
    if day <= m1:
        return 0.5 * (day - (w.start - timedelta(days=1))).days / 5
    return 0.5 + 0.5 * (day - m1).days / (w.end - m1).days


def test_creating_tags_the_cases_reported_in_scope_during_the_period(world: World) -> None:
    made = world.create()
    expected = {*world.a, world.at_market, world.muck}
    assert world.tagged(made["id"]) == expected
    assert made["cases"] == len(expected)
    assert made["active"] is True and made["name"] == "占道经营专项整治百日会战"
    assert made["scope"]["hotspots"][0]["key"] == "market-01"
    assert {o.get("department") for o in made["owners"]} >= {"城管执法中队"}
    assert [t["key"] for t in made["targets"]] == ["t1", "t2", "t3"]
    assert (
        world.session.scalar(
            select(func.count()).where(
                AuditEntry.entity == "campaign", AuditEntry.entity_key == str(made["id"])
            )
        )
        == 1
    )


def test_intake_tags_new_cases_in_scope_only(world: World) -> None:
    made = world.create()
    cases = CaseService(world.session, world.settings)
    lon, lat = point_lonlat(330, 30)
    inside, _ = cases.intake(CaseInput("0502", lon, lat, source="citizen"), SYSTEM)
    other, _ = cases.intake(CaseInput("0104", lon, lat, source="citizen"), SYSTEM)
    lon_b, lat_b = point_lonlat(460, 170)
    outside, _ = cases.intake(CaseInput("0502", lon_b, lat_b, source="citizen"), SYSTEM)
    tagged = world.tagged(made["id"])
    assert inside.id in tagged and other.id not in tagged and outside.id not in tagged
    svc = CampaignService(world.session, world.settings)
    assert [c["id"] for c in svc.active_campaigns_for_case(inside.id)] == [made["id"]]
    assert svc.active_campaigns_for_case(outside.id) == []
    # after the period, the campaign is no longer active for the case
    assert svc.active_campaigns_for_case(inside.id, world.end + timedelta(days=1)) == []


def test_bulk_import_tags_its_cases_in_scope(world: World) -> None:
    made = world.create()
    spots = [(60, 120, "0502"), (300, 60, "0103"), (320, 60, "0104"), (460, 40, "0502")]
    lonlat = [point_lonlat(x, y) for x, y, _ in spots]
    day = world.today - timedelta(days=1)
    frame = pd.DataFrame(
        {
            "category_code": [c for *_, c in spots],
            "lon": [p[0] for p in lonlat],
            "lat": [p[1] for p in lonlat],
            "reported_at": [noon(day).isoformat()] * len(spots),
            "source": ["patrol"] * len(spots),
            "description": [f"导入{i}" for i in range(len(spots))],
        }
    )
    before = world.tagged(made["id"])
    report = CaseImporter(world.session, world.settings).run(frame)
    assert report.created == len(spots)
    new = {
        desc: case_id
        for desc, case_id in world.session.execute(
            text("SELECT description, id FROM cases WHERE description LIKE '导入%'")
        )
    }
    # 占道经营 and 渣土 in community A are tagged; 道路不洁 and community B are not
    assert world.tagged(made["id"]) - before == {new["导入0"], new["导入1"]}


def test_close_rate_burn_down_matches_plain_sql_and_the_plan(world: World) -> None:
    made = world.create()
    r = world.client.get(f"{BASE}/{made['id']}/progress", headers=world.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["until"] == world.today.isoformat()
    close = next(t for t in body["targets"] if t["kind"] == "close_rate")
    assert [p["date"] for p in close["days"]] == [
        (world.start + timedelta(days=i)).isoformat() for i in range(10)
    ]
    for point in close["days"]:
        day = date.fromisoformat(point["date"])
        registered, closed = world.plain_counts(day)
        assert (point["registered"], point["closed"]) == (registered, closed)
        assert point["value"] == (round(closed / registered, 4) if registered else None)
        assert point["expected"] == pytest.approx(_planned(world, day), abs=1e-4)
        assert point["on_track"] == (
            point["value"] is None or point["value"] >= point["expected"] - 1e-9
        )
    # the day of the second close: 2 of 3 registered closed; all three closed by the 7th day
    third = close["days"][3]
    assert (third["registered"], third["closed"]) == (3, 2)
    # until= cuts the series
    r = world.client.get(
        f"{BASE}/{made['id']}/progress",
        params={"until": (world.start + timedelta(days=2)).isoformat()},
        headers=world.admin,
    )
    assert [len(t["days"]) for t in r.json()["targets"]] == [3, 3, 3]


def test_recurrence_and_coverage_targets_match_plain_sql(world: World) -> None:
    made = world.create()
    body = world.client.get(f"{BASE}/{made['id']}/progress", headers=world.admin).json()
    recurrence = next(t for t in body["targets"] if t["kind"] == "recurrence_max")
    for point in recurrence["days"]:
        day = date.fromisoformat(point["date"])
        n = world.session.scalar(
            text(
                "SELECT count(*) FROM cases WHERE city = :city AND recurring_of IS NOT NULL "
                "AND category_code IN ('0502', '0103') AND status NOT IN ('rejected', 'merged') "
                "AND reported_at >= :s AND reported_at < :e AND grid_code LIKE :a"
            ),
            {
                "city": world.settings.grids.city,
                "s": datetime.combine(world.start, time(0), TZ),
                "e": day_end(day),
                "a": COMM_A[:12] + "%",
            },
        )
        assert point["value"] == n and point["recurring"] == n
        assert point["on_track"] == (n <= 0)
    assert recurrence["days"][-1]["value"] == 1  # the recurrence reported on day 5
    coverage = next(t for t in body["targets"] if t["kind"] == "hotspot_coverage")
    for point in coverage["days"]:
        monday = date.fromisoformat(point["week"])
        run = CoverageService(world.session, world.settings).run(
            "week", datetime.combine(monday, time(0), TZ)
        )
        mean = world.session.scalar(
            text(
                "SELECT avg(covered_share) FROM hotspot_coverage "
                "WHERE run_id = :r AND hotspot_id = :h"
            ),
            {"r": run.id, "h": world.market},
        )
        assert point["value"] == pytest.approx(mean, abs=1e-4)
        assert point["expected"] == 0.5 and point["on_track"] == (mean >= 0.5)


def test_progress_for_scope_counts_within_the_subtree(world: World) -> None:
    made = world.create()
    svc = CampaignService(world.session, world.settings)
    day = world.today - timedelta(days=1)
    city = svc.progress_for_scope(None, day)
    assert [c["id"] for c in city] == [made["id"]]
    close = next(t for t in city[0]["targets"] if t["kind"] == "close_rate")
    registered, closed = world.plain_counts(day)
    assert (close["registered"], close["closed"]) == (registered, closed)
    assert close["goal"] == 1.0 and close["expected"] == pytest.approx(
        _planned(world, day), abs=1e-4
    )
    assert close["on_track"] == (close["value"] >= close["expected"])
    # one unit grid: only its cases count
    unit = svc.progress_for_scope(A1, day)
    close = next(t for t in unit[0]["targets"] if t["kind"] == "close_rate")
    assert (close["registered"], close["closed"]) == world.plain_counts(day, A1)
    # community B: the campaign does not reach it
    assert svc.progress_for_scope(COMM_B[:12], day) == []
    # before the campaign: nothing running
    assert svc.progress_for_scope(None, world.start - timedelta(days=1)) == []


def test_reads_keep_to_the_callers_scope(world: World) -> None:
    made = world.create()
    # a community-B office neither lists nor reads the community-A campaign
    r = world.client.get(BASE, headers=world.h("office_b"))
    assert r.status_code == 200 and r.json()["campaigns"] == []
    r = world.client.get(f"{BASE}/{made['id']}", headers=world.h("office_b"))
    assert r.status_code == 404
    # a grid worker of unit A1 reads it, with the counts of A1's cases only
    r = world.client.get(f"{BASE}/{made['id']}", headers=world.h("worker_a1"))
    assert r.status_code == 200
    in_a1 = world.session.scalar(
        select(func.count())
        .select_from(CampaignCase)
        .where(
            CampaignCase.campaign_id == made["id"],
            CampaignCase.case_id.in_(
                text(f"SELECT id FROM cases WHERE grid_code LIKE '{A1}%'")  # noqa: S608
            ),
        )
    )
    assert r.json()["cases"] == in_a1 < made["cases"]
    # the owner's name is masked for a role without people.read
    assert r.json()["owners"][0]["name"] == "测***"
    r = world.client.get(f"{BASE}/{made['id']}/progress", headers=world.h("worker_a1"))
    close = next(t for t in r.json()["targets"] if t["kind"] == "close_rate")
    assert (close["days"][-1]["registered"], close["days"][-1]["closed"]) == world.plain_counts(
        world.today, A1
    )
    # active_on filters the list
    r = world.client.get(
        BASE, params={"active_on": (world.end + timedelta(days=1)).isoformat()}, headers=world.admin
    )
    assert r.json()["campaigns"] == []


def test_managing_needs_the_permission_and_the_scope(world: World) -> None:
    before = world.session.scalar(select(func.count()).select_from(Campaign))
    r = world.client.post(BASE, json=world.body(), headers=world.h("worker_a1"))
    assert r.status_code == 403 and r.json()["field"] == "permission"
    # a leader of community B may not run a campaign over community A, nor over the city
    r = world.client.post(BASE, json=world.body(), headers=world.h("leader_b"))
    assert r.status_code == 403 and r.json()["field"] == "scope.grids"
    r = world.client.post(
        BASE,
        json=world.body(scope={"grids": [], "hotspots": [], "categories": []}),
        headers=world.h("leader_b"),
    )
    assert r.status_code == 403 and r.json()["field"] == "scope.grids"
    assert world.session.scalar(select(func.count()).select_from(Campaign)) == before
    # a city-wide leader may (the seeded leader role holds campaigns.manage)
    made = world.create(headers=world.h("leader"))
    # and community B's leader may not edit it
    r = world.client.put(f"{BASE}/{made['id']}", json=world.body(), headers=world.h("leader_b"))
    assert r.status_code == 403


def test_editing_replaces_the_campaign_and_tags_again(world: World) -> None:
    made = world.create()
    body = world.body(
        name="渣土专项整治",
        scope={"grids": [COMM_A], "hotspots": [], "categories": ["0103", "0102"]},
        targets=[{"kind": "close_rate", "goal": 0.9}],
    )
    r = world.client.put(f"{BASE}/{made['id']}", json=body, headers=world.admin)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "渣土专项整治"
    assert world.tagged(made["id"]) == {world.muck, world.garbage}


BAD: list[tuple[dict[str, Any], int, str]] = [
    ({"name": "  "}, 422, "name"),
    ({"end": "START-1"}, 422, "end"),
    ({"end": "START+400"}, 422, "end"),
    ({"start": "1900-01-01", "end": "1900-01-02", "milestones": []}, 422, "start"),
    ({"start": "9999-12-31", "end": "9999-12-31", "milestones": []}, 422, "start"),
    ({"scope": {"grids": ["41019999999999"]}}, 422, "scope.grids"),
    ({"scope": {"grids": [COMM_A], "hotspots": ["no-such-spot"]}}, 422, "scope.hotspots"),
    ({"scope": {"grids": [COMM_A], "categories": ["9999"]}}, 422, "scope.categories"),
    ({"targets": []}, 422, "targets"),
    ({"targets": [{"kind": "fastest", "goal": 1}]}, 422, "targets[0].kind"),
    ({"targets": [{"kind": "close_rate", "goal": 1.5}]}, 422, "targets[0].goal"),
    (
        {"targets": [{"kind": "close_rate", "goal": 1, "categories": ["9998"]}]},
        422,
        "targets[0].categories",
    ),
    (
        {"targets": [{"kind": "close_rate", "goal": 1, "categories": ["0102"]}]},
        422,
        "targets[0].categories",
    ),
    (
        {"targets": [{"kind": "hotspot_coverage", "goal": 0.5, "hotspots": ["nope"]}]},
        422,
        "targets[0].hotspots",
    ),
    ({"targets": [{"kind": "recurrence_max", "goal": -1}]}, 422, "targets[0].goal"),
    ({"targets": [{"kind": "recurrence_max", "goal": 2.5}]}, 422, "targets[0].goal"),
    ({"targets": [{"kind": "recurrence_max", "goal": 1e300}]}, 422, "targets[0].goal"),
    ({"milestones": [{"date": "END+1", "share": 0.5}]}, 422, "milestones[0].date"),
    (
        {"milestones": [{"date": "START+3", "share": 0.6}, {"date": "START+5", "share": 0.4}]},
        422,
        "milestones[1].share",
    ),
    (
        {"milestones": [{"date": "START+5", "share": 0.4}, {"date": "START+3", "share": 0.6}]},
        422,
        "milestones[1].date",
    ),
    ({"milestones": [{"date": "START+3", "share": 0}]}, 422, "milestones[0].share"),
    ({"owners": [{"user": "nobody-here"}]}, 422, "owners[0].user"),
    ({"owners": [{"user": "admin", "department": "环卫所"}]}, 422, "owners[0]"),
]


def _dates(value: Any, w: World) -> Any:
    if isinstance(value, dict):
        return {k: _dates(v, w) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v, w) for v in value]
    if isinstance(value, str) and value[:5] in ("START", "END+1"):
        base = w.start if value.startswith("START") else w.end
        return (
            base + timedelta(days=int(value.replace("START", "").replace("END", "")))
        ).isoformat()
    return value


def test_bad_campaigns_are_refused_naming_the_field(world: World) -> None:
    count = world.session.scalar(select(func.count()).select_from(Campaign))
    tags = world.session.scalar(select(func.count()).select_from(CampaignCase))
    made = world.create()
    for change, status, field in BAD:
        body = world.body(**_dates(change, world))
        r = world.client.post(BASE, json=body, headers=world.admin)
        assert (r.status_code, r.json().get("field")) == (status, field), (change, r.text)
        # an edit with the same fault leaves the stored campaign as it was
        r = world.client.put(f"{BASE}/{made['id']}", json=body, headers=world.admin)
        assert (r.status_code, r.json().get("field")) == (status, field), (change, r.text)
    assert world.session.scalar(select(func.count()).select_from(Campaign)) == count + 1
    assert world.session.scalar(select(func.count()).select_from(CampaignCase)) == tags + len(
        world.tagged(made["id"])
    )
    assert world.client.get(f"{BASE}/{made['id']}", headers=world.admin).json() == made


def test_bad_progress_days_are_refused(world: World) -> None:
    made = world.create()
    for until in (world.today + timedelta(days=1), world.start - timedelta(days=1)):
        r = world.client.get(
            f"{BASE}/{made['id']}/progress",
            params={"until": until.isoformat()},
            headers=world.admin,
        )
        assert r.status_code == 422 and r.json()["field"] == "until"
    assert world.client.get(f"{BASE}/999999/progress", headers=world.admin).status_code == 404


# -- the map filter -------------------------------------------------------------------------------
def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    mx, my = TO_MERC.transform(lon, lat)
    size = 2 * HALF_WORLD / 2**z
    return int((mx + HALF_WORLD) // size), int((HALF_WORLD - my) // size)


def _tile_ids(world: World, headers: dict[str, str], **params: Any) -> set[int]:
    z = 16
    tiles = {_tile_of(*point_lonlat(x, y), z) for x in range(0, 801, 50) for y in range(0, 201, 50)}
    ids: set[int] = set()
    for x, y in tiles:
        r = world.client.get(f"/tiles/cases/{z}/{x}/{y}.mvt", params=params, headers=headers)
        assert r.status_code == 200, r.text
        layer = mapbox_vector_tile.decode(r.content).get("cases", {"features": []})
        ids |= {f["id"] for f in layer["features"]}
    return ids


def test_case_tiles_filter_by_campaign(world: World) -> None:
    made = world.create()
    open_tagged = set(
        world.session.scalars(
            text(
                "SELECT c.id FROM cases c JOIN campaign_cases cc"
                " ON cc.city = c.city AND cc.case_id = c.id"
                " WHERE cc.city = :city AND cc.campaign_id = :k AND c.status IN "
                "('reported', 'registered', 'dispatched', 'handling', 'fed_back')"
            ),
            {"city": world.settings.grids.city, "k": made["id"]},
        )
    )
    assert open_tagged  # a bare report and a dispatched case
    assert _tile_ids(world, world.admin, campaign=made["id"]) == open_tagged
    assert _tile_ids(world, world.admin) > open_tagged
    # a campaign the caller may not read is no filter at all: 404 naming it
    r = world.client.get(
        "/tiles/cases/16/0/0.mvt", params={"campaign": made["id"]}, headers=world.h("office_b")
    )
    assert r.status_code == 404 and r.json()["field"] == "campaign"
    r = world.client.get(
        "/tiles/grids/16/0/0.mvt", params={"campaign": made["id"]}, headers=world.admin
    )
    assert r.status_code == 400 and r.json()["field"] == "campaign"
    # the map page puts the filter on its case layer
    page = world.client.get("/", params={"campaign": made["id"]}, headers=world.admin)
    assert page.status_code == 200
    assert f"campaign={made['id']}" in page.text


def _future(world: World, **changes: Any) -> dict[str, Any]:
    """A campaign planned to start in five days (no milestones: none needed here)."""
    start = world.today + timedelta(days=5)
    return world.create(
        start=start.isoformat(),
        end=(start + timedelta(days=20)).isoformat(),
        milestones=[],
        **changes,
    )


def _audited(world: World, campaign_id: int, action: str) -> list[AuditEntry]:
    return list(
        world.session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "campaign",
                AuditEntry.entity_key == str(campaign_id),
                AuditEntry.action == action,
            )
        )
    )


def test_a_campaign_not_yet_started_is_deleted_with_its_tags_and_audited(world: World) -> None:
    made = _future(world)
    # a tag as intake writes it (a case reported in scope during the period); no real report
    # can lie in the future, so it is written here directly
    world.session.add(
        CampaignCase(city=world.settings.grids.city, campaign_id=made["id"], case_id=world.a[3])
    )
    world.session.flush()
    r = world.client.delete(f"{BASE}/{made['id']}", headers=world.admin)
    assert r.status_code == 204, r.text
    assert world.client.get(f"{BASE}/{made['id']}", headers=world.admin).status_code == 404
    assert world.tagged(made["id"]) == set()
    assert world.session.get(Campaign, made["id"]) is None
    # the case itself stays, untouched
    assert (
        world.session.scalar(text("SELECT count(*) FROM cases WHERE id = :id"), {"id": world.a[3]})
        == 1
    )
    (entry,) = _audited(world, made["id"], "delete")
    assert entry.before["name"] == made["name"] and entry.after is None
    assert entry.before["untagged_case_ids"] == [world.a[3]]
    # gone is gone
    assert world.client.delete(f"{BASE}/{made['id']}", headers=world.admin).status_code == 404


def test_a_started_campaign_is_409_and_stays_whole(world: World) -> None:
    running = world.create()  # started nine days ago: in the briefs issued since
    tagged = world.tagged(running["id"])
    r = world.client.delete(f"{BASE}/{running['id']}", headers=world.admin)
    assert r.status_code == 409 and r.json()["field"] == "campaign"
    assert "edit its end date" in r.json()["detail"]
    # one that starts today has started too
    today = world.create(start=world.today.isoformat(), milestones=[])
    assert world.client.delete(f"{BASE}/{today['id']}", headers=world.admin).status_code == 409
    # and one that is over
    over = world.create(
        start=(world.today - timedelta(days=30)).isoformat(),
        end=(world.today - timedelta(days=20)).isoformat(),
        milestones=[],
    )
    assert world.client.delete(f"{BASE}/{over['id']}", headers=world.admin).status_code == 409
    assert world.client.get(f"{BASE}/{running['id']}", headers=world.admin).status_code == 200
    assert world.tagged(running["id"]) == tagged and tagged
    assert _audited(world, running["id"], "delete") == []


def test_deleting_needs_the_permission_and_the_scope(world: World) -> None:
    in_a = _future(world)
    in_a_and_b = _future(
        world,
        scope={"grids": [COMM_A, COMM_B], "hotspots": [], "categories": []},
        targets=[{"kind": "close_rate", "goal": 1.0}],
    )
    before = world.session.scalar(select(func.count()).select_from(Campaign))
    # no campaigns.manage
    r = world.client.delete(f"{BASE}/{in_a['id']}", headers=world.h("worker_a1"))
    assert r.status_code == 403 and r.json()["field"] == "permission"
    # community B's leader does not see community A's campaign: as if it did not exist
    r = world.client.delete(f"{BASE}/{in_a['id']}", headers=world.h("leader_b"))
    assert r.status_code == 404 and r.json()["field"] == "campaign"
    # sees the one over A and B, but it reaches beyond their scope
    r = world.client.delete(f"{BASE}/{in_a_and_b['id']}", headers=world.h("leader_b"))
    assert r.status_code == 403 and r.json()["field"] == "scope.grids"
    # unknown
    r = world.client.delete(f"{BASE}/987654321", headers=world.admin)
    assert r.status_code == 404 and r.json()["field"] == "campaign"
    assert world.session.scalar(select(func.count()).select_from(Campaign)) == before
    # the city-wide leader may
    r = world.client.delete(f"{BASE}/{in_a['id']}", headers=world.h("leader"))
    assert r.status_code == 204
