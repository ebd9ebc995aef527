"""Request and response shapes of the grid registry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gis import datum as datums
from service.grids.registry import LocateResult
from service.http.params import DatumName

Level = Literal["city", "district", "street", "community", "unit"]


class Person(BaseModel):
    """A responsible person and how to reach them."""

    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=40)
    role: str | None = Field(None, max_length=100)


class GridCreate(BaseModel):
    """A grid to create (or a new boundary version of an existing code)."""

    code: str = Field(description="Full-width code (14 or 15 digits, per configuration)")
    level: Level
    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    datum: DatumName = Field("wgs84", description="Datum of the geometry's coordinates")
    parent_code: str | None = Field(None, description="Optional; derived from the code")
    responsible_unit: str | None = None
    responsible_persons: list[Person] = Field(default_factory=list)
    land_use: str | None = None
    management_grade: str | None = None


class GridUpdate(BaseModel):
    """Changes to a grid; a new ``geometry`` creates a new version."""

    name: str | None = Field(None, min_length=1, max_length=200)
    geometry: dict[str, Any] | None = None
    datum: DatumName = "wgs84"
    responsible_unit: str | None = None
    responsible_persons: list[Person] | None = None
    land_use: str | None = None
    management_grade: str | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("name cannot be null; leave it out to keep the current name")
        return value


class GridRetire(BaseModel):
    """Retire a grid: close its current version without a successor."""

    move_to: str | None = Field(
        None,
        max_length=15,
        description="Code of a grid of the same level that takes over the open cases and "
        "assigned workers (required while any depend on the grid)",
    )
    absorb: bool = Field(
        False, description="The move_to grid also takes over the area (a new version)"
    )


class GridRef(BaseModel):
    """A grid named in an answer."""

    code: str
    name: str
    level: str
    version: int


class Candidate(GridRef):
    """A grid near the located point."""

    distance_m: float


class LocateOut(BaseModel):
    """Answer of the locate endpoint."""

    lon: float = Field(description="Longitude that was located, in the request's datum")
    lat: float
    grid: GridRef
    chain: list[GridRef] = Field(description="Parents from community up to the city")
    responsible_unit: str | None
    responsible_persons: list[dict[str, Any]]
    near_boundary: bool = Field(description="True when more than one grid is within the radius")
    candidates: list[Candidate] = Field(description="Every unit grid within the radius")

    @classmethod
    def from_result(cls, r: LocateResult, datum: str = "wgs84") -> LocateOut:
        """Shape a domain locate result for the API, the point in ``datum``."""

        def ref(g: Any) -> dict[str, Any]:
            return {"code": g.code, "name": g.name, "level": g.level, "version": g.version}

        lon, lat = datums.from_wgs84(r.lon, r.lat, datum)
        return cls(
            lon=float(lon),
            lat=float(lat),
            grid=ref(r.grid),
            chain=[ref(g) for g in r.chain],
            responsible_unit=r.grid.responsible_unit,
            responsible_persons=r.grid.responsible_persons or [],
            near_boundary=len(r.candidates) > 1,
            candidates=[{**ref(g), "distance_m": round(d, 2)} for g, d in r.candidates],
        )
