"""Request shapes of streets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.http.params import DatumName


class StreetCreate(BaseModel):
    """A street centre line."""

    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] = Field(description="GeoJSON LineString")
    datum: DatumName = Field("wgs84", description="Datum of the geometry's coordinates")
    name: str | None = Field(None, max_length=200)
    kind: str | None = Field(None, max_length=20, description="e.g. main, secondary")


class StreetUpdate(BaseModel):
    """Changes to a street; leave out what stays."""

    # a misspelt or read-only field (key, id) is refused, not silently ignored
    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] | None = None
    datum: DatumName = "wgs84"
    name: str | None = Field(None, max_length=200)
    kind: str | None = Field(None, max_length=20)
