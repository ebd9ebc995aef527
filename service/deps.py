"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
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
