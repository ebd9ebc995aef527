"""city keys: the city leads every primary key, unique constraint and foreign key of city tables

So that each city table can be distributed by ``city`` on Citus and a city's rows of every table
are co-located (``citygrid distribute``), while the same schema runs on a single PostGIS:

- the tables that belonged to a city only through a parent get a ``city`` column, filled from
  the parent (case_events, grid_coverage, hotspot_coverage, round_assignments, scoresheets,
  supervision_order_events, campaign_cases, notify_attempts);
- primary keys ``(id)`` become ``(city, id)`` (ids still come from one sequence per table, so an
  id alone still names one row), other keys get ``city`` in front;
- foreign keys between city tables become ``(city, x_id) → (city, id)``, under the same names.

The append-only triggers are switched off while the new columns are filled (the fill is not an
edit of history). Shared tables (indicator definitions, checklists, default schemes and rules,
change counters) are unchanged: they become Citus reference tables.

Revision ID: 0024_city_keys
Revises: 0023_map_aggregates
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_city_keys"
down_revision: str | None = "0023_map_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → (parent table, column naming the parent) for the tables given a city column
NEW_CITY = {
    "case_events": ("cases", "case_id"),
    "grid_coverage": ("coverage_runs", "run_id"),
    "hotspot_coverage": ("coverage_runs", "run_id"),
    "round_assignments": ("inspection_rounds", "round_id"),
    "scoresheets": ("inspection_rounds", "round_id"),
    "supervision_order_events": ("supervision_orders", "order_id"),
    "campaign_cases": ("campaigns", "campaign_id"),
    "notify_attempts": ("notify_deliveries", "delivery_id"),
}
# append-only triggers refusing the UPDATE that fills the new column
APPEND_ONLY = {
    "case_events": "case_events_append_only",
    "scoresheets": "scoresheets_append_only",
    "supervision_order_events": "supervision_order_events_append_only",
}
ID_TABLES = (
    "api_keys assessment_lists audit_log campaigns case_events cases coverage_runs devices "
    "documents grids hotspots inspection_rounds notify_attempts notify_deliveries notify_events "
    "notify_subscriptions patrol_sessions patrol_tracks photos refresh_tokens round_assignments "
    "routing_rules scoresheets streets supervision_order_events supervision_orders users"
).split()
# table → its old primary key columns, when not (id)
OTHER_PKS = {
    "grid_coverage": ("run_id", "grid_code"),
    "hotspot_coverage": ("run_id", "hotspot_id"),
    "campaign_cases": ("campaign_id", "case_id"),
}
# (table, column, referenced table, name, ON DELETE CASCADE)
FKS = [
    ("campaign_cases", "campaign_id", "campaigns", "campaign_cases_campaign_id_fkey", True),
    ("campaign_cases", "case_id", "cases", "campaign_cases_case_id_fkey", False),
    ("case_events", "case_id", "cases", "case_events_case_id_fkey", False),
    ("grid_coverage", "run_id", "coverage_runs", "grid_coverage_run_id_fkey", True),
    ("hotspot_coverage", "run_id", "coverage_runs", "hotspot_coverage_run_id_fkey", True),
    (
        "notify_attempts",
        "delivery_id",
        "notify_deliveries",
        "notify_attempts_delivery_id_fkey",
        True,
    ),
    ("notify_deliveries", "event_id", "notify_events", "notify_deliveries_event_id_fkey", True),
    (
        "notify_deliveries",
        "subscription_id",
        "notify_subscriptions",
        "notify_deliveries_subscription_id_fkey",
        True,
    ),
    ("notify_subscriptions", "user_id", "users", "notify_subscriptions_user_id_fkey", True),
    ("patrol_sessions", "device_key", "devices", "patrol_sessions_device_key_fkey", False),
    ("photos", "case_id", "cases", "photos_case_id_fkey", False),
    ("photos", "round_id", "inspection_rounds", "photos_round_id_fkey", False),
    ("refresh_tokens", "user_id", "users", "refresh_tokens_user_id_fkey", True),
    ("round_assignments", "round_id", "inspection_rounds", "round_assignments_round_id_fkey", True),
    ("round_assignments", "scorer_id", "users", "round_assignments_scorer_id_fkey", False),
    ("scoresheets", "assignment_id", "round_assignments", "scoresheets_assignment_id_fkey", True),
    ("scoresheets", "round_id", "inspection_rounds", "scoresheets_round_id_fkey", True),
    ("scoresheets", "scorer_id", "users", "scoresheets_scorer_id_fkey", False),
    (
        "supervision_order_events",
        "order_id",
        "supervision_orders",
        "supervision_order_events_order_id_fkey",
        False,
    ),
    (
        "supervision_orders",
        "parent_id",
        "supervision_orders",
        "supervision_orders_parent_id_fkey",
        False,
    ),
]
# (table, name, old columns, new columns) of unique constraints that gain the city
UNIQUES = [
    (
        "round_assignments",
        "uq_round_assignments_pair",
        "round_id, grid_code, scorer_id",
        "city, round_id, grid_code, scorer_id",
    ),
    ("scoresheets", "uq_scoresheets_assignment", "assignment_id", "city, assignment_id"),
    (
        "notify_deliveries",
        "uq_notify_deliveries_pair",
        "event_id, subscription_id",
        "city, event_id, subscription_id",
    ),
]


def _pk(table: str) -> str:
    return ", ".join(OTHER_PKS.get(table, ("id",)))


def upgrade() -> None:
    for table, (parent, column) in NEW_CITY.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN city varchar(12)")
        if table in APPEND_ONLY:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {APPEND_ONLY[table]}")
        op.execute(f"UPDATE {table} t SET city = p.city FROM {parent} p WHERE p.id = t.{column}")
        if table in APPEND_ONLY:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {APPEND_ONLY[table]}")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN city SET NOT NULL")
    for table, _column, _parent, name, _cascade in FKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table in [*ID_TABLES, *OTHER_PKS]:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (city, {_pk(table)})"
        )
    for table, name, _old, new in UNIQUES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({new})")
    op.execute("ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_token_hash_key")
    op.execute(
        "ALTER TABLE refresh_tokens ADD CONSTRAINT uq_refresh_tokens_city_hash "
        "UNIQUE (city, token_hash)"
    )
    for table, column, parent, name, cascade in FKS:
        on_delete = " ON DELETE CASCADE" if cascade else ""
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (city, {column}) "
            f"REFERENCES {parent} (city, id){on_delete}"
        )


def downgrade() -> None:
    for table, _column, _parent, name, _cascade in FKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute("ALTER TABLE refresh_tokens DROP CONSTRAINT uq_refresh_tokens_city_hash")
    op.execute(
        "ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_token_hash_key "
        "UNIQUE (token_hash)"
    )
    for table, name, old, _new in UNIQUES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({old})")
    for table in [*ID_TABLES, *OTHER_PKS]:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({_pk(table)})")
    for table, column, parent, name, cascade in FKS:
        on_delete = " ON DELETE CASCADE" if cascade else ""
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {parent} (id){on_delete}"
        )
    for table in NEW_CITY:
        op.execute(f"ALTER TABLE {table} DROP COLUMN city")
