"""The schedule: two makers racing on committed data make one set; a failing scope is logged
and the others are made; missed days are found and caught up; the CLI makes a day's set."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.briefs.schedule import RunReport, catch_up, missing_days, next_run, run_day
from service.cases.catalogue import seed_catalogue
from service.cli import app
from service.db.models import Document
from service.grids.registry import Registry
from service.settings import AppSettings, BriefSettings
from tests.helpers.briefs import A1, DAY, add_case, at
from tests.helpers.city import STREET, small_city

RACE_CITY = "990180"  # committed: two sessions must see the same rows


@pytest.fixture(scope="module")
def committed(engine: Engine, settings_for) -> AppSettings:  # noqa: ANN001
    """The small city with two cases of DAY, committed under its own city key."""
    settings = settings_for(RACE_CITY)
    settings.briefs = BriefSettings(_env_file=None, scopes=STREET, formats="html")
    with Session(engine) as session:
        Registry(session, settings).write(
            small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM
        )
        seed_catalogue(session, RACE_CITY)
        add_case(session, RACE_CITY, A1, at(DAY, 9), at(DAY, 11), [("register", at(DAY, 9, 5))])
        add_case(session, RACE_CITY, A1, at(DAY, 10), at(DAY, 12), source="citizen")
        session.commit()
    return settings


def _documents(engine: Engine, day) -> list[tuple[str, str, int]]:  # noqa: ANN001
    with Session(engine) as session:
        return sorted(
            session.execute(
                select(Document.kind, Document.format, Document.issue).where(
                    Document.city == RACE_CITY, Document.first_day == day
                )
            ).all()
        )


def test_two_processes_racing_make_one_set(engine: Engine, committed: AppSettings) -> None:
    makers = sessionmaker(engine)
    reports: list[RunReport] = []
    start = threading.Barrier(2)

    def make() -> None:
        start.wait()
        reports.append(run_day(makers, committed, DAY))

    threads = [threading.Thread(target=make) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(len(r.made) for r in reports) == [0, 1]
    assert sorted(len(r.existing) for r in reports) == [0, 1]
    assert _documents(engine, DAY) == [
        ("brief", "html", 1),
        ("circular", "html", 1),
        ("ledger", "xlsx", 1),
    ]


def test_a_failing_scope_is_logged_and_the_others_are_made(
    engine: Engine, committed: AppSettings, caplog: pytest.LogCaptureFixture
) -> None:
    day = DAY - timedelta(days=3)
    # PDFs too: a run of two scopes renders them in worker processes
    settings = AppSettings(
        database=committed.database,
        grids=committed.grids,
        briefs=BriefSettings(_env_file=None, formats="pdf"),
    )
    with caplog.at_level(logging.ERROR, logger="citygrid.briefs"):
        report = run_day(sessionmaker(engine), settings, day, ["41019999999999", STREET])
    assert report.made == [STREET]
    assert "scope" in report.failed["41019999999999"] or report.failed["41019999999999"]
    assert any("41019999999999" in r.getMessage() for r in caplog.records)
    assert _documents(engine, day) == [
        ("brief", "pdf", 1),
        ("circular", "pdf", 1),
        ("ledger", "xlsx", 1),
    ]
    with Session(engine) as session:
        pdfs = session.scalars(
            select(Document).where(Document.city == RACE_CITY, Document.format == "pdf")
        ).all()
        assert pdfs and all(d.content.startswith(b"%PDF") for d in pdfs)
        assert all(d.size == len(d.content) for d in pdfs)


def test_missed_days_are_caught_up(engine: Engine, committed: AppSettings) -> None:
    from service.briefs.figures import today

    settings = committed
    settings.briefs = BriefSettings(_env_file=None, scopes=STREET, formats="html", catch_up_days=2)
    makers = sessionmaker(engine)
    missing = missing_days(makers, settings, 2, today(settings))
    assert missing == [today(settings) - timedelta(days=2), today(settings) - timedelta(days=1)]
    reports = catch_up(makers, settings)
    assert [r.day for r in reports] == missing and all(r.made == [STREET] for r in reports)
    assert missing_days(makers, settings, 2, today(settings)) == []


def test_next_run_is_the_set_time_today_or_tomorrow() -> None:
    settings = AppSettings(briefs=BriefSettings(_env_file=None, time="08:00"))
    before = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai: past 08:00
    assert next_run(settings, before).isoformat() == "2026-11-22T08:00:00+08:00"
    early = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # 07:00 in Shanghai
    assert next_run(settings, early).isoformat() == "2026-11-21T08:00:00+08:00"
    with pytest.raises(ValueError):
        BriefSettings(_env_file=None, time="25:00")


def test_the_cli_makes_a_days_set_once(
    engine: Engine, committed: AppSettings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYGRID_CITY", RACE_CITY)
    monkeypatch.setenv("CITYGRID_BRIEF_FORMATS", "docx")
    day = DAY - timedelta(days=5)
    runner = CliRunner()
    first = runner.invoke(app, ["brief", "--date", day.isoformat(), "--scope", STREET])
    assert first.exit_code == 0, first.output
    assert "made" in first.output
    again = runner.invoke(app, ["brief", "--date", day.isoformat(), "--scope", STREET])
    assert again.exit_code == 0 and "already made" in again.output
    assert _documents(engine, day) == [
        ("brief", "docx", 1),
        ("circular", "docx", 1),
        ("ledger", "xlsx", 1),
    ]
    bad = runner.invoke(app, ["brief", "--date", "2099-01-01", "--scope", STREET])
    assert bad.exit_code == 1
    with Session(engine) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Document).where(Document.period == "2099-01-01")
            )
            == 0
        )


def test_the_scheduler_thread_catches_up_on_start_and_stops(
    engine: Engine, committed: AppSettings
) -> None:
    from service.briefs.figures import today
    from service.briefs.schedule import BriefScheduler
    from tests.helpers.servers import wait_for

    settings = AppSettings(
        database=committed.database,
        grids=committed.grids,
        briefs=BriefSettings(
            _env_file=None, scopes=STREET, formats="html", catch_up_days=1, time="23:59"
        ),
    )
    yesterday = today(settings) - timedelta(days=1)
    with Session(engine) as session:  # an earlier test may have made it: the thread must
        session.execute(
            delete(Document).where(Document.city == RACE_CITY, Document.first_day == yesterday)
        )
        session.commit()
    assert _documents(engine, yesterday) == []
    scheduler = BriefScheduler(sessionmaker(engine), settings).start()
    try:
        assert wait_for(lambda: len(_documents(engine, yesterday)) == 3, seconds=120)
    finally:
        scheduler.stop()
    assert scheduler._thread is not None and not scheduler._thread.is_alive()
