"""the default campaign escalation rule: a case in a campaign's hotspot, open too long

One more default row (``city`` NULL) in ``escalation_rules``: ``campaign_hotspot`` — an open
case tagged with a running campaign (专项行动), in one of its hotspots, open 8 working hours since
it was reported. It is on, in ``propose`` mode: during a campaign every such case is noticed the
same day, and a leader issues or dismisses the proposal (a campaign's hotspots and categories
differ from one campaign to the next, so the sweep does not issue numbered orders by itself;
an admin may switch it to ``issue``). No table changes.

Going down removes the rule's rows (the default and cities' edits of it); orders it wrote stay
as history.

Revision ID: 0019_campaign_rule
Revises: 0018_briefs
Create Date: 2026-11-30 13:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0019_campaign_rule"
down_revision: str | None = "0018_briefs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen as written: later defaults are a new migration, never edits of this one
RULE = json.loads(
    """{"key": "campaign_hotspot", "kind": "campaign_hotspot", "name_zh": "专项行动热点督办", "params": {"working_hours": 8}, "mode": "propose", "deadline_days": 2, "demand": "专项行动“{campaign}”期间，{hotspot}内的案件{case_id}上报已超过{working_hours}个工作小时仍未办结，请于{deadline}前办结并书面回复。"}"""
)


def upgrade() -> None:
    rules = sa.table(
        "escalation_rules",
        sa.column("city", sa.String),
        sa.column("key", sa.String),
        sa.column("kind", sa.String),
        sa.column("name_zh", sa.Text),
        sa.column("params", postgresql.JSONB),
        sa.column("mode", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("deadline_days", sa.Integer),
        sa.column("demand", sa.Text),
        sa.column("updated_by", sa.Text),
    )
    op.bulk_insert(rules, [{**RULE, "city": None, "enabled": True, "updated_by": "system"}])


def downgrade() -> None:
    op.execute("DELETE FROM escalation_rules WHERE kind = 'campaign_hotspot'")
