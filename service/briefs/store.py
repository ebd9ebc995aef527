"""Making, storing and reading the daily set (三个一) of a scope and period.

A set is the 工作简报 and the 督查通报 in each configured format and the 问题台账 (XLSX), all of
issue 1. Making it takes a transaction-scoped advisory lock on (city, scope, period) and then
looks for it: a second maker — another service process at the same scheduled minute, a CLI run
— waits for the first to commit and finds its set instead of making another; the unique
(city, kind, scope, period, format, issue) stands behind the lock. A regeneration is the next
issue of one document, from the data as it is then; issued documents are never changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from service import notify
from service.accounts.principal import Principal
from service.briefs import providers
from service.briefs.figures import (
    KIND_ZH,
    Inputs,
    Request,
    brief_data,
    briefs_principal,
    check_request,
    circular_data,
    data_stamp,
    unit_grids_of,
    version_of,
)
from service.briefs.render import render_documents
from service.cases.ledger import CaseFilter, Ledger, export_xlsx
from service.clock import now
from service.db.models import Document
from service.errors import Forbidden, InvalidInput, NotFound
from service.settings import AppSettings

KINDS = ("brief", "circular", "ledger")
FORMATS = ("docx", "pdf", "html")
MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# documents being rendered in a worker process: (request, kind, issue, title, version, data
# stamp) and the job that gives their bytes per format
_Pending = tuple[tuple["Request", str, int, str, str, dict[str, Any]], "Future[dict[str, bytes]]"]
_LOCK_SPACE = 0x6272  # advisory-lock namespace of document sets ("br")


@dataclass(frozen=True)
class SetResult:
    """The documents of a set and whether this call made them."""

    documents: list[Document]
    created: bool


def document_json(doc: Document) -> dict[str, Any]:
    """A stored document as lists show it (without its bytes)."""
    return {
        "id": doc.id,
        "kind": doc.kind,
        "kind_zh": KIND_ZH[doc.kind],
        "scope": doc.scope,
        "period": doc.period,
        "period_kind": doc.period_kind,
        "first_day": doc.first_day.isoformat(),
        "last_day": doc.last_day.isoformat(),
        "format": doc.format,
        "issue": doc.issue,
        "title": doc.title,
        "created_at": doc.created_at.isoformat(),
        "created_by": doc.created_by,
        "data_version": doc.data_version,
        "data_stamp": doc.data_stamp,
        "size": doc.size,
        "sha256": doc.sha256,
        "href": f"/api/briefs/{doc.id}",
    }


def filename(doc: Document) -> str:
    """An ASCII file name for downloads: kind-scope-period-issue.format."""
    return f"{doc.kind}-{doc.scope}-{doc.period}-{doc.issue}.{doc.format}"


class DocumentStore:
    """The stored documents of one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        providers.install()  # campaign progress and 督办 orders, unless a test put others

    # -- making --------------------------------------------------------------------------------
    def make_set(
        self,
        scope: str,
        day: date,
        period_kind: str = "day",
        by: Principal | None = None,
        formats: Sequence[str] | None = None,
        inputs: Inputs | None = None,
    ) -> SetResult:
        """The set of ``scope`` for the ``period_kind`` period holding ``day``: the stored one
        when it exists, else made now and stored (issue 1). ``inputs`` shares the city-wide
        figures between the scopes of one run."""
        req = check_request(self.session, self.settings, scope, day, period_kind)
        if by is not None:
            self._check_scope(by, scope)
        formats = self._formats(formats)
        self._lock(req)
        found = self._issue(req, 1)
        if found:
            return SetResult(found, False)
        inputs = inputs or Inputs(self.session, self.settings)
        label = by.label if by is not None else "system"
        stamp = data_stamp(self.session, self.settings)  # one for the documents of the set
        docs: list[Document] = []
        pending: list[_Pending] = []
        for kind in ("brief", "circular"):
            docs += self._render(inputs, req, kind, formats, 1, label, stamp, pending)
        docs.append(self._ledger(req, 1, label, stamp))
        for (r, kind, issue, title, version, stamp), job in pending:  # rendered by the pool
            for fmt, content in job.result().items():
                docs.append(self._store(r, kind, fmt, issue, title, version, stamp, content, label))
        self.session.flush()
        notify.publish(
            self.session,
            "brief.published",
            {
                "scope": req.scope,
                "period": req.period.label,
                "documents": [
                    {"id": d.id, "kind": d.kind, "format": d.format, "sha256": d.sha256}
                    for d in docs
                ],
            },
            grid_code=req.scope,
            city=self.city,
            key=f"brief.published:{req.scope}:{req.period.label}:{req.period.kind}",
        )
        return SetResult(docs, True)

    def regenerate(self, doc_id: int, by: Principal) -> Document:
        """The next issue of document ``doc_id`` (same kind, scope, period and format) made from
        the data as it is now."""
        old = self.get(doc_id, by)
        self._check_scope(by, old.scope)
        req = check_request(self.session, self.settings, old.scope, old.first_day, old.period_kind)
        self._lock(req)
        issue = (
            self.session.scalar(
                select(func.max(Document.issue)).where(
                    Document.city == self.city,
                    Document.kind == old.kind,
                    Document.scope == old.scope,
                    Document.period == old.period,
                    Document.format == old.format,
                )
            )
            or 0
        ) + 1
        stamp = data_stamp(self.session, self.settings)
        if old.kind == "ledger":
            doc = self._ledger(req, issue, by.label, stamp)
        else:
            inputs = Inputs(self.session, self.settings)
            doc = self._render(inputs, req, old.kind, [old.format], issue, by.label, stamp)[0]
        self.session.flush()
        return doc

    def _formats(self, formats: Sequence[str] | None) -> list[str]:
        chosen = list(formats) if formats else self.settings.briefs.format_list()
        bad = [f for f in chosen if f not in FORMATS]
        if bad:
            raise InvalidInput(
                f"unknown format {bad[0]!r}; formats are {', '.join(FORMATS)}", field="formats"
            )
        return list(dict.fromkeys(chosen))

    def _lock(self, req: Request) -> None:
        """One maker of a scope's set of a period at a time, until the transaction ends."""
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": _LOCK_SPACE, "key": f"{self.city}/{req.scope}/{req.period.label}"},
        )

    def _issue(self, req: Request, issue: int) -> list[Document]:
        return list(
            self.session.scalars(
                select(Document)
                .where(
                    Document.city == self.city,
                    Document.scope == req.scope,
                    Document.period == req.period.label,
                    Document.issue == issue,
                )
                .order_by(Document.id)
            )
        )

    def _render(
        self,
        inputs: Inputs,
        req: Request,
        kind: str,
        formats: Sequence[str],
        issue: int,
        by: str,
        stamp: dict[str, Any],
        pending: list[_Pending] | None = None,
    ) -> list[Document]:
        """The documents of ``kind`` in ``formats``; with a process pool in ``inputs`` and a
        ``pending`` list they are rendered in the pool while the rest goes on, and stored from
        ``pending`` once rendered (nothing is returned for them here)."""
        data = brief_data(inputs, req) if kind == "brief" else circular_data(inputs, req)
        version = version_of(data)
        overlay, outlines = (
            (self._overlay(req), self._outlines(req)) if kind == "brief" else (None, [])
        )
        args = (data, overlay, outlines, list(formats), version)
        if inputs.pool is not None and pending is not None:
            meta = (req, kind, issue, data["title"], version, stamp)
            pending.append((meta, inputs.pool.submit(render_documents, *args)))
            return []
        return [
            self._store(req, kind, fmt, issue, data["title"], version, stamp, content, by)
            for fmt, content in render_documents(*args).items()
        ]

    def _overlay(self, req: Request) -> dict[str, Any] | None:
        """The heat layer's kernel density PNG of the scope and period (``None``: no cases)."""
        from service.maps.heat import HeatService

        heat = HeatService(self.session, self.settings)
        flt = heat.checked(req.period.start, req.period.end, None, req.scope, by=briefs_principal())
        try:
            body = heat.layer("kde", flt)
        except NotFound:
            return None
        return body if body.get("points") else None

    def _outlines(self, req: Request) -> list[tuple[str, Any]]:
        from service.grids.repository import geom_of

        return [
            (g.name or g.code, geom_of(g)) for g in unit_grids_of(self.session, self.settings, req)
        ]

    def _ledger(self, req: Request, issue: int, by: str, stamp: dict[str, Any]) -> Document:
        """The 问题台账 of the set: the scope's cases reported in the period (the existing
        ledger export; names and phones masked)."""
        flt = CaseFilter(grid=req.scope, reported_from=req.period.start, reported_to=req.period.end)
        content = export_xlsx(Ledger(self.session, self.settings), flt, briefs_principal(), "zh")
        version = hashlib.sha256(content).hexdigest()
        title = f"{req.scope_name}{KIND_ZH['ledger']}"
        return self._store(req, "ledger", "xlsx", issue, title, version, stamp, content, by)

    def _store(
        self,
        req: Request,
        kind: str,
        fmt: str,
        issue: int,
        title: str,
        version: str,
        stamp: dict[str, Any],
        content: bytes,
        by: str,
    ) -> Document:
        p = req.period
        doc = Document(
            city=self.city,
            kind=kind,
            scope=req.scope,
            period=p.label,
            period_kind=p.kind,
            first_day=p.first_day,
            last_day=p.last_day,
            format=fmt,
            issue=issue,
            title=title,
            created_at=now(),
            created_by=by,
            data_version=version,
            data_stamp=stamp,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        self.session.add(doc)
        return doc

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _check_scope(by: Principal, scope: str) -> None:
        if not by.covers_grid(scope):
            raise Forbidden(
                f"the documents of {scope} lie outside the scope of {by.label}: {by.scope_text()}",
                field="scope",
                scope=list(by.grid_prefixes or ()),
            )

    def get(self, doc_id: int, by: Principal) -> Document:
        """Document ``doc_id`` when ``by`` may read it (``NotFound`` otherwise: a document
        outside the caller's scope is not shown to exist)."""
        doc = self.session.get(Document, doc_id)
        if doc is None or doc.city != self.city or not by.covers_grid(doc.scope):
            raise NotFound(f"no document {doc_id}", field="id")
        return doc

    def list(
        self,
        by: Principal,
        scope: str | None = None,
        kind: str | None = None,
        period: str | None = None,
        day: date | None = None,
        limit: int = 100,
    ) -> list[Document]:
        """Documents in ``by``'s scope, newest period first (optionally one scope, kind,
        period label or day inside the period)."""
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}", field="kind")
        stmt = select(Document).where(Document.city == self.city)
        if scope:
            stmt = stmt.where(Document.scope == scope)
        if kind:
            stmt = stmt.where(Document.kind == kind)
        if period:
            stmt = stmt.where(Document.period == period)
        if day:
            stmt = stmt.where(Document.first_day <= day, Document.last_day >= day)
        if by.grid_prefixes is not None or by.department is not None:
            prefixes = list(by.grid_prefixes or ())
            if not prefixes:
                return []
            stmt = stmt.where(
                or_(*(Document.scope.startswith(p, autoescape=True) for p in prefixes))
            )
        stmt = stmt.order_by(
            Document.first_day.desc(),
            Document.scope,
            Document.kind,
            Document.format,
            Document.issue.desc(),
        ).limit(limit)
        return list(self.session.scalars(stmt))
