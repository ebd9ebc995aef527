"""Membership tests on unbounded value lists.

``column.in_(values)`` binds one parameter per value; PostgreSQL's protocol caps a statement at
65,535 parameters, so an ``IN`` list built from an unbounded id list (every open case of a
million-case city) fails. ``any_of`` binds the whole list as one array parameter instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY


def any_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column = ANY(:values)`` with ``values`` sent as a single array parameter of the
    column's type: any number of values, one parameter."""
    return column == any_(literal(list(values), ARRAY(column.type)))
