"""Which cases a principal may see, as one SQL condition and as one check of a loaded row.

A case is in a principal's scope when

* its grid lies in one of the principal's grid subtrees (``grid_code LIKE '<prefix>%'``, served
  by the ``text_pattern_ops`` index ``ix_cases_city_grid``), or
* it is dispatched to the principal's department (``department`` matches and the case is in a
  dispatched state: a report the routing merely suggested for a department, or one the
  department sent back (退单), is the dispatcher's until it is dispatched), or
* the principal reported it (``reporter_user_id`` / ``reporter_key_id``).

A city-wide principal (no grid subtrees and no department) sees every case; the anonymous
caller sees none. Both forms below say the same thing: the SQL one filters lists, counts,
exports, tiles and heat layers; the Python one answers for a case already loaded (get by id,
workflow actions).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from service.accounts.principal import Principal
from service.db.models import Case

# states in which a case is "dispatched to" its department (its work, then its record)
DISPATCHED_STATUSES: tuple[str, ...] = ("dispatched", "handling", "fed_back", "closed")


def case_condition(by: Principal, table: Any = Case) -> ColumnElement[bool] | None:
    """The SQL condition of the cases ``by`` may see (``None``: every case, no condition).

    ``table`` is the ``Case`` entity or any selectable with the same column names (a subquery).
    """
    if by.city_wide:
        return None
    terms: list[ColumnElement[bool]] = [
        table.grid_code.startswith(prefix, autoescape=True) for prefix in by.grid_prefixes or ()
    ]
    if by.department is not None:
        terms.append(and_(table.department == by.department, table.status.in_(DISPATCHED_STATUSES)))
    if by.kind == "user" and by.id is not None:
        terms.append(table.reporter_user_id == by.id)
    elif by.kind == "key" and by.id is not None:
        terms.append(table.reporter_key_id == by.id)
    if not terms:
        return false()
    return or_(*terms) if len(terms) > 1 else terms[0]


def sees_case(by: Principal, case: Case) -> bool:
    """Whether ``by`` may see ``case`` (the same rule as :func:`case_condition`)."""
    if by.city_wide:
        return True
    if by.grid_prefixes and case.grid_code is not None:
        if any(case.grid_code.startswith(p) for p in by.grid_prefixes):
            return True
    if (
        by.department is not None
        and case.department == by.department
        and case.status in DISPATCHED_STATUSES
    ):
        return True
    return reported_by(by, case)


def reported_by(by: Principal, case: Case) -> bool:
    """Whether ``by`` (a user or an API key) reported ``case``."""
    if by.id is None:
        return False
    if by.kind == "user":
        return case.reporter_user_id == by.id
    if by.kind == "key":
        return case.reporter_key_id == by.id
    return False


def case_sql(by: Principal, alias: str = "c") -> tuple[str, dict[str, Any]]:
    """:func:`case_condition` as a SQL fragment over the cases table aliased ``alias``, with
    its bind parameters (names start with ``scope_``), for hand-written SQL such as the
    vector tiles'. ``("true", {})`` for a city-wide principal."""
    if by.city_wide:
        return "true", {}
    terms: list[str] = []
    params: dict[str, Any] = {}
    for i, prefix in enumerate(by.grid_prefixes or ()):
        # grid codes are digits: no LIKE wildcard to escape
        terms.append(f"{alias}.grid_code LIKE :scope_p{i}")
        params[f"scope_p{i}"] = prefix + "%"
    if by.department is not None:
        states = ", ".join(f"'{s}'" for s in DISPATCHED_STATUSES)
        terms.append(f"({alias}.department = :scope_department AND {alias}.status IN ({states}))")
        params["scope_department"] = by.department
    if by.kind in ("user", "key") and by.id is not None:
        column = "reporter_user_id" if by.kind == "user" else "reporter_key_id"
        terms.append(f"{alias}.{column} = :scope_reporter")
        params["scope_reporter"] = by.id
    if not terms:
        return "false", {}
    return "(" + " OR ".join(terms) + ")", params


def scope_key(by: Principal) -> tuple[Any, ...]:
    """What decides what ``by`` sees (scope and ``people.read``), for cache keys: two
    principals with the same key get the same answers."""
    reporter = (by.kind, by.id) if by.kind in ("user", "key") and not by.city_wide else None
    return (
        by.city_wide,
        by.grid_prefixes,
        by.department,
        reporter,
        by.can("people.read"),
    )


def grid_condition(by: Principal, column: Any) -> ColumnElement[bool] | None:
    """The SQL condition of the grid codes in ``by``'s grid subtrees (``None``: no grid limit).

    Grids themselves are public or readable under ``grids.read``; this limits the per-grid
    figures of patrol and coverage (workers, tracks, coverage rows) to the principal's grids.
    A principal with a department but no grid subtrees has no grids of its own.
    """
    if by.grid_prefixes is None:
        return None if by.department is None else false()
    if not by.grid_prefixes:
        return false()
    terms = [column.startswith(p, autoescape=True) for p in by.grid_prefixes]
    return or_(*terms) if len(terms) > 1 else terms[0]
