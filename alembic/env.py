"""Alembic environment wired to geoalchemy2's helpers.

The connection comes from ``config.attributes["connection"]`` (tests, CLI) or from the
settings (``CITYGRID_DATABASE_URL`` or the embedded cluster).
"""

from geoalchemy2 import alembic_helpers

from alembic import context
from service.db.engine import make_engine, resolve_database_url
from service.db.models import Base
from service.settings import DatabaseSettings

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(resolve_database_url(DatabaseSettings()))
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
