"""A province on Citus: distribute every city table by ``city``, co-located with ``grids``.

``citygrid distribute`` runs on a Citus coordinator (a PostgreSQL database with the ``citus``
extension and its workers added) after the migrations. It is idempotent: tables already in
Citus' metadata are left as they are, so it can run again after a migration added tables.

- **Reference tables** (a full copy on every node, joinable with any city's shard): the shared
  catalogue and codes — indicator definitions, checklists, and the scoring schemes and
  escalation rules, whose ``city`` NULL rows are every city's defaults.
- **Distributed tables**: every other table with a ``city`` column, hash-distributed by it and
  co-located with ``grids``, so one city's grids, cases, history, patrols and scores sit in one
  shard group on one worker: every query of the service names one city, so Citus routes it to
  that worker whole, spatial joins included.
- **Local tables** on the coordinator: ``change_counters`` (and ``alembic_version``).

Triggers. Citus runs a distributed table's triggers on its shards, on the workers, and only
with ``citus.enable_unsafe_triggers`` (Citus cannot check what a trigger touches). The
row triggers citygrid keeps touch only the row's own shard group (the append-only guards of
the histories; ``workers`` writing its assignment history, a co-located table, same city), so
the setting is turned on for the database (later migrations' triggers need it too).
The change-counter triggers cannot work there: on a worker they would bump a counter no
coordinator reads and ``NOTIFY`` listeners that are not there. They are dropped from the
distributed tables and the service bumps the coordinator's counters itself, in the writing
transaction, after each statement that writes a counted table (:func:`install_counter_bumps`):
the same values and notifications as the triggers give on a single PostgreSQL.

Sequences: ids come from the coordinator's sequences (every write goes through it), so an
id still names one row across cities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.errors import CitygridError

COLOCATE_WITH = "grids"
DISTRIBUTION_COLUMN = "city"
REFERENCE_TABLES = ("indicator_definitions", "checklists", "scoring_schemes", "escalation_rules")
LOCAL_TABLES = ("change_counters", "alembic_version", "spatial_ref_sys")
# the tables whose writes bump a change counter (the statement triggers of the migrations)
COUNTED = frozenset(
    {"cases", "grids", "categories", "routing_rules", "hotspots", "users", "roles", "api_keys"}
)
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|COPY)\s+(?:ONLY\s+)?\"?(\w+)",
    re.IGNORECASE,
)
_BUMP = (
    "WITH b AS (UPDATE change_counters SET version = nextval('change_counter_seq') "
    "WHERE name = ANY(%s) RETURNING name, version) "
    "SELECT pg_notify('citygrid_changes', name || ':' || version) FROM b"
)
_FLAG = "citygrid_bumps_counters"


class NotCitus(CitygridError):
    """The database has no ``citus`` extension: there is nothing to distribute."""


@dataclass
class Distribution:
    """What ``distribute`` did (and found done already)."""

    reference: list[str] = field(default_factory=list)
    distributed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    triggers_dropped: list[str] = field(default_factory=list)


def has_citus(conn: Connection) -> bool:
    """Whether the database has the ``citus`` extension."""
    return bool(
        conn.scalar(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"))
    )


def _city_tables(conn: Connection) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :col AND NOT a.attisdropped "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY c.relname"
        ),
        {"col": DISTRIBUTION_COLUMN},
    )
    return [r[0] for r in rows if r[0] not in REFERENCE_TABLES and r[0] not in LOCAL_TABLES]


def _foreign_keys(conn: Connection, tables: set[str]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the foreign keys from or to ``tables`` among city tables."""
    rows = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), "
            "confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'public'::regnamespace ORDER BY 1, 2"
        )
    )
    return [
        (table, name, definition)
        for table, name, definition, parent in rows
        if (table in tables or parent in tables)
        and parent not in REFERENCE_TABLES
        and table not in REFERENCE_TABLES
    ]


def distribute(engine: Engine) -> Distribution:
    """Make the shared tables reference tables and distribute every city table by ``city``,
    co-located with ``grids``; already distributed tables are skipped (idempotent)."""
    result = Distribution()
    with engine.connect() as conn:
        if not has_citus(conn):
            raise NotCitus(
                "this database has no citus extension: `citygrid distribute` is for a Citus "
                "coordinator (CREATE EXTENSION citus, then add the workers with "
                "citus_add_node); a single PostgreSQL needs nothing"
            )
        database = conn.scalar(text("SELECT current_database()"))
        conn.commit()
        # later migrations may add triggers to distributed tables too
        conn.execute(text(f'ALTER DATABASE "{database}" SET citus.enable_unsafe_triggers = on'))
        # a transaction that wrote or read many shards in parallel may not then write a
        # reference table (a new checklist version after a fan-out); one connection per
        # worker keeps that possible, and the service's statements are one-city ones anyway
        conn.execute(
            text(f'ALTER DATABASE "{database}" SET citus.multi_shard_modify_mode = sequential')
        )
        # SET LOCAL (a tile's display time zone) reaches the workers that format the rows
        conn.execute(text(f'ALTER DATABASE "{database}" SET citus.propagate_set_commands = local'))
        conn.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET citus.enable_unsafe_triggers = on"))
        known = {
            r[0]
            for r in conn.execute(
                text("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
            )
        }
        for table in REFERENCE_TABLES:
            if table in known:
                result.already.append(table)
                continue
            conn.execute(text("SELECT create_reference_table(CAST(:t AS regclass))"), {"t": table})
            result.reference.append(table)
        tables = _city_tables(conn)
        todo = {t for t in tables if t not in known}
        # Citus distributes a table only when no local table references it and it references
        # no local table: the foreign keys among the tables still to distribute are dropped,
        # then made again once both ends are distributed (now co-located, so Citus takes them)
        keys = _foreign_keys(conn, todo)
        for table, name, _definition in keys:
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
        try:
            _distribute_tables(conn, tables, known, result)
        finally:
            # made again whatever happened: a failure half-way must not lose a key (a key
            # whose ends are now one distributed, one local table cannot be made: named)
            conn.rollback()  # autocommit: only resets the connection after an error
            lost = []
            for table, name, definition in keys:
                statement = f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                try:
                    conn.execute(text(statement))
                except DBAPIError:
                    conn.rollback()
                    lost.append(statement)
            if lost:
                raise CitygridError(
                    "distributing stopped half-way and these foreign keys could not be made "
                    "again; run `citygrid distribute` again, then these statements: "
                    + "; ".join(lost)
                )
    return result


def _distribute_tables(
    conn: Connection, tables: list[str], known: set[str], result: Distribution
) -> None:
    """Distribute ``tables`` (``grids`` first), dropping their change-counter triggers."""
    for table in [COLOCATE_WITH, *(t for t in tables if t != COLOCATE_WITH)]:
        trigger = f"{table}_change_counter"
        exists = conn.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = :n "
                "AND tgrelid = CAST(:t AS regclass))"
            ),
            {"n": trigger, "t": table},
        )
        if exists:
            # see the module's docstring: the service bumps the counter instead
            conn.execute(text(f"DROP TRIGGER {trigger} ON {table}"))
            result.triggers_dropped.append(trigger)
        if table in known:
            result.already.append(table)
            continue
        conn.execute(
            text(
                "SELECT create_distributed_table(CAST(:t AS regclass), :col"
                + ("" if table == COLOCATE_WITH else ", colocate_with => :with")
                + ")"
            ),
            {"t": table, "col": DISTRIBUTION_COLUMN, "with": COLOCATE_WITH},
        )
        result.distributed.append(table)


# -- change counters bumped by the service on a distributed database -----------------------------
def _distributed(dbapi_connection: Any) -> bool:
    """Whether this database is a Citus coordinator whose ``cases`` is distributed."""
    with dbapi_connection.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') "
            "AND to_regclass('pg_dist_partition') IS NOT NULL"
        )
        citus = bool(cur.fetchone()[0])
        found = False
        if citus:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition "
                "WHERE logicalrelid = to_regclass('cases'))"
            )
            found = bool(cur.fetchone()[0])
    dbapi_connection.rollback()
    return found


def _bump(dbapi_connection: Any, tables: set[str]) -> None:
    with dbapi_connection.cursor() as cur:
        cur.execute(_BUMP, (sorted(tables),))


def install_counter_bumps(engine: Engine) -> None:
    """On a distributed database, bump the change counters of the counted tables a statement
    wrote, in its transaction (what the statement triggers do on a single PostgreSQL); on any
    other database this does nothing but one look at the catalogue per new connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info[_FLAG] = _distributed(dbapi_connection)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not conn.info.get(_FLAG):
            return
        written = {m.lower() for m in _WRITE.findall(statement)} & COUNTED
        if written:
            _bump(cursor.connection, written)


def bump_counters(session: Session, *tables: str) -> None:
    """After a write the SQL hooks cannot see (a driver-level COPY): bump the counters of
    ``tables`` when the database is distributed (the triggers do it otherwise)."""
    conn = session.connection()
    if conn.info.get(_FLAG):
        _bump(conn.connection.driver_connection, set(tables))
