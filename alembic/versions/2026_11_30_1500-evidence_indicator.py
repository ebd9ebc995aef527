"""evidence indicators: cases with photos, cases with doubtful evidence, and their rate

Version 1 of ``photo_cases`` (有照片案件数: cases with a photo, not deleted, uploaded in P),
``evidence_flagged`` (证据存疑案件数: those with a photo uploaded in P carrying a time, place
or reuse flag of the evidence check) and ``evidence_flag_rate`` (证据存疑率, the one ÷ the
other), for grids, departments, workers and hotspots (not dispatchers: they take no photo).
A frozen copy of the rows: migrations never import the code's definitions.

Revision ID: 0021_evidence_indicator
Revises: 0020_photos
Create Date: 2026-11-30 15:00:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0021_evidence_indicator"
down_revision: str | None = "0020_photos"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
ROWS = json.loads(
    """[
    {"key": "photo_cases", "version": 1, "name_zh": "有照片案件数", "name_en": "cases with photos", "kind": "count", "unit": "件", "formula": "cases with a photo (not deleted) uploaded in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "hotspot"], "params": {}},
    {"key": "evidence_flagged", "version": 1, "name_zh": "证据存疑案件数", "name_en": "cases with doubtful evidence", "kind": "count", "unit": "件", "formula": "photo_cases one of whose photos uploaded in P carries a time or place flag (not_dispatched, taken_before_dispatch, no_position, too_far) or a reuse flag (reused, reused_similar); once per case", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "hotspot"], "params": {}},
    {"key": "evidence_flag_rate", "version": 1, "name_zh": "证据存疑率", "name_en": "doubtful evidence rate", "kind": "rate", "unit": "%", "formula": "evidence_flagged ÷ photo_cases", "numerator": "evidence_flagged", "denominator": "photo_cases", "subjects": ["grid", "department", "worker", "hotspot"], "params": {}}
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
    for row in ROWS:
        op.execute(
            sa.text("DELETE FROM indicator_definitions WHERE key = :k AND version = :v").bindparams(
                k=row["key"], v=row["version"]
            )
        )
