"""``citygrid backup`` and ``citygrid restore``: a committed small city (grids edited twice,
cases with their histories, patrol fixes, a photo) backed up and restored into another fresh
database finds every row and the photo's bytes; bad archives and non-empty targets are refused
with nothing restored."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import shapely
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.backup import user_tables
from service.cases.cases import Action, CaseInput, CaseService
from service.cases.catalogue import seed_catalogue
from service.cli import app
from service.db import migrations
from service.db.engine import make_engine
from service.grids.registry import GridInput, Registry
from service.patrol.fixes import FixIngester
from service.patrol.partitions import ensure_partitions
from service.patrol.workers import PatrolService, WorkerInput
from service.photos.photos import PhotoService, PhotoUpload
from service.settings import PhotoSettings
from tests.helpers.city import COMM_B, commit_small_city, lonlat, mbox, point_lonlat, unit_code
from tests.helpers.databases import fresh_database
from tests.helpers.patrol import DAY, walk
from tests.helpers.photos import jpeg

pytestmark = pytest.mark.slow

CITY = "990900"
# what the test compares, row by row, in the source and the restored database
CHECKED = {
    "grids": "SELECT code, version, valid_from, valid_to, name, ST_AsEWKB(geom) FROM grids "
    "WHERE city = :city ORDER BY code, version",
    "cases": "SELECT id, status, grid_code, category_code, reported_at, lon, lat FROM cases "
    "WHERE city = :city ORDER BY id",
    "case_events": "SELECT e.id, e.case_id, e.action, e.from_status, e.to_status, e.at "
    "FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.city = :city ORDER BY e.id",
    "gps_fixes": "SELECT * FROM gps_fixes WHERE city = :city ORDER BY 1, 2, 3",
    # fixes in a day partition and in the default partition land where they were
    "fix_partitions": "SELECT tableoid::regclass::text, count(*) FROM gps_fixes "
    "WHERE city = :city GROUP BY 1 ORDER BY 1",
    "photos": "SELECT id, sha256, case_id FROM photos WHERE city = :city ORDER BY id",
}


@pytest.fixture(scope="module")
def source_url(admin_url: str) -> Iterator[str]:
    yield from fresh_database(admin_url)


@pytest.fixture
def target_url(admin_url: str) -> Iterator[str]:
    yield from fresh_database(admin_url)


def _edit_b_strips(session: Session, settings, split: tuple[int, int], at: datetime) -> None:
    """Move the border between unit grids B-02 (two strips) and B-03 (between them)."""
    low, high = split
    strips = shapely.MultiPolygon([mbox(700, 0, 800, low), mbox(700, high, 800, 200)])
    Registry(session, settings).write(
        [
            GridInput(unit_code(COMM_B, 2), "unit", "乙社区第02网格", lonlat(strips)),
            GridInput(
                unit_code(COMM_B, 3), "unit", "乙社区第03网格", lonlat(mbox(700, low, 800, high))
            ),
        ],
        at=at,
        by=SYSTEM,
    )
    session.commit()


@pytest.fixture(scope="module")
def source(source_url: str, settings_for, tmp_path_factory) -> Iterator[tuple[Engine, object]]:
    """The source database, migrated, with the committed city (pg_dump sees only commits)."""
    photos = tmp_path_factory.mktemp("source-photos")
    settings = replace(settings_for(CITY), photos=PhotoSettings(_env_file=None, dir=photos))
    engine = make_engine(source_url)
    migrations.upgrade(engine)
    with Session(engine) as session:
        commit_small_city(session, settings)
        _edit_b_strips(session, settings, (80, 120), datetime(2025, 6, 1, tzinfo=UTC))
        _edit_b_strips(session, settings, (90, 110), datetime(2026, 1, 1, tzinfo=UTC))
        seed_catalogue(session, CITY)
        cases = CaseService(session, settings)
        for x in (50, 150, 250):
            lon, lat = point_lonlat(x, 50)
            case, _ = cases.intake(CaseInput("0102", lon, lat), SYSTEM)
            for step in ("register", "dispatch")[: x // 100 + 1]:
                cases.act(case.id, Action(step, note="测试"), SYSTEM)
        session.commit()
        PhotoService(session, settings).upload(
            case.id, PhotoUpload(data=jpeg(3), step="report"), SYSTEM
        )
        session.commit()
        PatrolService(session, settings).save_worker(
            WorkerInput(code="W1", name="王伟", devices=["phone-b"]), SYSTEM
        )
        # the walk's day gets a partition; a walk of a day without one goes to the default
        ensure_partitions(session, 0, settings.grids.timezone, DAY)
        for start in (DAY, DAY - timedelta(days=45)):
            fixes = pd.DataFrame(walk([(2, 50), (398, 50)], start=start))
            FixIngester(session, settings).run(fixes.assign(device_id="phone-b"), SYSTEM)
            session.commit()
    yield engine, settings
    engine.dispose()


def _rows(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(text(sql), {"city": CITY})]
            for name, sql in CHECKED.items()
        }


def _photo_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.glob("??/??/*")
        if p.name != "notes.txt"
    }


def _cli(monkeypatch, url: str, photo_dir: Path, *args: str):
    monkeypatch.setenv("CITYGRID_DATABASE_URL", url)
    monkeypatch.setenv("CITYGRID_CITY", CITY)
    monkeypatch.setenv("CITYGRID_PHOTO_DIR", str(photo_dir))
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def archive(source, source_url: str, tmp_path_factory) -> Path:
    _, settings = source
    path = tmp_path_factory.mktemp("backup") / "city.tar"
    stray = settings.photo_dir() / "ab" / "cd" / "notes.txt"  # not a photo: left out
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not a photo")
    with pytest.MonkeyPatch.context() as mp:
        result = _cli(mp, source_url, settings.photo_dir(), "backup", "--output", str(path))
    assert result.exit_code == 0, result.output
    assert "backed up to" in result.output
    return path


def test_restore_into_a_fresh_database_finds_every_row_and_photo(
    source, archive: Path, target_url: str, tmp_path: Path, monkeypatch
) -> None:
    engine, settings = source
    expected = _rows(engine)
    assert len(expected["grids"]) == len({r[0] for r in expected["grids"]}) + 4  # 2 grids × 3
    assert {r[1] for r in expected["case_events"]} and expected["gps_fixes"]
    assert [r[0] for r in expected["fix_partitions"]] == [
        "partitions.gps_fixes_20261117",
        "partitions.gps_fixes_default",
    ]
    assert len(expected["photos"]) == 1

    photos = tmp_path / "restored-photos"
    result = _cli(
        monkeypatch,
        "postgresql://unused@127.0.0.1:1/x",
        photos,
        "restore",
        str(archive),
        "--database-url",
        target_url,
    )

    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output and "restored" in result.output
    restored = make_engine(target_url)
    try:
        assert _rows(restored) == expected
        with restored.connect() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        manifest = json.loads(tarfile.open(archive).extractfile("manifest.json").read())
        assert head == manifest["alembic_revision"]
        for table in ("grids", "cases", "case_events", "gps_fixes"):
            assert (
                f"{manifest['counts'][table]:,} rows (backup: {manifest['counts'][table]:,})"
                in (result.output)
            )
    finally:
        restored.dispose()
    assert _photo_files(photos) == _photo_files(settings.photo_dir())
    assert len(_photo_files(photos)) == manifest["photos"]["files"] >= 3  # orig, display, thumb
    assert not (photos / "ab" / "cd" / "notes.txt").exists()


def test_restore_into_a_database_with_tables_is_refused(
    source, archive: Path, source_url: str, tmp_path: Path, monkeypatch
) -> None:
    engine, _ = source
    before = _rows(engine)

    result = _cli(monkeypatch, source_url, tmp_path, "restore", str(archive))

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "is not empty" in said and "alembic_version" in said and "empty database" in said
    assert _rows(engine) == before
    assert not list(tmp_path.iterdir())  # no photo file written either


@pytest.mark.parametrize("damage", ["missing", "not a tar", "truncated", "bad dump"])
def test_a_missing_or_corrupt_archive_is_refused_and_nothing_is_restored(
    damage: str, archive: Path, target_url: str, tmp_path: Path, monkeypatch
) -> None:
    bad = tmp_path / "bad.tar"
    if damage == "not a tar":
        bad.write_bytes(b"this is no archive" * 100)
    elif damage == "truncated":
        bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    elif damage == "bad dump":  # same manifest, a dump whose bytes were changed
        with tarfile.open(archive) as src, tarfile.open(bad, "w") as out:
            for member in src.getmembers():
                data = src.extractfile(member).read()
                if member.name == "database.dump":
                    data = data[:100] + bytes(64) + data[164:]
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
    photos = tmp_path / "photos"

    result = _cli(monkeypatch, target_url, photos, "restore", str(bad))

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    expected = {
        "missing": "no such backup file",
        "not a tar": "is not a citygrid backup",
        "truncated": "is not a citygrid backup",
        "bad dump": "database.dump is damaged",
    }[damage]
    assert expected in said
    with create_engine(target_url).connect() as conn:
        assert user_tables(conn) == []
    assert not photos.exists() or not list(photos.rglob("*.*"))


def test_a_backup_made_before_the_latest_migration_is_migrated_forward(
    admin_url: str, target_url: str, tmp_path: Path, monkeypatch
) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    head = scripts.get_current_head()
    older = scripts.get_revision(head).down_revision
    old_db = fresh_database(admin_url)
    old_url = next(old_db)
    try:
        engine = make_engine(old_url)
        migrations.upgrade(engine, older)
        engine.dispose()
        path = tmp_path / "old.tar"
        made = _cli(monkeypatch, old_url, tmp_path / "p", "backup", "-o", str(path))
        assert made.exit_code == 0, made.output
    finally:
        next(old_db, None)

    result = _cli(
        monkeypatch, target_url, tmp_path / "p2", "restore", str(path), "--database-url", target_url
    )

    assert result.exit_code == 0, result.output
    assert f"migrated forward to {head}" in " ".join(result.output.split())
    with create_engine(target_url).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head


def test_a_backup_from_a_newer_citygrid_is_refused(
    archive: Path, target_url: str, tmp_path: Path, monkeypatch
) -> None:
    newer = tmp_path / "newer.tar"
    with tarfile.open(archive) as src, tarfile.open(newer, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data) | {"alembic_revision": "2099_01_01_future"}
                data = json.dumps(manifest).encode()
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))

    result = _cli(monkeypatch, target_url, tmp_path / "p", "restore", str(newer))

    assert result.exit_code == 1
    assert "2099_01_01_future" in result.output and "unknown to this citygrid" in " ".join(
        result.output.split()
    )
    with create_engine(target_url).connect() as conn:
        assert user_tables(conn) == []
