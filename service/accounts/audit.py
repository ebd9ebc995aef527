"""The audit log: every write outside the case history, who made it, before and after.

Rows are append-only (a trigger refuses updates and deletes). ``before``/``after`` are plain
JSON snapshots of the row's columns — geometry as its bounding box and a digest rather than
every vertex, so a grid import does not copy the registry into the log — and secrets (password
hashes, key digests) never appear.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from geoalchemy2 import WKBElement
from geoalchemy2.shape import to_shape
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.db.models import AuditEntry
from service.settings import AppSettings

_SECRET_COLUMNS = frozenset({"password_hash", "secret_hash", "token_hash", "secret"})


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows to read."""

    entity: str | None = None
    entity_key: str | None = None
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditLog:
    """Writing and reading the audit log of one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def record(
        self,
        by: Principal,
        action: str,
        entity: str,
        entity_key: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """Add one row: ``by`` did ``action`` to ``entity`` ``entity_key``."""
        self.session.add(
            AuditEntry(
                city=self.city,
                actor_kind=by.kind,
                actor_id=by.id,
                actor_name=by.label,
                action=action,
                entity=entity,
                entity_key=entity_key,
                before=before,
                after=after,
            )
        )
        self.session.flush()

    def entries(self, flt: AuditFilter, limit: int = 100, before_id: int | None = None):  # noqa: ANN201
        """Rows matching ``flt``, newest first; ``before_id`` pages on."""
        stmt = select(AuditEntry).where(AuditEntry.city == self.city)
        if flt.entity:
            stmt = stmt.where(AuditEntry.entity == flt.entity)
        if flt.entity_key:
            stmt = stmt.where(AuditEntry.entity_key == flt.entity_key)
        if flt.actor_id is not None:
            stmt = stmt.where(AuditEntry.actor_id == flt.actor_id)
        if flt.since:
            stmt = stmt.where(AuditEntry.at >= flt.since)
        if flt.until:
            stmt = stmt.where(AuditEntry.at < flt.until)
        if before_id is not None:
            stmt = stmt.where(AuditEntry.id < before_id)
        return list(self.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


def snapshot(row: Any) -> dict[str, Any] | None:
    """The row's columns as JSON-ready values (``None`` for no row)."""
    if row is None:
        return None
    out: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        name = attr.key
        if name in _SECRET_COLUMNS:
            continue
        out[name] = _plain(getattr(row, name))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, WKBElement):
        shape = to_shape(value)
        return {
            "bounds": [round(v, 7) for v in shape.bounds],
            "wkb_sha256": hashlib.sha256(bytes(value.data)).hexdigest()[:16],
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
