"""evaluation (综合评价): a closed case is rated once; three indicators read the ratings

``cases`` gets the rating (satisfaction in three levels, quality 1–5, when); the evaluate event
in ``case_events`` holds the same values and who rated. The seeded roles of existing cities get
the new permission ``cases.evaluate`` (intake, leader, admin), as a new city's seed has it. The
indicator definitions gain version 1 of ``evaluated``, ``satisfied``, ``satisfaction_rate``,
``quality_points`` and ``avg_quality``.

Revision ID: 0012_evaluation
Revises: 0011_rounds
Create Date: 2026-11-29 18:10:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0012_evaluation"
down_revision: str | None = "0011_rounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
GRANTED_TO = ("admin", "leader", "intake")
ROWS = json.loads(
    """[
    {"key": "evaluated", "version": 1, "name_zh": "评价数", "name_en": "evaluated", "kind": "count", "unit": "件", "formula": "an evaluate event in P (综合评价; once per case)", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "satisfied", "version": 1, "name_zh": "满意数", "name_en": "satisfied", "kind": "count", "unit": "件", "formula": "evaluated in P as 满意 or 基本满意", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "satisfaction_rate", "version": 1, "name_zh": "满意率", "name_en": "satisfaction rate", "kind": "rate", "unit": "%", "formula": "satisfied ÷ evaluated", "numerator": "satisfied", "denominator": "evaluated", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "quality_points", "version": 1, "name_zh": "质量评分合计", "name_en": "quality points (sum)", "kind": "count", "unit": "分", "formula": "quality (1–5) of the evaluations in P, summed", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "avg_quality", "version": 1, "name_zh": "平均质量评分", "name_en": "mean quality score", "kind": "rate", "unit": "分", "formula": "quality_points ÷ evaluated", "numerator": "quality_points", "denominator": "evaluated", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}}
]"""
)


def upgrade() -> None:
    op.add_column("cases", sa.Column("satisfaction", sa.String(length=8), nullable=True))
    op.add_column("cases", sa.Column("quality", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        "ck_cases_evaluation",
        "cases",
        "(satisfaction IS NULL OR satisfaction IN ('满意', '基本满意', '不满意'))"
        " AND (quality IS NULL OR quality BETWEEN 1 AND 5)",
    )
    # roles are data seeded per city: grant the new permission where the seed would have
    op.execute(
        sa.text(
            "UPDATE roles SET permissions = array_append(permissions, 'cases.evaluate')"
            " WHERE key IN :keys AND NOT ('cases.evaluate' = ANY(permissions))"
        ).bindparams(sa.bindparam("keys", value=GRANTED_TO, expanding=True))
    )
    table = sa.table(
        "indicator_definitions",
        sa.column("key"),
        sa.column("version"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("kind"),
        sa.column("unit"),
        sa.column("formula"),
        sa.column("numerator"),
        sa.column("denominator"),
        sa.column("subjects", sa.ARRAY(sa.String(length=12))),
        sa.column("params", sa.JSON()),
        sa.column("valid_from", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        table,
        [{**row, "valid_from": datetime.fromisoformat(VALID_FROM)} for row in ROWS],
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM indicator_definitions WHERE key IN :keys AND version = 1").bindparams(
            sa.bindparam("keys", value=tuple(r["key"] for r in ROWS), expanding=True)
        )
    )
    op.execute(sa.text("UPDATE roles SET permissions = array_remove(permissions, 'cases.evaluate')"))
    op.drop_constraint("ck_cases_evaluation", "cases", type_="check")
    for column in ("evaluated_at", "quality", "satisfaction"):
        op.drop_column("cases", column)
