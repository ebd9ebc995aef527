"""cross-scoring inspection rounds (交叉考核): checklists, rounds, assignments, scoresheets

A checklist is versioned data (items with maximum points, some only for grids with a hotspot of
a kind, e.g. 扬尘 on construction sites); version 1 of ``cross_inspection`` is seeded here. A
round of a city and a period assigns scorers to grids; each scorer submits one scoresheet per
assignment, which can never be edited afterwards (the append-only trigger of the case history).

Three new permissions are granted to the seeded roles already stored for existing cities:
``assessment.rounds`` (admin, leader), ``assessment.score`` (admin, leader, inspector) and
``assessment.checklists`` (admin).

Revision ID: 0011_rounds
Revises: 0010_scoring
Create Date: 2026-11-29 21:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011_rounds"
down_revision: str | None = "0010_scoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen as written: later checklists are new versions, never edits of this one
ITEMS = json.loads(
    """[
    {"code": "mqsb", "name_zh": "门前三包责任落实", "name_en": "frontage duties (clean, green, orderly)", "max_points": 20, "hotspot_kind": null},
    {"code": "zdjy", "name_zh": "占道经营、出店经营", "name_en": "street vending and shops spilling onto the pavement", "max_points": 20, "hotspot_kind": null},
    {"code": "ljqy", "name_zh": "垃圾日产日清", "name_en": "refuse cleared the day it is produced", "max_points": 15, "hotspot_kind": null},
    {"code": "ldlf", "name_zh": "乱堆乱放、积存垃圾", "name_en": "clutter and piled-up refuse", "max_points": 10, "hotspot_kind": null},
    {"code": "ggzp", "name_zh": "违规广告招牌", "name_en": "illegal adverts and signboards", "max_points": 10, "hotspot_kind": null},
    {"code": "yc", "name_zh": "工地扬尘治理", "name_en": "dust control on construction sites", "max_points": 10, "hotspot_kind": "construction_site"},
    {"code": "lhss", "name_zh": "绿化与公共设施完好", "name_en": "greenery and public facilities intact", "max_points": 10, "hotspot_kind": null},
    {"code": "tczx", "name_zh": "停车秩序", "name_en": "parking order", "max_points": 5, "hotspot_kind": null}
]"""
)

GRANTS = {
    "assessment.rounds": ("admin", "leader"),
    "assessment.score": ("admin", "leader", "inspector"),
    "assessment.checklists": ("admin",),
}


def upgrade() -> None:
    checklists = op.create_table(
        "checklists",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("version >= 1", name="ck_checklists_version"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "version", name="uq_checklists_key_version"),
    )
    op.bulk_insert(
        checklists,
        [
            {
                "key": "cross_inspection",
                "version": 1,
                "name_zh": "网格交叉考核评分细则",
                "name_en": "grid cross-inspection checklist",
                "items": ITEMS,
                "created_by": "system",
            }
        ],
    )
    op.create_table(
        "inspection_rounds",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checklist_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=8), server_default=sa.text("'draft'"), nullable=False),
        sa.Column(
            "grid_codes",
            sa.ARRAY(sa.String(length=15)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "scorer_ids", sa.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("scorers_per_grid", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'open', 'closed')", name="ck_inspection_rounds_state"
        ),
        sa.ForeignKeyConstraint(["checklist_id"], ["checklists.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_inspection_rounds_city_start", "inspection_rounds", ["city", "period_start"]
    )
    op.create_table(
        "round_assignments",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("scorer_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["inspection_rounds.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["scorer_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "grid_code", "scorer_id", name="uq_round_assignments_pair"),
    )
    op.create_index("ix_round_assignments_round_id", "round_assignments", ["round_id"])
    op.create_index("ix_round_assignments_scorer", "round_assignments", ["scorer_id"])
    op.create_table(
        "scoresheets",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.BigInteger(), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("scorer_id", sa.BigInteger(), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("max_points", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("photos", sa.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["assignment_id"], ["round_assignments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["round_id"], ["inspection_rounds.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["scorer_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("assignment_id", name="uq_scoresheets_assignment"),
    )
    op.create_index("ix_scoresheets_round_id", "scoresheets", ["round_id"])
    # a submitted scoresheet is evidence: it is never rewritten (a correction is a new round)
    op.execute(
        "CREATE TRIGGER scoresheets_append_only BEFORE UPDATE ON scoresheets "
        "FOR EACH ROW EXECUTE FUNCTION citygrid_append_only()"
    )
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
    op.execute("DROP TRIGGER scoresheets_append_only ON scoresheets")
    op.drop_table("scoresheets")
    op.drop_table("round_assignments")
    op.drop_index("ix_inspection_rounds_city_start", table_name="inspection_rounds")
    op.drop_table("inspection_rounds")
    op.drop_table("checklists")
