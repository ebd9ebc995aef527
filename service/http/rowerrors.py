"""Bulk inputs: per-row errors collected column by column over whole arrays, and the one shape
of the report every bulk write answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import InvalidInput

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


@dataclass
class BulkReport:
    """What a bulk write did: rows read, rows replayed (sent before), rows refused with the
    first errors by row, and the seconds spent per phase. Each kind of bulk write adds its own
    figures (:meth:`figures`)."""

    rows: int = 0
    replayed: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, errors: RowErrors) -> None:
        """Take the row errors found."""
        self.error_count, self.errors = errors.count, errors.listed()

    def refuse_any(self, noun: str, field: str | None = None) -> None:
        """Refuse the whole input when any row is bad (``mode=all``): nothing is stored.
        ``field`` names the field of the answer (default: the first bad row's field)."""
        if not self.error_count:
            return
        first = self.errors[0]
        raise InvalidInput(
            f"{self.error_count} of {self.rows} {noun} rejected, nothing stored; first: "
            f"row {first['row']} {first['field']}: {first['reason']}",
            field=field or first["field"],
            errors=self.errors,
            error_count=self.error_count,
        )

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Count the time of the block as ``phase``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = time.perf_counter() - start

    def figures(self) -> dict[str, Any]:
        """The figures this kind of bulk write adds to the answer."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            **self.figures(),
            "replayed": self.replayed,
            "error_count": self.error_count,
            "errors": self.errors,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
