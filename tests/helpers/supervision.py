"""Cases and orders for the supervision tests: cases reported in the small city some days ago
and moved along the workflow by the system, and orders counted in the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.cases.cases import Action, CaseInput, CaseService
from service.clock import now
from service.db.models import Case, OrderCounter, SupervisionOrder
from service.settings import AppSettings
from tests.helpers.city import point_lonlat


def reported(
    session: Session,
    settings: AppSettings,
    days_ago: float,
    x: float = 150,
    y: float = 150,
    category: str = "0102",
) -> Case:
    """A case of ``category`` reported ``days_ago`` days ago at (x, y) metres in the small
    city (default: inside unit grid 02 of community A)."""
    lon, lat = point_lonlat(x, y)
    case, _ = CaseService(session, settings).intake(
        CaseInput(
            category_code=category,
            lon=lon,
            lat=lat,
            description="路边暴露垃圾",
            reported_at=now() - timedelta(days=days_ago),
        ),
        SYSTEM,
    )
    return case


def step(session: Session, settings: AppSettings, case: Case, *actions: str) -> Case:
    """Move ``case`` through ``actions`` as the system (notes given where one is needed)."""
    cases = CaseService(session, settings)
    for action in actions:
        case = cases.act(case.id, Action(action, note="测试"), SYSTEM)
    return case


def order_count(session: Session, city: str) -> tuple[int, int]:
    """(orders stored, numbers given) in ``city``: a refused write changes neither."""
    orders = session.scalar(
        select(func.count()).select_from(SupervisionOrder).where(SupervisionOrder.city == city)
    )
    given = session.scalar(
        select(func.coalesce(func.sum(OrderCounter.last), 0)).where(OrderCounter.city == city)
    )
    return int(orders or 0), int(given or 0)


def later(days: float) -> datetime:
    """Now plus ``days``."""
    return now() + timedelta(days=days)
