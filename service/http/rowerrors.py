"""Per-row errors of bulk inputs, collected column by column over whole arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_ERRORS_LISTED = 1000


class RowErrors:
    """The first error of each row of an ``n``-row input (later checks do not overwrite it)."""

    def __init__(self, n: int) -> None:
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def add(self, mask: np.ndarray, name: str, reason: str | np.ndarray) -> None:
        """Record ``reason`` (one text, or one per row) against ``name`` for the masked rows."""
        fresh = mask & (self.field == None)  # noqa: E711 - elementwise on objects
        self.field[fresh] = name
        self.reason[fresh] = reason if isinstance(reason, str) else reason[fresh]

    @property
    def bad(self) -> np.ndarray:
        """Boolean mask of the rows with an error."""
        return self.field != None  # noqa: E711

    @property
    def count(self) -> int:
        """Number of rows with an error."""
        return int(self.bad.sum())

    def listed(self, limit: int = MAX_ERRORS_LISTED) -> list[dict[str, Any]]:
        """The first ``limit`` errors as ``{"row" (1-based), "field", "reason"}``."""
        rows = np.flatnonzero(self.bad)[:limit]
        return [{"row": int(r) + 1, "field": self.field[r], "reason": self.reason[r]} for r in rows]
