"""``/api/orders``: supervision orders (督办单) — issue, the lifecycle, scoped reads, the
escalation rules and the sweep — and ``/api/cases/{case_id}/orders``, the orders of a case.

Issuing, accepting and sending back need ``orders.issue`` (leaders, admin); acknowledging and
answering ``orders.answer`` and being the responsible unit; editing the rules and running the
sweep ``orders.rules`` (admin). Holders of either order permission read the orders in their
scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import CaseServiceDep, OrdersDep, RulesDep, SessionDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath
from service.http.timeparse import aware
from service.supervision.escalation import escalate
from service.supervision.orders import OrderInput, order_json
from service.supervision.rules import RulePatch, rule_json

router = APIRouter(prefix="/api/orders", tags=["supervision"], route_class=GuardedRoute)
case_router = APIRouter(prefix="/api/cases", tags=["supervision"], route_class=GuardedRoute)

READERS = ("orders.issue", "orders.answer")
Reader = Annotated[Principal, Allow(*READERS)]


class OrderIn(BaseModel):
    """A new order: the cases (or a grid, hotspot or department problem), who answers for it,
    what must be done and by when."""

    case_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=200
    )
    subject_kind: Literal["cases", "grid", "hotspot", "department"] = "cases"
    subject_key: str | None = Field(None, max_length=200)
    unit_kind: Literal["department", "grid"]
    unit: str = Field(min_length=1, max_length=200, description="Department name or grid code")
    person_name: str | None = Field(None, max_length=100)
    person_phone: str | None = Field(None, max_length=40)
    demand: str = Field(min_length=1, max_length=4000)
    deadline: datetime = Field(description="No offset = local time; must be in the future")


class OrderActionIn(BaseModel):
    """A step of the lifecycle; ``note`` is the answer, or the reason of a dismissal or a
    sending back; ``deadline`` may renew a proposal's when it is issued."""

    action: Literal["issue", "dismiss", "acknowledge", "answer", "accept", "send_back"]
    note: str | None = Field(None, max_length=4000)
    deadline: datetime | None = None


class RuleIn(BaseModel):
    """A change of an escalation rule (the fields sent replace the stored ones)."""

    name_zh: str | None = Field(None, max_length=200)
    params: dict[str, int] | None = None
    mode: Literal["propose", "issue"] | None = None
    enabled: bool | None = None
    deadline_days: int | None = None
    demand: str | None = Field(None, max_length=2000)


@router.get("/rules", summary="The escalation rules in force")
def rules(
    book: RulesDep, principal: Annotated[Principal, Allow("orders.rules", *READERS)]
) -> dict[str, Any]:
    return {"rules": [rule_json(r) for r in book.rules()]}


@router.put("/rules/{key}", summary="Edit an escalation rule for this city")
def edit_rule(
    key: Annotated[str, Path(max_length=40)],
    body: RuleIn,
    book: RulesDep,
    principal: Annotated[Principal, Allow("orders.rules")],
) -> dict[str, Any]:
    return rule_json(book.update(key, RulePatch(**body.model_dump()), principal))


class SweepIn(BaseModel):
    """When the sweep runs as of (default: now; no offset = local time)."""

    model_config = ConfigDict(extra="forbid")  # anything else sent is a mistake: say so

    at: datetime | None = None


@router.post("/escalate", summary="Run the escalation sweep now (or as of `at`)")
def sweep(
    body: SweepIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("orders.rules")],
) -> dict[str, Any]:
    return escalate(session, settings, aware(body.at, settings.grids.timezone)).as_dict()


@router.get("", summary="Orders in your scope, newest first")
def list_orders(
    svc: OrdersDep,
    by: Reader,
    status: Annotated[str | None, Query(max_length=200, description="Comma-separated")] = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    unit: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    statuses = tuple(s.strip() for s in status.split(",") if s.strip()) if status else ()
    rows = svc.orders(by, statuses, case_id, unit, limit, offset)
    return {"items": [order_json(o, by) for o in rows]}


@router.post("", status_code=201, summary="Issue a supervision order (督办单)")
def issue(
    body: OrderIn,
    svc: OrdersDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("orders.issue")],
) -> dict[str, Any]:
    item = OrderInput(
        **body.model_dump(exclude={"deadline"}),
        deadline_at=aware(body.deadline, settings.grids.timezone),
    )
    order = svc.issue(item, by)
    return order_json(order, by, svc.history(order))


@router.get("/{order_id}", summary="One order with its history (404 outside your scope)")
def get_order(order_id: IdPath, svc: OrdersDep, by: Reader) -> dict[str, Any]:
    order = svc.get(order_id, by)
    return order_json(order, by, svc.history(order))


@router.post("/{order_id}/actions", summary="Move an order along its lifecycle")
def act(
    order_id: IdPath,
    body: OrderActionIn,
    svc: OrdersDep,
    settings: SettingsDep,
    by: Reader,
) -> dict[str, Any]:
    deadline = aware(body.deadline, settings.grids.timezone)
    order = svc.act(order_id, body.action, by, body.note, deadline)
    return order_json(order, by, svc.history(order))


@case_router.get("/{case_id}/orders", summary="The supervision orders of a case")
def case_orders(
    case_id: IdPath,
    cases: CaseServiceDep,
    svc: OrdersDep,
    by: Annotated[Principal, Allow("cases.read")],
) -> dict[str, Any]:
    cases.get(case_id, by)  # 404 for a case out of scope
    return {"items": [order_json(o, by) for o in svc.for_case(case_id)]}
