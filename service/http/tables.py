"""Tables for spreadsheet users: CSV that Excel opens with its Chinese intact (UTF-8 with a
byte-order mark), streamed in chunks, and one-sheet XLSX workbooks (openpyxl's write-only mode,
so memory stays flat however many rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

BOM = "\ufeff"  # without it Excel reads UTF-8 as the local code page and garbles Chinese


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], every: int = 1000
) -> Iterator[bytes]:
    """``header`` and ``rows`` as CSV bytes with a BOM, a chunk per ``every`` rows."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write(BOM)
    writer.writerow(header)
    for i, values in enumerate(rows, start=1):
        writer.writerow(values)
        if i % every == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def xlsx_sheet(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """An XLSX workbook of one sheet named ``title`` (cut to Excel's 31 characters)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(list(header))
    for values in rows:
        sheet.append(list(values))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
