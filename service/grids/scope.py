"""Where a principal with a grid scope may draw: inside the current grids of its scope.

Grid writes check codes (``Principal.require_grid``); hotspots and streets have no code, so a
GIS editor whose account is limited to a few grids may place, move or remove them only inside
those grids' current boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable

import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.clock import now
from service.db.models import Grid
from service.errors import Forbidden
from service.grids.repository import valid_at
from service.settings import AppSettings

# about 1 cm in degrees: a street drawn along the scope's edge is inside it
_EDGE_DEG = 1e-7


class ScopeArea:
    """The area a principal may draw in (``None``: anywhere in the city)."""

    def __init__(self, session: Session, settings: AppSettings, by: Principal) -> None:
        self.by = by
        self.area: BaseGeometry | None = None
        if by.city_wide:
            return
        width = settings.grids.code_width
        roots = [p.ljust(width, "0") for p in by.grid_prefixes or ()]
        rows = session.scalars(
            select(Grid.geom).where(
                Grid.city == settings.grids.city, Grid.code.in_(roots), valid_at(now())
            )
        ).all()
        shapes = [to_shape(g) for g in rows]
        self.area = shapely.union_all(shapes).buffer(_EDGE_DEG) if shapes else shapely.Polygon()
        shapely.prepare(self.area)

    def require(self, geometries: Iterable[BaseGeometry | None], what: str) -> None:
        """``Forbidden`` naming the scope unless every geometry lies inside it."""
        if self.area is None:
            return
        for geom in geometries:
            if geom is not None and not self.area.covers(geom):
                self.refuse(what)

    def refuse(self, what: str) -> None:
        """``Forbidden`` naming the scope."""
        raise Forbidden(
            f"{what} lies outside the scope of {self.by.label}: {self.by.scope_text()}",
            field="scope",
            scope=list(self.by.grid_prefixes or ()),
        )
