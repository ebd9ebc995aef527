"""Who is asking: a user, an API key, or nobody — with what they may do and where.

A :class:`Principal` is built once per request from the token, key or cookie it carries
(``service.auth``) and handed to the services that need it. Its *scope* says where it may act:
grid subtrees (by code prefix) and/or a department; ``grid_prefixes`` of ``None`` means the whole
city. Cases are in scope when their grid is in a subtree, when they were dispatched to the
principal's department, or when the principal reported them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from service.accounts.permissions import PERMISSIONS, describe
from service.errors import Forbidden

Kind = Literal["user", "key", "anonymous", "system"]


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller."""

    kind: Kind
    id: int | None
    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    grid_prefixes: tuple[str, ...] | None = None  # None: the whole city
    department: str | None = None
    roles: tuple[str, ...] = ()
    login: str | None = None

    @property
    def label(self) -> str:
        """How the principal is named in the history and the audit log."""
        if self.kind == "user":
            return f"{self.name} ({self.login})"
        if self.kind == "key":
            return f"API key {self.name}"
        return self.name

    def can(self, permission: str) -> bool:
        """Whether the principal holds ``permission``."""
        return permission in self.permissions

    def require(self, permission: str) -> None:
        """``Forbidden`` (403) naming ``permission`` unless the principal holds it."""
        if not self.can(permission):
            raise Forbidden(
                f"{self.label} may not do this: it needs the permission {describe(permission)}",
                field="permission",
                permission=permission,
            )

    @property
    def city_wide(self) -> bool:
        """Whether the scope is the whole city (no grid or department limit)."""
        return self.grid_prefixes is None and self.department is None

    def covers_grid(self, code: str | None) -> bool:
        """Whether grid ``code`` lies in the principal's grid scope."""
        if self.grid_prefixes is None:
            return self.department is None
        return code is not None and any(code.startswith(p) for p in self.grid_prefixes)

    def require_grid(self, code: str | None, what: str = "this grid") -> None:
        """``Forbidden`` naming the scope unless grid ``code`` is in it."""
        if not self.covers_grid(code):
            raise Forbidden(
                f"{what} ({code or 'no grid'}) lies outside the scope of {self.label}: "
                f"{self.scope_text()}",
                field="scope",
                scope=list(self.grid_prefixes or ()),
            )

    def scope_text(self) -> str:
        """The scope in words, for messages."""
        parts = []
        if self.grid_prefixes is not None:
            parts.append("grids " + ", ".join(f"{p}…" for p in self.grid_prefixes) or "no grids")
        if self.department is not None:
            parts.append(f"department {self.department}")
        return "; ".join(parts) or "the whole city"


SYSTEM = Principal("system", None, "system", frozenset(PERMISSIONS))
"""The service itself: migrations, the demo loader, CLI commands run by an operator."""

ANONYMOUS = Principal("anonymous", None, "anonymous", frozenset(), grid_prefixes=())
"""A caller who said nothing about who they are: public reads only."""


def scope_prefixes(codes: Iterable[str], prefix_of) -> tuple[str, ...] | None:  # noqa: ANN001
    """Subtree prefixes of scope grid ``codes`` (``None`` when there are none: no grid limit)."""
    codes = list(codes)
    if not codes:
        return None
    return tuple(sorted({prefix_of(c) for c in codes}))
