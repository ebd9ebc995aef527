"""Day partitions of ``gps_fixes``: created ahead, old ones dropped whole.

``gps_fixes`` is partitioned by ``RANGE (at)``, one partition per day of the city's time zone
(``CITYGRID_TIMEZONE``): a worker's patrol day is a local day, so reading it touches one
partition. The partitions live in the schema ``partitions`` (``partitions.gps_fixes_20261130``)
so the ``public`` schema keeps exactly the model's tables.

* **Ahead.** :func:`ensure_partitions` creates the partitions of today and the next
  ``CITYGRID_PATROL_PARTITIONS_AHEAD_DAYS`` days. It runs at server start, in the background
  sweeps and as ``citygrid fixes partitions``; an advisory lock makes concurrent runs take
  turns, and each re-reads the catalogue, so running it twice creates nothing twice.
* **Never a lost fix.** A ``DEFAULT`` partition takes fixes of a day that has no partition yet
  (a phone whose clock is far off, an old GPX upload), so intake keeps its one COPY into the
  parent and never fails on a missing partition. :func:`ensure_partitions` moves such rows
  into a partition of their own day (created for them) whenever it runs.
* **Retention.** :func:`drop_expired_partitions` detaches and drops the partitions of days
  older than ``CITYGRID_PATROL_FIX_RETENTION_DAYS`` (``0`` keeps everything) and deletes the
  default partition's rows older than that. Tracks and coverage are stored apart (patrol_tracks,
  coverage_runs, grid_coverage) and stay.

New partitions are made with ``CREATE TABLE`` + ``ATTACH PARTITION``, which takes only a SHARE
UPDATE EXCLUSIVE lock on the parent (``CREATE TABLE … PARTITION OF`` would take ACCESS
EXCLUSIVE and stop intake while it waits); no triggers and no foreign keys touch the table, so
Citus can later distribute it by city.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.clock import now
from service.settings import AppSettings

SCHEMA = "partitions"
PARENT = "gps_fixes"
DEFAULT = f"{PARENT}_default"
# advisory lock of partition upkeep: the fix-intake namespace ("fx"), key "pa"
_LOCK = (0x6678, 0x7061)
# DDL on the parent waits at most this long for intake transactions, then gives up until the
# next sweep (intake waiting behind it stalls no longer than this)
_LOCK_TIMEOUT = "5s"
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One attached range partition: ``[lo, hi)`` in UTC."""

    name: str
    lo: datetime
    hi: datetime


@dataclass
class PartitionReport:
    """What one round of upkeep did."""

    created: list[str] = field(default_factory=list)
    moved: int = 0  # rows moved out of the default partition
    dropped: list[str] = field(default_factory=list)
    expired_default_rows: int = 0
    skipped: str | None = None  # why nothing was done (a lock not granted in time)


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a local day of ``tz``, in UTC (23 or 25 hours on a DST change)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def partition_name(lo: datetime, hi: datetime, tz: str) -> str:
    """``gps_fixes_YYYYMMDD`` for a whole local day; a partial day (a gap left between
    partitions made under another time zone) also names its start's local time."""
    local = lo.astimezone(ZoneInfo(tz))
    name = f"{PARENT}_{local:%Y%m%d}"
    if (lo, hi) != day_bounds(local.date(), tz):
        name += f"_{local:%H%M}"
    return name


def list_partitions(session: Session) -> list[Partition]:
    """The attached partitions of ``gps_fixes`` but the default one, by start."""
    rows = session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.gps_fixes'::regclass"
        )
    ).all()
    out = []
    for name, bound in rows:
        found = _BOUND.search(bound or "")
        if found is None:  # the DEFAULT partition
            continue
        lo, hi = (pd.Timestamp(v).tz_convert(UTC).to_pydatetime() for v in found.groups())
        out.append(Partition(name, lo, hi))
    return sorted(out, key=lambda p: p.lo)


def retention_horizon(settings: AppSettings, at: datetime | None = None) -> datetime | None:
    """Start of the oldest local day whose raw fixes are kept (``None``: kept forever).

    Partitions ending at or before it are dropped; fixes older than it are refused at intake.
    """
    days = settings.patrol.fix_retention_days
    if days <= 0:
        return None
    tz = settings.grids.timezone
    today = (at or now()).astimezone(ZoneInfo(tz)).date()
    return day_bounds(today - timedelta(days=days), tz)[0]


def ensure_partitions(
    session: Session, ahead_days: int, tz: str, at: datetime | None = None
) -> PartitionReport:
    """Create the partitions of today and the next ``ahead_days`` local days of ``tz`` that are
    missing, and give rows waiting in the default partition partitions of their own days.

    Idempotent; concurrent calls take turns on an advisory lock. Runs in the caller's
    transaction (the caller commits). When intake holds the tables longer than the lock
    timeout, nothing is done (``skipped``) and the next round tries again.
    """
    report = PartitionReport()
    if not _lock(session, report):
        return report
    today = (at or now()).astimezone(ZoneInfo(tz)).date()
    days = {today + timedelta(days=k) for k in range(max(0, ahead_days) + 1)}
    days |= _days_in_default(session, tz)
    existing = list_partitions(session)
    for day in sorted(days):
        lo, hi = day_bounds(day, tz)
        for gap_lo, gap_hi in _gaps(lo, hi, existing):
            name = partition_name(gap_lo, gap_hi, tz)
            if not _attach(session, name, gap_lo, gap_hi, report):
                return report
            existing.append(Partition(name, gap_lo, gap_hi))
    return report


def drop_expired_partitions(
    session: Session, settings: AppSettings, at: datetime | None = None
) -> PartitionReport:
    """Detach and drop the partitions wholly older than the retention horizon, and delete the
    default partition's rows older than it; nothing with ``CITYGRID_PATROL_FIX_RETENTION_DAYS``
    = 0. Today's and the ahead partitions are never older than the horizon."""
    report = PartitionReport()
    horizon = retention_horizon(settings, at)
    if horizon is None or not _lock(session, report):
        return report
    for part in list_partitions(session):
        if part.hi > horizon:
            continue
        try:
            with session.begin_nested():
                # DETACH … CONCURRENTLY would only take SHARE UPDATE EXCLUSIVE on the parent,
                # but PostgreSQL refuses it on a table with a DEFAULT partition ("cannot detach
                # partitions concurrently when a default partition exists") and inside a
                # transaction block. The plain DETACH takes ACCESS EXCLUSIVE on the parent: it
                # waits for running intake transactions (short) and at most the lock timeout,
                # else this partition waits for the next round.
                session.execute(
                    text(f'ALTER TABLE public.{PARENT} DETACH PARTITION {SCHEMA}."{part.name}"')
                )
                session.execute(text(f'DROP TABLE {SCHEMA}."{part.name}"'))
        except Exception as exc:  # lock not granted in time: the next round tries again
            if not _lock_timeout(exc):
                raise
            report.skipped = f"{part.name}: lock not granted within {_LOCK_TIMEOUT}"
            return report
        report.dropped.append(part.name)
    deleted = session.execute(text(f"DELETE FROM {SCHEMA}.{DEFAULT} WHERE at < :h"), {"h": horizon})
    report.expired_default_rows = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    return report


def maintain_partitions(session: Session, settings: AppSettings, at: datetime) -> PartitionReport:
    """The background sweep: partitions ahead, then retention (the caller commits)."""
    report = ensure_partitions(
        session, settings.patrol.partitions_ahead_days, settings.grids.timezone, at
    )
    if report.skipped:
        return report
    dropped = drop_expired_partitions(session, settings, at)
    report.dropped, report.skipped = dropped.dropped, dropped.skipped
    report.expired_default_rows = dropped.expired_default_rows
    return report


# -- helpers ---------------------------------------------------------------------------------


def _lock(session: Session, report: PartitionReport) -> bool:
    """Take the upkeep lock (until the transaction ends) and bound every later lock wait."""
    session.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
    try:
        with session.begin_nested():
            session.execute(
                text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LOCK[0], "b": _LOCK[1]}
            )
    except Exception as exc:
        if not _lock_timeout(exc):
            raise
        report.skipped = "another process is maintaining the partitions"
        return False
    return True


def _lock_timeout(exc: Exception) -> bool:
    """Whether ``exc`` is PostgreSQL's lock_timeout (SQLSTATE 55P03)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"


def _days_in_default(session: Session, tz: str) -> set[date]:
    """The local days of the rows the default partition holds (normally none)."""
    rows = session.execute(
        text(f"SELECT DISTINCT (at AT TIME ZONE :tz)::date FROM {SCHEMA}.{DEFAULT}"), {"tz": tz}
    ).scalars()
    return set(rows)


def _gaps(lo: datetime, hi: datetime, existing: list[Partition]) -> list[tuple[datetime, datetime]]:
    """The parts of ``[lo, hi)`` no existing partition covers."""
    out, cursor = [], lo
    for part in sorted(existing, key=lambda p: p.lo):
        if part.hi <= cursor or part.lo >= hi:
            continue
        if part.lo > cursor:
            out.append((cursor, part.lo))
        cursor = max(cursor, part.hi)
        if cursor >= hi:
            break
    if cursor < hi:
        out.append((cursor, hi))
    return out


def _attach(
    session: Session, name: str, lo: datetime, hi: datetime, report: PartitionReport
) -> bool:
    """Create ``name`` for ``[lo, hi)`` with the default partition's rows of that range, and
    attach it; False (and ``skipped``) when a lock was not granted in time."""
    bounds = {"lo": lo, "hi": hi}
    try:
        with session.begin_nested():
            session.execute(
                text(
                    f'CREATE TABLE {SCHEMA}."{name}" (LIKE public.{PARENT} INCLUDING DEFAULTS '
                    "INCLUDING CONSTRAINTS INCLUDING STORAGE)"
                )
            )
            # rows of the range routed to the default partition move first (ATTACH refuses a
            # default partition holding rows of the new range); the lock keeps new ones out
            # until the attach commits
            session.execute(text(f"LOCK TABLE {SCHEMA}.{DEFAULT} IN ACCESS EXCLUSIVE MODE"))
            result = session.execute(
                text(
                    f"WITH m AS (DELETE FROM {SCHEMA}.{DEFAULT} WHERE at >= :lo AND at < :hi "
                    f'RETURNING *) INSERT INTO {SCHEMA}."{name}" SELECT * FROM m'
                ),
                bounds,
            )
            moved = int(result.rowcount or 0)  # type: ignore[attr-defined]
            lo_sql, hi_sql = (v.isoformat() for v in (lo, hi))
            session.execute(
                text(
                    f'ALTER TABLE public.{PARENT} ATTACH PARTITION {SCHEMA}."{name}" '
                    f"FOR VALUES FROM ('{lo_sql}') TO ('{hi_sql}')"
                )
            )
    except Exception as exc:
        if not _lock_timeout(exc):
            raise
        report.skipped = f"{name}: lock not granted within {_LOCK_TIMEOUT}"
        return False
    report.created.append(name)
    report.moved += moved
    return True
