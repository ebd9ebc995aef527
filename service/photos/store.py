"""Where photo files live: :class:`PhotoStore`, content-addressed by the original's sha256,
and :class:`FileSystemStore`, a folder (by default ``photos/`` under ``CITYGRID_DATA_DIR``).
An S3-compatible bucket is :class:`service.photos.s3.S3Store`.

Files are written in two steps so that nothing becomes visible for a row that did not commit:
``stage`` before the commit (where a full disk fails the request), ``promote`` after it (an
atomic rename), and ``discard`` when the transaction rolls back. A process that dies between
the two leaves a staged file no reader ever asks for; ``clear_staging`` removes such files.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from service.errors import NotFound

# the files of one photo: the original as uploaded, the EXIF-free copy served, the thumbnail
VARIANTS = ("orig", "display.jpg", "thumb.jpg")


def file_key(sha256: str, variant: str) -> str:
    """The key of one variant of the photo whose original has ``sha256``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{variant}"


class PhotoStore(ABC):
    """Content-addressed storage of photo files, written in two steps around a commit."""

    @abstractmethod
    def stage(self, key: str, data: bytes) -> str:
        """Write ``data`` where no reader sees it yet; a token for :meth:`promote`.

        Written even when ``key`` is stored already: a retention sweep that deletes that copy
        before our commit is undone when ours is promoted."""

    @abstractmethod
    def promote(self, key: str, token: str) -> None:
        """Make a staged file visible under ``key`` (after the commit)."""

    @abstractmethod
    def discard(self, token: str) -> None:
        """Forget a staged file (the transaction rolled back)."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The stored bytes (``NotFound`` naming ``file`` when missing)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a stored file (no error when it is already gone)."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored key (for the retention sweep's orphan check)."""

    @abstractmethod
    def clear_staging(self, before: datetime) -> int:
        """Remove files staged before ``before`` and never promoted nor discarded (their
        process died before its commit ended); how many."""


class FileSystemStore(PhotoStore):
    """Files under ``root``: ``ab/cd/<sha256>.<variant>``, staged in ``root/.staging``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def stage(self, key: str, data: bytes) -> str:
        """Write to a temporary file in ``.staging`` (fsync'd: the commit may follow)."""
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging, prefix="photo-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return name

    def promote(self, key: str, token: str) -> None:
        """Rename the staged file into place (atomic on one file system)."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(token, target)  # same bytes if another upload got there first

    def discard(self, token: str) -> None:
        """Remove the staged file."""
        Path(token).unlink(missing_ok=True)

    def read(self, key: str) -> bytes:
        """The file's bytes."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("the photo's file is missing from the store", field="file") from exc

    def delete(self, key: str) -> None:
        """Unlink the file."""
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        """Keys of the files under ``root`` (staging left out)."""
        if not self.root.exists():
            return
        for path in self.root.glob("??/??/*"):
            yield path.relative_to(self.root).as_posix()

    def clear_staging(self, before: datetime) -> int:
        """Unlink staging files last written before ``before``."""
        staging = self.root / ".staging"
        if not staging.exists():
            return 0
        old = [p for p in staging.iterdir() if p.stat().st_mtime < before.timestamp()]
        for path in old:
            path.unlink(missing_ok=True)
        return len(old)
