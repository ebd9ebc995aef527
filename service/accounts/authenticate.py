"""From what a request carries (a bearer token, an API key, a session cookie) to a Principal.

The signature of a token is checked on the spot; who its account is and what its roles allow
is read from the database — and kept by each process while the change counters of ``users``,
``roles`` and ``api_keys`` say nothing changed (announced by ``NOTIFY``, ``service.db.changes``),
so an authenticated request costs no query at all in the common case, and a disabled account,
a changed role or a revoked key takes effect at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from service.accounts.accounts import AccountService
from service.accounts.credentials import digest, read_access_token
from service.accounts.principal import Principal
from service.clock import now
from service.db.changes import ChangeListener
from service.db.engine import session_scope
from service.db.models import User
from service.errors import Unauthenticated
from service.settings import AppSettings

_TABLES = ("users", "roles", "api_keys")
# how often a key's ``last_used_at`` is written (per process): once a minute is enough to see
# which keys are alive, and a write per request would cost every request a commit
_MARK_EVERY_S = 60.0


@dataclass(frozen=True)
class _Known:
    stamp: tuple[object, ...] | None  # the listener's generations when read; None: never reuse
    principal: Principal
    expires_at: float | None = None  # monotonic deadline of an API key


class Authenticator:
    """Principals for one city, cached per process while nothing about accounts changed."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: AppSettings,
        changes: ChangeListener | None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.city = settings.grids.city
        self.changes = changes
        self._lock = threading.Lock()
        self._known: dict[str, _Known] = {}
        self._marked: dict[int, float] = {}

    def claims(self, token: str) -> dict[str, object]:
        """The claims of a valid access token (signature, expiry, city), or ``Unauthenticated``."""
        claims = read_access_token(self.settings.auth.secret_key, token)
        if claims is None or claims.get("city") != self.city:
            raise Unauthenticated(
                "the access token is invalid or expired: refresh it or log in again"
            )
        return claims

    def cached(self, cache_key: str) -> Principal | None:
        """A principal known and still current (no I/O)."""
        with self._lock:
            known = self._known.get(cache_key)
        if known is None or known.stamp is None or known.stamp != self._stamp():
            return None
        if known.expires_at is not None and time.monotonic() >= known.expires_at:
            return None
        return known.principal

    def user(self, user_id: int) -> Principal:
        """The principal of account ``user_id`` (reads the database; cached)."""
        stamp = self._stamp()
        with session_scope(self.sessions) as session:
            accounts = AccountService(session, self.settings)
            user = session.get(User, user_id)
            if user is None or user.city != self.city or not user.active:
                raise Unauthenticated("this account no longer exists or is disabled")
            principal = accounts.principal_for_user(user)
        self._remember(f"user:{user_id}", _Known(stamp, principal))
        return principal

    def renew(self, renewal_token: str) -> tuple[Principal, str, int]:
        """The principal of a web login's renewal token, with a new access token and its
        lifetime in seconds (reads the database; ``Unauthenticated`` once it ended)."""
        stamp = self._stamp()
        with session_scope(self.sessions) as session:
            accounts = AccountService(session, self.settings)
            user, token, seconds = accounts.renew_web_session(renewal_token)
            principal = accounts.principal_for_user(user)
        self._remember(f"user:{user.id}", _Known(stamp, principal))
        return principal, token, seconds

    def key(self, secret: str) -> Principal:
        """The principal of an API key (reads the database; cached)."""
        stamp = self._stamp()
        with session_scope(self.sessions) as session:
            accounts = AccountService(session, self.settings)
            key = accounts.key_for_secret(secret)
            if key is None:
                raise Unauthenticated("the API key is unknown, revoked or expired")
            principal = accounts.principal_for_key(key)
            deadline = None
            if key.expires_at is not None:
                left = (key.expires_at - now()).total_seconds()
                deadline = time.monotonic() + max(left, 0.0)
            self._mark(accounts, key.id)
        self._remember(f"key:{digest(secret)}", _Known(stamp, principal, deadline))
        return principal

    def mark_due(self, key_id: int) -> bool:
        """Whether key ``key_id``'s last use is due to be written."""
        with self._lock:
            return time.monotonic() - self._marked.get(key_id, -1e9) >= _MARK_EVERY_S

    def mark(self, key_id: int) -> None:
        """Write the key's last use now (in its own transaction)."""
        with session_scope(self.sessions) as session:
            self._mark(AccountService(session, self.settings), key_id)

    def _mark(self, accounts: AccountService, key_id: int) -> None:
        if self.mark_due(key_id):
            accounts.mark_used(key_id)
            with self._lock:
                self._marked[key_id] = time.monotonic()

    def _stamp(self) -> tuple[object, ...] | None:
        if self.changes is None or not self.changes.healthy:
            return None
        return tuple(self.changes.generation(t) for t in _TABLES)

    def _remember(self, cache_key: str, known: _Known) -> None:
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[cache_key] = known
