"""Rate limits for what anonymous callers may do (reports from citizens), per process.

Uses the ``limits`` library (moving window, in memory). With several worker processes each
counts on its own, so the effective limit is at most ``workers`` × the configured one; a
deployment that needs one shared count points ``limits`` at Redis (not needed for the demo).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from service.errors import TooManyAttempts


class RateLimit:
    """At most ``rate`` (e.g. ``"20/hour"``) hits per key."""

    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str, what: str, source: str = "this address") -> None:
        """Count one hit for ``key`` (``source`` says what it is, for the message);
        ``TooManyAttempts`` (429, Retry-After) past the limit."""
        if self.limiter.hit(self.item, key):
            return
        self._refuse(key, what, source)

    def check(self, key: str, what: str, source: str = "this address") -> None:
        """``TooManyAttempts`` when ``key`` has no hit left, counting nothing (for limits that
        count only what succeeded: :meth:`count` afterwards)."""
        if not self.limiter.test(self.item, key):
            self._refuse(key, what, source)

    def count(self, key: str) -> None:
        """Count one hit for ``key`` without refusing (it was checked before)."""
        self.limiter.hit(self.item, key)

    def _refuse(self, key: str, what: str, source: str) -> None:
        reset_at, _ = self.limiter.get_window_stats(self.item, key)
        wait = max(1, math.ceil(reset_at - time.time()))
        raise TooManyAttempts(
            f"too many {what} from {source} ({self.item.amount} per "
            f"{self.item.get_expiry()} s); try again in {wait} s",
            retry_after_s=wait,
        )
