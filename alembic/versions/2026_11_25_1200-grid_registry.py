"""grid registry: five-level versioned grids

Revision ID: 0001_grid_registry
Revises:
Create Date: 2026-11-25 12:00:00
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001_grid_registry"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "grids",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=15), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("responsible_unit", sa.Text(), nullable=True),
        sa.Column(
            "responsible_persons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("land_use", sa.Text(), nullable=True),
        sa.Column("management_grade", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "level IN ('city', 'district', 'street', 'community', 'unit')", name="ck_grids_level"
        ),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="ck_grids_validity"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "code", "version", name="uq_grids_city_code_version"),
    )
    op.create_index("ix_grids_city_level_parent", "grids", ["city", "level", "parent_code"])
    op.create_index(
        "uq_grids_current_code",
        "grids",
        ["city", "code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index("idx_grids_geom", "grids", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("idx_grids_geom", table_name="grids", postgresql_using="gist")
    op.drop_index("uq_grids_current_code", table_name="grids")
    op.drop_index("ix_grids_city_level_parent", table_name="grids")
    op.drop_table("grids")
