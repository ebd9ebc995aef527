"""Tracking numbers: what a citizen gets back for a report, and the only key to its status.

A number is the case id and a check code, ``1234-K7QX2M``: the code is an HMAC of the city and
the id under ``CITYGRID_SECRET_KEY``, so nobody can walk the status pages by counting ids, and
no table has to store it (a new secret key makes the numbers already given out unknown: keep
the key when rotating would otherwise be needed). The alphabet leaves out 0/O, 1/I/L so a
number read out on the phone is typed back right; lower case is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import re

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6  # 31^6 ≈ 8.9e8 codes per case id
_SHAPE = re.compile(r"^\s*(\d{1,19})-([0-9A-Za-z]{" + str(CODE_LENGTH) + r"})\s*$")


def _code(secret: str, city: str, case_id: int) -> str:
    digest = hmac.new(secret.encode(), f"{city}:{case_id}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(CODE_LENGTH):
        number, rest = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[rest])
    return "".join(chars)


def tracking_number(secret: str, city: str, case_id: int) -> str:
    """The tracking number of case ``case_id`` of ``city``."""
    return f"{case_id}-{_code(secret, city, case_id)}"


def case_id_of(secret: str, city: str, number: str) -> int | None:
    """The case a tracking number names, or None when it is no number this city gave out."""
    match = _SHAPE.match(number or "")
    if match is None:
        return None
    case_id = int(match.group(1))
    if not 1 <= case_id <= 2**63 - 1:
        return None
    expected = _code(secret, city, case_id)
    return case_id if hmac.compare_digest(expected, match.group(2).upper()) else None
