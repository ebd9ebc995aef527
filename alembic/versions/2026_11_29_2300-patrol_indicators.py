"""patrol indicators: the share of a worker's assigned unit grids their tracks passed

The indicator definitions gain version 1 of ``assigned_grids``, ``patrolled_grids`` and
``patrol_grid_share`` (workers only). No table changes: the figures are computed from
``workers.grid_codes``, ``grids`` and ``patrol_tracks`` (its GiST index on ``geom``).

Revision ID: 0013_patrol_indicators
Revises: 0012_evaluation
Create Date: 2026-11-29 19:00:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0013_patrol_indicators"
down_revision: str | None = "0012_evaluation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
ROWS = json.loads(
    """[
    {"key": "assigned_grids", "version": 1, "name_zh": "责任网格数", "name_en": "assigned unit grids", "kind": "count", "unit": "个", "formula": "unit grids assigned to the worker now (workers.grid_codes)", "numerator": null, "denominator": null, "subjects": ["worker"], "params": {}},
    {"key": "patrolled_grids", "version": 1, "name_zh": "已巡网格数", "name_en": "patrolled unit grids", "kind": "count", "unit": "个", "formula": "assigned grids within coverage_radius_m of the part inside P of one of the worker's cleaned tracks", "numerator": null, "denominator": null, "subjects": ["worker"], "params": {}},
    {"key": "patrol_grid_share", "version": 1, "name_zh": "巡查网格覆盖率", "name_en": "patrolled share of assigned grids", "kind": "rate", "unit": "%", "formula": "patrolled_grids ÷ assigned_grids", "numerator": "patrolled_grids", "denominator": "assigned_grids", "subjects": ["worker"], "params": {}}
]"""
)


def upgrade() -> None:
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
