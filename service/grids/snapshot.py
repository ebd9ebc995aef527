"""The grids valid now, held in memory by each server process.

Locating a point is the hottest read of the service (every phone report, every citizen report,
every dispatcher click). Answering it from PostGIS costs five queries and the transfer of the
parent polygons; answering it from memory costs one primary-key read of the grids' change
counter, which proves the snapshot is still the truth:

* the counter is bumped, inside the writing transaction, by every statement that writes
  ``grids``, from a sequence — so a value names one state of the table, never reused even after
  a rollback;
* the snapshot also remembers the validity boundaries around the moment it was read (the latest
  ``valid_from``/``valid_to`` not after it and the next one after it): any instant in between
  sees exactly the same set of versions.

The HTTP locate does not even read the counter: each process listens for the NOTIFY that the
same trigger sends when the writing transaction commits (``service.db.changes``), and serves the
committed snapshot without any query until one arrives. Code that runs inside a transaction
(case intake, a request that has just written grids) reads the counter in that transaction, so
it sees its own uncommitted writes and no one else's.

Each process keeps its snapshots per city; the first request after a change rebuilds them
(~0.1 s for the demo's 1,500 unit grids).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from gis import metric
from gis.locate import GridIndex
from service.db.changes import ChangeListener
from service.db.models import Grid
from service.grids.repository import geom_of, valid_at

_GRID_COUNTER = text("SELECT version FROM change_counters WHERE name = 'grids'")
_BOUNDARIES = text(
    "SELECT max(b) FILTER (WHERE b <= :at), min(b) FILTER (WHERE b > :at) "
    "FROM grids, LATERAL (VALUES (valid_from), (valid_to)) v(b) "
    "WHERE city = :city AND b IS NOT NULL"
)


@dataclass(frozen=True)
class GridSnapshot:
    """Every grid version of one city valid during ``[since, until)``, read at ``version``.

    The rows are detached from any session and only ever read.
    """

    city: str
    version: int
    generation: tuple[int, int] | None  # the listener's, when read outside any transaction
    since: datetime | None
    until: datetime | None
    by_code: Mapping[str, Grid]
    units: GridIndex
    unit_rows: tuple[Grid, ...]  # in ``units.codes`` order

    def serves(self, at: datetime) -> bool:
        """Whether the versions valid at ``at`` are exactly this snapshot's."""
        return (self.since is None or self.since <= at) and (self.until is None or at < self.until)

    def chain(self, grid: Grid) -> list[Grid]:
        """``grid``'s ancestors up to the city, nearest first."""
        out: list[Grid] = []
        code = grid.parent_code
        while code and (parent := self.by_code.get(code)) is not None:
            out.append(parent)
            code = parent.parent_code
        return out

    def near(self, lon: float, lat: float, radius_m: float) -> list[tuple[Grid, float, bool]]:
        """Unit grids within ``radius_m`` of a WGS 84 point: (grid, metres, covers), covering
        grids first (lowest code first), then by distance — as the database query orders them.

        Distances are geodesic (WGS 84 ellipsoid), like PostGIS ``geography`` distances: the
        index measures in UTM, and UTM is conformal, so a short UTM distance divided by the
        point's scale factor is the ellipsoidal one (to micrometres at these distances).
        """
        if not len(self.units):
            return []
        covering = set(self.units.covering(lon, lat))
        scale = metric.scale_factor(lon, lat, self.units.metric_crs)
        if not math.isfinite(scale):
            # so far from the city that its UTM zone cannot measure there: no grid is near
            return []
        # widen the index's search by the scale so no geodesic candidate is lost
        found = self.units.candidates(lon, lat, radius_m * scale + 1e-6)
        out = [
            (self.unit_rows[i], 0.0 if i in covering else d / scale, i in covering)
            for i, d in found
        ]
        out = [r for r in out if r[2] or r[1] <= radius_m]
        return sorted(out, key=lambda r: (not r[2], r[1], r[0].code))

    def nearest(self, lon: float, lat: float) -> tuple[Grid, float] | None:
        """The nearest unit grid and its geodesic distance in metres."""
        hit = self.units.nearest(lon, lat) if len(self.units) else None
        if hit is None:
            return None
        scale = metric.scale_factor(lon, lat, self.units.metric_crs)
        return self.unit_rows[hit[0]], hit[1] / scale


_LOCK = threading.Lock()
# Two slots per city, so the two ways of checking freshness never evict each other:
_COMMITTED: dict[str, GridSnapshot] = {}  # read outside any transaction; kept fresh by NOTIFY
_IN_TRANSACTION: dict[str, GridSnapshot] = {}  # read by a caller's transaction (may hold its
# own uncommitted writes): only ever served again to a transaction reading the same counter


def grid_version(session: Session) -> int:
    """The grids' change counter as this session's transaction sees it."""
    return int(session.execute(_GRID_COUNTER).scalar_one())


def snapshot_for(session: Session, city: str, at: datetime | None = None) -> GridSnapshot | None:
    """The snapshot of ``city`` serving ``at`` as ``session``'s transaction sees the grids;
    ``None`` for a moment it does not serve.

    One counter read proves a cached snapshot current. With ``at`` omitted (now) the snapshot
    is rebuilt when the grids changed, so the answer is never ``None``. A past moment outside
    the snapshot's validity is left to the database: rebuilding for every historical query
    would only thrash the cache.
    """
    version = grid_version(session)
    when = at or datetime.now(UTC)
    with _LOCK:
        cached = [_COMMITTED.get(city), _IN_TRANSACTION.get(city)]
    for snap in cached:
        if snap is not None and snap.version == version and snap.serves(when):
            return snap
    if at is not None and not _is_now(at):
        return None
    snap = _build(session, city, version, datetime.now(UTC))
    with _LOCK:
        _IN_TRANSACTION[city] = snap
    return snap if snap.serves(when) else None


def committed_snapshot(
    sessions: sessionmaker[Session], city: str, changes: ChangeListener
) -> GridSnapshot | None:
    """The snapshot of the committed grids of ``city`` valid now, with no query at all while
    ``changes`` has heard of no committed write to ``grids``; ``None`` while the listener is
    down (ask the database with :func:`snapshot_for` instead)."""
    snap = fresh_committed_snapshot(city, changes)
    if snap is not None or not changes.healthy:
        return snap
    generation = changes.generation("grids")  # before reading: a change meanwhile moves it
    with sessions() as session:
        # one consistent picture: the counter and the rows of the same committed state
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        snap = _build(session, city, grid_version(session), datetime.now(UTC), generation)
    with _LOCK:
        _COMMITTED[city] = snap
    return snap


def fresh_committed_snapshot(city: str, changes: ChangeListener) -> GridSnapshot | None:
    """The cached committed snapshot if nothing has changed since it was read (no I/O)."""
    if not changes.healthy:
        return None
    with _LOCK:
        snap = _COMMITTED.get(city)
    if (
        snap is not None
        and snap.generation == changes.generation("grids")
        and snap.serves(datetime.now(UTC))
    ):
        return snap
    return None


def _is_now(at: datetime, slack_s: float = 300.0) -> bool:
    """Within a few minutes of now: a report sent a little late is still about today's grids."""
    return abs((datetime.now(UTC) - at).total_seconds()) <= slack_s


def _build(
    session: Session,
    city: str,
    version: int,
    at: datetime,
    generation: tuple[int, int] | None = None,
) -> GridSnapshot:
    since, until = session.execute(_BOUNDARIES, {"city": city, "at": at}).one()
    # plain column rows made into transient objects: never in (or taken from) any session's
    # identity map, so the snapshot cannot change under, or be changed by, the caller's session
    table = Grid.__table__
    result = session.execute(select(*table.c).where(Grid.city == city, valid_at(at)))
    rows = [Grid(**row._mapping) for row in result]
    units = sorted((r for r in rows if r.level == "unit"), key=lambda r: r.code)
    return GridSnapshot(
        city=city,
        version=version,
        generation=generation,
        since=since,
        until=until,
        by_code={r.code: r for r in rows},
        units=GridIndex([r.code for r in units], [geom_of(r) for r in units]),
        unit_rows=tuple(units),
    )
