"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from anyio import CancelScope, to_thread
from fastapi import Depends, FastAPI, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.accounts import AccountService
from service.accounts.audit import AuditLog
from service.assessment.figures import IndicatorEngine
from service.assessment.inspection import Inspections, cross_scoring
from service.assessment.lists import ListService
from service.campaigns.campaigns import CampaignService
from service.cases.cases import CaseService
from service.cases.catalogue import Catalogue
from service.cases.importer import CaseImporter
from service.cases.ledger import CaseFilter, Ledger
from service.cases.open311.queries import ServiceRequests
from service.grids.locator import GridLocator
from service.grids.registry import Registry
from service.hotspots.hotspots import HotspotService
from service.http.params import parse_bbox
from service.http.timeparse import aware
from service.maps.heat import HeatCache, HeatService
from service.maps.tiles import TileCache
from service.notify.subscriptions import Subscriptions
from service.notify.transports import transports
from service.patrol.coverage import CoverageService
from service.patrol.workers import PatrolService
from service.settings import AppSettings
from service.streets.streets import StreetService
from service.supervision.orders import OrderService
from service.supervision.rules import RuleBook

# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in a
# worker thread, and each hand-off costs more than the work.


async def _session(request: Request) -> AsyncIterator[Session]:
    """The request's session: committed (or rolled back) and closed in one worker-thread visit
    before the answer is sent, so a failed commit is the answer, never a lost write behind a
    200; shielded, so a cancelled request still gives its connection back."""
    session = request.app.state.sessions()  # no I/O until first used
    try:
        yield session
    except BaseException:
        with CancelScope(shield=True):
            await to_thread.run_sync(_rollback_and_close, session)
        raise
    with CancelScope(shield=True):
        await to_thread.run_sync(_commit_and_close, session)


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


async def _settings(request: Request) -> AppSettings:
    return request.app.state.settings


# scope="function": the session ends when the route returns, before the response is sent
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SettingsDep = Annotated[AppSettings, Depends(_settings)]


async def _sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


# the session factory, for answers that stream after the route returns and own their session
SessionsDep = Annotated[sessionmaker[Session], Depends(_sessions)]


async def _registry(session: SessionDep, settings: SettingsDep) -> Registry:
    return Registry(session, settings)


RegistryDep = Annotated[Registry, Depends(_registry)]


async def _cases(session: SessionDep, settings: SettingsDep) -> CaseService:
    return CaseService(session, settings)


async def _hotspots(session: SessionDep, settings: SettingsDep) -> HotspotService:
    return HotspotService(session, settings)


async def _ledger(session: SessionDep, settings: SettingsDep) -> Ledger:
    return Ledger(session, settings)


async def _importer(session: SessionDep, settings: SettingsDep) -> CaseImporter:
    return CaseImporter(session, settings)


async def _catalogue(session: SessionDep, settings: SettingsDep) -> Catalogue:
    return Catalogue(session, settings)


async def _patrol(session: SessionDep, settings: SettingsDep) -> PatrolService:
    return PatrolService(session, settings)


async def _coverage(session: SessionDep, settings: SettingsDep) -> CoverageService:
    return CoverageService(session, settings)


async def _service_requests(session: SessionDep, settings: SettingsDep) -> ServiceRequests:
    return ServiceRequests(session, settings)


LedgerDep = Annotated[Ledger, Depends(_ledger)]
ServiceRequestsDep = Annotated[ServiceRequests, Depends(_service_requests)]
CaseImporterDep = Annotated[CaseImporter, Depends(_importer)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
PatrolDep = Annotated[PatrolService, Depends(_patrol)]
CoverageDep = Annotated[CoverageService, Depends(_coverage)]


async def _locator(request: Request, settings: SettingsDep) -> GridLocator:
    # no session: the locator opens one only when memory cannot answer
    return GridLocator(
        request.app.state.sessions,
        settings,
        getattr(request.app.state, "changes", None),
    )


LocatorDep = Annotated[GridLocator, Depends(_locator)]
CaseServiceDep = Annotated[CaseService, Depends(_cases)]
HotspotServiceDep = Annotated[HotspotService, Depends(_hotspots)]


T = TypeVar("T")
_STATE_LOCK = threading.Lock()


def app_cache(app: FastAPI, name: str, make: Callable[[], T]) -> T:
    """The app's cache ``app.state.<name>``, made on first use (tests may set their own)."""
    with _STATE_LOCK:
        cache = getattr(app.state, name, None)
        if cache is None:
            cache = make()
            setattr(app.state, name, cache)
        return cache


async def case_filter(
    settings: SettingsDep,
    grid: Annotated[str | None, Query(description="Grid code: its whole subtree")] = None,
    category: Annotated[str | None, Query(description="Category code or prefix ('05')")] = None,
    status: Annotated[str | None, Query(description="Comma-separated statuses")] = None,
    source: Annotated[str | None, Query()] = None,
    department: Annotated[str | None, Query()] = None,
    hotspot: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Cases matched to this hotspot")
    ] = None,
    reported_from: Annotated[datetime | None, Query(alias="from")] = None,
    reported_to: Annotated[datetime | None, Query(alias="to")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> CaseFilter:
    """Ledger filters from query parameters (naive times are local time)."""
    tz = settings.grids.timezone
    return CaseFilter(
        grid=grid,
        category=category,
        statuses=tuple(s.strip() for s in status.split(",") if s.strip()) if status else (),
        source=source,
        department=department,
        hotspot=hotspot,
        reported_from=aware(reported_from, tz),
        reported_to=aware(reported_to, tz),
        bbox=parse_bbox(bbox),
        overdue=overdue,
    )


FilterDep = Annotated[CaseFilter, Depends(case_filter)]


async def _heat(request: Request, session: SessionDep, settings: SettingsDep) -> HeatService:
    # answers are cached per app by filter and data version (tests may set their own cache)
    return HeatService(session, settings, app_cache(request.app, "heat_cache", HeatCache))


async def _tile_cache(request: Request) -> TileCache:
    return app_cache(request.app, "tile_cache", TileCache)


HeatServiceDep = Annotated[HeatService, Depends(_heat)]
TileCacheDep = Annotated[TileCache, Depends(_tile_cache)]


async def _accounts(session: SessionDep, settings: SettingsDep) -> AccountService:
    return AccountService(session, settings)


async def _audit(session: SessionDep, settings: SettingsDep) -> AuditLog:
    return AuditLog(session, settings)


async def _streets(session: SessionDep, settings: SettingsDep) -> StreetService:
    return StreetService(session, settings)


AccountsDep = Annotated[AccountService, Depends(_accounts)]
StreetsDep = Annotated[StreetService, Depends(_streets)]
AuditDep = Annotated[AuditLog, Depends(_audit)]


async def _engine(session: SessionDep, settings: SettingsDep) -> IndicatorEngine:
    return IndicatorEngine(session, settings)


async def _lists(session: SessionDep, settings: SettingsDep) -> ListService:
    """The red/yellow lists: the cross-scoring rounds' grid scores join the grids' scores as
    the external component ``cross_scoring``."""
    return ListService(session, settings, externals=cross_scoring(session, settings))


async def _inspections(session: SessionDep, settings: SettingsDep) -> Inspections:
    return Inspections(session, settings)


EngineDep = Annotated[IndicatorEngine, Depends(_engine)]
ListsDep = Annotated[ListService, Depends(_lists)]
InspectionsDep = Annotated[Inspections, Depends(_inspections)]


async def _orders(session: SessionDep, settings: SettingsDep) -> OrderService:
    return OrderService(session, settings)


async def _rules(session: SessionDep, settings: SettingsDep) -> RuleBook:
    return RuleBook(session, settings)


OrdersDep = Annotated[OrderService, Depends(_orders)]
RulesDep = Annotated[RuleBook, Depends(_rules)]


async def _campaigns(session: SessionDep, settings: SettingsDep) -> CampaignService:
    return CampaignService(session, settings)


CampaignsDep = Annotated[CampaignService, Depends(_campaigns)]


async def _subscriptions(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Subscriptions:
    # the transports (the webhook's connection pool) are made once per app
    made = app_cache(request.app, "notify_transports", lambda: transports(settings))
    return Subscriptions(session, settings, made)


SubscriptionsDep = Annotated[Subscriptions, Depends(_subscriptions)]
