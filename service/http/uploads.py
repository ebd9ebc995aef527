"""Saving uploads to a temporary file, refusing ones that are too big or empty; turning files
refused by ``gis.limits`` (for every upload and every CLI import) into 413 and 422 answers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from gis.limits import FileTooLarge, UnsafeFile
from service.errors import InvalidInput, PayloadTooLarge

_CHUNK = 1 << 20


@contextmanager
def saved_upload(file: UploadFile, max_mb: int, field: str = "file") -> Iterator[Path]:
    """Yield the upload as a file on disk (keeping its suffix); removed afterwards."""
    suffix = "".join(Path(file.filename or "upload").suffixes[-2:]) or ""
    limit = max_mb * _CHUNK
    folder = Path(tempfile.mkdtemp(prefix="citygrid-upload-"))
    try:
        path = folder / f"upload{suffix}"
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"upload is larger than {max_mb} MB; split it or raise "
                        "CITYGRID_MAX_UPLOAD_MB",
                        field=field,
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidInput("uploaded file is empty", field=field)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def file_refusals(field: str = "file") -> Iterator[None]:
    """Answer a file refused by ``gis.limits``: 413 naming the ``CITYGRID_*`` setting that allows
    more (``setting`` in the body), or 422 for a hostile or broken structure."""
    try:
        yield
    except FileTooLarge as exc:
        setting = f"CITYGRID_{exc.limit.upper()}"
        advice = (
            f"if the file is genuine, raise {setting}"
            if exc.limit == "max_compression_ratio"
            else f"split the file or raise {setting}"
        )
        raise PayloadTooLarge(f"{exc}; {advice}", field=field, setting=setting) from exc
    except UnsafeFile as exc:
        raise InvalidInput(str(exc), field=field) from exc
