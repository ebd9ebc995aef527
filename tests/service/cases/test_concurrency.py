"""Two dispatchers act on the same case at once: one wins, the other gets a 409."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.cases.cases import Action, CaseInput, CaseService
from service.cases.catalogue import seed_catalogue
from service.db.models import CaseEvent
from service.errors import Conflict
from tests.helpers.city import commit_small_city, point_lonlat

pytestmark = pytest.mark.concurrency

CITY = "990300"  # committed for real (two connections); the test database is dropped after


@pytest.fixture(scope="module")
def committed_case(engine: Engine, settings_for) -> int:
    settings = settings_for(CITY)
    with Session(engine) as session:
        commit_small_city(session, settings)
        seed_catalogue(session, CITY)
        lon, lat = point_lonlat(50, 50)
        case, _ = CaseService(session, settings).intake(CaseInput("0102", lon, lat), SYSTEM)
        CaseService(session, settings).act(case.id, Action("register", "setup"), SYSTEM)
        session.commit()
        return case.id


def test_concurrent_dispatch_one_wins_other_gets_409(
    engine: Engine, settings_for, committed_case: int
) -> None:
    settings = settings_for(CITY)
    first_locked = threading.Event()
    results: dict[str, object] = {}

    def dispatcher(name: str, hold: bool) -> None:
        with Session(engine) as session:
            service = CaseService(session, settings)
            try:
                service.act(committed_case, Action("dispatch", name, expected_version=2), SYSTEM)
                if hold:  # keep the row lock while the other dispatcher tries
                    first_locked.set()
                    threading.Event().wait(0.5)
                session.commit()
                results[name] = "ok"
            except Conflict as exc:
                session.rollback()
                results[name] = exc

    a = threading.Thread(target=dispatcher, args=("甲", True))
    a.start()
    assert first_locked.wait(10)
    b = threading.Thread(target=dispatcher, args=("乙", False))
    b.start()
    a.join(20)
    b.join(20)
    assert results["甲"] == "ok"
    assert isinstance(results["乙"], Conflict)
    assert results["乙"].extra["current_version"] == 3
    with Session(engine) as session:
        service = CaseService(session, settings)
        case = service.get(committed_case, SYSTEM)
        assert (case.status, case.lock_version) == ("dispatched", 3)
        actors = [e.actor for e in session.query(CaseEvent).filter_by(case_id=committed_case)]
        assert actors == ["setup", "甲"]  # nothing from the loser, nothing lost
