"""``/api/notify``: webhook subscriptions, the delivery log, and a test ping.

``notify.manage`` (admin) manages every subscription; ``notify.subscribe`` (leader,
dispatcher, department staff) subscribes within the caller's own scope and sees only the
subscriptions and deliveries of that scope. A subscription's secret is shown once, when it is
made (or rotated).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import SubscriptionsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath
from service.notify.kinds import EVENT_KINDS
from service.notify.subscriptions import SubscriptionInput, delivery_out, subscription_out

router = APIRouter(prefix="/api/notify", tags=["notify"], route_class=GuardedRoute)
Subscriber = Annotated[Principal, Allow("notify.manage", "notify.subscribe")]


class SubscriptionIn(BaseModel):
    """A new subscription. ``scope`` defaults to the caller's own (``user``)."""

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)
    scope: Literal["city", "department", "grid", "user"] | None = None
    department: str | None = Field(None, max_length=200)
    grid: str | None = Field(None, max_length=15)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    transport: str = Field("webhook", max_length=20)
    active: bool = True


class SubscriptionPatch(BaseModel):
    """What may change: the name, the URL, the event kinds, paused or active."""

    name: str | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, max_length=20)
    active: bool | None = None


@router.get("/kinds", summary="The event kinds one may subscribe to")
def kinds(by: Subscriber) -> list[dict[str, str]]:
    return [{"kind": k, "name_zh": zh, "name_en": en} for k, (zh, en) in EVENT_KINDS.items()]


@router.get("/subscriptions", summary="Subscriptions in the caller's scope (never secrets)")
def list_subscriptions(svc: SubscriptionsDep, by: Subscriber) -> list[dict[str, Any]]:
    return [subscription_out(s, by) for s in svc.all(by)]


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe a webhook (its signing secret is shown once)",
)
def create_subscription(
    body: SubscriptionIn, svc: SubscriptionsDep, by: Subscriber
) -> dict[str, Any]:
    sub, secret = svc.create(SubscriptionInput(**body.model_dump()), by)
    return subscription_out(sub, by, secret)


@router.get("/subscriptions/{subscription_id}", summary="One subscription")
def get_subscription(
    subscription_id: IdPath, svc: SubscriptionsDep, by: Subscriber
) -> dict[str, Any]:
    return subscription_out(svc.get(subscription_id, by), by)


@router.patch("/subscriptions/{subscription_id}", summary="Change or pause a subscription")
def patch_subscription(
    subscription_id: IdPath, body: SubscriptionPatch, svc: SubscriptionsDep, by: Subscriber
) -> dict[str, Any]:
    item = SubscriptionInput(**body.model_dump(exclude_unset=True))
    return subscription_out(svc.update(subscription_id, item, by), by)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe")
def delete_subscription(subscription_id: IdPath, svc: SubscriptionsDep, by: Subscriber) -> Response:
    svc.delete(subscription_id, by)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/secret",
    summary="A new signing secret (shown once; the old one stops working)",
)
def rotate_secret(subscription_id: IdPath, svc: SubscriptionsDep, by: Subscriber) -> dict[str, Any]:
    sub, secret = svc.rotate(subscription_id, by)
    return subscription_out(sub, by, secret)


@router.post(
    "/subscriptions/{subscription_id}/test",
    summary="Send a signed ping now and say what the receiver answered",
)
def test_subscription(
    subscription_id: IdPath, svc: SubscriptionsDep, by: Subscriber
) -> dict[str, Any]:
    result = svc.ping(subscription_id, by)
    return {
        "ok": result.ok,
        "status_code": result.status_code,
        "error": result.error,
        "duration_ms": result.duration_ms,
    }


@router.get("/deliveries", summary="The delivery log of the caller's subscriptions")
def deliveries(
    svc: SubscriptionsDep,
    by: Subscriber,
    subscription: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Page on")] = None,
) -> dict[str, Any]:
    rows = svc.deliveries(by, subscription, state, limit, before)
    items = [delivery_out(d, e, a) for d, e, a in rows]
    return {"deliveries": items, "next_before": items[-1]["id"] if len(items) == limit else None}
