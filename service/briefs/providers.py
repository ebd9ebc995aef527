"""What the campaigns and the supervision orders give the daily set: the brief's 专项行动进展
(each running campaign's targets against its back-planned schedule) and the circular's 督办事项
(the open supervision orders of the scope). Installed once by :class:`DocumentStore`."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from service.assessment.periods import Period
from service.briefs import sections
from service.briefs.figures import today
from service.campaigns.campaigns import CampaignService
from service.settings import AppSettings
from service.supervision.orders import OrderService


def _day(settings: AppSettings, period: Period) -> date:
    # a week or month brief made before its period ends reports as of today
    return min(period.last_day, today(settings))


def _number(v: Any) -> str:
    if isinstance(v, float) and 0 <= v <= 1:
        return f"{v * 100:.1f}%"
    return "—" if v is None else str(v)


def campaign_rows(
    session: Session, settings: AppSettings, scope_prefix: str, period: Period
) -> list[dict[str, Any]] | None:
    """One row per target of each campaign running at the end of ``period`` in the scope
    with subtree prefix ``scope_prefix``."""
    service = CampaignService(session, settings)
    out = []
    for c in service.progress_for_scope(scope_prefix, _day(settings, period)):
        for t in c["targets"]:
            out.append(
                {
                    "专项行动": c["name"],
                    "目标": t["label"],
                    "当前": _number(t["value"]),
                    "目标值": _number(t["goal"]),
                    "计划进度": _number(t["expected"]),
                    "进度": "按计划" if t["on_track"] else "滞后",
                }
            )
    return out or None


def order_rows(
    session: Session, settings: AppSettings, scope_prefix: str, period: Period
) -> list[dict[str, Any]] | None:
    """The supervision orders open at the end of ``period`` in the scope with subtree prefix
    ``scope_prefix``, most overdue first
    (no telephone numbers: the circular goes round the offices)."""
    zone = ZoneInfo(settings.grids.timezone)
    orders = OrderService(session, settings).for_circular(
        scope_prefix, None, _day(settings, period)
    )
    return [
        {
            "督办单号": o["number"] or "（待签发）",
            "责任单位": o["unit_name"] or o["unit"],
            "责任人": o["person"] or "",
            "督办要求": o["demand"],
            "办理期限": f"{o['deadline'].astimezone(zone):%Y-%m-%d %H:%M}",
            "状态": o["status_zh"] + ("（已超期）" if o["overdue"] else ""),
            "涉及案件": "、".join(str(i) for i in o["case_ids"]),
        }
        for o in orders
    ] or None


def install() -> None:
    """Register both providers where no other provider is registered (idempotent)."""
    for name, provider in (("campaigns", campaign_rows), ("supervision", order_rows)):
        if not sections.registered(name):
            sections.register(name, provider)
