"""Sections other packages add to the documents: a small registry of providers.

The brief has a "campaign progress" section (``campaigns``) and the circular a "督办 items"
section (``supervision``); their data comes from packages the documents do not know. A package
registers a provider once (at import, or when the app starts)::

    from service.briefs import sections
    sections.register("campaigns", campaign_rows)

A provider is ``provider(session, settings, scope_prefix, period) -> list[dict] | None``, where
``scope_prefix`` is the code prefix of the scope grid's subtree (the documents compute it once,
in ``service.briefs.figures.check_request``; a provider never looks the scope up again): rows of
``{"title": …, "text": …}`` plus any string-valued columns the section shows, or ``None``
(nothing to say). A section is rendered when its provider is registered and returns rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from service.assessment.periods import Period
from service.settings import AppSettings

Provider = Callable[[Session, AppSettings, str, Period], "list[dict[str, Any]] | None"]

# section name → (Chinese heading, the document it belongs to)
KNOWN: dict[str, tuple[str, str]] = {
    "campaigns": ("专项行动进展", "brief"),
    "supervision": ("督办事项", "circular"),
}
_PROVIDERS: dict[str, Provider] = {}


def register(name: str, provider: Provider) -> None:
    """Make ``provider`` the source of section ``name`` (one of :data:`KNOWN`)."""
    if name not in KNOWN:
        raise ValueError(f"unknown section {name!r}; sections are {', '.join(KNOWN)}")
    _PROVIDERS[name] = provider


def registered(name: str) -> bool:
    """Whether section ``name`` has a provider."""
    return name in _PROVIDERS


def unregister(name: str) -> None:
    """Forget the provider of section ``name`` (if any)."""
    _PROVIDERS.pop(name, None)


def rows(
    name: str, session: Session, settings: AppSettings, scope_prefix: str, period: Period
) -> list[dict[str, Any]] | None:
    """The rows of section ``name`` for the scope with subtree prefix ``scope_prefix`` and
    ``period``, or ``None`` when no provider
    is registered or it has nothing. Rows are made JSON-safe (strings) so the data version
    and the stored documents see exactly what was rendered."""
    provider = _PROVIDERS.get(name)
    if provider is None:
        return None
    found = provider(session, settings, scope_prefix, period)
    if not found:
        return None
    return [{str(k): "" if v is None else str(v) for k, v in row.items()} for row in found]


def section(
    name: str, session: Session, settings: AppSettings, scope_prefix: str, period: Period
) -> dict[str, Any] | None:
    """``{"name", "title", "rows"}`` of section ``name``, or ``None`` when there is nothing to
    show."""
    found = rows(name, session, settings, scope_prefix, period)
    if found is None:
        return None
    return {"name": name, "title": KNOWN[name][0], "rows": found}
