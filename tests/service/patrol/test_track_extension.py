"""Tracks built upload by upload equal one full rebuild from all the fixes.

Phones walk a day through the small city with everything the cleaning rules deal with —
standing still, spikes of one to three wild fixes, a jump to somewhere else, poor accuracy,
silences longer than the track gap, a lone fix between two silences — and upload it in many
batches: mostly in order (their last track is extended without re-reading it), some late or
out of order and some resent (the full rebuild path). Whatever the order, the stored tracks
must be those of one rebuild of every stored fix (``TrackWriter.rebuild`` over the whole day).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy.orm import Session

from gis.patrol import CleaningRules
from service.accounts.principal import SYSTEM
from service.db.engine import driver_cursor
from service.grids.registry import Registry
from service.patrol import tracks as tracks_module
from service.patrol.fixes import FixIngester
from service.patrol.tracks import TrackWriter
from service.patrol.workers import PatrolService, WorkerInput
from service.settings import AppSettings
from tests.helpers.city import point_lonlat, small_city
from tests.helpers.patrol import DAY

PHONES = 4


@pytest.fixture
def phones(session: Session, settings: AppSettings) -> list[str]:
    """The small city and four workers with a phone each (rolled back after the test)."""
    Registry(session, settings).write(small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM)
    names = [f"phone-{k}" for k in range(PHONES)]
    patrol = PatrolService(session, settings)
    for k, name in enumerate(names):
        patrol.save_worker(WorkerInput(code=f"W{k:03d}", name=f"w{k}", devices=[name]), SYSTEM)
    session.flush()
    return names


def _day(rng: np.random.Generator, phone: str) -> pd.DataFrame:
    """A phone's day: about three hours of fixes every 10 s in the 800 x 200 m city."""
    t, x, y, acc = [], [], [], []
    now, px, py = 0.0, rng.uniform(100, 700), rng.uniform(40, 160)
    heading = rng.uniform(0, 2 * np.pi)

    def fix(xx: float, yy: float, accuracy: float = 8.0) -> None:
        t.append(now)
        x.append(xx)
        y.append(yy)
        acc.append(accuracy)

    for _ in range(40):
        kind = rng.choice(
            ["walk", "still", "spike", "jump", "silence", "lone", "poor"],
            p=[0.45, 0.15, 0.15, 0.05, 0.08, 0.04, 0.08],
        )
        if kind == "walk":
            for _ in range(int(rng.integers(10, 60))):
                heading += rng.normal(0, 0.3)
                px = float(np.clip(px + 12 * np.cos(heading), 10, 790))
                py = float(np.clip(py + 12 * np.sin(heading), 10, 190))
                fix(px + rng.normal(0, 2), py + rng.normal(0, 2))
                now += 10
        elif kind == "still":  # minutes of jitter within a few metres
            for _ in range(int(rng.integers(10, 70))):
                fix(px + rng.normal(0, 2.5), py + rng.normal(0, 2.5))
                now += 10
        elif kind == "spike":  # one to three wild fixes, then back
            far = (px + 500 if px < 400 else px - 500, py)
            for _ in range(int(rng.integers(1, 4))):
                fix(far[0] + rng.normal(0, 5), far[1] + rng.normal(0, 5))
                now += 10
        elif kind == "jump":  # reappears elsewhere and stays: a split, nothing dropped
            px = px + 450 if px < 400 else px - 450
            fix(px, py)
            now += 10
        elif kind == "silence":
            now += float(rng.uniform(310, 1500))
        elif kind == "lone":  # a single fix between two silences
            now += 400
            fix(px, py)
            now += 400
        else:
            for _ in range(int(rng.integers(1, 5))):
                fix(px + rng.normal(0, 30), py + rng.normal(0, 30), 80.0)
                now += 10
    lonlat = [point_lonlat(a, b) for a, b in zip(x, y, strict=True)]
    return pd.DataFrame(
        {
            "device_id": phone,
            "time": [(DAY + timedelta(seconds=s)).isoformat() for s in t],
            "lon": [p[0] for p in lonlat],
            "lat": [p[1] for p in lonlat],
            "accuracy_m": acc,
        }
    )


def _uploads(rng: np.random.Generator, days: list[pd.DataFrame], late: bool) -> list[pd.DataFrame]:
    """Each phone's day cut into chunks; the batches mix the phones' next chunks in order,
    with (``late``) some chunks held back and sent later and some sent twice."""
    chunks = []
    for day in days:
        cuts = np.sort(rng.choice(np.arange(1, len(day)), size=14, replace=False))
        bounds = np.r_[0, cuts, len(day)]
        chunks.append([day.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    held: list[pd.DataFrame] = []
    batches = []
    for step in range(max(len(c) for c in chunks)):
        parts = [c[step] for c in chunks if step < len(c)]
        if late:
            keep = []
            for part in parts:
                (held if rng.random() < 0.12 else keep).append(part)
            parts = keep
            if held and rng.random() < 0.3:
                parts.append(held.pop(0))
            if batches and rng.random() < 0.1:
                parts.append(batches[-1])  # resent
        if parts:  # oldest first, as phones send them
            batch = pd.concat(parts, ignore_index=True)
            batches.append(batch.sort_values("time", kind="stable", ignore_index=True))
    batches.extend(held)
    return batches


def _stored_tracks(session: Session, settings: AppSettings) -> pd.DataFrame:
    with driver_cursor(session) as cur:
        cur.execute(
            "SELECT device_key, worker_code, started_at, ended_at, n_fixes, length_m, "
            "ST_AsBinary(geom) FROM patrol_tracks WHERE city = %s "
            "ORDER BY device_key, started_at",
            (settings.grids.city,),
        )
        rows = cur.fetchall()
    out = pd.DataFrame(
        rows, columns=["device", "worker", "start", "end", "n", "length", "wkb"]
    ).astype({"wkb": object})
    out["coords"] = [
        shapely.get_coordinates(shapely.from_wkb(bytes(b)), include_m=True) for b in out["wkb"]
    ]
    return out.drop(columns="wkb")


def _full_rebuild(session: Session, settings: AppSettings) -> None:
    """Every track of the city rebuilt at once from every stored fix (the reference)."""
    with driver_cursor(session) as cur:
        cur.execute(
            "SELECT device_key, (extract(epoch FROM at) * 1000000)::bigint, lon, lat, "
            "coalesce(accuracy_m::float8, 'NaN') FROM gps_fixes WHERE city = %s",
            (settings.grids.city,),
        )
        device, at_us, lon, lat, acc = (np.array(c) for c in zip(*cur.fetchall(), strict=True))
        cur.execute("SELECT id, worker_code FROM devices WHERE city = %s", (settings.grids.city,))
        workers = dict(cur.fetchall())
    keys = np.unique(device)
    windows = pd.DataFrame(
        {
            "device_key": keys,
            "lo": int(at_us.min()) - 10**9,
            "hi": int(at_us.max()) + 10**9,
            "worker": [workers[k] for k in keys],
        }
    )
    p = settings.patrol
    rules = CleaningRules(
        p.max_accuracy_m, p.max_speed_mps, p.gap_s, p.stationary_radius_m, p.stationary_window_s
    )
    fixes = {
        "device_key": device.astype(np.int64),
        "at_us": at_us.astype(np.int64),
        "lon": lon.astype(float),
        "lat": lat.astype(float),
        "accuracy_m": acc.astype(float),
    }
    TrackWriter(session, settings.grids.city, rules).rebuild(windows, fixes, lambda *a: None)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want), (len(got), len(want))
    for a, b in zip(got.itertuples(), want.itertuples(), strict=True):
        where = f"device {b.device}, track from {b.start}"
        assert (a.device, a.worker, a.start, a.end, a.n) == (
            b.device,
            b.worker,
            b.start,
            b.end,
            b.n,
        ), where
        assert np.array_equal(a.coords, b.coords), where  # lon, lat and M, bit for bit
        assert a.length == pytest.approx(b.length, rel=1e-9, abs=1e-6), where


@pytest.mark.parametrize(("seed", "late"), [(1, False), (2, False), (3, True), (4, True)])
def test_tracks_built_by_uploads_equal_one_full_rebuild(
    session: Session,
    settings: AppSettings,
    phones: list[str],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    late: bool,
) -> None:
    rng = np.random.default_rng(seed)
    days = [_day(rng, phone) for phone in phones]
    extended: list[int] = []
    write = tracks_module.TrackExtender.write

    def counting(self, extension):  # which phones took the extension path
        extended.append(int(extension.devices.size))
        return write(self, extension)

    monkeypatch.setattr(tracks_module.TrackExtender, "write", counting)
    stored = 0
    for batch in _uploads(rng, days, late):
        stored += FixIngester(session, settings).run(batch, SYSTEM, mode="all").stored
    assert stored == sum(len(d) for d in days)  # resent fixes are stored once

    got = _stored_tracks(session, settings)
    _full_rebuild(session, settings)
    want = _stored_tracks(session, settings)
    _assert_same(got, want)
    # the walk gave the cleaning work to do, and most uploads extended tracks
    assert len(want) >= 2 * PHONES
    assert want["n"].sum() < stored
    assert sum(extended) >= 3, extended


def test_cleaning_reaches_back_across_an_upload(
    session: Session, settings: AppSettings, phones: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads cut inside a stationary stretch and right after a spike, on a track already
    long enough to be extended: the fixes already stored change their fate (the stretch's
    last fix becomes its interior, the fix before the spike stays), as one rebuild says."""
    fixes = []
    now = 0.0
    for k in range(200):  # walking to and fro along the city for half an hour
        fixes.append((now, 100 + abs((12 * k) % 1200 - 600), 100))
        now += 10
    stop = fixes[-1][1]
    for _ in range(40):  # standing still for 400 s
        fixes.append((now, stop + float(np.sin(now)), 100 + float(np.cos(now))))
        now += 10
    for k in range(30):  # walking on, with a spike 500 m away in the middle
        fixes.append((now, stop - 8 * k if k != 15 else stop - 550, 100))
        now += 10
    frame = pd.DataFrame(
        {
            "device_id": phones[0],
            "time": [(DAY + timedelta(seconds=s)).isoformat() for s, _, _ in fixes],
            "lon": [point_lonlat(x, y)[0] for _, x, y in fixes],
            "lat": [point_lonlat(x, y)[1] for _, x, y in fixes],
            "accuracy_m": 5.0,
        }
    )
    extended: list[int] = []
    write = tracks_module.TrackExtender.write

    def counting(self, extension):
        extended.append(int(extension.devices.size))
        return write(self, extension)

    monkeypatch.setattr(tracks_module.TrackExtender, "write", counting)
    for a, b in ((0, 220), (220, 255), (255, 256), (256, len(frame))):
        FixIngester(session, settings).run(frame.iloc[a:b], SYSTEM)
    assert extended == [0, 1, 1, 1]  # the first upload has no track to extend
    got = _stored_tracks(session, settings)
    _full_rebuild(session, settings)
    want = _stored_tracks(session, settings)
    _assert_same(got, want)
    assert want["n"].sum() <= len(frame) - 30  # the stop's interior and the spike went
