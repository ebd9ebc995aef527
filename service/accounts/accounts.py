"""Accounts of one city: roles, users, logins and tokens, API keys.

Every change here is written to the audit log with the principal who made it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import any_, literal, select, update
from sqlalchemy.orm import Session

from gis.codes import CodeError, CodeScheme
from service.accounts.audit import AuditLog, snapshot
from service.accounts.credentials import (
    access_token,
    digest,
    hash_password,
    password_matches,
    random_secret,
    same_digest,
)
from service.accounts.permissions import PERMISSIONS, ROLE_SEED
from service.accounts.principal import Principal, scope_prefixes
from service.clock import now
from service.db.models import ApiKey, Grid, RefreshToken, Role, User
from service.errors import Conflict, InvalidInput, NotFound, TooManyAttempts, Unauthenticated
from service.settings import AppSettings

MIN_PASSWORD_LENGTH = 8
KEY_PREFIX = "cgk"
REFRESH_PREFIX = "cgr"
SESSION_PREFIX = "cgs"
# refresh-token families of web logins start so: their token renews, it is never rotated
WEB_FAMILY = "web_"
WRONG_LOGIN = "wrong login or password"


@dataclass
class UserInput:
    """An account to create or the fields to change (``None``: leave as it is)."""

    login: str | None = None
    display_name: str | None = None
    phone: str | None = None
    unit: str | None = None
    department: str | None = None
    scope_grids: list[str] | None = None
    roles: list[str] | None = None
    active: bool | None = None
    password: str | None = None


@dataclass
class KeyInput:
    """An API key to create."""

    name: str
    permissions: list[str]
    scope_grids: list[str] = field(default_factory=list)
    department: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Tokens:
    """What a login or a refresh hands out."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives


@dataclass(frozen=True)
class WebSession:
    """What a login on the web pages hands out: a short-lived access token (the session
    cookie) and a renewal token (its own cookie) that mints new access tokens until
    ``expires_at``, the end of the working day the login started."""

    access_token: str
    access_seconds: int
    renewal_token: str
    expires_at: datetime


class AccountService:
    """Roles, users, logins, tokens and API keys of one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.scheme: CodeScheme = settings.scheme
        self.audit = AuditLog(session, settings)

    # -- roles -------------------------------------------------------------------------------
    def seed(self) -> bool:
        """Write the seeded roles the city lacks, and its first admin account when it has
        none (password ``CITYGRID_ADMIN_PASSWORD``); returns whether an admin was created."""
        have = set(self.session.scalars(select(Role.key).where(Role.city == self.city)))
        for key, zh, en, perms in ROLE_SEED:
            if key not in have:
                self.session.add(
                    Role(city=self.city, key=key, name_zh=zh, name_en=en, permissions=list(perms))
                )
        self.session.flush()
        admins = select(User.id).where(User.city == self.city, literal("admin") == any_(User.roles))
        if self.session.scalar(admins.limit(1)) is not None:
            return False
        self.session.add(
            User(
                city=self.city,
                login="admin",
                display_name="管理员",
                roles=["admin"],
                password_hash=hash_password(self.settings.auth.admin_password),
            )
        )
        self.session.flush()
        return True

    def roles(self) -> list[Role]:
        """Every role of the city, by key."""
        stmt = select(Role).where(Role.city == self.city).order_by(Role.key)
        return list(self.session.scalars(stmt))

    def save_role(
        self, key: str, name_zh: str, name_en: str, permissions: list[str], by: Principal
    ) -> Role:
        """Create or change a role (its permissions must exist)."""
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            raise InvalidInput(
                f"unknown permission(s) {', '.join(unknown)}; see GET /api/permissions",
                field="permissions",
            )
        role = self.session.get(Role, (self.city, key))
        before = snapshot(role)
        if role is None:
            role = Role(city=self.city, key=key, name_zh=name_zh, name_en=name_en)
            self.session.add(role)
        role.name_zh, role.name_en, role.permissions = name_zh, name_en, sorted(set(permissions))
        self.session.flush()
        self.audit.record(by, "save", "role", key, before, snapshot(role))
        return role

    # -- users -------------------------------------------------------------------------------
    def users(self) -> list[User]:
        """Every account of the city, by login."""
        stmt = select(User).where(User.city == self.city).order_by(User.login)
        return list(self.session.scalars(stmt))

    def user(self, user_id: int) -> User:
        """One account, or ``NotFound``."""
        user = self.session.get(User, user_id)
        if user is None or user.city != self.city:
            raise NotFound(f"no user {user_id}", field="id")
        return user

    def user_by_login(self, login: str) -> User | None:
        """The account with ``login``, if any."""
        stmt = select(User).where(User.city == self.city, User.login == login)
        return self.session.scalar(stmt)

    def create_user(self, item: UserInput, by: Principal) -> User:
        """A new account (login, display name and at least one role needed)."""
        if not item.login or not item.display_name:
            raise InvalidInput("login and display_name are needed", field="login")
        if self.user_by_login(item.login) is not None:
            raise Conflict(f"login {item.login!r} is taken", field="login")
        user = User(city=self.city, login=item.login, display_name=item.display_name)
        self.session.add(user)
        self._apply(user, item)
        if not user.roles:
            raise InvalidInput("give the account at least one role", field="roles")
        self.session.flush()
        self.audit.record(by, "create", "user", user.login, None, snapshot(user))
        return user

    def update_user(self, user_id: int, item: UserInput, by: Principal) -> User:
        """Change an account; a new password also ends its sessions (refresh tokens)."""
        user = self.user(user_id)
        before = snapshot(user)
        if item.login and item.login != user.login:
            if self.user_by_login(item.login) is not None:
                raise Conflict(f"login {item.login!r} is taken", field="login")
            user.login = item.login
        self._apply(user, item)
        self.session.flush()
        if item.password is not None or item.active is False:
            self.revoke_sessions(user.id)
        self.audit.record(by, "update", "user", user.login, before, snapshot(user))
        return user

    def _apply(self, user: User, item: UserInput) -> None:
        for name in ("display_name", "phone", "unit", "department", "active"):
            value = getattr(item, name)
            if value is not None:
                setattr(user, name, value)
        if item.roles is not None:
            user.roles = self._checked_roles(item.roles)
        if item.scope_grids is not None:
            user.scope_grids = self._checked_scope(item.scope_grids)
        if item.password is not None:
            user.password_hash = hash_password(_checked_password(item.password))
            user.failed_logins, user.locked_until = 0, None

    def _checked_roles(self, roles: list[str]) -> list[str]:
        known = {r.key for r in self.roles()}
        unknown = sorted(set(roles) - known)
        if unknown:
            raise InvalidInput(
                f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                field="roles",
            )
        return sorted(set(roles))

    def _checked_scope(self, codes: list[str]) -> list[str]:
        for code in codes:
            try:
                self.scheme.level_of(code)
            except CodeError as exc:
                raise InvalidInput(str(exc), field="scope_grids") from exc
        found = set(
            self.session.scalars(
                select(Grid.code).where(Grid.city == self.city, Grid.code.in_(codes))
            )
        )
        missing = sorted(set(codes) - found)
        if missing:
            raise InvalidInput(
                f"no grid with code(s) {', '.join(missing)} in this city", field="scope_grids"
            )
        return sorted(set(codes))

    def logins_with_password(self, password: str) -> list[str]:
        """Active accounts whose password is ``password`` (the production start check)."""
        return [
            u.login
            for u in self.users()
            if u.active and password_matches(u.password_hash, password)
        ]

    def principal_for_user(self, user: User) -> Principal:
        """What ``user`` may do, and where."""
        perms: set[str] = set()
        if user.roles:
            stmt = select(Role.permissions).where(Role.city == self.city, Role.key.in_(user.roles))
            for role_permissions in self.session.scalars(stmt):
                perms.update(role_permissions)
        return Principal(
            kind="user",
            id=user.id,
            name=user.display_name,
            login=user.login,
            permissions=frozenset(perms),
            grid_prefixes=scope_prefixes(user.scope_grids, self.scheme.subtree_prefix),
            department=user.department,
            roles=tuple(user.roles),
        )

    # -- logging in ---------------------------------------------------------------------------
    def login(self, login: str, password: str) -> User:
        """The account ``login`` when ``password`` is right.

        Each wrong password counts; after ``CITYGRID_LOGIN_MAX_FAILURES`` in a row the account
        is locked for ``CITYGRID_LOGIN_LOCK_MINUTES`` (429, even with the right password). An
        unknown login, a wrong password and a disabled account get the same 401 and take the
        same time, so answers do not tell which logins exist.
        """
        auth = self.settings.auth
        t = now()
        user = self.user_by_login(login)
        if user is not None and user.locked_until is not None and user.locked_until > t:
            raise TooManyAttempts(
                f"too many failed logins: this account is locked until "
                f"{user.locked_until.isoformat(timespec='seconds')}; try again later",
                field="username",
                retry_after_s=int((user.locked_until - t).total_seconds()) + 1,
            )
        ok = password_matches(user.password_hash if user else None, password)
        if user is None or not ok or not user.active:
            if user is not None and not ok:
                user.failed_logins += 1
                if user.failed_logins >= auth.login_max_failures:
                    user.locked_until = t + timedelta(minutes=auth.login_lock_minutes)
                    user.failed_logins = 0
                # committed now: the refused request rolls back, and must not erase the count
                self.session.commit()
            raise Unauthenticated(WRONG_LOGIN, field="username")
        if user.failed_logins or user.locked_until:
            user.failed_logins, user.locked_until = 0, None
            self.session.flush()
        return user

    def issue_tokens(self, user: User, family: str | None = None) -> Tokens:
        """An access token and a refresh token for ``user`` (a new family unless given)."""
        auth = self.settings.auth
        t = now()
        secret, _ = random_secret(REFRESH_PREFIX)
        self.session.add(
            RefreshToken(
                city=self.city,
                user_id=user.id,
                family=family or secrets.token_hex(16),
                token_hash=digest(secret),
                issued_at=t,
                expires_at=t + timedelta(days=auth.refresh_token_days),
            )
        )
        self.session.flush()
        return Tokens(
            self.access_token(user, t, auth.access_token_minutes),
            secret,
            int(auth.access_token_minutes * 60),
        )

    def access_token(self, user: User, issued: datetime, minutes: float) -> str:
        """A signed token naming ``user`` (its permissions are looked up on use)."""
        claims = {"sub": str(user.id), "city": self.city, "login": user.login}
        return access_token(self.settings.auth.secret_key, claims, issued, minutes)

    def refresh(self, token: str) -> Tokens:
        """The next tokens for a refresh token, which is used up. A refresh token used a second
        time means it was copied: the whole family is revoked and the caller must log in."""
        t = now()
        row = self.session.scalar(
            select(RefreshToken).where(
                RefreshToken.city == self.city, RefreshToken.token_hash == digest(token)
            )
        )
        if row is None or row.revoked_at is not None or row.expires_at <= t:
            raise Unauthenticated("the refresh token is unknown, expired or revoked; log in")
        if row.used_at is not None:
            self._revoke_family(row.family, t)
            self.session.commit()  # the refused request rolls back: the revocation must stay
            raise Unauthenticated(
                "this refresh token was already used: every session it started is revoked; "
                "log in again"
            )
        user = self.session.get(User, row.user_id)
        if user is None or not user.active:
            raise Unauthenticated("the account is disabled")
        row.used_at = t
        self.session.flush()
        return self.issue_tokens(user, family=row.family)

    def start_web_session(self, user: User) -> WebSession:
        """A web login of ``user``: an access token and a renewal token good for
        ``CITYGRID_SESSION_HOURS`` (stored hashed, revoked by logging out)."""
        auth = self.settings.auth
        t = now()
        secret, _ = random_secret(SESSION_PREFIX)
        expires_at = t + timedelta(hours=auth.session_hours)
        self.session.add(
            RefreshToken(
                city=self.city,
                user_id=user.id,
                family=WEB_FAMILY + secrets.token_hex(14),
                token_hash=digest(secret),
                issued_at=t,
                expires_at=expires_at,
            )
        )
        self.session.flush()
        minutes = min(auth.access_token_minutes, auth.session_hours * 60)
        return WebSession(
            self.access_token(user, t, minutes), int(minutes * 60), secret, expires_at
        )

    def renew_web_session(self, token: str) -> tuple[User, str, int]:
        """A new access token (and its lifetime in seconds) for a web login's renewal token;
        ``Unauthenticated`` once the login was logged out, ran out or the account was
        disabled. The renewal token is not used up: the pages' parallel requests may all
        renew at once (the API's refresh tokens rotate instead)."""
        t = now()
        row = self.session.scalar(
            select(RefreshToken).where(
                RefreshToken.city == self.city, RefreshToken.token_hash == digest(token)
            )
        )
        if (
            row is None
            or not row.family.startswith(WEB_FAMILY)
            or row.revoked_at is not None
            or row.expires_at <= t
        ):
            raise Unauthenticated("the web session has ended; log in again")
        user = self.session.get(User, row.user_id)
        if user is None or not user.active:
            raise Unauthenticated("the account is disabled")
        left = (row.expires_at - t).total_seconds() / 60
        minutes = min(self.settings.auth.access_token_minutes, left)
        return user, self.access_token(user, t, minutes), int(minutes * 60)

    def revoke_refresh(self, token: str) -> None:
        """Log out: the refresh token's family can no longer be used."""
        row = self.session.scalar(
            select(RefreshToken).where(
                RefreshToken.city == self.city, RefreshToken.token_hash == digest(token)
            )
        )
        if row is not None:
            self._revoke_family(row.family, now())

    def revoke_sessions(self, user_id: int) -> None:
        """End every session of an account (new password, disabled)."""
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now())
        )

    def _revoke_family(self, family: str, t: datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=t)
        )
        self.session.flush()

    # -- API keys ----------------------------------------------------------------------------
    def create_key(self, item: KeyInput, by: Principal) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown this once and stored only hashed."""
        unknown = sorted(set(item.permissions) - set(PERMISSIONS))
        if unknown:
            raise InvalidInput(f"unknown permission(s) {', '.join(unknown)}", field="permissions")
        if not item.permissions:
            raise InvalidInput("give the key at least one permission", field="permissions")
        secret, short = random_secret(KEY_PREFIX)
        key = ApiKey(
            city=self.city,
            name=item.name,
            prefix=short,
            secret_hash=digest(secret),
            permissions=sorted(set(item.permissions)),
            scope_grids=self._checked_scope(item.scope_grids),
            department=item.department,
            created_by=by.id if by.kind == "user" else None,
            expires_at=item.expires_at,
        )
        self.session.add(key)
        self.session.flush()
        self.audit.record(by, "create", "api_key", key.prefix, None, snapshot(key))
        return key, secret

    def keys(self) -> list[ApiKey]:
        """Every key of the city, newest first."""
        stmt = select(ApiKey).where(ApiKey.city == self.city).order_by(ApiKey.id.desc())
        return list(self.session.scalars(stmt))

    def revoke_key(self, key_id: int, by: Principal) -> ApiKey:
        """A key that no longer works."""
        key = self.session.get(ApiKey, key_id)
        if key is None or key.city != self.city:
            raise NotFound(f"no API key {key_id}", field="id")
        before = snapshot(key)
        if key.revoked_at is None:
            key.revoked_at = now()
            self.session.flush()
        self.audit.record(by, "revoke", "api_key", key.prefix, before, snapshot(key))
        return key

    def key_for_secret(self, secret: str) -> ApiKey | None:
        """The live key whose secret this is (``None``: unknown, revoked or expired)."""
        parts = secret.split("_", 2)  # the random part may hold "_" too
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        key = self.session.scalar(
            select(ApiKey).where(ApiKey.city == self.city, ApiKey.prefix == parts[1])
        )
        if key is None or not same_digest(key.secret_hash, digest(secret)):
            return None
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now()):
            return None
        return key

    def principal_for_key(self, key: ApiKey) -> Principal:
        """What a key may do, and where."""
        return Principal(
            kind="key",
            id=key.id,
            name=key.name,
            permissions=frozenset(key.permissions),
            grid_prefixes=scope_prefixes(key.scope_grids, self.scheme.subtree_prefix),
            department=key.department,
        )

    def mark_used(self, key_id: int) -> None:
        """Remember when a key was last used."""
        self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now()))


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    return password


def user_json(user: User) -> dict[str, Any]:
    """An account as the admin API shows it (never its password hash)."""
    return {
        "id": user.id,
        "login": user.login,
        "display_name": user.display_name,
        "phone": user.phone,
        "unit": user.unit,
        "department": user.department,
        "scope_grids": list(user.scope_grids),
        "roles": list(user.roles),
        "active": user.active,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
    }
