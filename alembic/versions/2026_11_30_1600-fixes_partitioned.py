"""gps_fixes partitioned by day

``gps_fixes`` becomes a table partitioned by ``RANGE (at)``: one partition per local day of
the city's time zone (``CITYGRID_TIMEZONE``, default Asia/Shanghai), in the schema
``partitions`` (``partitions.gps_fixes_20261130``), plus ``partitions.gps_fixes_default`` for
fixes of a day that has no partition yet. The primary key stays (city, device_key, at): city
leads it for a later distribution by city, and ``at`` — the partition key — is in it, so it is
enforced across partitions. No trigger and no foreign key touches the table.

Upgrade: the existing table is renamed, the partitioned one is created with a partition for
every local day holding fixes and for today and the next
``CITYGRID_PATROL_PARTITIONS_AHEAD_DAYS`` (7) days, the fixes are copied over and the old table
dropped. Downgrade copies every fix (default partition included) back into one plain table.
Both copy every row in the migration's transaction (minutes for a few hundred million fixes).

No permission is added: partitions are kept by the server's sweeps and ``citygrid fixes
partitions`` (a command, no route), so no role needs a grant.

Revision ID: 0022_fixes_partitioned
Revises: 0021_evidence_indicator
Create Date: 2026-11-30 16:00:00
"""

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from alembic import op

revision: str = "0022_fixes_partitioned"
down_revision: str | None = "0021_evidence_indicator"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "partitions"
COLUMNS = """
    city varchar(12) NOT NULL,
    device_key bigint NOT NULL,
    at timestamptz NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    accuracy_m real,
    speed_mps real
"""


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def upgrade() -> None:
    # frozen here rather than imported: migrations never import the code's settings
    tz = os.environ.get("CITYGRID_TIMEZONE", "Asia/Shanghai")
    ahead = int(os.environ.get("CITYGRID_PATROL_PARTITIONS_AHEAD_DAYS", "7"))
    zone = ZoneInfo(tz)
    conn = op.get_bind()
    op.execute("ALTER TABLE gps_fixes RENAME TO gps_fixes_unpartitioned")
    op.execute("ALTER INDEX gps_fixes_pkey RENAME TO gps_fixes_unpartitioned_pkey")
    op.execute("ALTER INDEX ix_gps_fixes_at RENAME TO ix_gps_fixes_unpartitioned_at")
    op.execute(
        f"CREATE TABLE gps_fixes ({COLUMNS}, "
        "CONSTRAINT gps_fixes_pkey PRIMARY KEY (city, device_key, at)) PARTITION BY RANGE (at)"
    )
    op.execute("CREATE INDEX ix_gps_fixes_at ON gps_fixes USING brin (at)")
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(f"CREATE TABLE {SCHEMA}.gps_fixes_default PARTITION OF gps_fixes DEFAULT")
    present = conn.execute(
        sa.text("SELECT DISTINCT (at AT TIME ZONE :tz)::date FROM gps_fixes_unpartitioned"),
        {"tz": tz},
    ).scalars()
    today = datetime.now(UTC).astimezone(zone).date()
    days = set(present) | {today + timedelta(days=k) for k in range(ahead + 1)}
    for day in sorted(days):
        lo, hi = _day_bounds(day, zone)
        op.execute(
            f"CREATE TABLE {SCHEMA}.gps_fixes_{day:%Y%m%d} PARTITION OF gps_fixes "
            f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
        )
    op.execute("INSERT INTO gps_fixes SELECT * FROM gps_fixes_unpartitioned")
    op.execute("DROP TABLE gps_fixes_unpartitioned")


def downgrade() -> None:
    op.execute(f"CREATE TABLE gps_fixes_flat ({COLUMNS})")
    op.execute("INSERT INTO gps_fixes_flat SELECT * FROM gps_fixes")
    op.execute("DROP TABLE gps_fixes")  # its partitions with it
    # RESTRICT: a partition detached by hand and kept (an archive) stops the downgrade
    # rather than going with the schema
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}")
    op.execute("ALTER TABLE gps_fixes_flat RENAME TO gps_fixes")
    op.execute(
        "ALTER TABLE gps_fixes ADD CONSTRAINT gps_fixes_pkey PRIMARY KEY (city, device_key, at)"
    )
    op.execute("CREATE INDEX ix_gps_fixes_at ON gps_fixes USING brin (at)")
