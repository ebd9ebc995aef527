"""Engine and session creation; the engine is owned by the app's lifespan, never made at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.distribute import install_counter_bumps
from service.db.embedded import EmbeddedCluster
from service.settings import DatabaseSettings


def resolve_database_url(settings: DatabaseSettings) -> str:
    """The configured URL, or the embedded cluster's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    return EmbeddedCluster(settings.data_dir).start()


def make_engine(
    url: str, pool_size: int = 5, pool_timeout_s: float = 30.0, max_overflow: int = 10
) -> Engine:
    """A pooled engine for ``url`` (psycopg 3 driver)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
    )
    # on a Citus coordinator the service bumps the change counters (service.db.distribute)
    install_counter_bumps(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def driver_cursor(session: Session) -> Any:
    """A raw psycopg cursor on the session's connection, inside its transaction: COPY and
    bulk reads without ORM row objects."""
    # An open session connection always has its driver connection (Optional in the stubs).
    return cast(Any, session.connection().connection.driver_connection).cursor()
