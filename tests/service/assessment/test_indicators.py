"""Indicators of case flow and field work: each sampled against a plain SQL count, the edges
of periods and deadlines, every subject kind, the API with scope, drill-down and exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import shapely
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.assessment.definitions import DEFINITIONS
from service.assessment.figures import IndicatorEngine
from service.assessment.periods import parse_period
from service.db.models import Case, CaseEvent, IndicatorDefinition, PatrolTrack, Worker
from service.errors import NotFound
from service.factory import create_app
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, STREET, point_lonlat, unit_code

SH = ZoneInfo("Asia/Shanghai")
NOV = "2026-11"


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A local (Asia/Shanghai) time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


A1, A2, A3, A4, A5, A6 = (unit_code(COMM_A, i) for i in range(1, 7))
B1, B2, B3 = (unit_code(COMM_B, i) for i in range(1, 4))
A_ALL = [A1, A2, A3, A4, A5, A6]


class Builder:
    """Cases with histories written directly at chosen times (the workflow's own paths)."""

    def __init__(self, session: Session, city: str) -> None:
        self.session = session
        self.city = city
        self.ids: dict[str, int] = {}

    def case(
        self,
        name: str,
        grid: str,
        reported: datetime,
        deadline: datetime,
        steps: list[tuple[str, datetime]] = (),  # type: ignore[assignment]
        department: str = "市政维护科",
        source: str = "patrol",
        recurring_of: int | None = None,
    ) -> int:
        statuses = {
            "register": "registered",
            "dispatch": "dispatched",
            "handle": "handling",
            "feedback": "fed_back",
            "verify": "closed",
            "rework": "handling",
            "reject": "rejected",
            "reopen": "dispatched",
        }
        lon, lat = point_lonlat(50, 50)
        case = Case(
            city=self.city,
            category_code="0102",
            source=source,
            status="reported",
            reported_at=reported,
            deadline_at=deadline,
            updated_at=reported,
            lon=lon,
            lat=lat,
            grid_code=grid,
            department=department,
            recurring_of=recurring_of,
        )
        self.session.add(case)
        self.session.flush()
        status, closed = "reported", None
        for step in steps:
            action, at, *rest = step
            extra: dict[str, Any] = rest[0] if rest else {}
            actor = extra.pop("actor", "派遣员甲")
            data = extra
            target = status if action == "extend" else statuses[action]
            if action == "extend":
                data = {"old_deadline": case.deadline_at.isoformat(), **data}
                case.deadline_at = datetime.fromisoformat(data["new_deadline"])
            if action == "dispatch" and "department" in data:
                case.department = data["department"]
            self.session.add(
                CaseEvent(
                    city=case.city,
                    case_id=case.id,
                    action=action,
                    from_status=status,
                    to_status=target,
                    actor=actor,
                    at=at,
                    data=data,
                )
            )
            closed = at if action == "verify" else (None if action == "reopen" else closed)
            status = target
            case.updated_at = at
        case.status, case.closed_at = status, closed
        self.session.flush()
        self.ids[name] = case.id
        return case.id


def flow(reg: datetime, *rest: tuple) -> list:
    return [("register", reg), *rest]


@pytest.fixture
def world(case_city, session: Session, settings: AppSettings) -> Builder:
    b = Builder(session, settings.grids.city)
    # closed exactly at its deadline: on time
    b.case(
        "at_deadline",
        A1,
        t(2, 10),
        t(5, 10),
        flow(
            t(2, 10, 10),
            ("dispatch", t(2, 10, 20), {"actor": "派遣员甲"}),
            ("feedback", t(4, 10)),
            ("verify", t(5, 10)),
        ),
    )
    # closed one minute after its deadline: late
    b.case(
        "late",
        A1,
        t(3, 9),
        t(4, 12),
        flow(
            t(3, 9, 5), ("dispatch", t(3, 9, 10)), ("feedback", t(4, 11)), ("verify", t(4, 12, 1))
        ),
    )
    # open and overdue at the end of November
    b.case(
        "overdue_open",
        A2,
        t(10, 9),
        t(12, 9),
        flow(t(10, 9, 5), ("dispatch", t(10, 9, 30), {"actor": "派遣员乙"}), ("handle", t(10, 11))),
        department="园林绿化科",
    )
    # open at the end, deadline in December: not due
    b.case(
        "open_not_due",
        A2,
        t(28, 9),
        t(3, 9, month=12),
        flow(t(28, 9, 5), ("dispatch", t(28, 10))),
        department="园林绿化科",
    )
    # reported in November, closed in December on time
    b.case(
        "across",
        A3,
        t(29, 9),
        t(5, 9, month=12),
        flow(
            t(29, 9, 5),
            ("dispatch", t(29, 10)),
            ("feedback", t(1, 10, month=12)),
            ("verify", t(2, 9, month=12)),
        ),
        source="citizen",
    )
    # reported in October, closed in November
    b.case(
        "from_october",
        A3,
        t(28, 9, month=10),
        t(10, 9),
        flow(
            t(28, 9, 5, month=10),
            ("dispatch", t(28, 10, month=10)),
            ("feedback", t(2, 10)),
            ("verify", t(3, 10)),
        ),
    )
    # rework twice, then closed on time; the checks: 3 (two reworks, one verify)
    b.case(
        "rework_twice",
        B1,
        t(5, 9),
        t(20, 9),
        flow(
            t(5, 9, 5),
            ("dispatch", t(5, 9, 10)),
            ("feedback", t(6, 9)),
            ("rework", t(6, 12)),
            ("feedback", t(7, 9)),
            ("rework", t(9, 10)),  # 49 h after the feedback: verified late
            ("feedback", t(9, 15)),
            ("verify", t(9, 16)),
        ),
        source="hotline",
    )
    # re-dispatched to another department
    b.case(
        "redispatched",
        B2,
        t(6, 9),
        t(25, 9),
        flow(
            t(6, 9, 5),
            ("dispatch", t(6, 9, 10), {"department": "市政维护科"}),
            ("dispatch", t(6, 15), {"department": "园林绿化科", "actor": "派遣员乙"}),
        ),
        department="市政维护科",
    )
    # 23:30 local on 30 November belongs to November, 00:30 on 1 December does not
    b.case("last_minute", A4, t(30, 23, 30), t(4, 9, month=12), source="citizen")
    b.case("first_minute", A4, t(1, 0, 30, month=12), t(4, 9, month=12), source="citizen")
    # rejected: a report, not a case
    b.case("rejected", A5, t(11, 9), t(13, 9), [("reject", t(11, 10), {"note": "非城管职责"})])
    # extended before its first deadline, then closed before the new one
    b.case(
        "extended",
        A6,
        t(12, 9),
        t(14, 9),
        flow(
            t(12, 9, 5),
            ("dispatch", t(12, 10)),
            ("extend", t(13, 9), {"new_deadline": t(25, 9).isoformat()}),
            ("feedback", t(20, 9)),
            ("verify", t(20, 10)),
        ),
        recurring_of=None,
    )
    # the sibling community: overdue and open, recurring
    b.case(
        "sibling",
        B3,
        t(15, 9),
        t(16, 9),
        flow(t(15, 9, 5), ("dispatch", t(15, 10))),
        recurring_of=b.ids["late"],
        source="inspector",
    )
    session.commit()
    return b


@pytest.fixture
def figs(session: Session, settings: AppSettings) -> IndicatorEngine:
    return IndicatorEngine(session, settings)


def nov(settings: AppSettings):
    return parse_period(NOV, settings.grids.timezone)


def plain(session: Session, sql: str, **params: Any) -> int:
    """A plain SQL count written independently of the figs."""
    return int(session.execute(text(sql), params).scalar_one())


S, E = t(1, 0), t(1, 0, month=12)


def test_sample_of_each_indicator_matches_a_plain_count(
    world: Builder, figs: IndicatorEngine, session: Session, settings: AppSettings
) -> None:
    # 漏报 needs a worker whose patrol assignment held the grid: one for community A only
    session.add(Worker(city=settings.grids.city, code="W9", name="网格员九", grid_codes=A_ALL))
    session.flush()
    street = figs.subject(nov(settings), "grid", STREET).values()
    prefix = STREET[:9] + "%"
    p = {"s": S, "e": E, "prefix": prefix, "city": settings.grids.city}
    in_p = "at >= :s AND at < :e"
    expect = {
        "reported": plain(
            session,
            "SELECT count(*) FROM cases WHERE city = :city AND grid_code LIKE :prefix"
            " AND reported_at >= :s AND reported_at < :e",
            **p,
        ),
        "registered": plain(
            session,
            "SELECT count(*) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'register' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "voided": plain(
            session,
            "SELECT count(*) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'reject' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "closed": plain(
            session,
            "SELECT count(DISTINCT case_id) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'verify' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "closed_on_time": plain(
            session,
            "SELECT count(*) FROM cases WHERE city = :city AND grid_code LIKE :prefix"
            " AND closed_at >= :s"
            " AND closed_at < :e AND closed_at <= deadline_at",
            **p,
        ),
        "overdue_open": plain(
            session,
            "SELECT count(*) FROM cases WHERE city = :city AND grid_code LIKE :prefix AND status IN"
            " ('registered', 'dispatched', 'handling', 'fed_back') AND deadline_at < :e",
            **p,
        ),
        "reworked": plain(
            session,
            "SELECT count(*) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'rework' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "extended": plain(
            session,
            "SELECT count(DISTINCT case_id) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'extend' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "handled": plain(
            session,
            "SELECT count(DISTINCT case_id) FROM case_events e"
            " JOIN cases c ON c.city = e.city AND c.id = e.case_id"
            " AND c.city = :city"
            f" WHERE action = 'feedback' AND {in_p} AND grid_code LIKE :prefix",
            **p,
        ),
        "missed": plain(
            session,
            "SELECT count(*) FROM cases c JOIN categories k"
            " ON k.city = c.city AND k.code = c.category_code AND k.patrol_visible"
            " WHERE c.city = :city AND c.grid_code LIKE :prefix AND c.grid_code = ANY(:a_all)"
            " AND c.reported_at >= :s AND c.reported_at < :e AND c.source <> 'patrol'",
            a_all=A_ALL,
            **p,
        ),
    }
    assert expect["missed"] > 0
    for key, value in expect.items():
        assert street[key] == value, key
    # the world as written: the figures a person reads off the list above
    assert street["reported"] == 11  # everything but October's and December's
    assert street["closed"] == 5  # at_deadline, late, from_october, rework_twice, extended
    assert street["closed_on_time"] == 4
    assert street["closed_late"] == 1
    assert street["overdue_open"] == 3  # overdue_open, redispatched, sibling
    assert street["due"] == 8
    assert street["on_time_close_rate"] == round(4 / 8, 4)
    assert street["close_rate"] == round(5 / 8, 4)
    assert street["reworked"] == 2
    assert street["rework_rate"] == round(2 / 8, 4)
    assert street["voided"] == 1
    assert street["valid_reported"] == 9  # not last_minute (unregistered) nor rejected
    assert street["valid_report_rate"] == round(9 / 11, 4)
    assert street["recurring"] == 1


def test_deadline_edges_and_rework_twice(
    world: Builder, figs: IndicatorEngine, settings: AppSettings
) -> None:
    p = nov(settings)
    ids = world.ids
    on_time, _ = figs.cases(p, "grid", STREET, "closed_on_time")
    late, _ = figs.cases(p, "grid", STREET, "closed_late")
    assert ids["at_deadline"] in {r["id"] for r in on_time}  # closed exactly at the deadline
    assert {r["id"] for r in late} == {ids["late"]}
    # an extension moves the deadline the closure is judged by
    assert ids["extended"] in {r["id"] for r in on_time}
    rework, _ = figs.cases(p, "grid", STREET, "reworked")
    assert rework == [{"id": ids["rework_twice"], "count": 2}]
    checked = figs.subject(p, "grid", B1).values()
    assert checked["checked"] == 3 and checked["checked_on_time"] == 2  # one rework 49 h late
    assert checked["on_time_check_rate"] == round(2 / 3, 4)


def test_periods_in_local_time_and_across_months(
    world: Builder, figs: IndicatorEngine, settings: AppSettings
) -> None:
    ids = world.ids
    nov_reported = {r["id"] for r in figs.cases(nov(settings), "grid", A4, "reported")[0]}
    assert nov_reported == {ids["last_minute"]}
    dec = parse_period("2026-12", settings.grids.timezone)
    assert {r["id"] for r in figs.cases(dec, "grid", A4, "reported")[0]} == {ids["first_minute"]}
    # reported in November, closed in December: counted where each step happened
    a3_nov = figs.subject(nov(settings), "grid", A3).values()
    a3_dec = figs.subject(dec, "grid", A3).values()
    assert (a3_nov["reported"], a3_nov["closed"], a3_nov["due"]) == (1, 1, 1)  # from October
    assert (a3_dec["reported"], a3_dec["closed"], a3_dec["closed_on_time"]) == (0, 1, 1)
    # the open case not yet due in November is due in neither month's overdue list
    assert figs.subject(nov(settings), "grid", A2).values()["overdue_open"] == 1
    # custom and weekly periods agree with the days they span
    week = parse_period("2026-W45", settings.grids.timezone)  # 2-8 November
    custom = parse_period("2026-11-02..2026-11-08", settings.grids.timezone)
    assert figs.subject(week, "grid", STREET).values() == (
        figs.subject(custom, "grid", STREET).values()
    )


def test_subtree_versus_sibling_and_every_level_in_one_pass(
    world: Builder, figs: IndicatorEngine, settings: AppSettings
) -> None:
    levels = figs.grid_figures(nov(settings))
    by = {(lv, f.key): f.values() for lv, rows in levels.items() for f in rows}
    a, b = by[("community", COMM_A)], by[("community", COMM_B)]
    street = by[("street", STREET)]
    for key in ("reported", "closed", "due", "overdue_open", "reworked", "voided"):
        assert a[key] + b[key] == street[key], key
    assert a["overdue_open"] == 1 and b["overdue_open"] == 2
    assert b["reworked"] == 2 and a["reworked"] == 0
    # every current grid of a level has a row, also with nothing to count
    units = {f.key for f in levels["unit"]}
    assert {A1, A2, B3, unit_code(COMM_A, 8)} <= units
    assert by[("unit", unit_code(COMM_A, 8))]["reported"] == 0
    assert by[("unit", unit_code(COMM_A, 8))]["close_rate"] is None
    # a single subject's figures are the list's row
    assert figs.subject(nov(settings), "grid", COMM_A).values() == a


def test_departments_dispatchers_and_redispatch(
    world: Builder, figs: IndicatorEngine, settings: AppSettings
) -> None:
    p = nov(settings)
    depts = {f.key: f.values() for f in figs.department_figures(p)}
    # the re-dispatched case counts for the department it was sent to last
    assert depts["园林绿化科"]["dispatched"] == 3  # overdue_open, open_not_due, redispatched
    assert depts["园林绿化科"]["accurate_dispatched"] == 2
    assert depts["园林绿化科"]["accurate_dispatch_rate"] == round(2 / 3, 4)
    assert depts["园林绿化科"]["overdue_open"] == 2
    dispatchers = {f.key: f.values() for f in figs.dispatcher_figures(p)}
    # first dispatch decides the dispatcher: 派遣员乙 re-dispatched but dispatched first only one
    assert dispatchers["派遣员乙"]["dispatched"] == 1
    # a case first dispatched in October still belongs to its dispatcher in November
    assert dispatchers["派遣员甲"]["closed"] == 5
    assert world.ids["from_october"] in {
        r["id"] for r in figs.cases(p, "dispatcher", "派遣员甲", "closed")[0]
    }
    total = sum(v["dispatched"] for v in dispatchers.values())
    assert total == figs.subject(p, "grid", STREET).values()["dispatched"]
    red, _ = figs.cases(p, "department", "园林绿化科", "dispatched")
    acc, _ = figs.cases(p, "department", "园林绿化科", "accurate_dispatched")
    assert {r["id"] for r in red} - {r["id"] for r in acc} == {world.ids["redispatched"]}


def test_workers_missed_reports_and_patrol_hours(
    world: Builder, figs: IndicatorEngine, session: Session, settings: AppSettings
) -> None:
    city = settings.grids.city
    session.add(Worker(city=city, code="W1", name="网格员一", grid_codes=[A3, A4]))
    session.add(Worker(city=city, code="W2", name="网格员二", grid_codes=[B1, B2, B3]))
    from geoalchemy2 import WKTElement

    line = WKTElement("LINESTRING M (113.65 34.75 0, 113.651 34.75 60)", srid=4326)
    for start, hours in ((t(3, 9), 2.0), (t(30, 23), 2.0)):  # the second: 1 h inside November
        session.add(
            PatrolTrack(
                city=city,
                device_key=1,
                worker_code="W1",
                started_at=start,
                ended_at=start + timedelta(hours=hours),
                n_fixes=2,
                length_m=90.0,
                built_at=start,
                geom=line,
            )
        )
    session.flush()
    rows = {f.key: f.values() for f in figs.worker_figures(nov(settings))}
    w1, w2 = rows["W1"], rows["W2"]
    assert w1["patrol_hours"] == 3.0
    # W1's grids: across (citizen), from_october (patrol, October), last_minute (citizen)
    assert w1["reported"] == 2 and w1["missed"] == 2 and w1["patrol_reported"] == 0
    assert w1["cases_per_patrol_hour"] == 0.0
    missed = plain(
        session,
        "SELECT count(*) FROM cases WHERE city = :city AND grid_code = ANY(:g)"
        " AND reported_at >= :s AND reported_at < :e"
        " AND source IN ('citizen', 'inspector', 'hotline')",
        city=settings.grids.city,
        g=[B1, B2, B3],
        s=S,
        e=E,
    )
    assert w2["missed"] == missed == 2  # hotline and inspector
    assert w2["patrol_reported"] == 1 and w2["patrol_hours"] == 0.0
    assert w2["cases_per_patrol_hour"] is None
    assert figs.subject(nov(settings), "worker", "W2").values() == w2


def test_missed_needs_the_assignment_when_reported_and_a_kind_patrols_see(
    world: Builder, figs: IndicatorEngine, session: Session, settings: AppSettings
) -> None:
    """漏报数: the grid must have been in the worker's assignment when the case was reported
    (assignments are dated by the trigger on ``workers``), and its category one patrols see."""
    city = settings.grids.city
    session.add(Worker(city=city, code="W2", name="网格员二", grid_codes=[B1, B2, B3]))
    session.add(Worker(city=city, code="W3", name="网格员三", grid_codes=[]))
    session.flush()

    def missed(code: str) -> int:
        return {f.key: f.values() for f in figs.worker_figures(nov(settings))}[code]["missed"]

    def history(code: str) -> list[tuple[str, bool, bool]]:
        rows = session.execute(
            text(
                "SELECT grid_code, valid_from = '-infinity', valid_to IS NULL"
                " FROM worker_assignments WHERE city = :city AND worker_code = :code"
                " ORDER BY grid_code, valid_from"
            ),
            {"city": city, "code": code},
        )
        return [tuple(r) for r in rows]

    assert missed("W2") == 2 and missed("W3") == 0
    # B2 and B3 go from W2 to W3 now: November's cases were reported while W2 had them
    session.execute(
        text("UPDATE workers SET grid_codes = :g WHERE city = :city AND code = 'W2'"),
        {"g": [B1], "city": city},
    )
    session.execute(
        text("UPDATE workers SET grid_codes = :g WHERE city = :city AND code = 'W3'"),
        {"g": [B2, B3], "city": city},
    )
    session.expire_all()
    assert history("W2") == [(B1, True, True), (B2, True, False), (B3, True, False)]
    assert history("W3") == [(B2, False, True), (B3, False, True)]
    was_w2 = plain(
        session,
        "SELECT count(*) FROM cases WHERE city = :city AND grid_code = ANY(:g)"
        " AND reported_at >= :s AND reported_at < :e AND source <> 'patrol'",
        city=city,
        g=[B1, B2, B3],
        s=S,
        e=E,
    )
    assert missed("W2") == was_w2 == 2 and missed("W3") == 0
    drill, _ = figs.cases(nov(settings), "worker", "W2", "missed")
    assert len(drill) == 2
    assert figs.subject(nov(settings), "worker", "W2").values()["missed"] == 2
    # a kind patrols cannot be expected to find is nobody's 漏报
    session.execute(
        text("UPDATE categories SET patrol_visible = false WHERE city = :city AND code = '0102'"),
        {"city": city},
    )
    assert missed("W2") == 0
    assert figs.subject(nov(settings), "grid", STREET).values()["missed"] == 0


def test_hotspot_subject_counts_the_cases_in_its_zone(
    world: Builder, figs: IndicatorEngine, session: Session, settings: AppSettings
) -> None:
    """A hotspot is a subject: the cases in its influence zone when reported (复发数 is the
    recurrence at the place), with a drill-down, read only by whom its zone's grids concern."""
    city = settings.grids.city
    ids = world.ids
    spot_id, name = session.execute(
        text("SELECT id, name FROM hotspots WHERE city = :city ORDER BY id LIMIT 1"),
        {"city": city},
    ).one()
    session.execute(
        text(
            "UPDATE cases SET hotspot_ids = hotspot_ids || CAST(:h AS bigint) WHERE id = ANY(:ids)"
        ),
        {"h": spot_id, "ids": [ids["across"], ids["rework_twice"], ids["last_minute"]]},
    )
    session.execute(
        text("UPDATE cases SET recurring_of = :first WHERE id = :id"),
        {"first": ids["across"], "id": ids["last_minute"]},
    )
    params = {"city": city, "h": spot_id, "s": S, "e": E}
    in_zone = "city = :city AND :h = ANY(hotspot_ids) AND reported_at >= :s AND reported_at < :e"
    reported = plain(session, f"SELECT count(*) FROM cases WHERE {in_zone}", **params)
    recurring = plain(
        session,
        f"SELECT count(*) FROM cases WHERE {in_zone} AND recurring_of IS NOT NULL",
        **params,
    )
    assert reported >= 2 and recurring >= 1
    rows = {f.key: f for f in figs.hotspot_figures(nov(settings))}
    row = rows[str(spot_id)]
    assert row.name == name
    assert row.values()["reported"] == reported and row.values()["recurring"] == recurring
    assert figs.subject(nov(settings), "hotspot", str(spot_id)).values() == row.values()
    drill, _ = figs.cases(nov(settings), "hotspot", str(spot_id), "recurring")
    assert ids["last_minute"] in {r["id"] for r in drill}
    with pytest.raises(NotFound):
        figs.subject(nov(settings), "hotspot", "999999999")


def test_handling_hours_are_working_hours(
    world: Builder, figs: IndicatorEngine, settings: AppSettings
) -> None:
    from service.clock import work_clock

    clock = work_clock(settings)
    fig = figs.subject(nov(settings), "grid", A1).values()
    # at_deadline: dispatched Mon 2 Nov 10:20, fed back Wed 4 Nov 10:00; late: Tue 3 Nov
    # 09:10 to Wed 4 Nov 11:00 — on the working calendar, not the wall clock
    expected = clock.working_hours_between(t(2, 10, 20), t(4, 10)) + (
        clock.working_hours_between(t(3, 9, 10), t(4, 11))
    )
    assert fig["handling_timed"] == 2
    assert fig["handling_hours"] == round(expected, 2)
    assert fig["avg_handling_hours"] == round(expected / 2, 4)
    assert fig["avg_handling_hours"] < (t(4, 10) - t(2, 10, 20)).total_seconds() / 3600


def test_definitions_table_holds_what_the_code_computes(session: Session) -> None:
    stored: dict[tuple[str, int], IndicatorDefinition] = {}
    for r in session.scalars(select(IndicatorDefinition).order_by(IndicatorDefinition.version)):
        stored = {k: v for k, v in stored.items() if k[0] != r.key} | {(r.key, r.version): r}
    assert len(stored) == len(DEFINITIONS)  # the latest version of each is the code's
    for d in DEFINITIONS:
        row = stored[(d.key, d.version)]
        assert (row.name_zh, row.kind, row.numerator, row.denominator) == (
            d.name_zh,
            d.kind,
            d.numerator,
            d.denominator,
        )
        assert list(row.subjects) == list(d.subjects) and dict(row.params) == d.params


# -- the API ------------------------------------------------------------------------------------
def test_api_lists_one_subject_and_drills_down(world: Builder, client: TestClient) -> None:
    r = client.get("/api/assessment/indicators")
    assert r.status_code == 200
    keys = [d["key"] for d in r.json()["indicators"]]
    assert "on_time_close_rate" in keys and "漏报数" in {
        d["name_zh"] for d in r.json()["indicators"]
    }
    r = client.get("/api/assessment/figures", params={"period": NOV, "subject": "grid:community"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["start"] == "2026-11-01T00:00:00+08:00"
    assert {row["key"] for row in body["items"]} == {COMM_A, COMM_B}
    one = client.get(f"/api/assessment/figures/grid/{STREET}", params={"period": NOV}).json()
    assert one["figures"]["due"] == 8
    assert one["components"]["on_time_close_rate"]["denominator"] == {"key": "due", "value": 8}
    ids: list[int] = []
    after = 0
    while True:
        page = client.get(
            f"/api/assessment/figures/grid/{STREET}/cases",
            params={"period": NOV, "indicator": "due", "limit": 3, "after": after},
        ).json()
        ids += [row["id"] for row in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert len(ids) == len(set(ids)) == 8
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/assessment/figures", {"period": "2026-13", "subject": "department"}, "period"),
        ("/api/assessment/figures", {"period": "2026-W54", "subject": "department"}, "period"),
        (
            "/api/assessment/figures",
            {"period": "2026-11-15..2026-11-01", "subject": "worker"},
            "period",
        ),
        ("/api/assessment/figures", {"period": "last month", "subject": "worker"}, "period"),
        ("/api/assessment/figures", {"period": NOV, "subject": "grid:planet"}, "subject"),
        ("/api/assessment/figures", {"period": NOV, "subject": "team"}, "subject"),
        (
            f"/api/assessment/figures/grid/{STREET}/cases",
            {"period": NOV, "indicator": "close_rate"},
            "indicator",
        ),
        (
            f"/api/assessment/figures/grid/{STREET}/cases",
            {"period": NOV, "indicator": "nope"},
            "indicator",
        ),
        ("/api/assessment/figures/team/x", {"period": NOV}, "kind"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    world: Builder, client: TestClient, session: Session, path: str, params: dict, field: str
) -> None:
    before = session.scalar(select(func.count()).select_from(IndicatorDefinition))
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert session.scalar(select(func.count()).select_from(IndicatorDefinition)) == before


def test_scope_keeps_figures_to_the_callers_grids(
    world: Builder,
    settings: AppSettings,
    sessions: sessionmaker[Session],
    session: Session,
) -> None:
    user = make_user(session, settings, "leader", scope_grids=[COMM_A])
    dept = make_user(session, settings, "department", department="园林绿化科")
    session.commit()
    with TestClient(create_app(settings, sessions=sessions)) as c:
        c.headers.update(bearer(session, settings, user))
        rows = c.get("/api/assessment/figures", params={"period": NOV, "subject": "grid:unit"})
        assert rows.status_code == 200
        assert {r["key"] for r in rows.json()["items"]} == {
            unit_code(COMM_A, i) for i in range(1, 9)
        }
        streets = c.get("/api/assessment/figures", params={"period": NOV, "subject": "grid:street"})
        assert streets.json()["items"] == []  # the street reaches beyond the scope
        r = c.get(f"/api/assessment/figures/grid/{COMM_B}", params={"period": NOV})
        assert r.status_code == 403 and "scope" in r.text
        r = c.get(
            f"/api/assessment/figures/grid/{COMM_B}/cases",
            params={"period": NOV, "indicator": "reported"},
        )
        assert r.status_code == 403
        assert (
            c.get(f"/api/assessment/figures/grid/{COMM_A}", params={"period": NOV}).status_code
            == 200
        )
        c.headers.update(bearer(session, settings, dept))
        mine = c.get("/api/assessment/figures", params={"period": NOV, "subject": "department"})
        assert [r["key"] for r in mine.json()["items"]] == ["园林绿化科"]
    with TestClient(create_app(settings, sessions=sessions)) as anonymous:
        r = anonymous.get("/api/assessment/figures", params={"period": NOV, "subject": "worker"})
        assert r.status_code == 401


def test_exports_have_chinese_headers_one_row_per_unit(world: Builder, client: TestClient) -> None:
    params = {"period": NOV, "subject": "grid:community"}
    r = client.get("/api/assessment/figures/export", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:9] == [
        "单位编码",
        "单位名称",
        "应结案数",
        "结案数",
        "按期结案数",
        "超期结案数",
        "超期未结数",
        "结案率(%)",
        "按期结案率(%)",
    ]
    by = {row[0]: row for row in rows[1:]}
    assert set(by) == {COMM_A, COMM_B}
    r = client.get("/api/assessment/figures/export", params=params | {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(r.content)).active
    values = list(sheet.values)
    assert values[0][2] == "应结案数" and len(values) == 3
    xlsx = {row[0]: row for row in values[1:]}
    assert [str(v) for v in xlsx[COMM_A][2:7]] == by[COMM_A][2:7]


def test_state_and_deadline_at_the_end_come_from_the_first_later_step(
    case_city, session: Session, settings: AppSettings
) -> None:
    b = Builder(session, settings.grids.city)
    # overdue at the end of November, closed late in December
    late = b.case(
        "late_in_december",
        A1,
        t(20, 9),
        t(25, 9),
        flow(
            t(20, 9, 5),
            ("dispatch", t(20, 10)),
            ("feedback", t(2, 10, month=12)),
            ("verify", t(3, 9, month=12)),
        ),
    )
    # overdue at the end of November; the extension granted in December does not undo that
    extended = b.case(
        "extended_in_december",
        A2,
        t(20, 9),
        t(26, 9),
        flow(
            t(20, 9, 5),
            ("dispatch", t(20, 10)),
            ("extend", t(1, 10, month=12), {"new_deadline": t(10, 9, month=12).isoformat()}),
        ),
    )
    # closed in November, reopened in December: not open at the end of November
    b.case(
        "reopened",
        A3,
        t(2, 9),
        t(9, 9),
        flow(
            t(2, 9, 5),
            ("dispatch", t(2, 10)),
            ("feedback", t(3, 10)),
            ("verify", t(4, 10)),
            ("reopen", t(2, 10, month=12), {"note": "复发"}),
        ),
    )
    session.flush()
    figs = IndicatorEngine(session, settings)
    nov_ = figs.subject(nov(settings), "grid", STREET).values()
    assert (nov_["overdue_open"], nov_["closed"], nov_["due"]) == (2, 1, 3)
    overdue, _ = figs.cases(nov(settings), "grid", STREET, "overdue_open")
    assert {r["id"] for r in overdue} == {late, extended}
    dec = figs.subject(parse_period("2026-12", settings.grids.timezone), "grid", STREET).values()
    # in December: the late one closed late; the extended one (due 10 December) and the
    # reopened one (its deadline long past) are open and overdue at the end
    assert (dec["closed"], dec["closed_late"], dec["extended"]) == (1, 1, 1)
    assert dec["overdue_open"] == 2 and dec["due"] == 3


def test_api_hotspot_figures_and_patrol_visible_flag(
    world: Builder, client: TestClient, session: Session, settings: AppSettings
) -> None:
    spot = session.scalar(
        text("SELECT id FROM hotspots WHERE city = :city ORDER BY id LIMIT 1"),
        {"city": settings.grids.city},
    )
    r = client.get("/api/assessment/figures", params={"period": NOV, "subject": "hotspot"})
    assert r.status_code == 200, r.text
    assert str(spot) in {row["key"] for row in r.json()["items"]}
    r = client.get(f"/api/assessment/figures/hotspot/{spot}", params={"period": NOV})
    assert r.status_code == 200, r.text
    assert "recurring" in r.json()["figures"]
    r = client.get("/api/assessment/figures/hotspot/abc", params={"period": NOV})
    assert r.status_code == 404 and "hotspot" in r.text
    # the catalogue flag 漏报 reads: shown, and changed by an editor
    cats = {c["code"]: c for c in client.get("/api/categories").json()}
    assert cats["0102"]["patrol_visible"] and not cats["0406"]["patrol_visible"]
    r = client.patch("/api/categories/0102", json={"patrol_visible": False})
    assert r.status_code == 200 and r.json()["patrol_visible"] is False
    r = client.patch("/api/categories/9999", json={"patrol_visible": False})
    assert r.status_code == 404 and "code" in r.text
    r = client.patch("/api/categories/0102", json={"patrol_visible": "maybe"})
    assert r.status_code == 422 and "patrol_visible" in r.text


def test_a_scoped_reader_sees_the_hotspots_touching_its_grids(
    world: Builder, figs: IndicatorEngine, session: Session, settings: AppSettings
) -> None:
    """Hotspot figures follow the grid scope: a hotspot is seen by whom a unit grid its
    influence zone touches concerns (the market lies in community A, 20 m from nothing of B;
    checked with shapely on the stored zones and grids)."""
    from service.accounts.principal import Principal

    rows = session.execute(
        text(
            "SELECT h.id::text AS id, ST_AsBinary(h.zone) AS zone FROM hotspots h"
            " WHERE h.city = :city"
        ),
        {"city": settings.grids.city},
    ).all()
    units = session.execute(
        text(
            "SELECT code, ST_AsBinary(geom) AS geom FROM grids"
            " WHERE city = :city AND level = 'unit' AND valid_to IS NULL"
        ),
        {"city": settings.grids.city},
    ).all()
    spots = figs.hotspot_figures(nov(settings))
    for community in (COMM_A, COMM_B):
        prefix = community[:12]
        reader = Principal("user", 1, "社区", frozenset({"cases.read"}), grid_prefixes=(prefix,))
        expected = {
            r.id
            for r in rows
            if any(
                shapely.intersects(shapely.from_wkb(r.zone), shapely.from_wkb(u.geom))
                for u in units
                if u.code.startswith(prefix)
            )
        }
        assert {s.key for s in figs.in_scope(reader, spots)} == expected
    dept = Principal("user", 2, "部门", frozenset({"cases.read"}), department="环卫所")
    assert figs.in_scope(dept, spots) == []
