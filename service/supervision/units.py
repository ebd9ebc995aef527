"""Responsible units of orders and their chain upwards.

A unit is a department (by name, as cases are dispatched to it) or a grid (by code, answered
for by the accounts whose grid scope covers it). Escalation moves one level up: a grid to its
parent grid, the city grid to the top unit; a department to its configured superior
(``CITYGRID_ORDER_SUPERIORS``), or else to the top unit (``CITYGRID_ORDER_TOP_UNIT``), which has
none above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from service.cases.workflow import OPEN_STATUSES
from service.db.models import Case, Category, Grid, RoutingRule, User
from service.errors import InvalidInput
from service.settings import AppSettings

UNIT_KINDS = ("department", "grid")
# states in which a case is the department's work (an order on it goes to the department)
WORKING = ("dispatched", "handling", "fed_back")


@dataclass(frozen=True)
class Unit:
    """A responsible unit with the person an order names by default."""

    kind: str  # department | grid
    key: str  # the department's name or the grid's code
    name: str
    person_name: str | None = None
    person_phone: str | None = None


def superiors(settings: AppSettings) -> dict[str, str]:
    """``CITYGRID_ORDER_SUPERIORS`` as a mapping (``ValueError`` naming it when malformed)."""
    out: dict[str, str] = {}
    for part in settings.cases.order_superiors.split(","):
        if not part.strip():
            continue
        below, sep, above = part.partition(":")
        if not sep or not below.strip() or not above.strip():
            raise ValueError(
                f"CITYGRID_ORDER_SUPERIORS entry {part!r} must look like 环卫所:市城市管理局"
            )
        out[below.strip()] = above.strip()
    return out


class Units:
    """Units of one city: resolving them by kind and key, and the level above."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.top = settings.cases.order_top_unit
        self.above = superiors(settings)

    def departments(self) -> set[str]:
        """Every department the city knows: the catalogue's and routing rules' departments,
        the accounts' departments, and the configured superiors and top unit."""
        stmt: Any = union(
            select(Category.department).where(Category.city == self.city),
            select(RoutingRule.department).where(RoutingRule.city == self.city),
            select(User.department).where(User.city == self.city, User.department.is_not(None)),
        )
        known = {d for d in self.session.scalars(stmt) if d}
        return known | set(self.above) | set(self.above.values()) | {self.top}

    def resolve(self, kind: str, key: str, field: str = "unit") -> Unit:
        """The unit ``key`` of ``kind``; ``InvalidInput`` naming ``field`` when unknown."""
        if kind not in UNIT_KINDS:
            raise InvalidInput(
                f"unit_kind {kind!r} must be one of {', '.join(UNIT_KINDS)}", field="unit_kind"
            )
        if kind == "department":
            if key not in self.departments():
                raise InvalidInput(
                    f"unknown department {key!r}: name one that cases are dispatched to "
                    "(GET /api/categories, /api/routing-rules) or a configured superior",
                    field=field,
                )
            return Unit("department", key, key)
        grid = self._grid(key)
        if grid is None:
            raise InvalidInput(f"no current grid {key!r}", field=field)
        return self._grid_unit(grid)

    def _grid(self, code: str) -> Grid | None:
        return self.session.scalar(
            select(Grid).where(Grid.city == self.city, Grid.code == code, Grid.valid_to.is_(None))
        )

    @staticmethod
    def _grid_unit(grid: Grid) -> Unit:
        person = (grid.responsible_persons or [{}])[0]
        return Unit(
            "grid",
            grid.code,
            grid.responsible_unit or grid.name,
            person.get("name"),
            person.get("phone"),
        )

    def for_case(self, case: Case) -> Unit:
        """Who answers for ``case``: its department while the case is the department's work,
        otherwise its grid (cases without a grid: the top unit)."""
        if case.department and case.status in WORKING:
            return Unit("department", case.department, case.department)
        if case.grid_code and case.status in OPEN_STATUSES:
            grid = self._grid(case.grid_code)
            if grid is not None:
                return self._grid_unit(grid)
        return Unit("department", self.top, self.top)

    def superior(self, unit: Unit) -> Unit | None:
        """The unit one level above ``unit`` (``None`` at the top of the chain)."""
        if unit.kind == "grid":
            grid = self._grid(unit.key)
            parent = self._grid(grid.parent_code) if grid and grid.parent_code else None
            if parent is not None:
                return self._grid_unit(parent)
            return Unit("department", self.top, self.top)
        if unit.key == self.top:
            return None
        name = self.above.get(unit.key, self.top)
        return Unit("department", name, name)
