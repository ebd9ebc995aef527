"""The reads behind the Open311 answers: service requests by filter, the catalogue changeset."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.accounts.scope import case_condition
from service.cases.catalogue import Catalogue
from service.cases.open311.params import RequestFilter
from service.db.models import Case, Category
from service.settings import AppSettings


class ServiceRequests:
    """The reads behind Open311's ``requests`` answers for one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def find(self, flt: RequestFilter, by: Principal, limit: int, offset: int = 0) -> list[Case]:
        """Cases in ``by``'s scope matching ``flt``, newest first (then highest id), one page
        of them."""
        return find_requests(self.session, self.city, flt, by, limit, offset)

    def categories(self) -> list[Category]:
        """The catalogue, as Open311's service list shows it."""
        return Catalogue(self.session, self.settings).categories()


def find_requests(
    session: Session,
    city: str,
    flt: RequestFilter,
    by: Principal,
    limit: int,
    offset: int = 0,
) -> list[Case]:
    """Cases of ``city`` in ``by``'s scope matching ``flt``, newest first (then highest id),
    one page of them."""
    stmt = select(Case).where(
        Case.city == city, Case.reported_at >= flt.start, Case.reported_at <= flt.end
    )
    scope = case_condition(by)
    if scope is not None:
        stmt = stmt.where(scope)
    if flt.service_codes:
        stmt = stmt.where(Case.category_code.in_(flt.service_codes))
    if flt.statuses:
        stmt = stmt.where(Case.status.in_(flt.statuses))
    stmt = stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def changeset(categories: Iterable[Category]) -> str:
    """A value that changes whenever the service list or a service definition changes.

    The catalogue keeps no edit time, so this is a fingerprint of its content rather than a
    date: clients compare it with the one they cached.
    """
    content = [(c.code, c.name, c.major_name, list(c.required_fields)) for c in categories]
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
    return digest[:16]
