"""The 红黄榜 as offices keep it: one row per unit with Chinese headers — the closure figures
(the same headers as :mod:`service.assessment.exports`), score, grade, rank and list."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from service.assessment.exports import COLUMNS
from service.http.tables import csv_chunks, xlsx_sheet

_HEADER = dict(COLUMNS)
FIGURES = (
    "due",
    "closed",
    "closed_on_time",
    "closed_late",
    "overdue_open",
    "close_rate",
    "on_time_close_rate",
    "rework_rate",
)
LIST_NAMES = {"red": "红榜", "yellow": "黄榜"}


def headers() -> list[str]:
    """The Chinese header row."""
    return [
        _HEADER["key"],
        _HEADER["name"],
        "同类分组",
        *(_HEADER[k] for k in FIGURES),
        "综合得分",
        "等级",
        "组内排名",
        "红/黄榜",
    ]


def row(score: dict[str, Any]) -> list[Any]:
    """One unit's row: counts as integers, rates in per cent (2 places), blanks for ÷ 0."""
    figures = score.get("figures", {})
    out: list[Any] = [score["key"], score.get("name") or "", score.get("group") or ""]
    for key in FIGURES:
        v = figures.get(key)
        if v is None:
            out.append("")
        elif key.endswith("_rate"):
            out.append(round(float(v) * 100, 2))
        else:
            out.append(v)
    rank = score.get("rank")
    out += [
        score["total"],
        score["grade"],
        rank if rank is not None else "",
        LIST_NAMES.get(score.get("list") or "", ""),
    ]
    return out


def csv_stream(scores: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """CSV (UTF-8 with BOM, so Excel reads the Chinese), in chunks of 1000 rows."""
    return csv_chunks(headers(), (row(s) for s in scores))


def xlsx(scores: Iterable[dict[str, Any]], title: str) -> bytes:
    """An XLSX workbook of one sheet."""
    return xlsx_sheet(title, headers(), (row(s) for s in scores))
