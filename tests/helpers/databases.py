"""Throw-away databases on the test server (the run's own, and more for tests that need a
second, committed one: a restore target, an old schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text


def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the test server (its URL), dropped afterwards."""
    name = f"citygrid_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
