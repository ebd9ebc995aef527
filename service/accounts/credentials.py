"""Credentials: Argon2 password hashes, signed access tokens, random refresh tokens and keys.

Passwords are hashed with Argon2id (argon2-cffi) and never logged. Access tokens are short-lived
JWTs (PyJWT, HS256 with the deployment's secret; only that algorithm is accepted, so a token
"signed" with ``none`` or another key is refused). Refresh tokens and API keys are random
strings of 32 bytes; the database keeps only their SHA-256, which is enough for secrets that
cannot be guessed (a slow hash is for passwords people choose).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"
_HASHER = PasswordHasher()
# verifying against this costs what a real hash costs, so an unknown login takes as long as a
# known one (no telling which logins exist from the time an answer takes)
_DUMMY_HASH = _HASHER.hash("citygrid: no such account")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (always spends one verification)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def access_token(secret: str, claims: dict[str, Any], issued: datetime, minutes: float) -> str:
    """A signed access token carrying ``claims`` (``sub``, ``city`` …), valid ``minutes``."""
    body = {**claims, "iat": issued, "exp": issued + timedelta(minutes=minutes)}
    return jwt.encode(body, secret, algorithm=ALGORITHM)


def read_access_token(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token signed with ``secret``; ``None`` otherwise."""
    try:
        return jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.PyJWTError:
        return None


def random_secret(prefix: str) -> tuple[str, str]:
    """A new secret ``<prefix>_<id>_<secret>`` and its short id (what lists show)."""
    short = secrets.token_hex(4)
    return f"{prefix}_{short}_{secrets.token_urlsafe(32)}", short


def digest(secret: str) -> str:
    """SHA-256 of a random secret (refresh token, API key), as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return secrets.compare_digest(a, b)
