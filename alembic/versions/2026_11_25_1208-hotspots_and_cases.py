"""hotspots and cases

Revision ID: 0002_hotspots_cases
Revises: 0001_grid_registry
Create Date: 2026-11-25 12:08:58.636556
"""

from collections.abc import Sequence

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0002_hotspots_cases"
down_revision: str | None = "0001_grid_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("family", sa.String(length=12), nullable=False),
        sa.Column("major_code", sa.String(length=4), nullable=False),
        sa.Column("major_name", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("deadline_amount", sa.Float(), nullable=False),
        sa.Column("deadline_unit", sa.String(length=8), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column(
            "required_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("local", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("deadline_unit IN ('hours', 'days')", name="ck_categories_unit"),
        sa.CheckConstraint("family IN ('event', 'component')", name="ck_categories_family"),
        sa.CheckConstraint("deadline_amount > 0", name="ck_categories_deadline"),
        sa.PrimaryKeyConstraint("city", "code"),
    )
    op.create_table(
        "hotspot_kinds",
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("default_buffer_m", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("default_risk_weight", sa.Float(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("city", "key"),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column(
            "category_prefix", sa.String(length=8), server_default=sa.text("''"), nullable=False
        ),
        sa.Column(
            "area_prefix", sa.String(length=15), server_default=sa.text("''"), nullable=False
        ),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column(
            "hotspot_owner_first", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_routing_rules_city"), "routing_rules", ["city"], unique=False)
    op.create_geospatial_table(
        "cases",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("category_code", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column(
            "reporters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "photos",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("datum", sa.String(length=8), server_default=sa.text("'wgs84'"), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            sa.Computed("ST_SetSRID(ST_MakePoint(lon, lat), 4326)", persisted=True),
            nullable=False,
        ),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column(
            "grid_candidates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "hotspot_ids",
            sa.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("routed_by", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("recurring_of", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("lock_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_cases_geom",
        "cases",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(
        "ix_cases_city_grid",
        "cases",
        ["city", "grid_code"],
        unique=False,
        postgresql_ops={"grid_code": "text_pattern_ops"},
    )
    op.create_index("ix_cases_city_reported", "cases", ["city", "reported_at", "id"], unique=False)
    op.create_index(
        "ix_cases_open_deadline",
        "cases",
        ["city", "deadline_at"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('reported', 'registered', 'dispatched', 'handling', 'fed_back')"
        ),
    )
    op.create_index(
        "uq_cases_idempotency",
        "cases",
        ["city", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_geospatial_table(
        "hotspots",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("buffer_m", sa.Float(), nullable=False),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_unit", sa.Text(), nullable=True),
        sa.Column("owner_name", sa.Text(), nullable=True),
        sa.Column("owner_phone", sa.Text(), nullable=True),
        sa.Column("risk_weight", sa.Float(), server_default=sa.text("1"), nullable=False),
        sa.Column("patrol_quota_per_week", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "zone",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "ST_GeometryType(geom) IN ('ST_Point', 'ST_MultiPoint', 'ST_LineString', 'ST_MultiLineString', 'ST_Polygon', 'ST_MultiPolygon')",
            name="ck_hotspots_geometry_type",
        ),
        sa.CheckConstraint(
            "active_to IS NULL OR active_to > active_from", name="ck_hotspots_active"
        ),
        sa.CheckConstraint("buffer_m >= 0", name="ck_hotspots_buffer"),
        sa.ForeignKeyConstraint(
            ["city", "kind"], ["hotspot_kinds.city", "hotspot_kinds.key"], name="fk_hotspots_kind"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "key", name="uq_hotspots_city_key"),
    )
    op.create_geospatial_index(
        "idx_hotspots_geom",
        "hotspots",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "idx_hotspots_zone",
        "hotspots",
        ["zone"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "photos",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_case_events_case_id"), "case_events", ["case_id"], unique=False)
    # the history is append-only: corrections are new events, never edits
    op.execute(
        "CREATE FUNCTION citygrid_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    op.execute(
        "CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events "
        "FOR EACH ROW EXECUTE FUNCTION citygrid_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER case_events_append_only ON case_events")
    op.execute("DROP FUNCTION citygrid_append_only()")
    op.drop_index(op.f("ix_case_events_case_id"), table_name="case_events")
    op.drop_geospatial_table("case_events")
    op.drop_geospatial_index(
        "idx_hotspots_zone", table_name="hotspots", postgresql_using="gist", column_name="zone"
    )
    op.drop_geospatial_index(
        "idx_hotspots_geom", table_name="hotspots", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("hotspots")
    op.drop_index(
        "uq_cases_idempotency",
        table_name="cases",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index("ix_cases_open_deadline", table_name="cases")
    op.drop_index("ix_cases_city_reported", table_name="cases")
    op.drop_index(
        "ix_cases_city_grid", table_name="cases", postgresql_ops={"grid_code": "text_pattern_ops"}
    )
    op.drop_geospatial_index(
        "idx_cases_geom", table_name="cases", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("cases")
    op.drop_index(op.f("ix_routing_rules_city"), table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_table("hotspot_kinds")
    op.drop_table("categories")
