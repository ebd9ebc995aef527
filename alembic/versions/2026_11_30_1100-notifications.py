"""notifications: webhook subscriptions, the outbox of events, deliveries and their attempts

A subscription (of a city) names event kinds, a scope (the city, a department, a grid subtree
or a user's own scope), a URL and its signing secret. Events are written to ``notify_events``
in the transaction of the change they announce (the outbox); each matching subscription gets a
``notify_deliveries`` row, sent by the deliverer and logged try by try in ``notify_attempts``.
``uq_notify_events_city_key`` makes keyed events (``case.overdue:<id>``) happen once.

Two new permissions are granted to the seeded roles already stored for existing cities:
``notify.manage`` (admin) and ``notify.subscribe`` (admin, leader, dispatcher, department).

Revision ID: 0017_notifications
Revises: 0016_campaigns
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0017_notifications"
down_revision: str | None = "0016_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {
    "notify.manage": ("admin",),
    "notify.subscribe": ("admin", "leader", "dispatcher", "department"),
}


def upgrade() -> None:
    op.create_table(
        "notify_subscriptions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "transport", sa.String(length=20), server_default=sa.text("'webhook'"), nullable=False
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("scope_kind", sa.String(length=12), nullable=False),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("grid_prefix", sa.String(length=15), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(scope_kind = 'city' AND department IS NULL AND grid_prefix IS NULL"
            " AND user_id IS NULL)"
            " OR (scope_kind = 'department' AND department IS NOT NULL)"
            " OR (scope_kind = 'grid' AND grid_prefix IS NOT NULL)"
            " OR (scope_kind = 'user' AND user_id IS NOT NULL)",
            name="ck_notify_subscriptions_scope",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_notify_subscriptions_city_active", "notify_subscriptions", ["city", "active"]
    )
    op.create_table(
        "notify_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_notify_events_city_key",
        "notify_events",
        ["city", "key"],
        unique=True,
        postgresql_where=sa.text("key IS NOT NULL"),
    )
    op.create_index("ix_notify_events_city_at", "notify_events", ["city", "created_at"])
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "state", sa.String(length=10), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name="ck_notify_deliveries_state"
        ),
        sa.ForeignKeyConstraint(["event_id"], ["notify_events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["notify_subscriptions.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_notify_deliveries_pair"),
    )
    op.create_index(
        "ix_notify_deliveries_due",
        "notify_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_notify_deliveries_subscription", "notify_deliveries", ["subscription_id", "id"]
    )
    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["notify_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notify_attempts_delivery_id"), "notify_attempts", ["delivery_id"])
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
    op.drop_index(op.f("ix_notify_attempts_delivery_id"), table_name="notify_attempts")
    op.drop_table("notify_attempts")
    op.drop_index("ix_notify_deliveries_subscription", table_name="notify_deliveries")
    op.drop_index("ix_notify_deliveries_due", table_name="notify_deliveries")
    op.drop_table("notify_deliveries")
    op.drop_index("ix_notify_events_city_at", table_name="notify_events")
    op.drop_index("uq_notify_events_city_key", table_name="notify_events")
    op.drop_table("notify_events")
    op.drop_index("ix_notify_subscriptions_city_active", table_name="notify_subscriptions")
    op.drop_table("notify_subscriptions")
