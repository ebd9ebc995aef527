"""The overdue sweep: every open case past its deadline is announced once (``case.overdue``).

The event's key (``case.overdue:<id>``) is unique per city, so sweeps may run in every server
process, often, and at the same moment: a case is announced once, however many notice it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, cast, literal, select
from sqlalchemy.orm import Session

from service.cases.cases import case_payload
from service.cases.workflow import OPEN_STATUSES
from service.db.models import Case, NotifyEvent
from service.notify import publish
from service.settings import AppSettings


def overdue_key(case_id: int) -> str:
    """The once-only key of case ``case_id``'s overdue event."""
    return f"case.overdue:{case_id}"


def sweep_overdue(session: Session, settings: AppSettings, at: datetime, limit: int = 5000) -> int:
    """Publish ``case.overdue`` for each open case of the city whose deadline passed before
    ``at`` and that was not announced yet (at most ``limit`` per call); returns how many."""
    city = settings.grids.city
    announced = select(NotifyEvent.id).where(
        NotifyEvent.city == city, NotifyEvent.key == literal("case.overdue:") + cast(Case.id, Text)
    )
    stmt = (
        select(Case)
        .where(
            Case.city == city,
            Case.status.in_(OPEN_STATUSES),  # the partial index ix_cases_open_deadline
            Case.deadline_at < at,
            ~announced.exists(),
        )
        .order_by(Case.deadline_at, Case.id)
        .limit(limit)
    )
    count = 0
    for case in session.scalars(stmt):
        payload = {**case_payload(case), "overdue_since": case.deadline_at}
        event = publish(
            session,
            "case.overdue",
            payload,
            grid_code=case.grid_code,
            department=case.department,
            city=city,
            key=overdue_key(case.id),
            at=at,
        )
        count += event is not None
    return count
