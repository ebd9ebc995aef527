"""``/api/assessment/rounds``: cross-scoring inspection rounds (交叉考核) — checklists, rounds
and their rotation, the caller's own assignments, scoresheets and each round's results.

Organising rounds needs ``assessment.rounds`` (admin, leader) and keeps to the organiser's grid
scope; scoring needs ``assessment.score`` and an assignment; a new checklist version needs
``assessment.checklists`` (admin). Anyone holding one of them reads the rounds they organise
over or score in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from service.accounts.principal import Principal
from service.assessment.inspection import (
    ChecklistInput,
    ChecklistItemInput,
    ItemScore,
    RoundInput,
    SheetInput,
    checklist_out,
    sheet_out,
)
from service.assessment.periods import parse_period
from service.auth import Allow
from service.deps import InspectionsDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath

router = APIRouter(prefix="/api/assessment/rounds", tags=["assessment"], route_class=GuardedRoute)


READERS = ("assessment.rounds", "assessment.score")


class ItemIn(BaseModel):
    """One checklist item of a new version."""

    code: str = Field(min_length=1, max_length=40)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    max_points: float
    hotspot_kind: str | None = Field(None, max_length=40)


class ChecklistIn(BaseModel):
    """A new checklist version."""

    key: str = Field(min_length=1, max_length=40)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    items: list[ItemIn] = Field(max_length=100)


class RoundIn(BaseModel):
    """A new round: grids by code, or ``count`` grids of ``level`` (under ``within``)."""

    period: str | None = Field(None, max_length=40)  # default: the current local month
    scorers: list[str] = Field(max_length=200)
    name: str | None = Field(None, max_length=200)
    checklist: str = Field("cross_inspection", max_length=40)
    grids: list[str] = Field(default_factory=list, max_length=500)
    level: str | None = Field(None, max_length=16)
    count: int | None = None
    within: str | None = Field(None, max_length=15)
    scorers_per_grid: int = 1


class AssignmentIn(BaseModel):
    """One scorer (login) for one grid."""

    grid: str = Field(min_length=1, max_length=15)
    scorer: str = Field(min_length=1, max_length=60)


class AssignmentsIn(BaseModel):
    """The round's whole rotation, replacing the proposal."""

    assignments: list[AssignmentIn] = Field(max_length=5000)


class ItemScoreIn(BaseModel):
    """Points for one item, with an optional note."""

    code: str = Field(min_length=1, max_length=40)
    points: float
    note: str | None = Field(None, max_length=2000)


class SheetIn(BaseModel):
    """A filled checklist for one grid."""

    grid: str = Field(min_length=1, max_length=15)
    items: list[ItemScoreIn] = Field(max_length=100)
    notes: str | None = Field(None, max_length=5000)
    photos: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=50
    )


@router.get("/checklists", summary="Every checklist version")
def checklists(
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow(*READERS, "assessment.checklists")],
) -> dict[str, Any]:
    return {"checklists": [checklist_out(c) for c in svc.checklists()]}


@router.get("/checklists/{key}", summary="A checklist (the latest version, or ?version=)")
def checklist(
    key: str,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow(*READERS, "assessment.checklists")],
    version: Annotated[int | None, Query(ge=1, le=100000)] = None,
) -> dict[str, Any]:
    return checklist_out(svc.checklist(key, version))


@router.post("/checklists", status_code=201, summary="Publish the next version of a checklist")
def add_checklist(
    body: ChecklistIn,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.checklists")],
) -> dict[str, Any]:
    new = ChecklistInput(
        body.key,
        body.name_zh,
        body.name_en,
        [ChecklistItemInput(**i.model_dump()) for i in body.items],
    )
    return checklist_out(svc.add_checklist(new, principal))


@router.get("/mine", summary="My assignments in draft and open rounds")
def mine(
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.score")],
) -> dict[str, Any]:
    return {"assignments": svc.mine(principal)}


@router.get("", summary="Rounds the caller organises over or scores in")
def rounds(
    svc: InspectionsDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow(*READERS)],
    period: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    p = parse_period(period, settings.grids.timezone) if period else None
    return {"rounds": [svc.view(r) for r in svc.rounds(principal, p)]}


@router.post("", status_code=201, summary="Create a draft round with a proposed rotation")
def create_round(
    body: RoundIn,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    return svc.view(svc.create(RoundInput(**body.model_dump()), principal))


@router.get("/{round_id}", summary="A round with its assignments and progress")
def get_round(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow(*READERS)],
) -> dict[str, Any]:
    return svc.view(svc.visible(round_id, principal))


@router.post("/{round_id}/rotation", summary="Propose the rotation again (draft rounds)")
def propose(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    return svc.view(svc.propose(round_id, principal))


@router.put("/{round_id}/assignments", summary="Replace the rotation (draft rounds)")
def set_assignments(
    round_id: IdPath,
    body: AssignmentsIn,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    pairs = [(a.grid, a.scorer) for a in body.assignments]
    return svc.view(svc.set_assignments(round_id, pairs, principal))


@router.post("/{round_id}/open", summary="Open a draft round for scoring")
def open_round(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    return svc.view(svc.open(round_id, principal))


@router.post("/{round_id}/close", summary="Close an open round; its scores count from now on")
def close_round(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    return svc.view(svc.close(round_id, principal))


@router.get(
    "/{round_id}/checklist",
    summary="The round's checklist for one grid: the items that apply there, with their maxima",
)
def sheet_form(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow(*READERS)],
    grid: Annotated[str, Query(min_length=1, max_length=15, description="Grid code")],
) -> dict[str, Any]:
    return svc.sheet_form(svc.visible(round_id, principal), grid)


@router.post("/{round_id}/scoresheets", status_code=201, summary="Submit my scoresheet for a grid")
def submit(
    round_id: IdPath,
    body: SheetIn,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.score")],
) -> dict[str, Any]:
    sheet = SheetInput(
        body.grid,
        [ItemScore(i.code, i.points, i.note) for i in body.items],
        body.notes,
        list(body.photos),
    )
    row = svc.submit(round_id, sheet, principal)
    return sheet_out(row, svc.names([row.scorer_id]))


@router.get("/{round_id}/scoresheets", summary="The round's scoresheets (a scorer: their own)")
def sheets(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow(*READERS)],
) -> dict[str, Any]:
    rows = svc.sheets(svc.visible(round_id, principal), principal)
    people = svc.names(s.scorer_id for s in rows)
    return {"scoresheets": [sheet_out(s, people) for s in rows]}


@router.get("/{round_id}/results", summary="Score per grid, with the points each item lost")
def results(
    round_id: IdPath,
    svc: InspectionsDep,
    principal: Annotated[Principal, Allow("assessment.rounds")],
) -> dict[str, Any]:
    return svc.results(svc.visible(round_id, principal))
