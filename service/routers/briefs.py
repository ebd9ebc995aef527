"""``/api/briefs``: the daily set (三个一) — 工作简报, 督查通报, 问题台账 — listed,
downloaded exactly as issued, made for a scope and day, and regenerated as a new issue.

Reads need ``briefs.read`` and show only documents of scopes inside the caller's grid scope (a
district leader reads the district's and its streets' documents); making and regenerating need
``briefs.generate`` and the scope in the caller's scope too.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from service.accounts.principal import Principal
from service.auth import Allow
from service.briefs.store import MEDIA_TYPES, DocumentStore, document_json, filename
from service.deps import SessionDep, SettingsDep
from service.http.bodyguard import GuardedRoute

router = APIRouter(prefix="/api/briefs", tags=["briefs"], route_class=GuardedRoute)

IdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Document id")]


class MakeSet(BaseModel):
    """What set to make: a scope (grid code of the city, a district or a street), a day and
    the period holding it; formats of the brief and circular (default: the configured)."""

    scope: str = Field(min_length=1, max_length=15, description="Grid code")
    date: date
    period: Literal["day", "week", "month"] = "day"
    formats: list[Literal["docx", "pdf", "html"]] | None = Field(None, max_length=3)


@router.get("", summary="Issued documents in your scope, newest period first")
def list_documents(
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("briefs.read")],
    scope: Annotated[str | None, Query(max_length=15)] = None,
    kind: Annotated[Literal["brief", "circular", "ledger"] | None, Query()] = None,
    period: Annotated[str | None, Query(max_length=40, description="2026-11-28, 2026-W48")] = None,
    day: Annotated[
        date | None, Query(alias="date", description="Documents covering this day")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    docs = DocumentStore(session, settings).list(by, scope, kind, period, day, limit)
    return {"items": [document_json(d) for d in docs]}


@router.post("", summary="Make the set of a scope and day (the stored one if it exists)")
def make_set(
    body: MakeSet,
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("briefs.generate")],
    response: Response,
) -> dict[str, Any]:
    result = DocumentStore(session, settings).make_set(
        body.scope, body.date, body.period, by, body.formats
    )
    response.status_code = 201 if result.created else 200
    return {"created": result.created, "items": [document_json(d) for d in result.documents]}


@router.get(
    "/{doc_id}",
    summary="Download a document exactly as issued",
    response_class=Response,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
)
def download(
    doc_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("briefs.read")],
) -> Response:
    doc = DocumentStore(session, settings).get(doc_id, by)
    return Response(
        doc.content,
        media_type=MEDIA_TYPES[doc.format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename(doc)}"',
            "X-Content-SHA256": doc.sha256,
            "X-Data-Version": doc.data_version,
        },
    )


@router.post(
    "/{doc_id}/regenerate",
    status_code=201,
    summary="Make the next issue of a document from the data as it is now",
)
def regenerate(
    doc_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("briefs.generate")],
) -> dict[str, Any]:
    doc = DocumentStore(session, settings).regenerate(doc_id, by)
    return document_json(doc)
