"""Binary COPY of Arrow tables into PostgreSQL (encoded by ``pgpq``, no per-row Python)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder

_BATCH_ROWS = 100_000


def copy_arrow(cursor: Any, table: str, data: pa.Table) -> int:
    """COPY ``data`` into ``table`` (columns matched by name) in PostgreSQL's binary format.

    Arrow timestamps become ``timestamptz`` (same wire format as ``timestamp``), binary columns
    holding EWKB become ``geometry``, lists become arrays. Returns the number of rows sent.
    """
    if data.num_rows == 0:
        return 0
    encoder = ArrowToPostgresBinaryEncoder(data.schema)
    columns = ", ".join(f'"{name}"' for name in data.column_names)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT binary)") as copy:
        copy.write(bytes(encoder.write_header()))
        for batch in data.to_batches(max_chunksize=_BATCH_ROWS):
            copy.write(bytes(encoder.write_batch(batch)))
        copy.write(bytes(encoder.finish()))
    return data.num_rows
