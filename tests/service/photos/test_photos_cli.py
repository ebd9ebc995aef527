"""``citygrid photos sweep`` and ``recheck``, and the retention sweep among the background
sweeps, against committed data of a city of their own."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.cli import app
from service.clock import now
from service.db.engine import make_sessionmaker
from service.db.models import Case, Photo
from service.factory import background_sweeps
from service.notify.deliverer import DeliveryWorker
from service.photos.photos import PhotoService, PhotoUpload, sweep_photos
from service.settings import PhotoSettings
from tests.helpers.photos import jpeg

CITY = "990230"


@pytest.fixture
def committed(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, settings_for, tmp_path: Path
):
    """An old and a new photo of one committed case (no history: the case can be removed)."""
    folder = tmp_path / "photos"
    for name, value in {
        "CITYGRID_DATABASE_URL": database_url,
        "CITYGRID_CITY": CITY,
        "CITYGRID_PHOTO_DIR": str(folder),
        "CITYGRID_PHOTO_RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    settings = replace(settings_for(CITY), photos=PhotoSettings(_env_file=None, dir=folder))
    with Session(engine) as session:
        t = datetime.now(UTC)
        case = Case(
            city=CITY,
            category_code="0102",
            source="patrol",
            status="reported",
            reported_at=t,
            updated_at=t,
            lon=113.65,
            lat=34.75,
        )
        session.add(case)
        session.flush()
        service = PhotoService(session, settings)
        old = service.upload(case.id, PhotoUpload(jpeg(1), "report"), SYSTEM)
        new = service.upload(case.id, PhotoUpload(jpeg(2), "report"), SYSTEM)
        session.flush()
        session.execute(
            text("UPDATE photos SET created_at = now() - interval '31 days' WHERE id = :id"),
            {"id": old.id},
        )
        session.commit()
        ids = {"case": case.id, "old": old.id, "new": new.id, "old_sha": old.sha256}
    yield ids, folder
    with Session(engine) as session:
        session.execute(delete(Photo).where(Photo.city == CITY))
        session.execute(delete(Case).where(Case.city == CITY))
        session.commit()


def test_cli_sweep_deletes_old_photos_and_their_files(committed, engine: Engine) -> None:
    ids, folder = committed
    assert len([p for p in folder.rglob(f"{ids['old_sha']}.*")]) == 3
    # left by an upload whose process died two hours ago, before its commit ended
    abandoned = folder / ".staging" / "photo-abandoned"
    abandoned.parent.mkdir(parents=True, exist_ok=True)
    abandoned.write_bytes(b"never committed")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    result = CliRunner().invoke(app, ["photos", "sweep"])
    assert result.exit_code == 0, result.output
    assert "1 photos deleted, 3 files removed" in result.output
    assert "1 abandoned staged files removed" in result.output and not abandoned.exists()
    assert list(folder.rglob(f"{ids['old_sha']}.*")) == []
    with Session(engine) as session:
        old, new = session.get(Photo, ids["old"]), session.get(Photo, ids["new"])
        assert old is not None and old.deleted_at is not None
        assert new is not None and new.deleted_at is None
    again = CliRunner().invoke(app, ["photos", "recheck"])
    assert again.exit_code == 0 and "0 photos checked" in again.output  # report photos only


def _retention(settings_for, folder: Path, days: int):
    return replace(
        settings_for(CITY), photos=PhotoSettings(_env_file=None, dir=folder, retention_days=days)
    )


def test_the_background_sweeps_delete_old_photos_when_retention_is_set(
    committed, engine: Engine, settings_for
) -> None:
    ids, folder = committed
    assert sweep_photos not in background_sweeps(_retention(settings_for, folder, 0))
    settings = _retention(settings_for, folder, 30)
    sweeps = background_sweeps(settings)
    assert sweep_photos in sweeps
    # one round of the server's (and `citygrid deliver`'s) worker, each sweep committed
    DeliveryWorker(make_sessionmaker(engine), settings, sweeps=sweeps).sweep()
    assert list(folder.rglob(f"{ids['old_sha']}.*")) == []
    with Session(engine) as session:
        old, new = session.get(Photo, ids["old"]), session.get(Photo, ids["new"])
        assert old is not None and old.deleted_at is not None and old.exif_geom is None
        assert new is not None and new.deleted_at is None


def test_a_background_round_marks_a_bounded_batch(committed, engine: Engine, settings_for) -> None:
    _, folder = committed
    settings = _retention(settings_for, folder, 30)
    with Session(engine) as session:
        session.execute(
            text("UPDATE photos SET created_at = now() - interval '40 days' WHERE city = :city"),
            {"city": CITY},
        )
        session.commit()
    with Session(engine) as session:
        assert sweep_photos(session, settings, now(), limit=1) == 1
        assert sweep_photos(session, settings, now(), limit=1) == 1
        assert sweep_photos(session, settings, now(), limit=1) == 0
        session.commit()
    with Session(engine) as session:
        left = session.scalar(
            text("SELECT count(*) FROM photos WHERE city = :city AND deleted_at IS NULL"),
            {"city": CITY},
        )
    assert left == 0
