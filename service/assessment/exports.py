"""Figures as the tables offices keep: one row per unit, Chinese headers, CSV or XLSX."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from service.assessment.figures import Figures
from service.http.tables import csv_chunks, xlsx_sheet

# (indicator key or subject field, header); rates are shown in per cent
COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "单位编码"),
    ("name", "单位名称"),
    ("due", "应结案数"),
    ("closed", "结案数"),
    ("closed_on_time", "按期结案数"),
    ("closed_late", "超期结案数"),
    ("overdue_open", "超期未结数"),
    ("close_rate", "结案率(%)"),
    ("on_time_close_rate", "按期结案率(%)"),
    ("reported", "上报数"),
    ("valid_reported", "有效上报数"),
    ("valid_report_rate", "有效上报率(%)"),
    ("registered", "立案数"),
    ("voided", "作废数"),
    ("dispatched", "派遣数"),
    ("accurate_dispatch_rate", "准确派遣率(%)"),
    ("handled", "处置数"),
    ("on_time_handling_rate", "按期处置率(%)"),
    ("reworked", "返工数"),
    ("rework_rate", "返工率(%)"),
    ("extended", "延期数"),
    ("extension_rate", "延期率(%)"),
    ("avg_handling_hours", "平均处置时长(工作小时)"),
    ("on_time_check_rate", "按时核查率(%)"),
    ("missed", "漏报数"),
)
RATES = {k for k, h in COLUMNS if h.endswith("(%)")}


def headers() -> list[str]:
    """The Chinese header row."""
    return [h for _, h in COLUMNS]


def row(subject: Figures) -> list[Any]:
    """One unit's row: counts as integers, rates in per cent (2 places), blanks for ÷ 0."""
    values = subject.values()
    out: list[Any] = []
    for key, _ in COLUMNS:
        if key in ("key", "name"):
            out.append(getattr(subject, key) or "")
            continue
        v = values.get(key)
        if v is None:
            out.append("")
        elif key in RATES:
            out.append(round(float(v) * 100, 2))
        else:
            out.append(v)
    return out


def csv_stream(subjects: Iterable[Figures]) -> Iterator[bytes]:
    """CSV (UTF-8 with BOM, so Excel reads the Chinese), streamed in chunks of 1000 rows."""
    return csv_chunks(headers(), (row(s) for s in subjects))


def xlsx(subjects: Iterable[Figures], title: str) -> bytes:
    """An XLSX workbook of one sheet."""
    return xlsx_sheet(title, headers(), (row(s) for s in subjects))
