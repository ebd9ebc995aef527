"""Signatures of webhook bodies: HMAC-SHA256 over ``<timestamp>.<body>`` with the
subscription's secret, as Stripe and GitHub do.

A delivery carries ``X-Citygrid-Timestamp`` (Unix seconds) and ``X-Citygrid-Signature:
sha256=<hex>``; a receiver recomputes the HMAC over the timestamp, a dot and the raw body,
compares in constant time, and refuses timestamps too far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Citygrid-Signature"
TIMESTAMP_HEADER = "X-Citygrid-Timestamp"
EVENT_HEADER = "X-Citygrid-Event"
DELIVERY_HEADER = "X-Citygrid-Delivery"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret (256 bits, URL-safe), shown to the subscriber once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Citygrid-Signature`` value of ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, header: str, now: float, tolerance_s: float = 300
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` with ``secret``, and the timestamp is
    within ``tolerance_s`` of ``now`` (what a receiver does; the tests use it too)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), header)
