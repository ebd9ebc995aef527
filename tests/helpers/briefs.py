"""Cases with histories for the documents' tests, and readers of the stored documents."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from service.db.models import Case, CaseEvent
from tests.helpers.city import COMM_A, COMM_B, point_lonlat, unit_code

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)  # a Friday
A1, A2, A3 = (unit_code(COMM_A, i) for i in range(1, 4))
B1 = unit_code(COMM_B, 1)
STATUS = {
    "register": "registered",
    "dispatch": "dispatched",
    "feedback": "fed_back",
    "verify": "closed",
    "rework": "handling",
}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time on ``day``."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


def add_case(
    session: Session,
    city: str,
    grid: str,
    reported: datetime,
    deadline: datetime,
    steps: list[tuple[str, datetime]] = (),  # type: ignore[assignment]
    *,
    source: str = "patrol",
    category: str = "0102",
    department: str = "环卫所",
    address: str | None = None,
    photos: list[str] | None = None,
    recurring_of: int | None = None,
    hotspots: list[int] | None = None,
) -> int:
    """A case reported at ``reported`` that went through ``steps`` (action, time)."""
    lon, lat = point_lonlat(50, 50)
    case = Case(
        city=city,
        category_code=category,
        source=source,
        status="reported",
        reported_at=reported,
        deadline_at=deadline,
        updated_at=reported,
        lon=lon,
        lat=lat,
        grid_code=grid,
        department=department,
        address=address,
        photos=photos or [],
        recurring_of=recurring_of,
        hotspot_ids=hotspots or [],
    )
    session.add(case)
    session.flush()
    status, closed = "reported", None
    for action, when in steps:
        target = STATUS[action]
        session.add(
            CaseEvent(
                city=case.city,
                case_id=case.id,
                action=action,
                from_status=status,
                to_status=target,
                actor="派遣员甲",
                at=when,
            )
        )
        closed = when if action == "verify" else closed
        status = target
        case.updated_at = when
    case.status, case.closed_at = status, closed
    session.flush()
    return case.id


def docx_text(content: bytes) -> tuple[str, list[list[list[str]]]]:
    """All paragraphs of a DOCX and its tables (rows of cell texts)."""
    from docx import Document

    doc = Document(io.BytesIO(content))
    text = "\n".join(p.text for p in doc.paragraphs)
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]
    return text, tables


def pdf_text(content: bytes) -> str:
    """The text of a PDF as ``pdftotext -layout`` reads it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(content)
        out = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
        )
    return out.stdout


def first_number_after(text: str, label: str) -> int:
    """The first integer after ``label`` on its line in ``text``."""
    for line in text.splitlines():
        if label in line:
            m = re.search(r"(\d+)", line.split(label, 1)[1])
            if m:
                return int(m.group(1))
    raise AssertionError(f"{label} not found")


def by_kind(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Listed documents by (kind, format)."""
    return {(d["kind"], d["format"]): d for d in items}
