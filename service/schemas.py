"""Request and response shapes, one per use (Create / Update / Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gis import datum as datums
from service.grids.registry import LocateResult

Level = Literal["city", "district", "street", "community", "unit"]
DatumName = Literal["wgs84", "gcj02", "bd09"]


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


Source = Literal["patrol", "citizen", "inspector", "open311", "import", "hotline"]


class Reporter(BaseModel):
    """Who reported a problem (optional: citizens may stay anonymous)."""

    name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)
    worker_id: str | None = Field(None, max_length=60)


class CaseCreate(BaseModel):
    """A reported problem."""

    category_code: str = Field(description="Category code from GET /api/categories")
    lon: float
    lat: float
    datum: DatumName = "wgs84"
    source: Source = "citizen"
    description: str | None = Field(None, max_length=4000)
    address: str | None = Field(None, max_length=500)
    reporter: Reporter | None = None
    reported_at: datetime | None = Field(None, description="Default now; no offset = local")
    fields: dict[str, Any] = Field(default_factory=dict, description="Category's extra fields")
    photos: list[str] = Field(default_factory=list, max_length=20)
    idempotency_key: str | None = Field(
        None, max_length=200, description="Or the Idempotency-Key header: a retry never duplicates"
    )
    allow_unassigned: bool = Field(
        False, description="Store a point outside every grid as unassigned instead of a 422"
    )


class ActionIn(BaseModel):
    """A workflow step."""

    action: str = Field(
        description="register, reject, dispatch, handle, feedback, verify, "
        "rework, extend, reopen, merge"
    )
    actor: str = Field(min_length=1, max_length=100)
    note: str | None = Field(None, max_length=4000)
    photos: list[str] = Field(default_factory=list, max_length=20)
    lon: float | None = None
    lat: float | None = None
    datum: DatumName = "wgs84"
    version: int | None = Field(None, description="The version you saw (or If-Match header)")
    deadline_at: datetime | None = Field(None, description="extend: the new deadline")
    into: int | None = Field(None, description="merge: the case this duplicate folds into")
    department: str | None = Field(
        None, max_length=200, description="dispatch: send to this department instead"
    )


class CategoryIn(BaseModel):
    """A local category added to the catalogue."""

    code: str = Field(pattern=r"^B?\d{4}$", description="4 digits (events) or B + 4 digits")
    family: Literal["event", "component"] = "event"
    major_name: str = Field(min_length=1)
    name: str = Field(min_length=1)
    deadline_amount: float = Field(gt=0)
    deadline_unit: Literal["hours", "days"]
    department: str = Field(min_length=1)
    required_fields: list[str] = Field(default_factory=list)


class RoutingRuleIn(BaseModel):
    """Who handles what where."""

    category_prefix: str = Field("", max_length=8, description="'' = every category; '05'")
    area_prefix: str = Field("", max_length=15, description="Grid code prefix; '' = everywhere")
    department: str = Field(min_length=1)
    hotspot_owner_first: bool = False
    priority: int = 0


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
