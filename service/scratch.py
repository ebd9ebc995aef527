"""Each server process keeps its temporary files in a folder of its own, removed after a crash.

Uploads are staged on disk while a request reads them (``service.http.uploads``), zipped
Shapefiles and KMZ files are unpacked beside them and exports are written to disk before they
are sent. A request that ends, however it ends, removes its files; a process killed outright
(SIGKILL, the OOM killer, a power cut) leaves them, and nothing would ever remove them.

So a server process claims a scratch folder under the system's temporary folder (``TMPDIR``)
when it starts, makes it :mod:`tempfile`'s default, and holds an exclusive ``flock`` on a file
inside it while it runs. The kernel drops that lock when the process dies, however it dies:
a folder whose lock anyone can take belongs to no living process, and the next process to
claim one removes it. Locks rather than process ids: an id may be reused, or belong to another
container sharing the folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "citygrid-scratch-"
_MAKING = ".citygrid-making-"  # a folder being made: renamed to PREFIX… once locked
_LOCK = ".lock"
_MAKING_GRACE_S = 60  # a folder still being made after this long was left by a dead process

_guard = threading.Lock()
_users = 0
_folder: Path | None = None
_lock_fd: int | None = None
_previous: str | None = None


def claim(base: Path | None = None) -> Path:
    """This process's scratch folder under ``base`` (default: the system's temporary folder),
    made and set as :mod:`tempfile`'s default by the first claim; the folders of processes
    that are gone are removed first. Each claim is undone by one :func:`release`."""
    global _users, _folder, _lock_fd, _previous
    with _guard:
        if _folder is None:
            root = Path(base) if base is not None else Path(tempfile.gettempdir())
            clear_abandoned(root)
            _folder, _lock_fd = _make_locked(root)
            _previous, tempfile.tempdir = tempfile.tempdir, str(_folder)
        _users += 1
        return _folder


def release() -> None:
    """Undo one :func:`claim`; the last one removes the folder and unlocks it."""
    global _users, _folder, _lock_fd
    with _guard:
        if _users == 0:
            return
        _users -= 1
        if _users or _folder is None:
            return
        tempfile.tempdir = _previous
        shutil.rmtree(_folder, ignore_errors=True)
        if _lock_fd is not None:
            os.close(_lock_fd)  # the lock goes with it
        _folder, _lock_fd = None, None


def clear_abandoned(root: Path) -> int:
    """Remove the scratch folders under ``root`` that no living process holds; how many."""
    removed = 0
    for folder in root.glob(PREFIX + "*"):
        if folder != _folder and _remove_if_unlocked(folder):
            removed += 1
    for folder in root.glob(_MAKING + "*"):
        # between its making and its lock only a moment passes: an old one is abandoned
        try:
            old = time.time() - folder.stat().st_mtime > _MAKING_GRACE_S
        except FileNotFoundError:
            continue
        if old and _remove_if_unlocked(folder, missing_lock_ok=True):
            removed += 1
    return removed


def _make_locked(root: Path) -> tuple[Path, int]:
    """A new folder under ``root`` holding a lock file locked by this process; it gets its
    scratch name only once locked, so no one sees it unlocked and takes it for abandoned."""
    making = Path(tempfile.mkdtemp(prefix=_MAKING, dir=root))
    fd = os.open(making / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    folder = root / (PREFIX + making.name[len(_MAKING) :])
    os.rename(making, folder)  # the lock is on the file, not its path: it stays held
    return folder, fd


def _remove_if_unlocked(folder: Path, missing_lock_ok: bool = False) -> bool:
    try:
        fd = os.open(folder / _LOCK, os.O_RDONLY)
    except FileNotFoundError:
        if not missing_lock_ok:
            return False  # removed by another process a moment ago, or not a scratch folder
        shutil.rmtree(folder, ignore_errors=True)
        return True
    except OSError:
        return False  # another user's: not ours to judge
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process is alive
        shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(fd)
