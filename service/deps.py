"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from anyio import CancelScope, to_thread
from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker

from service.cases.cases import CaseService
from service.grids.locator import GridLocator
from service.grids.registry import Registry
from service.hotspots.hotspots import HotspotService
from service.settings import AppSettings

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
    return Registry(session, settings.scheme, settings.grids.city)


RegistryDep = Annotated[Registry, Depends(_registry)]


async def _cases(session: SessionDep, settings: SettingsDep) -> CaseService:
    return CaseService(session, settings)


async def _hotspots(session: SessionDep, settings: SettingsDep) -> HotspotService:
    return HotspotService(session, settings.grids.city)


async def _locator(request: Request, settings: SettingsDep) -> GridLocator:
    # no session: the locator opens one only when memory cannot answer
    return GridLocator(
        request.app.state.sessions,
        settings.scheme,
        settings.grids.city,
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
