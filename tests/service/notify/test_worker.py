"""The deliverer as it runs for real: the server's background thread and ``citygrid deliver
--once``, each sweeping for overdue cases and sending what is due, on committed data."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.cases.cases import Action, CaseInput, CaseService
from service.cases.catalogue import seed_catalogue
from service.cases.overdue import sweep_overdue
from service.cli import app
from service.clock import now
from service.notify.deliverer import DeliveryWorker
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from service.settings import AppSettings
from tests.helpers.city import commit_small_city, point_lonlat
from tests.helpers.webhooks import Receiver, quick, receiver

pytestmark = pytest.mark.concurrency


def _late_case_and_subscription(engine: Engine, settings: AppSettings, url: str) -> int:
    """Commit the small city, a case 30 days past its report, and a subscription to overdue
    cases; returns the case id."""
    with Session(engine) as session:
        commit_small_city(session, settings)
        seed_catalogue(session, settings.grids.city)
        cases = CaseService(session, settings)
        lon, lat = point_lonlat(50, 50)
        case, _ = cases.intake(
            CaseInput("0102", lon, lat, reported_at=now() - timedelta(days=30)), SYSTEM
        )
        cases.act(case.id, Action("register"), SYSTEM)
        Subscriptions(session, settings).create(
            SubscriptionInput(name="超期提醒", url=url, events=["case.overdue"], scope="city"),
            SYSTEM,
        )
        session.commit()
        return case.id


def _wait_for(hook: Receiver, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(hook.requests) < count:
        assert time.monotonic() < deadline, "nothing was delivered"
        time.sleep(0.02)


def test_the_background_worker_sweeps_and_delivers(engine: Engine, settings_for) -> None:
    settings = quick(settings_for("990172"), poll_interval_s=0.02, sweep_interval_s=0.05)
    with receiver() as hook:
        case_id = _late_case_and_subscription(engine, settings, hook.url)
        worker = DeliveryWorker(sessionmaker(bind=engine), settings, sweeps=[sweep_overdue]).start()
        try:
            _wait_for(hook, 1)
        finally:
            worker.stop()
        assert not worker.thread.is_alive()
    [got] = hook.requests  # swept many times, announced once
    body = json.loads(got.body)
    assert body["kind"] == "case.overdue" and body["data"]["case_id"] == case_id


def test_citygrid_deliver_once_sweeps_sends_and_exits(
    engine: Engine, settings_for, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = "990173"
    with receiver() as hook:
        case_id = _late_case_and_subscription(engine, quick(settings_for(city)), hook.url)
        for name, value in {
            "CITYGRID_DATABASE_URL": database_url,
            "CITYGRID_CITY": city,
            "CITYGRID_NOTIFY_ALLOW_HOSTS": "127.0.0.1",
        }.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, ["deliver", "--once"])
        assert result.exit_code == 0, result.output
        assert "1 case(s) newly overdue announced, 1 delivery attempt(s)" in result.output
        again = CliRunner().invoke(app, ["deliver", "--once"])
        assert "0 case(s) newly overdue announced, 0 delivery attempt(s)" in again.output
    [got] = hook.requests
    assert json.loads(got.body)["data"]["case_id"] == case_id
