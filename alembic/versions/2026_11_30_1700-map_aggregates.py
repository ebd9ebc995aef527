"""map aggregates: pre-counted case clusters per zoom, and an index of the open cases' places

``case_cluster_cells`` holds, for every zoom 0–16, the open cases of a city counted in the
cells the cases tile draws as clusters (8 × 8 per tile), with their summed Web Mercator
position (the cluster is drawn at the mean) and how many were overdue when counted.
``case_cluster_builds`` says which state of the cases table (its change counter) and which
moment the cells were counted at. Both lead their keys with the city (a later distribution
by city) and carry no triggers: they are rebuilt by the service, never by a write to cases.

``heat_layer_builds`` / ``heat_layer_values`` keep the per-grid values of a heat layer (one
filter, one scope: ``layer_key``) with its legend, tagged with the data version they were
computed at: the heat tiles join them per tile, and a restarted service reuses them.
``heat_layer_tiles`` keeps the tiles rendered from them (deleted with the values they show).

``ix_grids_city_valid_from`` / ``_to`` make the grids' data version (the next validity
boundary after now) two index probes instead of a pass over a city's 31,111 grids (13 ms).

``ix_cases_open_geom`` is a GiST index of the open cases' positions only: a point tile reads
the open cases in its envelope without walking the closed ones (70 % of a year's cases).

Revision ID: 0023_map_aggregates
Revises: 0022_fixes_partitioned
Create Date: 2026-11-30 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision: str = "0023_map_aggregates"
down_revision: str | None = "0022_fixes_partitioned"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('reported', 'registered', 'dispatched', 'handling', 'fed_back')"


def upgrade() -> None:
    op.create_table(
        "case_cluster_cells",
        sa.Column("city", sa.String(12), nullable=False),
        sa.Column("z", sa.SmallInteger(), nullable=False),
        sa.Column("gx", sa.Integer(), nullable=False),
        sa.Column("gy", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("n_overdue", sa.Integer(), nullable=False),
        sa.Column("sum_mx", sa.Float(), nullable=False),
        sa.Column("sum_my", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("city", "z", "gx", "gy"),
    )
    op.create_table(
        "case_cluster_builds",
        sa.Column("city", sa.String(12), nullable=False),
        sa.Column("cases_version", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open_cases", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("city"),
    )
    op.create_table(
        "heat_layer_builds",
        sa.Column("city", sa.String(12), nullable=False),
        sa.Column("layer_key", sa.String(64), nullable=False),
        sa.Column("layer", sa.String(20), nullable=False),
        sa.Column("request", JSONB(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("legend", JSONB(), nullable=False),
        sa.Column("features", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("city", "layer_key"),
    )
    op.create_table(
        "heat_layer_values",
        sa.Column("city", sa.String(12), nullable=False),
        sa.Column("layer_key", sa.String(64), nullable=False),
        sa.Column("code", sa.String(15), nullable=False),
        sa.Column("props", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("city", "layer_key", "code"),
    )
    op.create_table(
        "heat_layer_tiles",
        sa.Column("city", sa.String(12), nullable=False),
        sa.Column("layer_key", sa.String(64), nullable=False),
        sa.Column("z", sa.SmallInteger(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("datum", sa.String(8), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("city", "layer_key", "z", "x", "y", "datum"),
    )
    # the grids' data version asks for the next validity boundary: two index probes
    op.create_index("ix_grids_city_valid_from", "grids", ["city", "valid_from"])
    op.create_index("ix_grids_city_valid_to", "grids", ["city", "valid_to"])
    op.create_index(
        "ix_cases_open_geom",
        "cases",
        ["geom"],
        postgresql_using="gist",
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_open_geom", table_name="cases")
    op.drop_table("heat_layer_tiles")
    op.drop_table("heat_layer_values")
    op.drop_table("heat_layer_builds")
    op.drop_index("ix_grids_city_valid_to", table_name="grids")
    op.drop_index("ix_grids_city_valid_from", table_name="grids")
    op.drop_table("case_cluster_builds")
    op.drop_table("case_cluster_cells")
