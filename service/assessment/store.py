"""The stored indicator definitions (``indicator_definitions``): the versions in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import IndicatorDefinition


def definitions_in_force(session: Session, at: datetime) -> list[dict[str, Any]]:
    """Per key, the latest version whose ``valid_from`` is not after ``at``, in table order
    of keys as first seeded (by the lowest version's insertion)."""
    rows = session.scalars(
        select(IndicatorDefinition)
        .where(IndicatorDefinition.valid_from <= at)
        .order_by(IndicatorDefinition.key, IndicatorDefinition.version.desc())
    ).all()
    latest: dict[str, IndicatorDefinition] = {}
    for row in rows:
        latest.setdefault(row.key, row)
    return [_json(row) for row in latest.values()]


def _json(row: IndicatorDefinition) -> dict[str, Any]:
    return {
        "key": row.key,
        "version": row.version,
        "name_zh": row.name_zh,
        "name_en": row.name_en,
        "kind": row.kind,
        "unit": row.unit,
        "formula": row.formula,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "subjects": list(row.subjects),
        "params": dict(row.params),
        "valid_from": row.valid_from.isoformat(),
    }
