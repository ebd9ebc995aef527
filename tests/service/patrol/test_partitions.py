"""Day partitions of gps_fixes: made ahead, fixes routed to their day, old days dropped whole
while tracks and coverage stay, and one device's day read from one partition."""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.db.engine import driver_cursor
from service.grids.registry import Registry
from service.patrol.fixes import FixIngester, stored_fixes_query
from service.patrol.partitions import (
    PARENT,
    SCHEMA,
    day_bounds,
    drop_expired_partitions,
    ensure_partitions,
    list_partitions,
    retention_horizon,
)
from service.patrol.workers import PatrolService, WorkerInput
from service.settings import AppSettings, PatrolSettings
from tests.helpers.city import small_city
from tests.helpers.patrol import CST, walk

TZ = "Asia/Shanghai"
CITY = "990100"  # the tests' empty city (conftest TEST_CITY)
PATH = [(2, 50), (398, 50)]  # along the middle of community A's south row


def _with_retention(settings: AppSettings, days: int) -> AppSettings:
    return dataclasses.replace(
        settings, patrol=PatrolSettings(_env_file=None, fix_retention_days=days)
    )


@pytest.fixture
def phone(session: Session, settings: AppSettings) -> str:
    """The small city and a worker with phone-1 (rolled back after the test)."""
    Registry(session, settings).write(small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM)
    PatrolService(session, settings).save_worker(
        WorkerInput(code="W001", name="王伟", devices=["phone-1"]), SYSTEM
    )
    session.flush()
    return "phone-1"


def _ingest(session: Session, settings: AppSettings, fixes: list[dict], mode: str = "all"):
    frame = pd.DataFrame(fixes).assign(device_id="phone-1")
    return FixIngester(session, settings).run(frame, SYSTEM, mode=mode)


def _rows_per_partition(session: Session) -> dict[str, int]:
    """This city's fixes per partition (other tests commit fixes of other cities)."""
    rows = session.execute(
        text(
            "SELECT tableoid::regclass::text, count(*) FROM gps_fixes WHERE city = :city GROUP BY 1"
        ),
        {"city": CITY},
    ).all()
    return {_unsharded(name.removeprefix(f"{SCHEMA}.")): n for name, n in rows}


def _unsharded(name: str) -> str:
    """A partition's name without the shard id Citus appends on its workers (this module also
    runs on a Citus coordinator, tests/service/db/test_citus.py); a day's own 8 digits stay."""
    return re.sub(r"_\d{1,7}$", "", name)


def _names(days: list[date]) -> list[str]:
    return [f"{PARENT}_{d:%Y%m%d}" for d in days]


def _of_year(names: list[str], year: int) -> list[str]:
    """The names of ``year``'s days (an upkeep also gives days waiting in the default
    partition, committed there by other tests, partitions of their own)."""
    return [n for n in names if n.startswith(f"{PARENT}_{year}")]


def test_partitions_are_made_ahead_on_local_days_and_only_once(session: Session) -> None:
    at = datetime(2031, 3, 10, 10, 0, tzinfo=CST)
    first = ensure_partitions(session, 3, TZ, at)
    days = [date(2031, 3, 10) + timedelta(days=k) for k in range(4)]
    assert _of_year(first.created, 2031) == _names(days) and first.skipped is None
    parts = {p.name: p for p in list_partitions(session)}
    for day in days:  # each covers its local day: 16:00 UTC to 16:00 UTC in Shanghai
        part = parts[_names([day])[0]]
        assert (part.lo, part.hi) == day_bounds(day, TZ)
        assert part.lo.astimezone(ZoneInfo(TZ)).hour == 0
    again = ensure_partitions(session, 3, TZ, at)
    assert again.created == [] and again.moved == 0
    assert _of_year(ensure_partitions(session, 5, TZ, at).created, 2031) == _names(
        [date(2031, 3, 14), date(2031, 3, 15)]
    )


def test_concurrent_upkeep_makes_each_partition_once(engine: Engine) -> None:
    """Two processes ensuring the same days at once: both succeed, each day is made once."""
    at = datetime(2032, 5, 1, 12, 0, tzinfo=CST)
    results: dict[str, object] = {}

    def run(name: str) -> None:
        with Session(engine) as session:
            try:
                results[name] = ensure_partitions(session, 4, TZ, at)
                session.commit()
            except Exception as exc:  # noqa: BLE001 - the test reports whatever happened
                results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        a, b = results["a"], results["b"]
        assert not isinstance(a, Exception) and not isinstance(b, Exception), (a, b)
        made = _of_year(sorted(a.created + b.created), 2032)  # type: ignore[union-attr]
        assert made == _names([date(2032, 5, 1) + timedelta(days=k) for k in range(5)])
    finally:
        with Session(engine) as session:
            for part in list_partitions(session):
                if part.lo.year == 2032:
                    session.execute(text(f'DROP TABLE {SCHEMA}."{part.name}"'))
            session.commit()


def test_intake_across_midnight_lands_in_each_days_partition(
    session: Session, settings: AppSettings, phone: str
) -> None:
    ensure_partitions(session, 1, TZ, datetime(2026, 11, 17, 12, 0, tzinfo=CST))
    fixes = walk(PATH, start=datetime(2026, 11, 17, 23, 59, 0, tzinfo=CST))
    report = _ingest(session, settings, fixes)
    assert report.stored == len(fixes) and report.tracks == 1
    before = sum(1 for f in fixes if f["time"] < "2026-11-18T00:00:00+08:00")
    assert 0 < before < len(fixes)
    assert _rows_per_partition(session) == {
        "gps_fixes_20261117": before,
        "gps_fixes_20261118": len(fixes) - before,
    }


def test_a_fix_of_a_day_without_partition_is_kept_and_moved_to_its_day(
    session: Session, settings: AppSettings, phone: str
) -> None:
    """A day no partition covers (an old upload) goes to the default partition; the next
    upkeep makes the day's partition and moves the fixes there."""
    start = datetime(2026, 10, 3, 9, 0, tzinfo=CST)
    assert not [p for p in list_partitions(session) if p.lo <= start < p.hi]
    fixes = walk(PATH, start=start)
    assert _ingest(session, settings, fixes).stored == len(fixes)
    assert _rows_per_partition(session) == {"gps_fixes_default": len(fixes)}
    report = ensure_partitions(session, 0, TZ, datetime(2026, 11, 30, 9, 0, tzinfo=CST))
    assert "gps_fixes_20261003" in report.created and report.moved >= len(fixes)
    assert _rows_per_partition(session) == {"gps_fixes_20261003": len(fixes)}
    # a late fix of the same day now goes straight to it, and rebuilds the same track
    late = walk([(398, 50), (398, 60)], start + timedelta(seconds=10 * len(fixes)), spacing_m=3)
    late = late[1:]
    assert _ingest(session, settings, late).stored == len(late)
    assert _rows_per_partition(session) == {"gps_fixes_20261003": len(fixes) + len(late)}


def test_retention_drops_exactly_the_days_older_than_the_setting(
    session: Session, settings: AppSettings
) -> None:
    at = datetime(2026, 11, 30, 10, 0, tzinfo=CST)
    ensure_partitions(session, 15, TZ, at - timedelta(days=40))  # days -40 … -25
    ensure_partitions(session, 7, TZ, at)  # today and ahead
    session.execute(
        text(
            "INSERT INTO gps_fixes (city, device_key, at, lon, lat) VALUES "
            "('990100', 1, :old, 113.6, 34.7), ('990100', 1, :recent, 113.6, 34.7)"
        ),
        {"old": at - timedelta(days=100), "recent": at - timedelta(days=10)},
    )
    before = list_partitions(session)
    kept_settings = _with_retention(settings, 30)
    horizon = retention_horizon(kept_settings, at)
    assert horizon == day_bounds(date(2026, 10, 31), TZ)[0]
    report = drop_expired_partitions(session, kept_settings, at)
    expected = _names([date(2026, 10, 21) + timedelta(days=k) for k in range(10)])
    assert sorted(report.dropped) == expected  # -40 … -31; day -30 is still kept
    assert [p.name for p in before if p.hi <= horizon] == expected
    after = {p.name for p in list_partitions(session)}
    assert after == {p.name for p in before} - set(expected)
    assert set(_names([date(2026, 10, 31), date(2026, 11, 30), date(2026, 12, 7)])) <= after
    # the default partition keeps the recent fix and loses the expired one
    assert report.expired_default_rows >= 1
    assert _rows_per_partition(session) == {"gps_fixes_default": 1}
    assert drop_expired_partitions(session, _with_retention(settings, 0), at).dropped == []
    assert drop_expired_partitions(session, kept_settings, at).dropped == []


def test_tracks_and_coverage_outlive_the_dropped_day(
    client, session: Session, settings: AppSettings
) -> None:
    """Dropping 17 November's fixes keeps its tracks, its stored coverage run and what the
    coverage API answers for that day; a late fix of the dropped day is refused."""
    ensure_partitions(session, 0, TZ, datetime(2026, 11, 17, 9, 0, tzinfo=CST))
    Registry(session, settings).write(small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM)
    r = client.put(
        "/api/patrol/workers/W001", json={"code": "W001", "name": "王伟", "devices": ["phone-1"]}
    )
    assert r.status_code == 201, r.text
    fixes = walk(PATH)
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    assert r.status_code == 200 and r.json()["stored"] == len(fixes)
    tracks = session.execute(
        text("SELECT id, ST_AsEWKB(geom) FROM patrol_tracks WHERE city = '990100' ORDER BY id")
    ).all()
    query = {"period": "day", "start": "2026-11-17"}
    coverage = client.get("/api/coverage/grids", params=query).json()["grids"]
    from service.patrol.coverage import CoverageService

    stored_run = CoverageService(session, settings).run("day", datetime(2026, 11, 17))
    assert _rows_per_partition(session) == {"gps_fixes_20261117": len(fixes)}

    short = _with_retention(settings, 5)  # 17 November is older than five days
    report = drop_expired_partitions(session, short)
    assert "gps_fixes_20261117" in report.dropped
    assert _rows_per_partition(session) == {}
    assert (
        session.execute(
            text("SELECT id, ST_AsEWKB(geom) FROM patrol_tracks WHERE city = '990100' ORDER BY id")
        ).all()
        == tracks
    )
    assert client.get("/api/coverage/grids", params=query).json()["grids"] == coverage
    assert session.execute(
        text("SELECT count(*) FROM grid_coverage WHERE run_id = :id"), {"id": stored_run.id}
    ).scalar_one() == len(coverage)

    late = _ingest(session, short, walk(PATH)[:3], mode="rows")
    assert late.stored == 0 and late.error_count == 3
    assert {e["field"] for e in late.errors} == {"time"}
    assert "CITYGRID_PATROL_FIX_RETENTION_DAYS" in late.errors[0]["reason"]
    assert (
        session.execute(
            text("SELECT id, ST_AsEWKB(geom) FROM patrol_tracks WHERE city = '990100' ORDER BY id")
        ).all()
        == tracks
    )


def test_a_rebuild_never_reaches_back_past_the_retention_horizon(
    session: Session, settings: AppSettings, phone: str
) -> None:
    """A track that began before the horizon (its first fixes dropped) is not replaced when a
    fix arrives right after it: the rebuild would only have what is left of its fixes."""
    short = _with_retention(settings, 5)
    horizon = retention_horizon(short)
    assert horizon is not None
    start = horizon - timedelta(minutes=10)
    # 10.5 minutes, 6 m a step: 60 fixes before the horizon, 4 after
    fixes = walk(PATH, start=start, spacing_m=6.0)[:64]
    _ingest(session, _with_retention(settings, 0), fixes)
    track = session.execute(
        text("SELECT id, started_at, n_fixes FROM patrol_tracks WHERE city = '990100' ORDER BY id")
    ).one()
    assert track.started_at < horizon and track.n_fixes == len(fixes)
    drop_expired_partitions(session, short)
    assert _rows_per_partition(session) == {"gps_fixes_default": 4}  # those after the horizon
    late = walk([(398, 50), (398, 60)], start + timedelta(seconds=640), spacing_m=3)[1:]
    report = _ingest(session, short, late)
    assert report.stored == len(late)
    kept = session.execute(
        text("SELECT id, n_fixes FROM patrol_tracks WHERE id = :id"), {"id": track.id}
    )
    assert tuple(kept.one()) == (track.id, track.n_fixes)


def test_one_devices_day_reads_one_partition(session: Session) -> None:
    """The intake's read of stored fixes for one device's day is pruned by the planner to that
    day's partition (not its neighbours, not the default partition)."""
    ensure_partitions(session, 2, TZ, datetime(2026, 11, 16, 9, 0, tzinfo=CST))
    lo = datetime(2026, 11, 17, 8, 0, tzinfo=CST)
    windows = pd.DataFrame(
        {"device_key": [1], "lo": [_us(lo)], "hi": [_us(lo + timedelta(hours=10))]}
    )
    sql, params = stored_fixes_query("990100", windows)
    with driver_cursor(session) as cur:
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    scanned = re.findall(rf" on ({PARENT}\w*)", plan)  # "Index Scan using … on <table>"
    assert {_unsharded(name) for name in scanned} == {"gps_fixes_20261117"}, plan
    if "Citus" in plan:  # and on Citus, one task: one shard of that partition
        assert "Task Count: 1" in plan, plan


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def test_the_background_sweeps_keep_the_partitions(session: Session, settings: AppSettings) -> None:
    """The server's background worker (and ``citygrid deliver``) run the upkeep; a round makes
    the days ahead of its time and drops nothing within the retention."""
    from service.factory import background_sweeps
    from service.patrol.partitions import maintain_partitions

    assert maintain_partitions in background_sweeps(settings)
    at = datetime(2026, 12, 20, 9, 0, tzinfo=CST)
    report = maintain_partitions(session, settings, at)
    assert set(_names([date(2026, 12, 20) + timedelta(days=k) for k in range(8)])) <= set(
        report.created
    )
    assert report.dropped == [] and report.skipped is None


def test_a_local_day_across_a_clock_change_is_one_partition_of_23_hours() -> None:
    lo, hi = day_bounds(date(2026, 3, 29), "Europe/Berlin")  # clocks go forward at 02:00
    assert hi - lo == timedelta(hours=23)
    assert lo == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_after_a_time_zone_change_the_upkeep_fills_gaps_without_overlap(
    session: Session,
) -> None:
    """Partitions made under Asia/Shanghai, then upkeep under UTC: only the uncovered hours of
    each UTC day get a partition (named by their local start), nothing overlaps."""
    ensure_partitions(session, 1, TZ, datetime(2031, 6, 10, 9, 0, tzinfo=CST))
    report = ensure_partitions(session, 0, "UTC", datetime(2031, 6, 11, 9, 0, tzinfo=UTC))
    assert _of_year(report.created, 2031) == ["gps_fixes_20310611_1600"]
    parts = sorted((p for p in list_partitions(session) if p.lo.year == 2031), key=lambda p: p.lo)
    assert [(p.lo, p.hi) for p in parts] == [
        (datetime(2031, 6, 9, 16, tzinfo=UTC), datetime(2031, 6, 10, 16, tzinfo=UTC)),
        (datetime(2031, 6, 10, 16, tzinfo=UTC), datetime(2031, 6, 11, 16, tzinfo=UTC)),
        (datetime(2031, 6, 11, 16, tzinfo=UTC), datetime(2031, 6, 12, 0, tzinfo=UTC)),
    ]


def test_the_server_makes_the_days_ahead_at_start(sessions, settings: AppSettings) -> None:
    from service.factory import _ensure_partitions

    ahead = dataclasses.replace(
        settings, patrol=PatrolSettings(_env_file=None, partitions_ahead_days=20)
    )
    last = datetime.now(UTC).astimezone(ZoneInfo(TZ)).date() + timedelta(days=20)
    _ensure_partitions(sessions, ahead)
    with sessions() as session:
        assert _names([last])[0] in {p.name for p in list_partitions(session)}
