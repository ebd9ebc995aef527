"""Database tables (SQLAlchemy 2 + GeoAlchemy2). Geometry is stored in EPSG:4326."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    ARRAY,
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LEVELS = ("city", "district", "street", "community", "unit")

# Every city-owned table has the city key leading its primary key, every unique constraint and
# every foreign key between city tables, so that Citus can distribute each table by ``city`` and
# co-locate a city's rows of all tables on one worker (``citygrid distribute``). Tables with a
# generated ``id`` keep ``id`` alone as the ORM identity (``__mapper_args__``): ids come from one
# sequence, so ``session.get(Case, id)`` stays exact.


class Base(DeclarativeBase):
    """Declarative base for every citygrid table."""


class Grid(Base):
    """One version of one grid at any of the five levels.

    A boundary change closes the current version (``valid_to``) and inserts the next one, so a
    case keeps pointing at the grid that was valid when it was reported.
    """

    __tablename__ = "grids"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="grids_pkey"),
        UniqueConstraint("city", "code", "version", name="uq_grids_city_code_version"),
        Index(
            "uq_grids_current_code",
            "city",
            "code",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_grids_city_level_parent", "city", "level", "parent_code"),
        # the grids' data version: the next validity boundary after now
        Index("ix_grids_city_valid_from", "city", "valid_from"),
        Index("ix_grids_city_valid_to", "city", "valid_to"),
        CheckConstraint(
            "level IN ('city', 'district', 'street', 'community', 'unit')", name="ck_grids_level"
        ),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="ck_grids_validity"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(15))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(Text)
    area_m2: Mapped[float] = mapped_column(Float)
    responsible_unit: Mapped[str | None] = mapped_column(Text)
    responsible_persons: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    land_use: Mapped[str | None] = mapped_column(Text)
    management_grade: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )


class HotspotKind(Base):
    """A kind of hotspot (farmer market, rail corridor …); cities add their own."""

    __tablename__ = "hotspot_kinds"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    default_buffer_m: Mapped[float] = mapped_column(Float, server_default=text("0"))
    default_risk_weight: Mapped[float] = mapped_column(Float, server_default=text("1"))


class Hotspot(Base):
    """A place that breeds problems, with an influence zone (its geometry buffered in metres)."""

    __tablename__ = "hotspots"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="hotspots_pkey"),
        UniqueConstraint("city", "key", name="uq_hotspots_city_key"),
        ForeignKeyConstraint(
            ["city", "kind"],
            ["hotspot_kinds.city", "hotspot_kinds.key"],
            name="fk_hotspots_kind",
        ),
        CheckConstraint("buffer_m >= 0", name="ck_hotspots_buffer"),
        CheckConstraint(
            "ST_GeometryType(geom) IN ('ST_Point', 'ST_MultiPoint', 'ST_LineString', "
            "'ST_MultiLineString', 'ST_Polygon', 'ST_MultiPolygon')",
            name="ck_hotspots_geometry_type",
        ),
        CheckConstraint("active_to IS NULL OR active_to > active_from", name="ck_hotspots_active"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    buffer_m: Mapped[float] = mapped_column(Float)
    active_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_unit: Mapped[str | None] = mapped_column(Text)
    owner_name: Mapped[str | None] = mapped_column(Text)
    owner_phone: Mapped[str | None] = mapped_column(Text)
    risk_weight: Mapped[float] = mapped_column(Float, server_default=text("1"))
    patrol_quota_per_week: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[WKBElement] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    zone: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)
    )
    # moves on every edit, so caches of coverage see a changed zone (see the coverage fingerprint)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Category(Base):
    """A case category (event or component class) with its deadline and default department."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("family IN ('event', 'component')", name="ck_categories_family"),
        CheckConstraint("deadline_unit IN ('hours', 'days')", name="ck_categories_unit"),
        CheckConstraint("deadline_amount > 0", name="ck_categories_deadline"),
    )

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    family: Mapped[str] = mapped_column(String(12))
    major_code: Mapped[str] = mapped_column(String(4))
    major_name: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    deadline_amount: Mapped[float] = mapped_column(Float)
    deadline_unit: Mapped[str] = mapped_column(String(8))
    department: Mapped[str] = mapped_column(Text)
    required_fields: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    local: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # whether a patrol can be expected to find it (漏报数 counts only these)
    patrol_visible: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class RoutingRule(Base):
    """Who handles a case: by category prefix × area (grid code prefix); most specific wins."""

    __tablename__ = "routing_rules"
    __table_args__ = (PrimaryKeyConstraint("city", "id", name="routing_rules_pkey"),)

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12), index=True)
    category_prefix: Mapped[str] = mapped_column(String(8), server_default=text("''"))
    area_prefix: Mapped[str] = mapped_column(String(15), server_default=text("''"))
    department: Mapped[str] = mapped_column(Text)
    hotspot_owner_first: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Case(Base):
    """One reported problem, mapped to the grid valid when it was reported."""

    __tablename__ = "cases"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="cases_pkey"),
        Index("ix_cases_city_reported", "city", "reported_at", "id"),
        Index(
            "ix_cases_open_deadline",
            "city",
            "deadline_at",
            postgresql_where=text(
                "status IN ('reported', 'registered', 'dispatched', 'handling', 'fed_back')"
            ),
        ),
        Index(
            "ix_cases_city_grid",
            "city",
            "grid_code",
            postgresql_ops={"grid_code": "text_pattern_ops"},
        ),
        # scoped reads: cases dispatched to a department, cases a user or key reported
        Index("ix_cases_city_department", "city", "department"),
        Index(
            "ix_cases_reporter_user",
            "city",
            "reporter_user_id",
            postgresql_where=text("reporter_user_id IS NOT NULL"),
        ),
        Index(
            "ix_cases_reporter_key",
            "city",
            "reporter_key_id",
            postgresql_where=text("reporter_key_id IS NOT NULL"),
        ),
        # the assessment's period scans: cases touched since a period began
        Index("ix_cases_city_updated", "city", "updated_at"),
        # case tiles: the open cases in a tile's envelope, without walking the closed ones
        Index(
            "ix_cases_open_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text(
                "status IN ('reported', 'registered', 'dispatched', 'handling', 'fed_back')"
            ),
        ),
        CheckConstraint(
            "(satisfaction IS NULL OR satisfaction IN ('满意', '基本满意', '不满意'))"
            " AND (quality IS NULL OR quality BETWEEN 1 AND 5)",
            name="ck_cases_evaluation",
        ),
        Index(
            "uq_cases_idempotency",
            "city",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    category_code: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reporters: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    photos: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    datum: Mapped[str] = mapped_column(String(8), server_default=text("'wgs84'"))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    # derived in the database so bulk loads send two floats instead of a geometry to parse
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True),
        Computed("ST_SetSRID(ST_MakePoint(lon, lat), 4326)", persisted=True),
    )
    # no foreign keys on this high-volume table: categories and grid versions are never deleted
    # (grids are closed, not removed) and every intake path checks the category first, while
    # per-row FK triggers would cost a third of bulk-load time
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_code: Mapped[str | None] = mapped_column(String(15))
    grid_candidates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    hotspot_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )
    department: Mapped[str | None] = mapped_column(Text)
    routed_by: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger)
    recurring_of: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # the account or API key that reported the case (none: a citizen, an import, old rows)
    reporter_user_id: Mapped[int | None] = mapped_column(BigInteger)
    reporter_key_id: Mapped[int | None] = mapped_column(BigInteger)
    lock_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # 综合评价 of a closed case (once; the evaluate event holds the same values and who rated)
    satisfaction: Mapped[str | None] = mapped_column(String(8))
    quality: Mapped[int | None] = mapped_column(Integer)
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseEvent(Base):
    """One step of a case's history; append-only (a trigger refuses updates and deletes)."""

    __tablename__ = "case_events"
    # the assessment reads the history of a period (and after it) by time
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="case_events_pkey"),
        ForeignKeyConstraint(
            ["city", "case_id"], ["cases.city", "cases.id"], name="case_events_case_id_fkey"
        ),
        Index("ix_case_events_at", "at"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(Text)  # who, as shown (old rows: the free text sent)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)  # the account that acted
    actor_key_id: Mapped[int | None] = mapped_column(BigInteger)  # or the API key
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False)
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class Worker(Base):
    """A grid worker (网格员) and the unit grids assigned to them."""

    __tablename__ = "workers"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    grid_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(15)), server_default=text("'{}'::varchar[]")
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Device(Base):
    """A phone that sends GPS fixes, carried by one worker; ``id`` is the compact key fixes use."""

    __tablename__ = "devices"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="devices_pkey"),
        UniqueConstraint("city", "device_id", name="uq_devices_city_device"),
        ForeignKeyConstraint(
            ["city", "worker_code"], ["workers.city", "workers.code"], name="fk_devices_worker"
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    device_id: Mapped[str] = mapped_column(String(64))
    worker_code: Mapped[str] = mapped_column(String(32))


class PatrolSession(Base):
    """A patrol shift of one worker on one device; tracks never run across a session edge."""

    __tablename__ = "patrol_sessions"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="patrol_sessions_pkey"),
        ForeignKeyConstraint(
            ["city", "device_key"],
            ["devices.city", "devices.id"],
            name="patrol_sessions_device_key_fkey",
        ),
        Index("ix_patrol_sessions_device", "device_key", "started_at"),
        CheckConstraint("ended_at IS NULL OR ended_at > started_at", name="ck_sessions_order"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    device_key: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GpsFix(Base):
    """One raw GPS fix as received (converted to WGS 84); one per device and timestamp.

    Cleaning never edits fixes: it decides which fixes make up the derived tracks. The table is
    partitioned by local day of ``at`` (``service.patrol.partitions``); old days are dropped
    whole while tracks and coverage stay.
    """

    __tablename__ = "gps_fixes"
    __table_args__ = (
        # time-ordered appends: a BRIN index serves period scans at a fraction of a btree's cost
        Index("ix_gps_fixes_at", "at", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    # no foreign key: 100k+ fixes/s are loaded by COPY and every path checks the device first
    device_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(REAL)
    speed_mps: Mapped[float | None] = mapped_column(REAL)


class PatrolTrack(Base):
    """A cleaned stretch of one device's fixes, rebuilt whenever fixes in its window arrive."""

    __tablename__ = "patrol_tracks"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="patrol_tracks_pkey"),
        Index("ix_patrol_tracks_city_time", "city", "started_at", "ended_at"),
        Index("ix_patrol_tracks_device_time", "device_key", "started_at"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    device_key: Mapped[int] = mapped_column(BigInteger)
    worker_code: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    n_fixes: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(Float)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # M = Unix time of each vertex (seconds): the line keeps its timing for coverage
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("LINESTRINGM", srid=4326, dimension=3, spatial_index=True)
    )


class Street(Base):
    """A street centre line; grids with streets also get a street-length coverage share."""

    __tablename__ = "streets"
    __table_args__ = (PrimaryKeyConstraint("city", "id", name="streets_pkey"),)

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(20))
    geom: Mapped[WKBElement] = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class CoverageRun(Base):
    """Coverage of one period, stored so maps and rankings read it without recomputing."""

    __tablename__ = "coverage_runs"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="coverage_runs_pkey"),
        UniqueConstraint("city", "period", "period_start", name="uq_coverage_runs_period"),
        CheckConstraint("period IN ('hour', 'day', 'week')", name="ck_coverage_runs_period"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # what the run was computed from (tracks and grid set); a different one means stale
    fingerprint: Mapped[str] = mapped_column(String(64))
    radius_m: Mapped[float] = mapped_column(Float)


class GridCoverage(Base):
    """Coverage of one unit grid in one period (see ``gis.coverage``)."""

    __tablename__ = "grid_coverage"
    __table_args__ = (
        PrimaryKeyConstraint("city", "run_id", "grid_code", name="grid_coverage_pkey"),
        ForeignKeyConstraint(
            ["city", "run_id"],
            ["coverage_runs.city", "coverage_runs.id"],
            name="grid_coverage_run_id_fkey",
            ondelete="CASCADE",
        ),
    )

    city: Mapped[str] = mapped_column(String(12))
    run_id: Mapped[int] = mapped_column(BigInteger)
    grid_code: Mapped[str] = mapped_column(String(15))
    covered_share: Mapped[float] = mapped_column(Float)
    street_share: Mapped[float | None] = mapped_column(Float)
    visits: Mapped[int] = mapped_column(Integer)
    workers: Mapped[int] = mapped_column(Integer)
    dwell_s: Mapped[float] = mapped_column(Float)
    first_visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mean_revisit_s: Mapped[float | None] = mapped_column(Float)


class HotspotCoverage(Base):
    """Coverage of one hotspot's influence zone in one period, against its patrol quota."""

    __tablename__ = "hotspot_coverage"
    __table_args__ = (
        PrimaryKeyConstraint("city", "run_id", "hotspot_id", name="hotspot_coverage_pkey"),
        ForeignKeyConstraint(
            ["city", "run_id"],
            ["coverage_runs.city", "coverage_runs.id"],
            name="hotspot_coverage_run_id_fkey",
            ondelete="CASCADE",
        ),
    )

    city: Mapped[str] = mapped_column(String(12))
    run_id: Mapped[int] = mapped_column(BigInteger)
    hotspot_id: Mapped[int] = mapped_column(BigInteger)
    covered_share: Mapped[float | None] = mapped_column(Float)
    visits: Mapped[int] = mapped_column(Integer)
    workers: Mapped[int] = mapped_column(Integer)
    dwell_s: Mapped[float] = mapped_column(Float)
    last_visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quota_visits: Mapped[float | None] = mapped_column(Float)


class ChangeCounter(Base):
    """A counter bumped (in the writing transaction) by every statement that changes a table:
    a cheap, exact "has anything changed" for caches such as the vector tiles."""

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class CaseClusterCell(Base):
    """Open cases of a city counted in one cluster cell of one zoom (8 × 8 cells per tile),
    rebuilt by ``service.maps.clusters`` when the cases change; no triggers."""

    __tablename__ = "case_cluster_cells"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    z: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    gx: Mapped[int] = mapped_column(Integer, primary_key=True)
    gy: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    # overdue at ``case_cluster_builds.counted_at`` (a tile adds the deadlines passed since)
    n_overdue: Mapped[int] = mapped_column(Integer)
    # summed Web Mercator metres: the cluster is drawn at the mean
    sum_mx: Mapped[float] = mapped_column(Float)
    sum_my: Mapped[float] = mapped_column(Float)


class CaseClusterBuild(Base):
    """Which state of the cases table (change counter) a city's cluster cells count."""

    __tablename__ = "case_cluster_builds"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    cases_version: Mapped[int] = mapped_column(BigInteger)
    counted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    open_cases: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)


class HeatLayerBuild(Base):
    """The per-grid values of one heat layer for one filter and scope (``layer_key``), with
    its legend and the data version they were computed at (``service.maps.heattiles``)."""

    __tablename__ = "heat_layer_builds"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    layer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    layer: Mapped[str] = mapped_column(String(20))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[str] = mapped_column(Text)
    legend: Mapped[dict[str, Any]] = mapped_column(JSONB)
    features: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float] = mapped_column(Float)


class HeatLayerValue(Base):
    """One grid's feature properties (value, fill, click-through) of a stored heat layer."""

    __tablename__ = "heat_layer_values"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    layer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    props: Mapped[dict[str, Any]] = mapped_column(JSONB)


class HeatLayerTile(Base):
    """A rendered tile of a stored heat layer (deleted when the layer is computed again)."""

    __tablename__ = "heat_layer_tiles"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    layer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    z: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    x: Mapped[int] = mapped_column(Integer, primary_key=True)
    y: Mapped[int] = mapped_column(Integer, primary_key=True)
    datum: Mapped[str] = mapped_column(String(8), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Role(Base):
    """A role: a named set of permissions, editable data (seeded per city)."""

    __tablename__ = "roles"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))


class User(Base):
    """An account: who someone is, what unit they belong to, and where they may act."""

    __tablename__ = "users"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="users_pkey"),
        UniqueConstraint("city", "login", name="uq_users_city_login"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    login: Mapped[str] = mapped_column(String(60))
    display_name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(40))
    unit: Mapped[str | None] = mapped_column(Text)  # the office or department they work in
    department: Mapped[str | None] = mapped_column(Text)  # cases dispatched here are in scope
    # grid codes whose subtrees are in scope; empty with no department: the whole city
    scope_grids: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default=text("'{}'"))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    password_hash: Mapped[str | None] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class ApiKey(Base):
    """A key for a system client: a named set of permissions and a scope, stored hashed."""

    __tablename__ = "api_keys"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="api_keys_pkey"),
        UniqueConstraint("city", "prefix", name="uq_api_keys_city_prefix"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists; finds the key
    secret_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the whole key
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    scope_grids: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default=text("'{}'"))
    department: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    """A refresh token (stored hashed). Each use hands out the next one of its family; using
    one twice revokes the whole family (a stolen token is good for one refresh at most)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="refresh_tokens_pkey"),
        UniqueConstraint("city", "token_hash", name="uq_refresh_tokens_city_hash"),
        ForeignKeyConstraint(
            ["city", "user_id"],
            ["users.city", "users.id"],
            name="refresh_tokens_user_id_fkey",
            ondelete="CASCADE",
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One write, who made it, and the thing before and after; append-only (a trigger refuses
    updates and deletes)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="audit_log_pkey"),
        Index("ix_audit_log_city_at", "city", "at"),
        Index("ix_audit_log_entity", "city", "entity", "entity_key", "id"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    actor_kind: Mapped[str] = mapped_column(String(12))  # user | key | system | anonymous
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class IndicatorDefinition(Base):
    """One version of one assessment indicator (``service.assessment.definitions``): a count,
    or a quotient of two counts named by ``numerator`` and ``denominator``. The version in
    force for a period is the latest whose ``valid_from`` is not after the period's start."""

    __tablename__ = "indicator_definitions"
    __table_args__ = (
        CheckConstraint("kind IN ('count', 'rate', 'hours')", name="ck_indicator_definitions_kind"),
        CheckConstraint(
            "(kind = 'count') = (numerator IS NULL AND denominator IS NULL)",
            name="ck_indicator_definitions_quotient",
        ),
        CheckConstraint("version >= 1", name="ck_indicator_definitions_version"),
    )

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(16))
    formula: Mapped[str] = mapped_column(Text)
    numerator: Mapped[str | None] = mapped_column(String(40))
    denominator: Mapped[str | None] = mapped_column(String(40))
    subjects: Mapped[list[str]] = mapped_column(ARRAY(String(12)), server_default=text("'{}'"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScoringScheme(Base):
    """One version of a scoring scheme (``service.assessment.schemes``): which indicators make a
    subject's score, their weights and points rules, deductions, bonuses, grades and the red and
    yellow lists, as a validated JSON document. ``city`` NULL is the default every city starts
    with; the scheme in force for a period is the latest ``valid_from`` not after its start."""

    __tablename__ = "scoring_schemes"
    __table_args__ = (
        CheckConstraint("version >= 1", name="ck_scoring_schemes_version"),
        Index("ix_scoring_schemes_city_valid", "city", "valid_from"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city: Mapped[str | None] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    created_by: Mapped[str | None] = mapped_column(Text)


class PublishedList(Base):
    """One revision of a period's published 红黄榜: a frozen snapshot of every score, its
    components, ranks and lists, the scheme version and a stamp of the data it was computed
    from. Revision 1 is the publication; later revisions are corrections with a reason."""

    __tablename__ = "assessment_lists"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="assessment_lists_pkey"),
        UniqueConstraint("city", "period", "revision", name="uq_assessment_lists_revision"),
        CheckConstraint("revision >= 1", name="ck_assessment_lists_revision"),
        CheckConstraint("revision = 1 OR reason IS NOT NULL", name="ck_assessment_lists_reason"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    period: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("scoring_schemes.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_by: Mapped[str] = mapped_column(Text)
    data_stamp: Mapped[dict[str, Any]] = mapped_column(JSONB)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)


class Checklist(Base):
    """One version of an inspection checklist (交叉考核细则): items with maximum points, stored
    whole in ``items`` (a version is never edited; a change is a new version). Checklists are
    shared by every city, like the indicator definitions."""

    __tablename__ = "checklists"
    __table_args__ = (
        UniqueConstraint("key", "version", name="uq_checklists_key_version"),
        CheckConstraint("version >= 1", name="ck_checklists_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    # [{code, name_zh, name_en, max_points, hotspot_kind|null}], in the order scorers see them
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class InspectionRound(Base):
    """A cross-scoring round (交叉考核) of one city for one period: which grids, which scorers,
    which checklist; ``draft`` → ``open`` (scoring) → ``closed``."""

    __tablename__ = "inspection_rounds"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="inspection_rounds_pkey"),
        CheckConstraint("state IN ('draft', 'open', 'closed')", name="ck_inspection_rounds_state"),
        Index("ix_inspection_rounds_city_start", "city", "period_start"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    period: Mapped[str] = mapped_column(String(40))  # the label, e.g. 2026-11
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checklist_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("checklists.id"))
    state: Mapped[str] = mapped_column(String(8), server_default=text("'draft'"))
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default=text("'{}'"))
    scorer_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    scorers_per_grid: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoundAssignment(Base):
    """One scorer assigned to score one grid in a round."""

    __tablename__ = "round_assignments"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="round_assignments_pkey"),
        ForeignKeyConstraint(
            ["city", "round_id"],
            ["inspection_rounds.city", "inspection_rounds.id"],
            name="round_assignments_round_id_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["city", "scorer_id"],
            ["users.city", "users.id"],
            name="round_assignments_scorer_id_fkey",
        ),
        UniqueConstraint(
            "city", "round_id", "grid_code", "scorer_id", name="uq_round_assignments_pair"
        ),
        Index("ix_round_assignments_scorer", "scorer_id"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    round_id: Mapped[int] = mapped_column(BigInteger, index=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    scorer_id: Mapped[int] = mapped_column(BigInteger)


class Scoresheet(Base):
    """A scorer's filled checklist for one grid of a round, submitted once: the points per
    item (``items``: [{code, points, max_points, note}]), the total, and the 0–100 score."""

    __tablename__ = "scoresheets"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="scoresheets_pkey"),
        ForeignKeyConstraint(
            ["city", "assignment_id"],
            ["round_assignments.city", "round_assignments.id"],
            name="scoresheets_assignment_id_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["city", "round_id"],
            ["inspection_rounds.city", "inspection_rounds.id"],
            name="scoresheets_round_id_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["city", "scorer_id"], ["users.city", "users.id"], name="scoresheets_scorer_id_fkey"
        ),
        UniqueConstraint("city", "assignment_id", name="uq_scoresheets_assignment"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    round_id: Mapped[int] = mapped_column(BigInteger, index=True)
    assignment_id: Mapped[int] = mapped_column(BigInteger)
    grid_code: Mapped[str] = mapped_column(String(15))
    scorer_id: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)  # points ÷ max_points × 100
    notes: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class WorkerAssignment(Base):
    """One (worker, unit grid) assignment and when it held: ``[valid_from, valid_to)``.

    Written by the trigger ``tr_workers_assignment_history`` on ``workers`` (migration 0014),
    never by the service: the grids a worker is registered with hold from ``-infinity``, each
    later change of ``grid_codes`` or ``active`` is dated ``now()``."""

    __tablename__ = "worker_assignments"
    __table_args__ = (
        CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name="ck_worker_assignments_period"
        ),
        Index("ix_worker_assignments_grid", "city", "grid_code", "valid_from"),
    )

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    worker_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderCounter(Base):
    """The last 督办单 number given in a city and year: the next one is allocated by bumping
    this row inside the issuing transaction (its row lock serialises issuers, and a rolled-back
    issue gives its number back, so numbers have no gaps)."""

    __tablename__ = "supervision_order_counters"

    city: Mapped[str] = mapped_column(String(12), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class EscalationRule(Base):
    """An escalation rule (``service.supervision.rules``): which cases breach it (``kind`` and
    ``params``), whether the sweep proposes or issues an order, the working days the unit gets
    and the demand it is given. ``city`` NULL is the default every city starts with; a city's
    own row of the same key (an admin's edit) replaces it."""

    __tablename__ = "escalation_rules"
    __table_args__ = (
        UniqueConstraint(
            "city", "key", name="uq_escalation_rules_city_key", postgresql_nulls_not_distinct=True
        ),
        CheckConstraint("mode IN ('propose', 'issue')", name="ck_escalation_rules_mode"),
        CheckConstraint("deadline_days > 0", name="ck_escalation_rules_deadline"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    city: Mapped[str | None] = mapped_column(String(12))
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    mode: Mapped[str] = mapped_column(String(8))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    deadline_days: Mapped[int] = mapped_column(Integer)
    demand: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Campaign(Base):
    """A campaign (专项行动 / 专项整治) of one city: a period of local days, a scope (grid
    subtrees, hotspots, categories), targets and a back-planned schedule (倒排进度), all data.

    ``starts_at`` / ``ends_at`` are the local midnights bounding the period (``[start day,
    day after end)``), kept so tagging compares instants without time-zone arithmetic.
    """

    __tablename__ = "campaigns"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="campaigns_pkey"),
        CheckConstraint("end_date >= start_date", name="ck_campaigns_period"),
        Index("ix_campaigns_city_period", "city", "start_date", "end_date"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the scope as given (grid codes) and as matched (their subtree code prefixes)
    grid_codes: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default=text("'{}'"))
    grid_prefixes: Mapped[list[str]] = mapped_column(ARRAY(String(15)), server_default=text("'{}'"))
    hotspot_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )
    category_codes: Mapped[list[str]] = mapped_column(ARRAY(String(8)), server_default=text("'{}'"))
    # [{key, kind, label, goal, categories, hotspot_ids}] (see service.campaigns.targets)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # [{date, share}], dates and shares increasing (倒排进度)
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # [{user_id, login} | {department}]
    owners: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class SupervisionOrder(Base):
    """A supervision order (督办单): cases (or a grid, hotspot or department problem) put to a
    responsible unit and person with a demand and a deadline, by a leader or by an escalation
    rule. ``proposed`` → ``issued`` (numbered) → ``acknowledged`` → ``answered`` → ``accepted``,
    or ``sent_back`` and answered again; a proposal may be ``dismissed``. An order whose
    deadline passes unanswered is escalated once (``parent_id``) one level up the chain."""

    __tablename__ = "supervision_orders"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="supervision_orders_pkey"),
        ForeignKeyConstraint(
            ["city", "parent_id"],
            ["supervision_orders.city", "supervision_orders.id"],
            name="supervision_orders_parent_id_fkey",
        ),
        UniqueConstraint("city", "year", "seq", name="uq_supervision_orders_number"),
        # at most one order per case and rule at each level (the sweep relies on it)
        UniqueConstraint(
            "city", "rule_key", "trigger_case_id", "level", name="uq_supervision_orders_rule_case"
        ),
        # an order is escalated at most once
        UniqueConstraint("city", "parent_id", name="uq_supervision_orders_parent"),
        CheckConstraint(
            "status IN ('proposed', 'dismissed', 'issued', 'acknowledged', 'answered', "
            "'sent_back', 'accepted')",
            name="ck_supervision_orders_status",
        ),
        CheckConstraint(
            "number IS NOT NULL OR status IN ('proposed', 'dismissed')",
            name="ck_supervision_orders_numbered",
        ),
        CheckConstraint(
            "unit_kind IN ('department', 'grid')", name="ck_supervision_orders_unit_kind"
        ),
        CheckConstraint(
            "subject_kind IN ('cases', 'grid', 'hotspot', 'department')",
            name="ck_supervision_orders_subject",
        ),
        CheckConstraint("level >= 1", name="ck_supervision_orders_level"),
        Index("ix_supervision_orders_case_ids", "case_ids", postgresql_using="gin"),
        Index("ix_supervision_orders_city_status", "city", "status", "deadline_at"),
        Index("ix_supervision_orders_city_unit", "city", "unit_kind", "unit"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    year: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    subject_kind: Mapped[str] = mapped_column(String(12))
    subject_key: Mapped[str | None] = mapped_column(Text)
    case_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )
    unit_kind: Mapped[str] = mapped_column(String(12))
    unit: Mapped[str] = mapped_column(Text)  # a department's name or a grid code
    unit_name: Mapped[str] = mapped_column(Text)
    person_name: Mapped[str | None] = mapped_column(Text)
    person_phone: Mapped[str | None] = mapped_column(Text)
    demand: Mapped[str] = mapped_column(Text)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str | None] = mapped_column(Text)
    issued_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    level: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    rule_key: Mapped[str | None] = mapped_column(String(40))
    trigger_case_id: Mapped[int | None] = mapped_column(BigInteger)
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SupervisionOrderEvent(Base):
    """One step of an order's history (who, when, what, a note); append-only."""

    __tablename__ = "supervision_order_events"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="supervision_order_events_pkey"),
        ForeignKeyConstraint(
            ["city", "order_id"],
            ["supervision_orders.city", "supervision_orders.id"],
            name="supervision_order_events_order_id_fkey",
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_key_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)


class CampaignCase(Base):
    """A case carrying a campaign's tag: reported in the campaign's scope during its period."""

    __tablename__ = "campaign_cases"
    __table_args__ = (
        PrimaryKeyConstraint("city", "campaign_id", "case_id", name="campaign_cases_pkey"),
        ForeignKeyConstraint(
            ["city", "campaign_id"],
            ["campaigns.city", "campaigns.id"],
            name="campaign_cases_campaign_id_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["city", "case_id"], ["cases.city", "cases.id"], name="campaign_cases_case_id_fkey"
        ),
        Index("ix_campaign_cases_case", "case_id"),
    )

    city: Mapped[str] = mapped_column(String(12))
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(BigInteger)


class Document(Base):
    """One issued document of the daily set (三个一): a 工作简报, 督查通报 or 问题台账 of a scope
    (a grid code) and a period, in one format, stored byte for byte as issued with the hash of
    its content and a version of the data it was made from. A regeneration is the next
    ``issue`` of the same document; issue 1 is the scheduled (or first) one."""

    __tablename__ = "documents"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="documents_pkey"),
        UniqueConstraint(
            "city", "kind", "scope", "period", "format", "issue", name="uq_documents_issue"
        ),
        CheckConstraint("kind IN ('brief', 'circular', 'ledger')", name="ck_documents_kind"),
        CheckConstraint("format IN ('docx', 'pdf', 'html', 'xlsx')", name="ck_documents_format"),
        CheckConstraint("issue >= 1", name="ck_documents_issue"),
        Index("ix_documents_city_day", "city", "first_day", "scope"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(15))
    period: Mapped[str] = mapped_column(String(40))  # the period label: 2026-11-28, 2026-W48 …
    period_kind: Mapped[str] = mapped_column(String(8))  # day | week | month
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    format: Mapped[str] = mapped_column(String(5))
    issue: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    data_version: Mapped[str] = mapped_column(String(64))  # sha256 of the figures rendered
    data_stamp: Mapped[dict[str, Any]] = mapped_column(JSONB)  # change marks of the data
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class NotifySubscription(Base):
    """A webhook (or gateway) subscription of one city: which event kinds, for which scope
    (the whole city, a department, a grid subtree by code prefix, or a user's own scope), sent
    where, signed with which secret. The secret is kept as written: every delivery is signed
    with it (HMAC-SHA256), so it cannot be stored hashed; it is shown once, on create."""

    __tablename__ = "notify_subscriptions"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="notify_subscriptions_pkey"),
        ForeignKeyConstraint(
            ["city", "user_id"],
            ["users.city", "users.id"],
            name="notify_subscriptions_user_id_fkey",
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "(scope_kind = 'city' AND department IS NULL AND grid_prefix IS NULL"
            " AND user_id IS NULL)"
            " OR (scope_kind = 'department' AND department IS NOT NULL)"
            " OR (scope_kind = 'grid' AND grid_prefix IS NOT NULL)"
            " OR (scope_kind = 'user' AND user_id IS NOT NULL)",
            name="ck_notify_subscriptions_scope",
        ),
        Index("ix_notify_subscriptions_city_active", "city", "active"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    transport: Mapped[str] = mapped_column(String(20), server_default=text("'webhook'"))
    url: Mapped[str] = mapped_column(Text)  # the webhook URL (or the gateway's address)
    secret: Mapped[str] = mapped_column(String(80))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    scope_kind: Mapped[str] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(Text)
    grid_prefix: Mapped[str | None] = mapped_column(String(15))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[str] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class NotifyEvent(Base):
    """The outbox: one event, written in the transaction of the change it announces (so it
    exists exactly when the change was committed). ``key`` makes an event happen once (e.g.
    ``case.overdue:<case id>``)."""

    __tablename__ = "notify_events"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="notify_events_pkey"),
        Index(
            "uq_notify_events_city_key",
            "city",
            "key",
            unique=True,
            postgresql_where=text("key IS NOT NULL"),
        ),
        Index("ix_notify_events_city_at", "city", "created_at"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200))
    grid_code: Mapped[str | None] = mapped_column(String(15))
    department: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotifyDelivery(Base):
    """One event for one subscription: ``pending`` until sent (claimed row by row with
    ``FOR UPDATE SKIP LOCKED``), then ``delivered``, or ``failed`` after the last attempt."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="notify_deliveries_pkey"),
        ForeignKeyConstraint(
            ["city", "event_id"],
            ["notify_events.city", "notify_events.id"],
            name="notify_deliveries_event_id_fkey",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["city", "subscription_id"],
            ["notify_subscriptions.city", "notify_subscriptions.id"],
            name="notify_deliveries_subscription_id_fkey",
            ondelete="CASCADE",
        ),
        UniqueConstraint("city", "event_id", "subscription_id", name="uq_notify_deliveries_pair"),
        CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name="ck_notify_deliveries_state"
        ),
        Index(
            "ix_notify_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_notify_deliveries_subscription", "subscription_id", "id"),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    event_id: Mapped[int] = mapped_column(BigInteger)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotifyAttempt(Base):
    """The delivery log: one try of a delivery, its answer (status code) or error, and how
    long it took."""

    __tablename__ = "notify_attempts"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="notify_attempts_pkey"),
        ForeignKeyConstraint(
            ["city", "delivery_id"],
            ["notify_deliveries.city", "notify_deliveries.id"],
            name="notify_attempts_delivery_id_fkey",
            ondelete="CASCADE",
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    delivery_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)


class Photo(Base):
    """A photo or short video of a case — or of a grid scored in an inspection round — who
    uploaded it, when, at which step (report, feedback, verification, inspection) and stage
    (before, during, after), its content hashes, its EXIF
    time and position and the uploader's reported position, and what the evidence check
    flagged. The files live in the photo store under ``sha256`` (``service.photos.store``).

    Retention marks a row deleted (``deleted_at``), removes its files and clears its
    positions; its hashes stay so that a later reuse is still recognised."""

    __tablename__ = "photos"
    __table_args__ = (
        PrimaryKeyConstraint("city", "id", name="photos_pkey"),
        ForeignKeyConstraint(
            ["city", "case_id"], ["cases.city", "cases.id"], name="photos_case_id_fkey"
        ),
        ForeignKeyConstraint(
            ["city", "round_id"],
            ["inspection_rounds.city", "inspection_rounds.id"],
            name="photos_round_id_fkey",
        ),
        CheckConstraint(
            "step IN ('report', 'feedback', 'verification', 'inspection')", name="ck_photos_step"
        ),
        # a case's photo, or a photo of a grid scored in an inspection round (交叉考核)
        CheckConstraint(
            "CASE WHEN step = 'inspection'"
            " THEN case_id IS NULL AND round_id IS NOT NULL AND grid_code IS NOT NULL"
            " ELSE case_id IS NOT NULL AND round_id IS NULL END",
            name="ck_photos_subject",
        ),
        CheckConstraint("stage IN ('before', 'during', 'after')", name="ck_photos_stage"),
        CheckConstraint("kind IN ('image', 'video')", name="ck_photos_kind"),
        Index("ix_photos_city_case", "city", "case_id"),
        Index("ix_photos_round_grid", "round_id", "grid_code"),
        Index("ix_photos_city_sha256", "city", "sha256"),
        Index("ix_photos_city_created", "city", "created_at"),
        # the supervisors' list: flagged photos only
        Index(
            "ix_photos_city_flagged",
            "city",
            "created_at",
            postgresql_where=text("cardinality(flags) > 0"),
        ),
    )

    __mapper_args__ = {"primary_key": ["id"]}

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    city: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    round_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_code: Mapped[str | None] = mapped_column(String(15))  # the grid scored (inspection)
    step: Mapped[str] = mapped_column(String(12))
    stage: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(5))
    mime: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int | None] = mapped_column(BigInteger)  # 64-bit pHash, signed
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    uploader: Mapped[str] = mapped_column(Text)  # Principal.label
    uploader_user_id: Mapped[int | None] = mapped_column(BigInteger)
    uploader_key_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # EXIF
    exif_geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False)
    )
    reported_geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False)
    )
    reported_accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)  # from the case, when checked
    reuse_of: Mapped[int | None] = mapped_column(BigInteger)  # an earlier photo, same picture
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
