"""Retiring a grid: its current version closes without a successor.

What depends on a grid today — open cases mapped to it, grid workers assigned to it, current
child grids — keeps it from being retired, unless the request names a grid of the same level to
move the cases and workers to (children are never moved: retire or re-import them first).
Moving and retiring happen in one transaction. Past versions stay, so as-of reads still find
the grid; locate no longer does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import func, select, update

from service.accounts.audit import snapshot
from service.accounts.principal import Principal
from service.clock import now
from service.db.models import Case, Grid, Worker
from service.errors import Conflict, InvalidInput, NotFound
from service.grids.registry import ATTRIBUTES, GridInput, Registry
from service.grids.repository import GridFilter, geom_of

# The open statuses of service.cases.workflow (the grids layer sits below the cases one, so it
# names them here; tests/service/grids/test_retire.py keeps the two lists equal).
OPEN_CASE_STATUSES = ("reported", "registered", "dispatched", "handling", "fed_back")
_LISTED = 50  # ids and codes named in a refusal or an answer; the counts are complete
_AUDITED = 1000  # moved case ids the audit row keeps (the count is complete)


@dataclass
class RetireReport:
    """What retiring did."""

    code: str
    retired_at: datetime
    moved_to: str | None = None
    cases: list[int] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    absorbed: bool = False

    def json(self) -> dict[str, Any]:
        """The report as an answer."""
        return {
            "code": self.code,
            "retired_at": self.retired_at.isoformat(),
            "moved_to": self.moved_to,
            "moved_cases": len(self.cases),
            "moved_case_ids": self.cases[:_LISTED],
            "moved_workers": self.workers,
            "absorbed": self.absorbed,
        }


def retire_grid(
    registry: Registry,
    code: str,
    *,
    by: Principal,
    move_to: str | None = None,
    absorb: bool = False,
    at: datetime | None = None,
) -> RetireReport:
    """Close the current version of ``code`` without a successor, as ``by``.

    ``Conflict`` (409) naming the open cases, assigned workers or child grids that depend on
    it, unless ``move_to`` names a current grid of the same level: then open cases and workers
    move there first. With ``absorb`` the ``move_to`` grid also takes over the retired area (a
    new version whose boundary is the union of both), so the moved cases' places locate there.
    """
    at = at or now()
    grid = registry.get(code)
    by.require_grid(code, "grid")
    # two editors retiring (or moving into) the same grid at once: the second waits, then finds
    # the version closed
    registry.session.execute(
        select(Grid.id).where(Grid.city == grid.city, Grid.id == grid.id).with_for_update()
    )
    registry.session.refresh(grid)
    if grid.valid_to is not None:
        raise Conflict(f"grid {code} was retired meanwhile", field="code")
    if absorb and not move_to:
        raise InvalidInput(
            "absorb needs move_to: the grid that takes over the area", field="absorb"
        )
    children = registry.repo.list(
        GridFilter(city=registry.city, at=at, parent_code=code), limit=_LISTED
    )
    if children:
        names = ", ".join(c.code for c in children[:10])
        raise Conflict(
            f"grid {code} has current child grids ({names}); retire or move them first",
            field="code",
            children=[c.code for c in children],
        )
    session = registry.session
    open_cases = (
        Case.city == registry.city,
        Case.grid_code == code,
        Case.status.in_(OPEN_CASE_STATUSES),
    )
    case_count = int(session.scalar(select(func.count()).where(*open_cases)) or 0)
    workers = list(
        session.scalars(
            select(Worker)
            .where(Worker.city == registry.city, Worker.grid_codes.any_() == code)
            .order_by(Worker.code)
        )
    )
    target = _target(registry, grid, move_to, by) if move_to else None
    if (case_count or workers) and target is None:
        ids = list(session.scalars(select(Case.id).where(*open_cases).order_by(Case.id)))
        parts = []
        if case_count:
            parts.append(f"{case_count} open case(s) ({_listed(ids)})")
        if workers:
            parts.append(f"{len(workers)} assigned worker(s) ({_listed(w.code for w in workers)})")
        raise Conflict(
            f"grid {code} cannot be retired: {' and '.join(parts)} depend on it; send move_to "
            "with the code of a grid of the same level to move them there",
            field="move_to",
            open_cases=case_count,
            open_case_ids=ids[:_LISTED],
            workers=[w.code for w in workers],
        )
    if grid.valid_from >= at:
        raise Conflict(
            f"grid {code} version {grid.version} starts at {grid.valid_from.isoformat()}, "
            f"not before {at.isoformat()}",
            field="at",
        )
    before = snapshot(grid)
    report = RetireReport(code=code, retired_at=at, moved_to=move_to, absorbed=absorb)
    registry.repo.close_version(grid, at)
    if target is not None:
        if absorb:
            target = _absorb(registry, target, grid, at, by)
        report.cases = _move_cases(registry, open_cases, target)
        report.workers = _move_workers(workers, code, target.code)
    session.flush()
    registry.audit.record(
        by,
        "grid.retire",
        "grid",
        code,
        before,
        {
            "valid_to": at.isoformat(),
            "moved_to": move_to,
            "moved_cases": len(report.cases),
            "moved_case_ids": report.cases[:_AUDITED],
            "moved_workers": report.workers,
            "absorbed": absorb,
        },
    )
    return report


def _target(registry: Registry, grid: Grid, move_to: str, by: Principal) -> Grid:
    if move_to == grid.code:
        raise InvalidInput("move_to names the grid being retired; name another", field="move_to")
    try:
        target = registry.get(move_to)
    except NotFound as exc:
        raise InvalidInput(
            f"move_to: no current grid with code {move_to!r}", field="move_to"
        ) from exc
    if target.level != grid.level:
        raise InvalidInput(
            f"move_to: {move_to} is a {target.level}, {grid.code} is a {grid.level}; move to "
            "a grid of the same level",
            field="move_to",
        )
    by.require_grid(move_to, "the grid moved to")
    return target


def _absorb(registry: Registry, target: Grid, retired: Grid, at: datetime, by: Principal) -> Grid:
    """A new version of ``target`` covering its own and ``retired``'s area."""
    union = shapely.union(geom_of(target), geom_of(retired))
    registry.write(
        [
            GridInput(
                code=target.code,
                level=target.level,
                geometry=shapely.make_valid(union) if not union.is_valid else union,
                parent_code=target.parent_code,
                **{name: getattr(target, name) for name in ATTRIBUTES},
            )
        ],
        at=at,
        by=by,
    )
    return registry.get(target.code, at)


def _move_cases(registry: Registry, where: tuple[Any, ...], target: Grid) -> list[int]:
    """Open cases of the retired grid now belong to ``target`` (the version valid now); their
    lock version moves so a client holding the old state must reload."""
    rows = registry.session.execute(
        update(Case)
        .where(*where)
        .values(
            grid_code=target.code,
            grid_id=target.id,
            updated_at=now(),
            lock_version=Case.lock_version + 1,
        )
        .returning(Case.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(int(r[0]) for r in rows)


def _move_workers(workers: list[Worker], code: str, target: str) -> list[str]:
    for worker in workers:
        codes = [target if c == code else c for c in worker.grid_codes]
        worker.grid_codes = list(dict.fromkeys(codes))  # a worker of both grids keeps one
    return [w.code for w in workers]


def _listed(values: Any) -> str:
    items = [str(v) for v in values]
    more = f" … {len(items) - 10} more" if len(items) > 10 else ""
    return ", ".join(items[:10]) + more
