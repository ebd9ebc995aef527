"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from service.cases import CaseService
from service.database import session_scope
from service.factory import AppSettings
from service.hotspots import HotspotService
from service.registry import Registry


def _session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.sessions) as session:
        yield session


def _settings(request: Request) -> AppSettings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[AppSettings, Depends(_settings)]


def _registry(session: SessionDep, settings: SettingsDep) -> Registry:
    return Registry(session, settings.scheme, settings.grids.city)


RegistryDep = Annotated[Registry, Depends(_registry)]


def _cases(session: SessionDep, settings: SettingsDep) -> CaseService:
    return CaseService(session, settings)


def _hotspots(session: SessionDep, settings: SettingsDep) -> HotspotService:
    return HotspotService(session, settings.grids.city)


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
