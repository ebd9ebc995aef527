"""Citizens' reports (随手拍) and what the public may read back: one report with its photo, the
status by tracking number, and the recent cases of the problem map.

A report is an Open311 service request (the same fields, ``service.cases.open311.params``)
taken in by the same intake as every other (its idempotency key and its duplicate detection),
with its photo stored as the report's "before" photo in the same transaction: a bad photo
leaves no case behind. What the public reads carries no personal data (no reporter, no
description, no photo) and no exact position: every position is the centre of its cell of
``CITYGRID_PUBLIC_PRECISION_M`` metres (:func:`gis.coarsen.cell_centres`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gis.coarsen import cell_centres
from service.accounts.principal import Principal
from service.accounts.scope import case_condition, sees_case
from service.cases.cases import CaseInput, CaseService
from service.cases.catalogue import Catalogue
from service.citizen.tracking import case_id_of, tracking_number
from service.clock import now
from service.db.models import Case, Category
from service.errors import CitygridError, InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.repository import GridFilter
from service.photos.photos import PhotoService, PhotoUpload
from service.settings import AppSettings

# what the public map shows: the problems being worked on and those fixed; refused reports
# and merged ones (the case they were merged into is shown) are left out
SHOWN_STATUSES = ("reported", "registered", "dispatched", "handling", "fed_back", "closed")


@dataclass(frozen=True)
class PublicCase:
    """A case as the public sees it: category, status, dates and a coarsened position."""

    category_code: str
    category_name: str
    status: str
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    lon: float
    lat: float


@dataclass(frozen=True)
class Receipt:
    """What a citizen gets back for a report."""

    tracking_number: str
    created: bool  # False: a retry of a report already taken (same idempotency key)
    duplicate: bool  # the same problem was already reported nearby: the office knows
    case: PublicCase


class CitizenReports:
    """The citizen's side of one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    # -- reporting -------------------------------------------------------------------------
    def categories(self) -> list[Category]:
        """The categories a citizen may choose: those whose intake needs no extra field (a
        component's asset number, say, is for the grid workers who carry the inventory)."""
        return [
            c for c in Catalogue(self.session, self.settings).categories() if not c.required_fields
        ]

    def report(self, item: CaseInput, photo: PhotoUpload | None, by: Principal) -> Receipt:
        """Take in a citizen's report (and its photo) by ``by``; a retry with the same
        idempotency key and the same content answers the first report."""
        cases = CaseService(self.session, self.settings)
        if item.category_code not in {c.code for c in self.categories()}:
            raise InvalidInput(
                f"service_code {item.category_code!r} is not one citizens may report; "
                "the choices are listed by GET /api/public/categories",
                field="service_code",
            )
        replay = self._replay(cases, item)
        if replay is not None:
            return self._receipt(replay, created=False)
        try:
            case, created = cases.intake(item, by)
        except InvalidInput as exc:
            if exc.field != "lon,lat":
                raise
            raise InvalidInput(
                "the position (lat, long) is outside the area this city manages: "
                "mark the problem on the map inside the city",
                field="lat,long",
            ) from exc
        if created and photo is not None:
            try:
                PhotoService(self.session, self.settings).upload_citizen(case, photo, by)
            except CitygridError as exc:
                if exc.field != "file":
                    raise
                # the form's field is "media" (as Open311 clients name it): say that one
                raise type(exc)(exc.message, field="media", **exc.extra) from exc
        return self._receipt(case, created=created)

    @staticmethod
    def _replay(cases: CaseService, item: CaseInput) -> Case | None:
        """The case a retried report made: same key and same content. The content includes
        the device token, so only the device that reported gets the number back."""
        if not item.idempotency_key:
            return None
        existing = cases.by_key(item.idempotency_key)
        if existing is not None and existing.request_hash == item.fingerprint():
            return existing
        return None  # unknown key: a new report; a key reused for other content: 409 in intake

    def _receipt(self, case: Case, created: bool) -> Receipt:
        return Receipt(
            tracking_number=self.number(case.id),
            created=created,
            duplicate=case.duplicate_of is not None,
            case=self._public([case])[0],
        )

    def number(self, case_id: int) -> str:
        """The tracking number of a case."""
        return tracking_number(self.settings.auth.secret_key, self.city, case_id)

    # -- public reads ----------------------------------------------------------------------
    def status(self, number: str, by: Principal | None = None) -> PublicCase:
        """The case a tracking number names (``NotFound`` naming the field otherwise); with
        ``by``, only a case in its scope."""
        case_id = case_id_of(self.settings.auth.secret_key, self.city, number)
        case = self.session.get(Case, case_id) if case_id is not None else None
        if case is None or case.city != self.city or (by is not None and not sees_case(by, case)):
            raise NotFound(
                f"no report with tracking number {number!r}: check the number you were given",
                field="tracking_number",
            )
        return self._public([case])[0]

    def recent(self, by: Principal | None = None) -> list[PublicCase]:
        """The problem map: cases reported in the last ``CITYGRID_PUBLIC_MAP_DAYS`` days
        (newest first, at most ``CITYGRID_PUBLIC_MAP_LIMIT``), duplicates left out; with
        ``by``, only those in its scope."""
        p = self.settings.public
        since = now() - timedelta(days=p.map_days)
        stmt = select(Case).where(
            Case.city == self.city,
            Case.reported_at >= since,
            Case.status.in_(SHOWN_STATUSES),
            Case.duplicate_of.is_(None),
        )
        scope = case_condition(by) if by is not None else None
        if scope is not None:
            stmt = stmt.where(scope)
        rows = self.session.scalars(
            stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(p.map_limit)
        )
        return self._public(list(rows))

    def _public(self, cases: list[Case]) -> list[PublicCase]:
        if not cases:
            return []
        names = {c.code: c.name for c in Catalogue(self.session, self.settings).categories()}
        lon, lat = cell_centres(
            [c.lon for c in cases], [c.lat for c in cases], self.settings.public.precision_m
        )
        return [
            PublicCase(
                category_code=c.category_code,
                category_name=names.get(c.category_code, c.category_code),
                status=c.status,
                reported_at=c.reported_at,
                updated_at=c.updated_at,
                closed_at=c.closed_at,
                lon=float(x),
                lat=float(y),
            )
            for c, x, y in zip(cases, lon, lat, strict=True)
        ]

    def bounds(self) -> tuple[float, float, float, float]:
        """The city's extent (WGS 84), where the maps open."""
        registry = Registry(self.session, self.settings)
        at = now()
        box = registry.extent(GridFilter(self.city, at, level="city")) or registry.extent(
            GridFilter(self.city, at)
        )
        if box is None:
            raise NotFound("this city has no grids yet: the citizen's pages need its area")
        return box
