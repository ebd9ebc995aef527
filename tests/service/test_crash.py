"""SIGKILL in the middle of imports: the service loses nothing it acknowledged and leaves
nothing half-stored.

A real server (``citygrid serve``) on a committed copy of the demo city's grids
takes bulk case imports (CSV, all or nothing, an idempotency key per row), GPS fix batches
(JSON) and fix uploads (CSV), and grid imports (GeoJSON: new versions of unit grids) from
several threads at once, and is killed — its whole process group, SIGKILL, so no shutdown code
runs anywhere — at a moment drawn from a fixed seed, in three rounds. After each kill:

- every acknowledged request (a 2xx received) is stored whole: all its cases, all its fixes
  and their tracks, all its grid versions and its audit row;
- every other request is stored whole or not at all (rows counted per request);
- nothing stays behind that would stand in a retry's way: no connection of the dead server
  holding a transaction or a lock, no prepared transaction, and — once a server runs again —
  no staged upload files of the dead processes;
- the restarted server, sent the requests that were not acknowledged again (the same files,
  the same keys), stores each exactly once, and acknowledged ones sent again change nothing.

The report is the case row itself: a bulk import writes no history rows (``case_events`` holds
the steps after the report), so a case is whole when its row is there.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gis.metric import (
    from_metric_xy,
    to_metric,
    to_metric_xy,
    to_wgs84,
    utm_crs_for_geometries,
)
from service.accounts.accounts import AccountService, KeyInput
from service.accounts.principal import SYSTEM
from service.cases.catalogue import seed_catalogue
from service.db import migrations
from service.db.engine import make_engine
from service.db.models import Category, Grid
from service.demo import load_demo_grids
from service.grids.repository import geom_of
from service.patrol.workers import PatrolService, WorkerInput
from service.scratch import PREFIX
from tests.helpers.databases import fresh_database
from tests.helpers.servers import Killable, killable, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.concurrency]

CITY = "410100"  # the demo city's key, in a database of its own
SEED = 20261130
ROUNDS = 3
CASE_ROWS = 150  # cases per import file
FIXES = 120  # fixes per batch, 10 s apart
GRIDS = 4  # unit grids per grid import
PER_THREAD = 12  # most requests one client thread sends in a round
DEVICES = [f"crash-phone-{i}" for i in range(1, 7)]
OUTCOMES = ("acked", "lost", "refused", "unsent")
STAGED = "citygrid-upload-*"  # what an upload leaves in the temporary folder while it runs


# -- the world --------------------------------------------------------------------------------
@dataclass
class World:
    """The committed database and what the requests are made of."""

    url: str
    engine: Engine
    key: str  # an API key that may import cases and grids and upload fixes
    categories: list[str]  # categories that ask for no extra field
    units: list[tuple[str, shapely.Geometry]]  # unit grids: code, boundary (lon/lat)
    tmp: Path  # the servers' temporary folder (TMPDIR)
    log: Path


@pytest.fixture(scope="module")
def world(admin_url: str, settings_for, tmp_path_factory) -> Iterator[World]:
    """A fresh database, migrated, with the demo city's grids and catalogue, six phones and an
    API key — all committed, as a server process sees only commits."""
    for url in fresh_database(admin_url):
        engine = make_engine(url)
        migrations.upgrade(engine)
        settings = settings_for(CITY)
        with Session(engine) as session:
            load_demo_grids(session, settings)
            seed_catalogue(session, CITY)
            for i, device in enumerate(DEVICES, start=1):
                PatrolService(session, settings).save_worker(
                    WorkerInput(code=f"CRASH{i}", name=f"巡查员{i}", devices=[device]), SYSTEM
                )
            _, key = AccountService(session, settings).create_key(
                KeyInput("crash test", ["cases.import", "grids.import", "patrol.fixes"]), SYSTEM
            )
            session.commit()
            categories = sorted(
                c.code
                for c in session.scalars(select(Category).where(Category.city == CITY))
                if not c.required_fields
            )
            units = [
                (g.code, geom_of(g))
                for g in session.scalars(
                    select(Grid)
                    .where(Grid.city == CITY, Grid.level == "unit", Grid.valid_to.is_(None))
                    .order_by(Grid.code)
                )
            ]
        engine.dispose()
        # the test's own look at the database: one connection at a time, none kept open
        # (so that every other connection is the server's)
        engine = create_engine(url, poolclass=NullPool)
        folder = tmp_path_factory.mktemp("crash")
        (folder / "tmp").mkdir()
        try:
            yield World(url, engine, key, categories, units, folder / "tmp", folder / "server.log")
        finally:
            engine.dispose()


# -- requests -----------------------------------------------------------------------------------
@dataclass
class Request:
    """One import as sent, what identifies its rows, and what became of it."""

    kind: str  # cases | fixes | fixes-csv | grids
    name: str
    path: str
    expected: int  # rows of its kind it stores
    json_body: dict[str, Any] | None = None
    file: tuple[str, bytes] | None = None
    form: dict[str, str] = field(default_factory=dict)
    device: str = ""
    window: tuple[datetime, datetime] | None = None
    codes: list[str] = field(default_factory=list)
    sha256: str = ""
    outcome: str = "unsent"  # acked | refused | lost (sent, no answer) | unsent
    status: int | None = None
    answer: str = ""
    found: str = ""  # after the kill: stored | absent

    def send(self, client: httpx.Client) -> httpx.Response:
        """POST it once."""
        if self.json_body is not None:
            return client.post(self.path, json=self.json_body)
        assert self.file is not None
        return client.post(self.path, files={"file": self.file}, data=self.form)


class Maker:
    """Requests of every kind, each with rows of its own (keys, phone time windows, grids)."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.units = list(world.units)
        rng.shuffle(self.units)
        self.crs = utm_crs_for_geometries(np.array([g for _, g in world.units]))
        self.count = 0
        self.batches = 0  # fix requests so far: each has a half-hour of its own

    def _name(self, kind: str, round_: int) -> str:
        self.count += 1
        return f"crash-{round_}-{kind}-{self.count}"

    def _spot(self) -> tuple[float, float]:
        """A point well inside a random unit grid."""
        _, geom = self.rng.choice(self.world.units)
        p = geom.representative_point()
        return p.x, p.y

    def cases(self, round_: int) -> Request:
        name = self._name("cases", round_)
        lines = ["category_code,lon,lat,reported_at,description,idempotency_key"]
        for row in range(CASE_ROWS):
            lon, lat = self._spot()
            at = self.now - timedelta(minutes=self.rng.randint(5, 600))
            category = self.rng.choice(self.world.categories)
            lines.append(
                f"{category},{lon:.7f},{lat:.7f},{at.isoformat()},断电测试{row},{name}/{row}"
            )
        body = ("\n".join(lines) + "\n").encode()
        return Request(
            "cases",
            name,
            "/api/cases/import",
            CASE_ROWS,
            file=(f"{name}.csv", body),
            form={"mode": "all", "allow_unassigned": "true"},
        )

    def fixes(self, round_: int, csv: bool) -> Request:
        kind = "fixes-csv" if csv else "fixes"
        name = self._name(kind, round_)
        self.batches += 1
        device = DEVICES[self.batches % len(DEVICES)]
        # a half-hour of its own from 48 hours back on (at most 2 x 12 x 3 of them: 36 hours)
        start = self.now - timedelta(hours=48) + timedelta(minutes=30 * self.batches)
        times = [start + timedelta(seconds=10 * k) for k in range(FIXES)]
        lon0, lat0 = self._spot()
        x0, y0 = to_metric_xy(np.array([lon0]), np.array([lat0]), self.crs)
        angle = np.linspace(0, 2 * np.pi, FIXES)  # a walk round a 40 m circle
        lon, lat = from_metric_xy(x0 + 40 * np.cos(angle), y0 + 40 * np.sin(angle), self.crs)
        window = (times[0], times[-1])
        if csv:
            rows = ["device_id,time,lon,lat,accuracy_m"] + [
                f"{device},{t.isoformat()},{x:.7f},{y:.7f},8"
                for t, x, y in zip(times, lon, lat, strict=True)
            ]
            return Request(
                kind,
                name,
                "/api/patrol/fixes/upload",
                FIXES,
                file=(f"{name}.csv", ("\n".join(rows) + "\n").encode()),
                form={"mode": "all"},
                device=device,
                window=window,
            )
        fixes = [
            {"time": t.isoformat(), "lon": float(x), "lat": float(y), "accuracy_m": 8.0}
            for t, x, y in zip(times, lon, lat, strict=True)
        ]
        return Request(
            kind,
            name,
            "/api/patrol/fixes",
            FIXES,
            json_body={"device_id": device, "mode": "all", "fixes": fixes},
            device=device,
            window=window,
        )

    def grids(self, round_: int) -> Request:
        """New versions of unit grids no other request touches: each boundary half a metre
        in (a version that overlaps nothing and stays inside its community)."""
        name = self._name("grids", round_)
        chosen, self.units = self.units[:GRIDS], self.units[GRIDS:]
        features = []
        for code, geom in chosen:
            shrunk = to_wgs84(to_metric(geom, self.crs).buffer(-0.5), self.crs)
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": code, "level": "unit", "name": name},
                    "geometry": shapely.geometry.mapping(shrunk),
                }
            )
        body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        return Request(
            "grids",
            name,
            "/api/grids/import",
            GRIDS,
            file=(f"{name}.geojson", body),
            codes=[code for code, _ in chosen],
            sha256=hashlib.sha256(body).hexdigest(),
        )


# -- what is stored -----------------------------------------------------------------------------
def stored(conn: Any, req: Request) -> dict[str, int]:
    """The rows of ``req`` in the database, by kind (each must be all or nothing)."""
    if req.kind == "cases":
        n = conn.execute(
            text("SELECT count(*) FROM cases WHERE city = :city AND idempotency_key LIKE :key"),
            {"city": CITY, "key": f"{req.name}/%"},
        ).scalar_one()
        return {"rows": n}
    if req.kind.startswith("fixes"):
        assert req.window is not None
        params = {"city": CITY, "device": req.device, "lo": req.window[0], "hi": req.window[1]}
        fixes = conn.execute(
            text(
                "SELECT count(*) FROM gps_fixes f JOIN devices d ON d.id = f.device_key "
                "WHERE f.city = :city AND d.device_id = :device AND f.at BETWEEN :lo AND :hi"
            ),
            params,
        ).scalar_one()
        tracks = conn.execute(
            text(
                "SELECT count(*) FROM patrol_tracks t JOIN devices d ON d.id = t.device_key "
                "WHERE t.city = :city AND d.device_id = :device AND t.ended_at >= :lo "
                "AND t.started_at <= :hi"
            ),
            params,
        ).scalar_one()
        return {"rows": fixes, "tracks": min(tracks, 1)}
    versions = conn.execute(
        text("SELECT count(*) FROM grids WHERE city = :city AND name = :name"),
        {"city": CITY, "name": req.name},
    ).scalar_one()
    audit = conn.execute(
        text(
            "SELECT count(*), coalesce(sum((after->>'versioned')::int), 0) FROM audit_log "
            "WHERE city = :city AND entity = 'grids' AND after->>'sha256' = :sha"
        ),
        {"city": CITY, "sha": req.sha256},
    ).one()
    current = conn.execute(
        text(
            "SELECT count(*) FROM grids WHERE city = :city AND code = ANY(:codes) "
            "AND valid_to IS NULL"
        ),
        {"city": CITY, "codes": req.codes},
    ).scalar_one()
    # exactly one current version per code, whatever happened
    assert current == GRIDS, f"{req.name}: {current} current versions of {GRIDS} grids"
    return {"rows": versions, "audit": min(audit[0], 1), "versioned": audit[1]}


def whole(req: Request, rows: dict[str, int]) -> bool:
    """All of ``req`` is stored (the audit row and tracks with it)."""
    if req.kind == "grids":
        return rows == {"rows": GRIDS, "audit": 1, "versioned": GRIDS}
    extra = {"tracks": 1} if req.kind.startswith("fixes") else {}
    return rows == {"rows": req.expected, **extra}


def absent(req: Request, rows: dict[str, int]) -> bool:
    """Nothing of ``req`` is stored."""
    return not any(rows.values())


# -- the server and the load --------------------------------------------------------------------
def _env(world: World) -> dict[str, str]:
    return {
        "CITYGRID_DATABASE_URL": world.url,
        "CITYGRID_CITY": CITY,
        "CITYGRID_DATA_DIR": str(world.tmp.parent / "data"),
        "TMPDIR": str(world.tmp),  # staged uploads land here, where the test can see them
        # the overdue and escalation sweeps write on their own: only the imports here
        "CITYGRID_NOTIFY_ENABLED": "false",
    }


def _client(server: Killable, world: World) -> httpx.Client:
    return httpx.Client(base_url=server.base, headers={"X-API-Key": world.key}, timeout=120)


def _load(server: Killable, world: World, queues: list[list[Request]], stop: threading.Event):
    """One thread per queue, each sending its requests one after the other until ``stop``."""

    def run(queue: list[Request]) -> None:
        with _client(server, world) as client:
            for req in queue:
                if stop.is_set():
                    return
                req.outcome = "lost"
                try:
                    r = req.send(client)
                except httpx.ConnectError:
                    req.outcome = "unsent"  # the server was gone before the request
                    return
                except httpx.TransportError:
                    return
                req.status, req.answer = r.status_code, r.text[:500]
                req.outcome = "acked" if r.is_success else "refused"

    threads = [threading.Thread(target=run, args=(q,), daemon=True) for q in queues]
    for t in threads:
        t.start()
    return threads


def _backends_gone(world: World) -> bool:
    """No connection of a dead server is left (each would hold its transaction and locks)."""
    with world.engine.connect() as conn:
        return not conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ).scalar_one()


def _check_after_kill(world: World, requests: list[Request]) -> None:
    assert wait_for(lambda: _backends_gone(world), 60), "a dead server's connection lingers"
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_prepared_xacts")).scalar_one() == 0
        for req in requests:
            rows = stored(conn, req)
            if req.outcome == "acked":
                assert whole(req, rows), f"{req.name} was acknowledged but is {rows}"
            else:
                assert whole(req, rows) or absent(req, rows), f"{req.name} half-stored: {rows}"
            req.found = "stored" if whole(req, rows) else "absent"


def _retry(server: Killable, world: World, requests: list[Request]) -> None:
    """Send every request again; afterwards each is stored exactly once."""
    with _client(server, world) as client:
        for req in requests:
            with world.engine.connect() as conn:
                before = whole(req, stored(conn, req))
            r = req.send(client)
            assert r.is_success, f"retry of {req.name}: {r.status_code} {r.text[:500]}"
            report = r.json()
            with world.engine.connect() as conn:
                rows = stored(conn, req)
            assert whole(req, rows), f"{req.name} after a retry: {rows}"
            if req.kind == "cases":
                assert report["created"] == (0 if before else CASE_ROWS), report
                assert report["replayed"] == (CASE_ROWS if before else 0), report
            elif req.kind == "grids":
                assert len(report["versioned"]) == (0 if before else GRIDS), report
                assert len(report["updated"]) == (GRIDS if before else 0), report
            else:
                assert report["stored"] == (0 if before else FIXES), report
                assert report["replayed"] == (FIXES if before else 0), report
            req.outcome = "acked"


def _left_behind(world: World) -> list[Path]:
    """Temporary files of dead server processes: staged uploads anywhere under the servers'
    temporary folder (a running server, between requests, has none), and every scratch
    folder but the one of the server that runs now."""
    staged = sorted(world.tmp.rglob(STAGED))
    scratch = sorted(world.tmp.glob(f"{PREFIX}*"))
    return staged + (scratch if len(scratch) > 1 else [])


# -- the test -----------------------------------------------------------------------------------
def test_sigkill_during_imports_loses_nothing_acknowledged_and_half_stores_nothing(
    world: World,
) -> None:
    rng = random.Random(SEED)
    maker = Maker(world, rng)
    pending: list[Request] = []  # not acknowledged when the server died: retried after restart
    acked: list[Request] = []
    everything: list[Request] = []
    in_flight = 0
    for round_ in range(ROUNDS):
        with killable(_env(world), world.log, workers=1) as server:
            # a server started after a kill has cleared what the dead processes staged
            assert _left_behind(world) == [], _left_behind(world)
            _retry(server, world, pending)
            acked.extend(pending)
            queues = [
                [maker.cases(round_) for _ in range(PER_THREAD)],
                [maker.cases(round_) for _ in range(PER_THREAD)],
                [maker.fixes(round_, csv=False) for _ in range(PER_THREAD)],
                [maker.fixes(round_, csv=True) for _ in range(PER_THREAD)],
                [maker.grids(round_) for _ in range(PER_THREAD)],
            ]
            stop = threading.Event()
            threads = _load(server, world, queues, stop)
            time.sleep(rng.uniform(0.8, 3.0))  # the moment of the kill, from the seed
            stop.set()  # requests on the way stay on the way; no thread starts another
            server.kill()
            for t in threads:
                t.join(timeout=120)
        requests = [req for queue in queues for req in queue]
        everything.extend(requests)
        staged = len(list(world.tmp.rglob(STAGED)))  # uploads the kill cut short
        refused = [r for r in requests if r.outcome == "refused"]
        # only the overload answer may refuse a request: anything else is a broken request
        assert all(r.status == 503 for r in refused), [(r.name, r.answer) for r in refused]
        _check_after_kill(world, requests)
        in_flight += sum(r.outcome == "lost" for r in requests)
        acked.extend(r for r in requests if r.outcome == "acked")
        pending = [r for r in requests if r.outcome in ("lost", "refused")]
        outcomes = {o: sum(r.outcome == o for r in requests) for o in OUTCOMES}
        committed = sum(r.outcome == "lost" and r.found == "stored" for r in requests)
        print(f"round {round_}: {outcomes}, lost but stored {committed}, staged {staged}")
    assert in_flight > 0, "no kill hit a request in flight"
    with killable(_env(world), world.log, workers=1) as server:
        assert _left_behind(world) == [], _left_behind(world)
        _retry(server, world, pending)
        # what was acknowledged, sent again, is a replay that stores nothing twice
        _retry(server, world, rng.sample(acked, min(10, len(acked))))
    # in the end: every request that reached the server is stored once, the rest not at all,
    # and nothing else is (no row outside the requests' own)
    with world.engine.connect() as conn:
        for req in everything:
            rows = stored(conn, req)
            assert whole(req, rows) if req.outcome == "acked" else absent(req, rows), req.name
        totals = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM cases WHERE city = :city), "
                "(SELECT count(*) FROM gps_fixes WHERE city = :city), "
                "(SELECT count(*) FROM grids WHERE city = :city AND version > 1)"
            ),
            {"city": CITY},
        ).one()
    done = [r for r in everything if r.outcome == "acked"]
    assert tuple(totals) == (
        CASE_ROWS * sum(r.kind == "cases" for r in done),
        FIXES * sum(r.kind.startswith("fixes") for r in done),
        GRIDS * sum(r.kind == "grids" for r in done),
    )
