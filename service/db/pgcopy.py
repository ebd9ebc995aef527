"""Binary COPY of Arrow data into PostgreSQL (encoded by ``pgpq``, no per-row Python): a table at
once, or batches made by a worker thread while the previous batch streams."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from queue import Full, Queue
from typing import Any

import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from pgpq.encoders import StringEncoderBuilder
from pgpq.schema import Jsonb

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


def copy_pipelined(
    cursor: Any,
    table: str,
    schema: pa.Schema,
    batches: Iterator[tuple[pa.RecordBatch, int]],
    *,
    jsonb: Collection[str] = (),
    progress: Callable[[int], None] | None = None,
) -> None:
    """COPY ``batches`` (each with the count of rows sent once it is written) into ``table``.

    A worker thread runs the ``batches`` iterator — the caller's per-batch work — and encodes
    each batch while the previous one streams into COPY, so both cores stay busy. Text columns
    named in ``jsonb`` are sent as ``jsonb``. An error on either side stops both and is raised.
    """
    chunks: Queue[tuple[bytes, int] | BaseException | None] = Queue(maxsize=3)
    stop = threading.Event()

    def hand_over(item: tuple[bytes, int] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.2)
                return True
            except Full:
                continue
        return False  # the COPY side gave up: stop making batches

    def produce() -> None:
        try:
            encoder = _encoder(schema, jsonb)
            head, sent = encoder.write_header(), 0
            for batch, sent in batches:
                if not hand_over((head + encoder.write_batch(batch), sent)):
                    return
                head = b""
            hand_over((head + encoder.finish(), sent))
            hand_over(None)
        except BaseException as exc:  # handed to the COPY side, which re-raises
            hand_over(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        columns = ", ".join(schema.names)
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)") as copy:
            while (chunk := chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                payload, sent = chunk
                copy.write(payload)
                if progress is not None:
                    progress(sent)
    finally:
        stop.set()
        worker.join()


def _encoder(schema: pa.Schema, jsonb: Collection[str]) -> ArrowToPostgresBinaryEncoder:
    builders = {
        f.name: (
            StringEncoderBuilder.new_with_output(f, Jsonb())
            if f.name in jsonb
            else ArrowToPostgresBinaryEncoder.infer_encoder(f)
        )
        for f in schema
    }
    return ArrowToPostgresBinaryEncoder.new_with_encoders(schema, builders)
