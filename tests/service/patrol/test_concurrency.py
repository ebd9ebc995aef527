"""Two uploads of the same phone's fixes at once: both succeed, nothing is stored twice."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.db.models import GpsFix, PatrolTrack
from service.patrol.fixes import FixIngester
from service.patrol.workers import PatrolService, WorkerInput
from tests.helpers.city import commit_small_city
from tests.helpers.patrol import walk

pytestmark = pytest.mark.concurrency

CITY = "990310"  # committed for real (two connections); the test database is dropped after


@pytest.fixture(scope="module")
def phone(engine: Engine, settings_for) -> str:
    settings = settings_for(CITY)
    with Session(engine) as session:
        commit_small_city(session, settings)
        PatrolService(session, settings).save_worker(
            WorkerInput(code="W1", name="王伟", devices=["phone-c"]), SYSTEM
        )
        session.commit()
    return "phone-c"


def test_concurrent_batches_of_one_phone_store_each_fix_once(
    engine: Engine, settings_for, phone: str
) -> None:
    settings = settings_for(CITY)
    fixes = pd.DataFrame(walk([(2, 50), (398, 50)])).assign(device_id=phone)
    first_stored = threading.Event()
    results: dict[str, object] = {}

    def upload(name: str, hold: bool) -> None:
        with Session(engine) as session:
            try:
                report = FixIngester(session, settings).run(fixes, SYSTEM, mode="all")
                if hold:  # keep the transaction open while the other upload starts
                    first_stored.set()
                    threading.Event().wait(0.5)
                session.commit()
                results[name] = report
            except Exception as exc:  # noqa: BLE001 - the test reports whatever happened
                session.rollback()
                results[name] = exc

    a = threading.Thread(target=upload, args=("a", True))
    a.start()
    assert first_stored.wait(20)
    b = threading.Thread(target=upload, args=("b", False))
    b.start()
    a.join(30)
    b.join(30)
    ra, rb = results["a"], results["b"]
    assert not isinstance(ra, Exception) and not isinstance(rb, Exception), (ra, rb)
    assert ra.stored == len(fixes) and rb.stored == 0 and rb.replayed == len(fixes)
    with Session(engine) as session:
        n_fixes = session.scalar(select(func.count()).where(GpsFix.city == CITY))
        n_tracks = session.scalar(select(func.count()).where(PatrolTrack.city == CITY))
    assert (n_fixes, n_tracks) == (len(fixes), 1)
