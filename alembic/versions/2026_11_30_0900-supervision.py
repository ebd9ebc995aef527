"""supervision orders (督办单), their history, their numbers, and the escalation rules

``supervision_orders`` hold the orders (numbered per city and year from
``supervision_order_counters``, a row bumped inside the issuing transaction, so numbers have no
gaps); ``supervision_order_events`` their append-only history. ``escalation_rules`` are data:
three defaults (``city`` NULL) are seeded here — overdue by 3 working days (issue), reworked
twice (propose), the same problem three times in 30 days (propose) — and a city's admin edits
them through the API. "At most one order per case and rule" and "an order escalates once" are
unique constraints.

New permissions, granted to the seeded roles already stored for existing cities:
``orders.issue`` (admin, leader), ``orders.answer`` (admin, leader, department, grid_worker)
and ``orders.rules`` (admin).

Revision ID: 0015_supervision
Revises: 0014_assignments
Create Date: 2026-11-30 09:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0015_supervision"
down_revision: str | None = "0014_assignments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen as written: later defaults are a new migration, never edits of this one
RULES = json.loads(
    """[
    {"key": "overdue", "kind": "overdue", "name_zh": "超期未结督办", "params": {"working_days": 3}, "mode": "issue", "deadline_days": 3, "demand": "案件{case_id}已超过处置时限{working_days}个工作日仍未办结，请于{deadline}前办结并书面回复。"},
    {"key": "reworked", "kind": "reworked", "name_zh": "多次返工督办", "params": {"times": 2}, "mode": "propose", "deadline_days": 3, "demand": "案件{case_id}核查未通过、已返工{times}次，请于{deadline}前彻底整改并书面回复。"},
    {"key": "recurring", "kind": "recurring", "name_zh": "反复发生督办", "params": {"times": 3, "days": 30}, "mode": "propose", "deadline_days": 5, "demand": "同一问题{days}天内反复发生{times}次（案件{case_id}），请于{deadline}前查明原因、建立长效机制并书面回复。"}
]"""
)

GRANTS = {
    "orders.issue": ("admin", "leader"),
    "orders.answer": ("admin", "leader", "department", "grid_worker"),
    "orders.rules": ("admin",),
}


def upgrade() -> None:
    op.create_table(
        "supervision_order_counters",
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("city", "year"),
    )
    rules = op.create_table(
        "escalation_rules",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=True),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.Text(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("deadline_days", sa.Integer(), nullable=False),
        sa.Column("demand", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("mode IN ('propose', 'issue')", name="ck_escalation_rules_mode"),
        sa.CheckConstraint("deadline_days > 0", name="ck_escalation_rules_deadline"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "city", "key", name="uq_escalation_rules_city_key", postgresql_nulls_not_distinct=True
        ),
    )
    op.bulk_insert(
        rules, [{**r, "city": None, "enabled": True, "updated_by": "system"} for r in RULES]
    )
    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("subject_kind", sa.String(length=12), nullable=False),
        sa.Column("subject_key", sa.Text(), nullable=True),
        sa.Column(
            "case_ids",
            sa.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column("unit_kind", sa.String(length=12), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=False),
        sa.Column("person_name", sa.Text(), nullable=True),
        sa.Column("person_phone", sa.Text(), nullable=True),
        sa.Column("demand", sa.Text(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Text(), nullable=True),
        sa.Column("issued_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("level", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("rule_key", sa.String(length=40), nullable=True),
        sa.Column("trigger_case_id", sa.BigInteger(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('proposed', 'dismissed', 'issued', 'acknowledged', 'answered', "
            "'sent_back', 'accepted')",
            name="ck_supervision_orders_status",
        ),
        sa.CheckConstraint(
            "number IS NOT NULL OR status IN ('proposed', 'dismissed')",
            name="ck_supervision_orders_numbered",
        ),
        sa.CheckConstraint(
            "unit_kind IN ('department', 'grid')", name="ck_supervision_orders_unit_kind"
        ),
        sa.CheckConstraint(
            "subject_kind IN ('cases', 'grid', 'hotspot', 'department')",
            name="ck_supervision_orders_subject",
        ),
        sa.CheckConstraint("level >= 1", name="ck_supervision_orders_level"),
        sa.ForeignKeyConstraint(["parent_id"], ["supervision_orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "year", "seq", name="uq_supervision_orders_number"),
        sa.UniqueConstraint(
            "city", "rule_key", "trigger_case_id", "level", name="uq_supervision_orders_rule_case"
        ),
        sa.UniqueConstraint("city", "parent_id", name="uq_supervision_orders_parent"),
    )
    op.create_index(
        "ix_supervision_orders_case_ids",
        "supervision_orders",
        ["case_ids"],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_supervision_orders_city_status",
        "supervision_orders",
        ["city", "status", "deadline_at"],
    )
    op.create_index(
        "ix_supervision_orders_city_unit", "supervision_orders", ["city", "unit_kind", "unit"]
    )
    op.create_table(
        "supervision_order_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_key_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["supervision_orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_supervision_order_events_order_id", "supervision_order_events", ["order_id"]
    )
    # the history is evidence of who did what: never rewritten
    op.execute(
        "CREATE TRIGGER supervision_order_events_append_only BEFORE UPDATE OR DELETE "
        "ON supervision_order_events FOR EACH ROW EXECUTE FUNCTION citygrid_append_only()"
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
    op.execute("DROP TRIGGER supervision_order_events_append_only ON supervision_order_events")
    op.drop_index("ix_supervision_order_events_order_id", table_name="supervision_order_events")
    op.drop_table("supervision_order_events")
    op.drop_index("ix_supervision_orders_city_unit", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_city_status", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_case_ids", table_name="supervision_orders")
    op.drop_table("supervision_orders")
    op.drop_table("escalation_rules")
    op.drop_table("supervision_order_counters")
