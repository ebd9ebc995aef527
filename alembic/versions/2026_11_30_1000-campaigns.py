"""campaigns (专项行动 / 专项整治): campaigns with scope, targets and milestones, and the cases
carrying their tag

``campaigns`` holds one campaign of a city: its period (local days, and the instants bounding
them), its scope (grid codes and their subtree prefixes, hotspot ids, category codes), its
targets and back-planned milestones (倒排进度) as JSON data, and its owners. ``campaign_cases``
links a campaign to the cases reported in its scope during its period (filled when a campaign is
created or edited, and at intake).

The new permission ``campaigns.manage`` is granted to the seeded admin and leader roles already
stored for existing cities.

Revision ID: 0016_campaigns
Revises: 0015_supervision
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0016_campaigns"
down_revision: str | None = "0015_supervision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {"campaigns.manage": ("admin", "leader")}


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "grid_codes",
            sa.ARRAY(sa.String(length=15)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "grid_prefixes",
            sa.ARRAY(sa.String(length=15)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "hotspot_ids",
            sa.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column(
            "category_codes",
            sa.ARRAY(sa.String(length=8)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("targets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("milestones", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("owners", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("end_date >= start_date", name="ck_campaigns_period"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_campaigns_city_period", "campaigns", ["city", "start_date", "end_date"])
    op.create_table(
        "campaign_cases",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "case_id"),
    )
    op.create_index("ix_campaign_cases_case", "campaign_cases", ["case_id"])
    for permission, roles in GRANTS.items():
        op.execute(
            sa.text(
                "UPDATE roles SET permissions = array_append(permissions, :p) "
                "WHERE key = ANY(:roles) AND NOT (:p = ANY(permissions))"
            ).bindparams(
                sa.bindparam("p", permission),
                sa.bindparam("roles", list(roles), type_=sa.ARRAY(sa.String())),
            )
        )


def downgrade() -> None:
    for permission in GRANTS:
        op.execute(
            sa.text("UPDATE roles SET permissions = array_remove(permissions, :p)").bindparams(
                p=permission
            )
        )
    op.drop_index("ix_campaign_cases_case", table_name="campaign_cases")
    op.drop_table("campaign_cases")
    op.drop_index("ix_campaigns_city_period", table_name="campaigns")
    op.drop_table("campaigns")
