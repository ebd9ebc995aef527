"""The 红黄榜 as offices keep it: one row per unit with Chinese headers — the closure figures
(the same headers as :mod:`service.assessment.exports`), score, grade, rank and list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from service.assessment.exports import COLUMNS

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
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(headers())
    for i, s in enumerate(scores, start=1):
        writer.writerow(row(s))
        if i % 1000 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def xlsx(scores: Iterable[dict[str, Any]], title: str) -> bytes:
    """An XLSX workbook of one sheet."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(headers())
    for s in scores:
        sheet.append(row(s))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
