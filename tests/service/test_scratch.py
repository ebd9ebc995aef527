"""A server process's temporary files live in a scratch folder of its own; the folder of a
process killed outright is removed by the next process that starts, never one of a process
that still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service import scratch
from tests.helpers.servers import ROOT

# a stand-in server process: claims its scratch folder, stages an upload, waits to be killed
_HOLDER = """
import sys, tempfile, time
from pathlib import Path
import pytest

from service import scratch
folder = scratch.claim(Path(sys.argv[1]))
tempfile.mkdtemp(prefix="citygrid-upload-")  # lands in the scratch folder
print(folder, flush=True)
time.sleep(120)
"""


@contextmanager
def _holder(base: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(base)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, Path(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_the_folder_of_a_killed_process_goes_and_a_living_ones_stays(tmp_path: Path) -> None:
    with _holder(tmp_path) as (alive, kept), _holder(tmp_path) as (dead, left):
        assert list(left.glob("citygrid-upload-*")), "the upload is staged in the scratch folder"
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait(timeout=30)
        assert left.exists()  # nothing of the killed process ran to remove it
        mine = scratch.claim(tmp_path)
        try:
            assert not left.exists()  # removed by the next claim
            assert kept.exists() and alive.poll() is None  # its process still runs
            assert Path(tempfile.mkdtemp()).parent == mine  # this process's files go there
            assert scratch.clear_abandoned(tmp_path) == 0  # nor is the own folder taken
        finally:
            scratch.release()
        assert not mine.exists() and tempfile.gettempdir() != str(mine)
    # both holders are gone now: whoever looks next clears the rest
    assert scratch.clear_abandoned(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []


def test_claims_nest_and_the_last_release_removes_the_folder(tmp_path: Path) -> None:
    first = scratch.claim(tmp_path)
    assert scratch.claim(tmp_path) == first
    scratch.release()
    assert first.exists()
    scratch.release()
    assert not first.exists()
    scratch.release()  # one too many: nothing to undo


def test_a_folder_abandoned_while_being_made_is_removed_once_old(tmp_path: Path) -> None:
    making = Path(tempfile.mkdtemp(prefix=".citygrid-making-", dir=tmp_path))
    assert scratch.clear_abandoned(tmp_path) == 0  # may be locked and renamed any moment
    os.utime(making, (0, 0))
    assert scratch.clear_abandoned(tmp_path) == 1
    assert not making.exists()


def test_a_claim_that_cannot_make_its_folder_claims_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(OSError):
        scratch.claim(missing)
    assert tempfile.gettempdir() != str(missing)
    mine = scratch.claim(tmp_path)  # a later claim starts afresh
    scratch.release()
    assert not mine.exists()
