"""``/api/notify``: subscriptions kept to the caller's scope, the secret shown once, URLs
refused with a 422 naming ``url``, the test ping signed, and the delivery log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import NotifySubscription
from service.factory import create_app
from service.notify import publish
from service.notify.deliverer import Deliverer
from service.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from service.settings import AppSettings
from tests.helpers.accounts import admin_headers, headers_of
from tests.helpers.webhooks import receiver

BASE = "/api/notify/subscriptions"


@pytest.fixture
def api(
    local: AppSettings, sessions: sessionmaker[Session], session: Session
) -> Iterator[TestClient]:
    """The app on the test city with webhooks to 127.0.0.1 allowed, as the admin."""
    with TestClient(create_app(local, sessions=sessions)) as c:
        c.headers.update(admin_headers(session, local))
        yield c


def _body(url: str, **extra: object) -> dict[str, object]:
    return {"name": "环卫所值班群", "url": url, "events": ["case.dispatched"], **extra}


def _count(session: Session) -> int:
    return session.scalar(select(func.count(NotifySubscription.id))) or 0


def test_the_admin_manages_a_subscription_and_sees_its_secret_once(api: TestClient) -> None:
    with receiver() as hook:
        made = api.post(BASE, json=_body(hook.url, scope="department", department="环卫所"))
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["secret"].startswith("whsec_") and sub["scope"] == "department"
        listed = api.get(BASE).json()
        assert [s["id"] for s in listed] == [sub["id"]]
        assert "secret" not in listed[0] and "secret" not in api.get(f"{BASE}/{sub['id']}").json()

        ping = api.post(f"{BASE}/{sub['id']}/test")
        assert ping.status_code == 200 and ping.json()["ok"] is True, ping.text
        [got] = hook.requests
        assert verify(
            sub["secret"],
            got.headers[TIMESTAMP_HEADER],
            got.body,
            got.headers[SIGNATURE_HEADER],
            now=time.time(),
        )

        patched = api.patch(
            f"{BASE}/{sub['id']}", json={"events": ["case.overdue"], "active": False}
        )
        assert patched.status_code == 200 and patched.json()["events"] == ["case.overdue"]
        assert patched.json()["active"] is False
        rotated = api.post(f"{BASE}/{sub['id']}/secret").json()
        assert rotated["secret"] != sub["secret"]
    assert api.delete(f"{BASE}/{sub['id']}").status_code == 204
    assert api.get(f"{BASE}/{sub['id']}").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8000/hook",
        "http://localhost:8000/hook",
        "http://user:pw@8.8.8.8/hook",
        "not a url",
    ],
)
def test_a_forbidden_webhook_address_is_a_422_naming_url_and_stores_nothing(
    client: TestClient, session: Session, url: str
) -> None:
    # the plain app: no allow-list, so this machine and private networks are refused
    before = _count(session)
    r = client.post(BASE, json=_body(url, scope="city"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "url"
    assert _count(session) == before


def test_the_allow_list_lets_the_test_receiver_in(api: TestClient) -> None:
    r = api.post(BASE, json=_body("http://127.0.0.1:9/hook", scope="city"))
    assert r.status_code == 201, r.text
    # the allow-list names 127.0.0.1, not the other loopback addresses
    assert api.post(BASE, json=_body("http://127.0.0.2/hook", scope="city")).status_code == 422


def test_unknown_event_kinds_and_scopes_are_422_naming_the_field(api: TestClient) -> None:
    r = api.post(BASE, json={**_body("http://127.0.0.1:9/"), "events": ["case.exploded"]})
    assert r.status_code == 422 and r.json()["field"] == "events"
    r = api.post(BASE, json=_body("http://127.0.0.1:9/", scope="grid", grid="41x"))
    assert r.status_code == 422 and r.json()["field"] == "grid"
    r = api.post(BASE, json=_body("http://127.0.0.1:9/", transport="sms"))
    assert r.status_code == 422 and r.json()["field"] == "transport"


def test_department_staff_subscribe_for_their_own_department_only(
    api: TestClient, session: Session
) -> None:
    staff = headers_of(api, "department", department="环卫所")
    url = "http://127.0.0.1:9/hook"
    own = api.post(BASE, json=_body(url, scope="department"), headers=staff)
    assert own.status_code == 201, own.text
    assert own.json()["department"] == "环卫所"  # their department, unnamed
    # who made it is personal data: masked for a role without people.read
    assert own.json()["created_by"].startswith("测") and "user" not in own.json()["created_by"]
    before = _count(session)
    for scope in ({"scope": "department", "department": "城管执法中队"}, {"scope": "city"}):
        r = api.post(BASE, json=_body(url, **scope), headers=staff)
        assert r.status_code == 403 and r.json()["field"] == "scope", r.text
    assert _count(session) == before
    # the admin's city-wide subscription is not theirs to see
    theirs = api.post(BASE, json=_body(url, scope="city")).json()
    seen = [s["id"] for s in api.get(BASE, headers=staff).json()]
    assert seen == [own.json()["id"]]
    assert api.get(f"{BASE}/{theirs['id']}", headers=staff).status_code == 404
    assert api.delete(f"{BASE}/{theirs['id']}", headers=staff).status_code == 404
    # a grid worker holds neither notify permission
    worker = headers_of(api, "grid_worker")
    r = api.post(BASE, json=_body(url, scope="user"), headers=worker)
    assert r.status_code == 403 and "notify.subscribe" in r.text


def test_the_delivery_log_shows_attempts_of_the_callers_subscriptions(
    api: TestClient, local: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    staff = headers_of(api, "department", department="环卫所")
    with receiver(statuses=[500]) as hook:
        mine = api.post(BASE, json=_body(hook.url, scope="department"), headers=staff).json()
        other = api.post(BASE, json=_body(hook.url, scope="department", department="园林所"))
        assert other.status_code == 201
        publish(
            session, "case.dispatched", {"case_id": 1}, department="环卫所", city=local.grids.city
        )
        publish(
            session, "case.dispatched", {"case_id": 2}, department="园林所", city=local.grids.city
        )
        session.commit()
        deliverer = Deliverer(sessions, local)
        for _ in range(100):  # the first answer is a 500, the retry a 200
            deliverer.run_once()
            log = api.get("/api/notify/deliveries", params={"state": "delivered"}).json()
            if len(log["deliveries"]) == 2:
                break
            time.sleep(0.005)
    seen = api.get("/api/notify/deliveries", headers=staff).json()["deliveries"]
    assert [d["subscription_id"] for d in seen] == [mine["id"]]
    [delivery] = seen
    assert delivery["event"]["kind"] == "case.dispatched"
    assert [(a["attempt"], a["status_code"]) for a in delivery["log"]] in (
        [(1, 500), (2, 200)],
        [(1, 200)],  # the other delivery took the 500
    )
    everything = api.get("/api/notify/deliveries").json()["deliveries"]
    assert len(everything) == 2
    assert api.get("/api/notify/deliveries", params={"state": "lost"}).status_code == 422
