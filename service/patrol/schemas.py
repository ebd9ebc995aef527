"""Request shapes of workers, patrol sessions and GPS fixes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from service.http.params import DatumName


class WorkerIn(BaseModel):
    """A grid worker to create or update, with assigned unit grids and phones."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[\w.-]+$", description="工号")
    name: str = Field(min_length=1, max_length=100)
    team: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    grid_codes: list[str] = Field(default_factory=list, description="Assigned unit grids")
    devices: list[str] = Field(
        default_factory=list, description="Device ids of the phones this worker carries"
    )
    active: bool = True

    @field_validator("devices")
    @classmethod
    def _device_ids(cls, value: list[str]) -> list[str]:
        for d in value:
            if not 1 <= len(d) <= 64 or "\x00" in d:
                raise ValueError("device ids are 1-64 characters")
        return value


class FixIn(BaseModel):
    """One GPS fix."""

    time: datetime = Field(description="ISO 8601; without an offset it is local time")
    lon: float
    lat: float
    accuracy_m: float | None = Field(None, ge=0, description="The phone's accuracy estimate")
    speed_mps: float | None = Field(None, ge=0)
    device_id: str | None = Field(None, max_length=64, description="Overrides the batch's")


class FixBatchIn(BaseModel):
    """A batch of fixes, usually from one phone, oldest first."""

    device_id: str | None = Field(None, max_length=64, description="Phone that sent the fixes")
    datum: DatumName = "wgs84"
    mode: Literal["all", "rows"] = Field(
        "all", description="all: any bad fix refuses the batch; rows: store the good ones"
    )
    fixes: list[FixIn] = Field(min_length=1, max_length=50_000)


class SessionStart(BaseModel):
    """Start a patrol session on a phone."""

    device_id: str = Field(min_length=1, max_length=64)
    started_at: datetime | None = None


class SessionEnd(BaseModel):
    """End a patrol session."""

    ended_at: datetime | None = None
