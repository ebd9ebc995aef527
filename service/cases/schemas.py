"""Request shapes of cases and the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.http.params import DatumName

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
    grid_code: str | None = Field(
        None,
        max_length=15,
        description="The reporter's choice of grid for a point near a boundary: one of the "
        "candidates GET /api/grids/locate lists (a 422 naming grid_code otherwise)",
    )


class ActionIn(BaseModel):
    """A workflow step."""

    action: str = Field(
        description="register, reject, dispatch, handle, feedback, return (退单), verify, "
        "rework, extend, reopen, merge, evaluate (综合评价 of a closed case)"
    )
    actor: str | None = Field(
        None,
        max_length=100,
        deprecated=True,
        description="Deprecated and ignored: the history names the account or API key that "
        "acted (kept so that old clients sending it still work)",
    )
    note: str | None = Field(None, max_length=4000)
    photos: list[str] = Field(default_factory=list, max_length=20)
    lon: float | None = None
    lat: float | None = None
    datum: DatumName = "wgs84"
    version: int | None = Field(None, description="The version you saw (or If-Match header)")
    deadline_at: datetime | None = Field(None, description="extend: the new deadline")
    into: int | None = Field(None, description="merge: the case this duplicate folds into")
    department: str | None = Field(
        None,
        max_length=200,
        description="dispatch: send to this department (needed after a 退单 return)",
    )
    satisfaction: str | None = Field(
        None, max_length=8, description="evaluate: 满意, 基本满意 or 不满意 (the reporter's)"
    )
    quality: int | None = Field(None, description="evaluate: quality of the fix, 1–5 points")


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
    patrol_visible: bool = Field(
        True, description="Patrols should find problems of this kind (漏报数 counts only these)"
    )


class CategoryPatch(BaseModel):
    """A change of a category's flags."""

    patrol_visible: bool = Field(
        description="Patrols should find problems of this kind (漏报数 counts only these)"
    )


class RoutingRuleIn(BaseModel):
    """Who handles what where."""

    category_prefix: str = Field("", max_length=8, description="'' = every category; '05'")
    area_prefix: str = Field("", max_length=15, description="Grid code prefix; '' = everywhere")
    department: str = Field(min_length=1)
    hotspot_owner_first: bool = False
    priority: int = 0
