"""Committed changes, as PostgreSQL announces them: a per-process listener for cache freshness.

Every statement that writes a counted table (``grids``, ``cases``) bumps its change counter and
sends ``NOTIFY citygrid_changes, '<table>:<version>'`` (see the change-counter migrations).
PostgreSQL delivers a notification when the writing transaction commits, and never for one that
rolls back. A :class:`ChangeListener` holds one connection that listens, and counts a
*generation* per table: a cache built while the generation was ``g`` is fresh while it still is.

While the connection is down (database restart, network) nothing can be known, so
:attr:`ChangeListener.healthy` is false and callers fall back to asking the database; on
reconnecting every generation moves, since notifications may have been missed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

import psycopg

CHANNEL = "citygrid_changes"
log = logging.getLogger("citygrid")


class ChangeListener:
    """A daemon thread listening on :data:`CHANNEL` over its own connection."""

    def __init__(self, conninfo: str, *, retry_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._generations: defaultdict[str, int] = defaultdict(int)
        self._epoch = 0  # moves on every (re)connection: everything may have changed
        self._healthy = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citygrid-changes", daemon=True)

    @classmethod
    def for_url(cls, sqlalchemy_url: str, *, retry_s: float = 1.0) -> ChangeListener:
        """A listener on the database of a SQLAlchemy URL (``postgresql+psycopg://…``)."""
        scheme, rest = sqlalchemy_url.split("://", 1)
        conninfo = "postgresql://" + rest if scheme.startswith("postgresql") else sqlalchemy_url
        return cls(conninfo, retry_s=retry_s)

    @property
    def healthy(self) -> bool:
        """Whether notifications are being received (else: ask the database)."""
        return self._healthy.is_set()

    def generation(self, table: str) -> tuple[int, int]:
        """A value that changes whenever a committed write to ``table`` may have happened."""
        with self._lock:
            return self._epoch, self._generations[table]

    def start(self, wait_s: float = 5.0) -> ChangeListener:
        """Start listening; wait up to ``wait_s`` for the first connection."""
        self._thread.start()
        self._healthy.wait(wait_s)
        return self

    def stop(self) -> None:
        """Stop listening (the thread ends within a second)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    with self._lock:
                        self._epoch += 1
                    self._healthy.set()
                    while not self._stop.is_set():
                        # a short timeout so that stop() is noticed
                        for note in conn.notifies(timeout=1.0):
                            self._seen(note.payload)
            except psycopg.Error:
                log.warning("change listener lost its connection; retrying", exc_info=True)
            finally:
                self._healthy.clear()
            self._stop.wait(self._retry_s)

    def _seen(self, payload: str) -> None:
        table = payload.split(":", 1)[0]
        with self._lock:
            self._generations[table] += 1
