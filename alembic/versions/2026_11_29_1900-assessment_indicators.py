"""assessment indicators: versioned definitions, and indexes for period scans of cases

The definitions of the case-flow and field-work indicators (``service.assessment``) are data:
one row per key and version. Version 1 is seeded here, frozen as it was written; a later
definition is a new version with a later ``valid_from`` (a new migration or an admin's edit),
never an edit of a row a published list may have used.

Three indexes serve the period scans: cases touched since a period began (``updated_at``), one
department's cases, and the history since a period began (``case_events.at``).

Revision ID: 0009_assessment
Revises: 0008_editors
Create Date: 2026-11-29 17:30:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009_assessment"
down_revision: str | None = "0008_editors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
ROWS = json.loads(
    """[
    {"key": "reported", "version": 1, "name_zh": "上报数", "name_en": "reports", "kind": "count", "unit": "件", "formula": "reported_at in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "valid_reported", "version": 1, "name_zh": "有效上报数", "name_en": "valid reports", "kind": "count", "unit": "件", "formula": "reported in P and registered", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "valid_report_rate", "version": 1, "name_zh": "有效上报率", "name_en": "valid report rate", "kind": "rate", "unit": "%", "formula": "valid_reported ÷ reported", "numerator": "valid_reported", "denominator": "reported", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "registered", "version": 1, "name_zh": "立案数", "name_en": "registered", "kind": "count", "unit": "件", "formula": "a register event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "voided", "version": 1, "name_zh": "作废数", "name_en": "voided (rejected)", "kind": "count", "unit": "件", "formula": "a reject event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "dispatched", "version": 1, "name_zh": "派遣数", "name_en": "dispatched", "kind": "count", "unit": "件", "formula": "the first dispatch event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "accurate_dispatched", "version": 1, "name_zh": "准确派遣数", "name_en": "accurately dispatched", "kind": "count", "unit": "件", "formula": "dispatched in P, never re-dispatched nor sent back", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "accurate_dispatch_rate", "version": 1, "name_zh": "准确派遣率", "name_en": "accurate dispatch rate", "kind": "rate", "unit": "%", "formula": "accurate_dispatched ÷ dispatched", "numerator": "accurate_dispatched", "denominator": "dispatched", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "handled", "version": 1, "name_zh": "处置数", "name_en": "handled (fed back)", "kind": "count", "unit": "件", "formula": "a feedback event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "handled_on_time", "version": 1, "name_zh": "按期处置数", "name_en": "handled on time", "kind": "count", "unit": "件", "formula": "handled, last feedback in P <= deadline at the end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "on_time_handling_rate", "version": 1, "name_zh": "按期处置率", "name_en": "on-time handling rate", "kind": "rate", "unit": "%", "formula": "handled_on_time ÷ handled", "numerator": "handled_on_time", "denominator": "handled", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "closed", "version": 1, "name_zh": "结案数", "name_en": "closed", "kind": "count", "unit": "件", "formula": "a verify event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "closed_on_time", "version": 1, "name_zh": "按期结案数", "name_en": "closed on time", "kind": "count", "unit": "件", "formula": "closed, last verify in P <= deadline at the end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "closed_late", "version": 1, "name_zh": "超期结案数", "name_en": "closed late", "kind": "count", "unit": "件", "formula": "closed − closed_on_time", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "overdue_open", "version": 1, "name_zh": "超期未结数", "name_en": "open and overdue", "kind": "count", "unit": "件", "formula": "open at the end of P, deadline at the end of P < end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "due", "version": 1, "name_zh": "应结案数", "name_en": "due for closure", "kind": "count", "unit": "件", "formula": "closed in P or overdue_open", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "close_rate", "version": 1, "name_zh": "结案率", "name_en": "closure rate", "kind": "rate", "unit": "%", "formula": "closed ÷ due", "numerator": "closed", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "on_time_close_rate", "version": 1, "name_zh": "按期结案率", "name_en": "on-time closure rate", "kind": "rate", "unit": "%", "formula": "closed_on_time ÷ due", "numerator": "closed_on_time", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "reworked", "version": 1, "name_zh": "返工数", "name_en": "reworks", "kind": "count", "unit": "件", "formula": "rework events in P (twice is two)", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "rework_rate", "version": 1, "name_zh": "返工率", "name_en": "rework rate", "kind": "rate", "unit": "%", "formula": "reworked ÷ due", "numerator": "reworked", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "extended", "version": 1, "name_zh": "延期数", "name_en": "extended", "kind": "count", "unit": "件", "formula": "cases with an extend event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "extension_rate", "version": 1, "name_zh": "延期率", "name_en": "extension rate", "kind": "rate", "unit": "%", "formula": "extended ÷ due", "numerator": "extended", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "handling_hours", "version": 1, "name_zh": "处置时长合计", "name_en": "handling hours (sum)", "kind": "count", "unit": "小时", "formula": "working hours from the first dispatch to the last feedback in P, over handled cases", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "handling_timed", "version": 1, "name_zh": "计时处置数", "name_en": "timed handled cases", "kind": "count", "unit": "件", "formula": "handled with a first dispatch", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "avg_handling_hours", "version": 1, "name_zh": "平均处置时长", "name_en": "mean handling time", "kind": "hours", "unit": "小时", "formula": "handling_hours ÷ handling_timed (working hours)", "numerator": "handling_hours", "denominator": "handling_timed", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "checked", "version": 1, "name_zh": "核查数", "name_en": "verifications", "kind": "count", "unit": "件", "formula": "verify or rework events in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "checked_on_time", "version": 1, "name_zh": "按时核查数", "name_en": "verified in time", "kind": "count", "unit": "件", "formula": "checked within verify_within_hours calendar hours of the feedback before it", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "on_time_check_rate", "version": 1, "name_zh": "按时核查率", "name_en": "on-time verification rate", "kind": "rate", "unit": "%", "formula": "checked_on_time ÷ checked", "numerator": "checked_on_time", "denominator": "checked", "subjects": ["grid", "department", "worker", "dispatcher"], "params": {"verify_within_hours": 24}},
    {"key": "missed", "version": 1, "name_zh": "漏报数", "name_en": "missed by patrol", "kind": "count", "unit": "件", "formula": "reported in P by a source other than patrol (citizen, inspector, hotline, open311, import)", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "recurring", "version": 1, "name_zh": "复发数", "name_en": "recurring", "kind": "count", "unit": "件", "formula": "reported in P and marked recurring", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "patrol_reported", "version": 1, "name_zh": "巡查上报数", "name_en": "patrol reports", "kind": "count", "unit": "件", "formula": "reported in P with source patrol", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher"], "params": {}},
    {"key": "patrol_hours", "version": 1, "name_zh": "巡查时长", "name_en": "patrol hours", "kind": "count", "unit": "小时", "formula": "hours of the worker's cleaned patrol tracks inside P", "numerator": null, "denominator": null, "subjects": ["worker"], "params": {}},
    {"key": "cases_per_patrol_hour", "version": 1, "name_zh": "每巡查小时上报数", "name_en": "patrol reports per patrol hour", "kind": "rate", "unit": "件/小时", "formula": "patrol_reported ÷ patrol_hours", "numerator": "patrol_reported", "denominator": "patrol_hours", "subjects": ["worker"], "params": {}}
]"""
)


def upgrade() -> None:
    table = op.create_table(
        "indicator_definitions",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("formula", sa.Text(), nullable=False),
        sa.Column("numerator", sa.String(length=40), nullable=True),
        sa.Column("denominator", sa.String(length=40), nullable=True),
        sa.Column(
            "subjects",
            sa.ARRAY(sa.String(length=12)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('count', 'rate', 'hours')", name="ck_indicator_definitions_kind"
        ),
        sa.CheckConstraint(
            "(kind = 'count') = (numerator IS NULL AND denominator IS NULL)",
            name="ck_indicator_definitions_quotient",
        ),
        sa.CheckConstraint("version >= 1", name="ck_indicator_definitions_version"),
        sa.PrimaryKeyConstraint("key", "version"),
    )
    op.bulk_insert(
        table,
        [{**row, "valid_from": datetime.fromisoformat(VALID_FROM)} for row in ROWS],
    )
    op.create_index("ix_cases_city_updated", "cases", ["city", "updated_at"], unique=False)
    op.create_index("ix_case_events_at", "case_events", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_events_at", table_name="case_events")
    op.drop_index("ix_cases_city_updated", table_name="cases")
    op.drop_table("indicator_definitions")
