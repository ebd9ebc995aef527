"""In-process point indexes over sets of grid versions: built once per set, shared by every
bulk path (bulk locate, bulk case intake)."""

from __future__ import annotations

from collections.abc import Sequence
from threading import Lock
from typing import Any

import numpy as np

from gis.locate import GridIndex
from service.clock import now
from service.db.models import Grid
from service.errors import NotFound
from service.grids.registry import Registry
from service.grids.repository import GridFilter, geom_of

_LOCK = Lock()
_BY_VERSIONS: dict[frozenset[int], tuple[GridIndex, np.ndarray]] = {}
_CURRENT: dict[str, tuple[tuple[Any, ...], frozenset[int]]] = {}
_MAX_SETS = 8


def index_for(rows: Sequence[Grid]) -> tuple[GridIndex, np.ndarray]:
    """A point index over these grid versions and their row ids (cached by the id set)."""
    key = frozenset(r.id for r in rows)
    with _LOCK:
        hit = _BY_VERSIONS.get(key)
    if hit:
        return hit
    built = (
        GridIndex([r.code for r in rows], [geom_of(r) for r in rows]),
        np.array([r.id for r in rows], dtype=np.int64),
    )
    with _LOCK:
        if len(_BY_VERSIONS) >= _MAX_SETS:
            _BY_VERSIONS.clear()
        _BY_VERSIONS[key] = built
    return built


def current_unit_index(registry: Registry) -> GridIndex:
    """The index of the unit grids valid now; a cheap fingerprint query (count, newest row,
    latest closing) tells when a version was added or closed and the set must be reloaded."""
    fingerprint = registry.repo.fingerprint(registry.city, "unit")
    with _LOCK:
        seen = _CURRENT.get(registry.city)
        hit = _BY_VERSIONS.get(seen[1]) if seen and seen[0] == fingerprint else None
    if hit:
        return hit[0]
    rows = registry.repo.list(GridFilter(city=registry.city, at=now(), level="unit"))
    if not rows:
        raise NotFound("no unit grids are registered yet; import or generate them first")
    index, _ = index_for(rows)
    with _LOCK:
        _CURRENT[registry.city] = (fingerprint, frozenset(r.id for r in rows))
    return index
