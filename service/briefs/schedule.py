"""Making the daily set on time: a run for every configured scope, a catch-up of missed days,
and the thread that does both inside a service process.

:func:`run_day` makes the set of one day for every scope, each scope in its own transaction
(one failing scope is logged and the others are made); the city-wide figures are computed
once per run and shared. :func:`catch_up` makes what is missing of the last days.
:class:`BriefScheduler` is a daemon thread: on start it catches up, then sleeps until the
configured time each day and makes the set of the day before. Two service processes both
doing so make one set between them (the store's advisory lock and unique issue); a failure is
logged and the thread goes on to the next day.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from multiprocessing import get_context
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.briefs.figures import Inputs, today
from service.briefs.store import DocumentStore
from service.clock import now
from service.db.models import Document
from service.settings import AppSettings

log = logging.getLogger("citygrid.briefs")


@dataclass
class RunReport:
    """What a run made, found already made, or failed to make (scope → message)."""

    day: date
    made: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def run_day(
    sessions: sessionmaker[Session],
    settings: AppSettings,
    day: date,
    scopes: Sequence[str] | None = None,
    period: str = "day",
) -> RunReport:
    """Make the set of ``day`` for each of ``scopes`` (default: the configured ones)."""
    report = RunReport(day)
    scopes = list(scopes if scopes is not None else settings.briefs.scope_list())
    # a run of several scopes renders its documents in worker processes (charts, python-docx
    # and WeasyPrint hold the GIL) while the figures are gathered; spawned, so no thread or
    # connection is forked
    pool = (
        ProcessPoolExecutor(min(os.cpu_count() or 1, 4), mp_context=get_context("spawn"))
        if len(scopes) > 1
        else None
    )
    shared: Inputs | None = None
    try:
        for scope in scopes:
            try:
                with sessions() as session, session.begin():
                    # each scope commits on its own; the city-wide figures are computed once
                    shared = shared.on(session) if shared else Inputs(session, settings, pool)
                    result = DocumentStore(session, settings).make_set(
                        scope, day, period, inputs=shared
                    )
                (report.made if result.created else report.existing).append(scope)
            except Exception as exc:  # one scope's failure must not stop the others
                log.exception("making the %s set of %s for %s failed", period, day, scope)
                report.failed[scope] = str(exc)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return report


def missing_days(
    sessions: sessionmaker[Session], settings: AppSettings, days: int, until: date
) -> list[date]:
    """The days of the ``days`` before ``until`` (excluded) that lack a set of a configured
    scope, oldest first."""
    scopes = settings.briefs.scope_list()
    if not scopes or days <= 0:
        return []
    first = until - timedelta(days=days)
    with sessions() as session:
        made = set(
            session.execute(
                select(Document.first_day, Document.scope).where(
                    Document.city == settings.grids.city,
                    Document.period_kind == "day",
                    Document.issue == 1,
                    Document.kind == "brief",
                    Document.first_day >= first,
                    Document.scope.in_(scopes),
                )
            ).all()
        )
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        if any((d, s) not in made for s in scopes):
            out.append(d)
    return out


def catch_up(sessions: sessionmaker[Session], settings: AppSettings) -> list[RunReport]:
    """Make the missing sets of the configured catch-up days before today."""
    return [
        run_day(sessions, settings, d)
        for d in missing_days(sessions, settings, settings.briefs.catch_up_days, today(settings))
    ]


def next_run(settings: AppSettings, after: datetime) -> datetime:
    """The first scheduled moment after ``after`` (the configured local time of day)."""
    zone = ZoneInfo(settings.grids.timezone)
    hh, mm = (int(x) for x in settings.briefs.time.split(":"))
    local = after.astimezone(zone)
    at = datetime.combine(local.date(), time(hh, mm), zone)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time(hh, mm), zone)
    return at


class BriefScheduler:
    """The in-process schedule: catch up on start, then the day before at the set time."""

    def __init__(self, sessions: sessionmaker[Session], settings: AppSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BriefScheduler:
        """Start the thread (a daemon: it never holds the process up)."""
        self._thread = threading.Thread(target=self._loop, name="citygrid-briefs", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it a little (a run in progress finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        self._guarded(lambda: catch_up(self.sessions, self.settings))
        while not self._stop.is_set():
            due = next_run(self.settings, now())
            if self._stop.wait(max((due - now()).total_seconds(), 0.0)):
                return
            day = due.astimezone(ZoneInfo(self.settings.grids.timezone)).date() - timedelta(days=1)
            self._guarded(lambda d=day: run_day(self.sessions, self.settings, d))

    @staticmethod
    def _guarded(work) -> None:  # noqa: ANN001
        """Run ``work``; a failure is logged, and the schedule goes on."""
        try:
            work()
        except Exception:
            log.exception("a scheduled brief run failed")
