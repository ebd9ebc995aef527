"""The orders a circular names, order numbers under concurrency, and ``citygrid escalate``."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.cases.catalogue import seed_catalogue
from service.cli import app
from service.clock import now
from service.db.models import OrderCounter
from service.grids.registry import Registry
from service.settings import AppSettings
from service.supervision.numbers import allocate
from service.supervision.orders import OrderInput, OrderService
from tests.helpers.city import COMM_A, COMM_B, small_city, unit_code
from tests.helpers.supervision import reported, step

NUMBERS_CITY = "990910"  # counters committed by the concurrency test; removed after it
CST = ZoneInfo("Asia/Shanghai")
CLI_CITY = "990915"  # committed by the CLI test (the run's database is dropped afterwards)


def test_the_circular_names_open_orders_of_its_scope_or_department_with_overdue_flags(
    case_city: Registry, session: Session, settings: AppSettings
) -> None:
    orders = OrderService(session, settings)
    in_a = reported(session, settings, days_ago=0)
    in_b = reported(session, settings, days_ago=0, x=450)
    step(session, settings, in_b, "register", "dispatch")  # 乙社区's rule: 乙社区环卫组

    def issue(case_ids: list[int], kind: str, unit: str, days: float) -> int:
        item = OrderInput(
            demand="限期整改",
            deadline_at=now() + timedelta(days=days),
            unit_kind=kind,
            unit=unit,
            case_ids=case_ids,
        )
        return orders.issue(item, SYSTEM).id

    grid_order = issue([in_a.id], "grid", unit_code(COMM_A, 2), 0.01)
    dept_order = issue([in_b.id], "department", "乙社区环卫组", 5)
    done = issue([in_a.id], "grid", unit_code(COMM_A, 2), 5)
    orders.act(done, "acknowledge", SYSTEM)
    orders.act(done, "answer", SYSTEM, note="已整改")
    orders.act(done, "accept", SYSTEM)

    later = (now() + timedelta(days=1)).date()
    rows = orders.for_circular(COMM_A[:12], None, later)
    assert [r["id"] for r in rows] == [grid_order]  # accepted orders are not named
    (row,) = rows
    assert row["overdue"] and row["status"] == "issued" and row["case_ids"] == [in_a.id]
    assert row["number"].startswith("督办〔") and row["unit_name"] == "经八路街道办"
    assert row["person"] == "网格员2" and row["demand"] == "限期整改"
    # the department's orders, and the cases in community B's grids, name the same order
    assert [r["id"] for r in orders.for_circular(None, "乙社区环卫组", later)] == [dept_order]
    assert [r["id"] for r in orders.for_circular(COMM_B[:12], None, later)] == [dept_order]
    assert not orders.for_circular(None, "乙社区环卫组", later)[0]["overdue"]
    # the whole city; a day before the orders were issued names none
    assert {r["id"] for r in orders.for_circular(None, None, later)} == {grid_order, dept_order}
    assert orders.for_circular(None, None, date(2020, 1, 1)) == []


@pytest.fixture
def numbers_engine(engine: Engine):
    yield engine
    with Session(engine) as session:
        session.execute(delete(OrderCounter).where(OrderCounter.city == NUMBERS_CITY))
        session.commit()


def test_numbers_have_no_gaps_when_issuers_overlap_and_one_rolls_back(
    numbers_engine: Engine,
) -> None:
    first = Session(numbers_engine)
    assert allocate(first, NUMBERS_CITY, 2026) == 1  # holds the counter row, uncommitted
    got: list[int] = []

    def second_issuer() -> None:
        with Session(numbers_engine) as s:
            got.append(allocate(s, NUMBERS_CITY, 2026))  # waits for the first issuer
            s.commit()

    waiting = threading.Thread(target=second_issuer)
    waiting.start()
    waiting.join(timeout=0.5)
    first.rollback()  # the first issue fails: its number goes back
    first.close()
    waiting.join(timeout=30)
    assert got == [1]
    with Session(numbers_engine) as s:
        assert allocate(s, NUMBERS_CITY, 2026) == 2
        assert allocate(s, NUMBERS_CITY, 2027) == 1  # numbers start again each year
        s.commit()


def test_cli_escalate_issues_orders_once_and_refuses_a_bad_time(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, settings_for
) -> None:
    settings = settings_for(CLI_CITY)
    with Session(engine) as session:
        Registry(session, settings).write(
            small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM
        )
        seed_catalogue(session, CLI_CITY)
        case_id = reported(session, settings, days_ago=20).id
        session.commit()
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYGRID_CITY", CLI_CITY)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["escalate", *args])
        return result.exit_code, " ".join(result.output.split())  # the console wraps lines

    code, out = run()
    assert code == 0, out
    assert "1 issued, 0 proposed" in out
    assert "第0001号" in out and f"[{case_id}]" in out
    code, out = run()
    assert code == 0 and "0 issued, 0 proposed" in out
    # ten days on (local time, as an operator types it), the unanswered order goes one level up
    when = (now() + timedelta(days=10)).astimezone(CST).strftime("%Y-%m-%dT%H:%M")
    code, out = run("--at", when)
    assert code == 0 and "1 escalated one level up" in out and "甲社区" in out
    code, out = run("--at", "yesterday")
    assert code == 1 and "--at" in out
