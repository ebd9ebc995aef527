"""``/api/campaigns``: campaigns (专项行动 / 专项整治) — their scope, targets, back-planned
milestones (倒排进度) and owners, and each target's progress per day (a burn-down).

Creating, editing and deleting (only before the campaign starts) need ``campaigns.manage``
(admin, leader) and keep to the caller's grid scope; reading needs ``cases.read`` (or
``campaigns.manage``) and shows the campaigns overlapping the caller's scope, with counts of
the cases the caller may see.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from service.accounts.principal import Principal
from service.auth import Allow
from service.campaigns.campaigns import CampaignInput, OwnerInput, TargetInput
from service.campaigns.plan import Milestone
from service.deps import CampaignsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"], route_class=GuardedRoute)

READERS = ("cases.read", "campaigns.manage")
Code = Annotated[str, Field(min_length=1, max_length=60)]


class ScopeIn(BaseModel):
    """Where the campaign acts: grid codes (whole subtrees), hotspot keys, category codes."""

    grids: list[Code] = Field(default_factory=list, max_length=500)
    hotspots: list[Code] = Field(default_factory=list, max_length=500)
    categories: list[Code] = Field(default_factory=list, max_length=100)


class TargetIn(BaseModel):
    """A target: ``close_rate`` / ``hotspot_coverage`` (goal a share 0–1) or
    ``recurrence_max`` (goal a count)."""

    kind: str = Field(max_length=40)
    goal: float = Field(allow_inf_nan=False)
    key: str | None = Field(None, max_length=40)
    label: str | None = Field(None, max_length=200)
    categories: list[Code] = Field(default_factory=list, max_length=100)
    hotspots: list[Code] = Field(default_factory=list, max_length=500)


class MilestoneIn(BaseModel):
    """By the end of ``date``, ``share`` (0–1] of each target's goal (倒排进度)."""

    date: date
    share: float = Field(allow_inf_nan=False)


class OwnerIn(BaseModel):
    """An owner: an account login or a department."""

    user: str | None = Field(None, max_length=60)
    department: str | None = Field(None, max_length=200)


class CampaignIn(BaseModel):
    """A campaign (the whole of it, also for an edit)."""

    name: str = Field(max_length=200)
    description: str | None = Field(None, max_length=5000)
    start: date
    end: date
    scope: ScopeIn = Field(default_factory=ScopeIn)
    targets: list[TargetIn] = Field(max_length=20)
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=100)
    owners: list[OwnerIn] = Field(default_factory=list, max_length=50)

    def to_input(self) -> CampaignInput:
        """The service's input."""
        return CampaignInput(
            name=self.name,
            description=self.description,
            start=self.start,
            end=self.end,
            grids=list(self.scope.grids),
            hotspots=list(self.scope.hotspots),
            categories=list(self.scope.categories),
            targets=[TargetInput(**t.model_dump()) for t in self.targets],
            milestones=[Milestone(m.date, m.share) for m in self.milestones],
            owners=[OwnerInput(o.user, o.department) for o in self.owners],
        )


@router.get("", summary="Campaigns overlapping my scope (optionally those running on a day)")
def campaigns(
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow(*READERS)],
    active_on: Annotated[date | None, Query(description="Only campaigns running that day")] = None,
) -> dict[str, Any]:
    return {"campaigns": [svc.view(c, principal) for c in svc.campaigns(principal, active_on)]}


@router.post("", status_code=201, summary="Create a campaign and tag the cases in its scope")
def create(
    body: CampaignIn,
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow("campaigns.manage")],
) -> dict[str, Any]:
    return svc.view(svc.create(body.to_input(), principal), principal)


@router.get("/{campaign_id}", summary="A campaign with its scope, targets, milestones and owners")
def get_campaign(
    campaign_id: IdPath,
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow(*READERS)],
) -> dict[str, Any]:
    return svc.view(svc.visible(campaign_id, principal), principal)


@router.put("/{campaign_id}", summary="Replace a campaign and tag its cases again")
def update(
    campaign_id: IdPath,
    body: CampaignIn,
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow("campaigns.manage")],
) -> dict[str, Any]:
    return svc.view(svc.update(campaign_id, body.to_input(), principal), principal)


@router.delete(
    "/{campaign_id}",
    status_code=204,
    summary="Delete a campaign that has not started yet (with its case tags); 409 once started",
)
def delete_campaign(
    campaign_id: IdPath,
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow("campaigns.manage")],
) -> Response:
    svc.delete(campaign_id, principal)
    return Response(status_code=204)


@router.get("/{campaign_id}/progress", summary="Each target's value and plan per day (burn-down)")
def progress(
    campaign_id: IdPath,
    svc: CampaignsDep,
    principal: Annotated[Principal, Allow(*READERS)],
    until: Annotated[date | None, Query(description="Last day (default today)")] = None,
) -> dict[str, Any]:
    return svc.progress(svc.visible(campaign_id, principal), principal, until)
