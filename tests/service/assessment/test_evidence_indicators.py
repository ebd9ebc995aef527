"""The evidence indicators (有照片案件数, 证据存疑案件数, 证据存疑率) against a plain SQL count on
the edges of the period and of the photos' life, for every subject kind, through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db.models import Case, Photo, Worker
from service.settings import AppSettings
from tests.helpers.city import COMM_A, COMM_B, STREET, point_lonlat, unit_code

SH = ZoneInfo("Asia/Shanghai")
NOV = "2026-11"
A1, A2, A3 = (unit_code(COMM_A, i) for i in range(1, 4))
B1 = unit_code(COMM_B, 1)
DOUBT = ["not_dispatched", "taken_before_dispatch", "no_position", "too_far", "reused"]


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A local (Asia/Shanghai) time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


S, E = t(1, 0), t(1, 0, month=12)


class World:
    """Cases and photo rows written directly (the flags as the evidence check leaves them)."""

    def __init__(self, session: Session, city: str) -> None:
        self.session = session
        self.city = city
        self.ids: dict[str, int] = {}
        self.photos = 0

    def case(
        self,
        name: str,
        grid: str,
        reported: datetime,
        status: str = "dispatched",
        touched: datetime | None = None,
    ) -> int:
        lon, lat = point_lonlat(50, 50)
        case = Case(
            city=self.city,
            category_code="0102",
            source="patrol",
            status=status,
            reported_at=reported,
            deadline_at=reported.replace(year=2027),
            updated_at=touched or reported,
            closed_at=touched if status == "closed" else None,
            lon=lon,
            lat=lat,
            grid_code=grid,
            department="市政维护科",
        )
        self.session.add(case)
        self.session.flush()
        self.ids[name] = case.id
        return case.id

    def photo(
        self, case: str, at: datetime, flags: list[str], deleted: datetime | None = None
    ) -> None:
        self.photos += 1
        self.session.add(
            Photo(
                city=self.city,
                case_id=self.ids[case],
                step="feedback",
                stage="after",
                kind="image",
                mime="image/jpeg",
                bytes=1000,
                sha256=f"{self.photos:064x}",
                uploader="处置人员",
                created_at=at,
                flags=flags,
                deleted_at=deleted,
            )
        )
        self.session.flush()


@pytest.fixture
def world(case_city, session: Session, settings: AppSettings) -> World:
    w = World(session, settings.grids.city)
    # two flagged photos on one case: one case
    w.case("twice", A1, t(3, 9))
    w.photo("twice", t(4, 10), ["too_far"])
    w.photo("twice", t(5, 10), ["reused", "no_position"])
    # a flagged photo a minute before P (reported earlier, still open) and a clean one in P
    w.case("before", A1, t(30, 9, month=10))
    w.photo("before", t(31, 23, 59, month=10), ["taken_before_dispatch"])
    w.photo("before", t(2, 8), [])
    # the flagged photo was deleted (retention): it is no evidence of anything any more
    w.case("deleted", A2, t(6, 9))
    w.photo("deleted", t(6, 10), ["too_far"], deleted=t(20, 0))
    # a flag that does not make the evidence doubtful (impossible EXIF, ignored)
    w.case("clean", A2, t(7, 9))
    w.photo("clean", t(7, 10), ["exif_time_invalid"])
    # closed and last touched before P; a reused photo uploaded to it in P still counts
    w.case("closed_before", A3, t(1, 9, month=10), "closed", t(5, 9, month=10))
    w.photo("closed_before", t(10, 10), ["reused_similar"])
    # uploaded at the end of P: December's
    w.case("after", A3, t(20, 9))
    w.photo("after", t(1, 0, month=12), ["too_far"])
    # the sibling community
    w.case("sibling", B1, t(8, 9))
    w.photo("sibling", t(8, 10), ["not_dispatched"])
    session.commit()
    return w


def plain(session: Session, city: str, prefix: str, flagged: bool) -> int:
    """Cases under ``prefix`` with a photo (not deleted) uploaded in November, flagged or not:
    a count written independently of the indicator engine."""
    return int(
        session.execute(
            text(
                "SELECT count(DISTINCT c.id) FROM cases c"
                " JOIN photos p ON p.city = c.city AND p.case_id = c.id"
                " WHERE c.city = :city AND c.grid_code LIKE :prefix AND p.deleted_at IS NULL"
                " AND p.created_at >= :s AND p.created_at < :e"
                + (" AND p.flags && CAST(:doubt AS text[])" if flagged else "")
            ),
            {
                "city": city,
                "prefix": prefix.rstrip("0") + "%",
                "s": S,
                "e": E,
                "doubt": [*DOUBT, "reused_similar"],
            },
        ).scalar_one()
    )


def figures_of(client: TestClient, subject: str) -> dict[str, dict[str, Any]]:
    r = client.get("/api/assessment/figures", params={"period": NOV, "subject": subject})
    assert r.status_code == 200, r.text
    return {row["key"]: row["figures"] for row in r.json()["items"]}


def test_grid_figures_match_a_plain_count_on_the_edges(
    world: World, client: TestClient, session: Session, settings: AppSettings
) -> None:
    city = settings.grids.city
    communities = figures_of(client, "grid:community")
    streets = figures_of(client, "grid:street")
    for code, rows in ((COMM_A, communities), (COMM_B, communities), (STREET, streets)):
        fig = rows[code]
        assert fig["evidence_flagged"] == plain(session, city, code, True), code
        assert fig["photo_cases"] == plain(session, city, code, False), code
    a = communities[COMM_A]
    # twice (once) and closed_before; not before, deleted, clean (EXIF only) nor after
    assert a["evidence_flagged"] == 2
    assert a["photo_cases"] == 4  # twice, before (its clean photo in P), clean, closed_before
    assert a["evidence_flag_rate"] == 0.5
    assert communities[COMM_B]["evidence_flagged"] == 1
    assert streets[STREET]["evidence_flagged"] == 3
    # one subject's figures (photos read per case) are the list's row (photos read by time)
    one = client.get(f"/api/assessment/figures/grid/{COMM_A}", params={"period": NOV}).json()
    assert one["figures"] == a
    assert one["components"]["evidence_flag_rate"]["denominator"] == {
        "key": "photo_cases",
        "value": 4,
    }
    # the other indicators of the case closed before P stay as they were: nothing
    units = figures_of(client, "grid:unit")
    assert units[A3]["evidence_flagged"] == 1 and units[A3]["closed"] == 0
    assert units[A3]["reported"] == 1  # "after", reported in P


def test_drill_down_lists_the_flagged_cases_once(world: World, client: TestClient) -> None:
    r = client.get(
        f"/api/assessment/figures/grid/{STREET}/cases",
        params={"period": NOV, "indicator": "evidence_flagged"},
    )
    assert r.status_code == 200, r.text
    ids = world.ids
    rows = r.json()["items"]
    assert [row["id"] for row in rows] == sorted(
        [ids["twice"], ids["closed_before"], ids["sibling"]]
    )
    assert {row["count"] for row in rows} == {1}
    r = client.get(
        f"/api/assessment/figures/grid/{STREET}/cases",
        params={"period": NOV, "indicator": "evidence_flag_rate"},
    )
    assert r.status_code == 422 and "indicator" in r.text


def test_departments_workers_and_hotspots_count_and_dispatchers_do_not(
    world: World, client: TestClient, session: Session, settings: AppSettings
) -> None:
    city = settings.grids.city
    session.add(Worker(city=city, code="W7", name="网格员七", grid_codes=[A1, A2]))
    spot = session.scalar(
        text("SELECT id FROM hotspots WHERE city = :city LIMIT 1"), {"city": city}
    )
    session.execute(
        text("UPDATE cases SET hotspot_ids = ARRAY[CAST(:h AS bigint)] WHERE id = ANY(:ids)"),
        {"h": spot, "ids": [world.ids["twice"], world.ids["clean"]]},
    )
    session.execute(
        text(
            "INSERT INTO case_events (city, case_id, action, from_status, to_status, actor, at,"
            " data) SELECT city, id, 'dispatch', 'registered', 'dispatched', '派遣员乙', :at, '{}'"
            " FROM cases WHERE id = :id"
        ),
        {"id": world.ids["twice"], "at": t(3, 10)},
    )
    session.commit()
    department = figures_of(client, "department")["市政维护科"]
    assert department["evidence_flagged"] == plain(session, city, STREET, True) == 3
    worker = figures_of(client, "worker")["W7"]
    assert (worker["evidence_flagged"], worker["photo_cases"]) == (1, 3)  # A1 and A2 only
    one = client.get("/api/assessment/figures/worker/W7", params={"period": NOV}).json()
    assert one["figures"] == worker
    hotspot = figures_of(client, "hotspot")[str(spot)]
    assert (hotspot["evidence_flagged"], hotspot["photo_cases"], hotspot["evidence_flag_rate"]) == (
        1,
        2,
        0.5,
    )
    dispatcher = figures_of(client, "dispatcher")["派遣员乙"]
    assert "evidence_flagged" not in dispatcher and "reported" in dispatcher


def test_the_indicators_are_listed_with_their_definition(client: TestClient) -> None:
    r = client.get("/api/assessment/indicators")
    assert r.status_code == 200
    by = {d["key"]: d for d in r.json()["indicators"]}
    assert by["evidence_flagged"]["name_zh"] == "证据存疑案件数"
    assert by["evidence_flag_rate"]["name_zh"] == "证据存疑率"
    assert "dispatcher" not in by["evidence_flagged"]["subjects"]
