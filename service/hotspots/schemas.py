"""Request shapes of hotspots and their kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.http.params import DatumName


class HotspotCreate(BaseModel):
    """A hotspot: point, line or polygon with an influence buffer."""

    key: str = Field(min_length=1, max_length=60, description="Stable id, e.g. market-01")
    kind: str
    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any]
    datum: DatumName = "wgs84"
    buffer_m: float | None = Field(None, ge=0, description="Default: the kind's buffer")
    active_from: datetime | None = None
    active_to: datetime | None = None
    owner_unit: str | None = None
    owner_name: str | None = None
    owner_phone: str | None = None
    risk_weight: float | None = Field(None, ge=0)
    patrol_quota_per_week: int | None = Field(None, ge=0)


class HotspotKindIn(BaseModel):
    """A city's own hotspot kind."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    name: str = Field(min_length=1)
    default_buffer_m: float = Field(0.0, ge=0)
    default_risk_weight: float = Field(1.0, ge=0)


class HotspotUpdate(BaseModel):
    """Changes to a hotspot; leave out what stays. A new geometry, buffer or kind remakes the
    influence zone (null ``buffer_m`` or ``risk_weight``: back to the kind's default)."""

    # a misspelt or read-only field (key, id) is refused, not silently ignored
    model_config = ConfigDict(extra="forbid")

    kind: str | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    geometry: dict[str, Any] | None = None
    datum: DatumName = "wgs84"
    buffer_m: float | None = Field(None, ge=0)
    active_from: datetime | None = None
    active_to: datetime | None = None
    owner_unit: str | None = None
    owner_name: str | None = None
    owner_phone: str | None = None
    risk_weight: float | None = Field(None, ge=0)
    patrol_quota_per_week: int | None = Field(None, ge=0)


class HotspotEnd(BaseModel):
    """When a hotspot ended (a construction site that finished)."""

    at: datetime | None = Field(None, description="Default now; no offset = local time")
