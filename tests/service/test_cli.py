"""The citygrid command line against the test database."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.accounts import AccountService
from service.cli import app
from service.db.models import (
    CoverageRun,
    Device,
    GpsFix,
    Grid,
    GridCoverage,
    HotspotCoverage,
    PatrolTrack,
    Worker,
)
from service.settings import AppSettings
from tests.helpers.city import small_city
from tests.helpers.hostile_files import gzip_bomb, parquet_dictionary_bomb, shapefile_bomb

CLI_CITY = "990200"  # committed by the CLI; removed after each test
DEMO_CLI_CITY = "990210"  # the demo loaded by the CLI (cases and history stay)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine):
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYGRID_CITY", CLI_CITY)
    yield
    # the CLI commits for real: remove the grids it imported (the demo test writes cases with
    # append-only history into a city of its own; the database is dropped after the run)
    with Session(engine) as session:
        for model in (GridCoverage, HotspotCoverage):
            session.query(model).filter(
                model.run_id.in_(select(CoverageRun.id).where(CoverageRun.city == CLI_CITY))
            ).delete(synchronize_session=False)
        for model in (CoverageRun, PatrolTrack, GpsFix, Device, Worker, Grid):
            session.query(model).filter(model.city == CLI_CITY).delete()
        session.commit()


def _grids(engine: Engine, city: str = CLI_CITY) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(Grid.city == city))


def _file(tmp_path: Path, items) -> Path:
    path = tmp_path / "city.gpkg"
    gpd.GeoDataFrame(
        {
            "code": [i.code for i in items],
            "level": [i.level for i in items],
            "name": [i.name for i in items],
        },
        geometry=[i.geometry for i in items],
        crs=4326,
    ).to_file(path)
    return path


def test_cli_import_stores_everything_and_reports(cli_env, engine: Engine, tmp_path) -> None:
    result = CliRunner().invoke(app, ["import", str(_file(tmp_path, small_city()))])
    assert result.exit_code == 0, result.output
    assert f"{len(small_city())} features: {len(small_city())} created" in result.output
    assert _grids(engine) == len(small_city())


def test_cli_import_is_audited_as_the_system_or_the_operator_named(
    cli_env, engine: Engine, tmp_path, settings_for
) -> None:
    from service.accounts.accounts import UserInput
    from service.accounts.principal import SYSTEM
    from service.db.models import AuditEntry

    path = _file(tmp_path, small_city())
    with Session(engine) as session:
        accounts = AccountService(session, settings_for(CLI_CITY))
        accounts.seed()
        if accounts.user_by_login("gis-cli") is None:
            accounts.create_user(
                UserInput(
                    login="gis-cli",
                    display_name="赵工",
                    password="correct horse battery",
                    roles=["gis_editor"],
                ),
                SYSTEM,
            )
        session.commit()
    result = CliRunner().invoke(app, ["import", str(path), "--as", "nobody-here"])
    assert result.exit_code == 1 and "nobody-here" in result.output
    assert _grids(engine) == 0
    result = CliRunner().invoke(app, ["import", str(path), "--as", "gis-cli"])
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        row = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.city == CLI_CITY, AuditEntry.entity == "grids")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert row is not None and row.action == "grid.import"
    assert row.actor_name == "赵工 (gis-cli)" and row.entity_key == path.name
    assert row.after["created"] == len(small_city())


def test_cli_import_of_bad_file_stores_nothing(cli_env, engine: Engine, tmp_path) -> None:
    items = small_city()
    orphan = [i for i in items if i.level == "unit"]  # parents missing
    result = CliRunner().invoke(app, ["import", str(_file(tmp_path, orphan))])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert _grids(engine) == 0


@pytest.mark.parametrize("command", ["import", "locate-bulk", "import-cases", "import-fixes"])
def test_cli_commands_refuse_bombs_naming_the_setting(
    cli_env, engine: Engine, tmp_path, command: str
) -> None:
    if command == "import":
        args = [str(shapefile_bomb(tmp_path / "grids.zip"))]
    elif command == "import-fixes":
        args = [str(gzip_bomb(tmp_path / "fixes.csv"))]
    else:
        args = [str(parquet_dictionary_bomb(tmp_path / "points.parquet"))]
        args += ["-o", str(tmp_path / "out.csv")] if command == "locate-bulk" else []
    result = CliRunner().invoke(app, [command, *args])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    if command == "import-fixes":
        assert "fixes.csv is gzip-compressed; send the table uncompressed" in said
    else:
        assert "1,100 MB uncompressed" in said
        assert "split the file or raise CITYGRID_MAX_UNCOMPRESSED_MB" in said
    assert _grids(engine) == 0


def test_cli_import_honours_the_row_limit_setting(cli_env, engine: Engine, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYGRID_MAX_ROWS", "2")
    result = CliRunner().invoke(app, ["import", str(_file(tmp_path, small_city()))])
    assert result.exit_code == 1
    assert "more than 2 features" in result.output and "CITYGRID_MAX_ROWS" in result.output
    assert _grids(engine) == 0


@pytest.mark.slow
def test_cli_demo_loads_once(cli_env, engine: Engine, monkeypatch, tmp_path, settings_for) -> None:
    monkeypatch.setenv("CITYGRID_CITY", DEMO_CLI_CITY)
    monkeypatch.setenv("CITYGRID_DATA_DIR", str(tmp_path))
    first = CliRunner().invoke(app, ["demo", "--cases", "300"])
    assert first.exit_code == 0, first.output
    n = _grids(engine, DEMO_CLI_CITY)
    assert 1300 < n < 1800
    assert "cases" in first.output
    assert "demo campaign" in first.output  # one running 专项整治 on the map
    second = CliRunner().invoke(app, ["demo", "--cases", "300"])
    assert "not loaded again" in second.output
    assert _grids(engine, DEMO_CLI_CITY) == n
    # demo accounts for every role, their passwords in a file only its owner reads
    credentials = tmp_path / "demo-accounts.txt"
    assert str(credentials) in first.output
    assert credentials.stat().st_mode & 0o777 == 0o600
    rows = [line.split("\t") for line in credentials.read_text().splitlines()[1:]]
    roles = {r for row in rows for r in row[2].split(",") if r}
    assert roles >= {
        "admin",
        "leader",
        "intake",
        "dispatcher",
        "department",
        "grid_worker",
        "inspector",
        "gis_editor",
    }
    assert any(row[0].startswith("API key") for row in rows)
    login, password = next((row[0], row[1]) for row in rows if row[2] == "dispatcher")
    with Session(engine) as session:
        accounts = AccountService(session, settings_for(DEMO_CLI_CITY))
        principal = accounts.principal_for_user(accounts.login(login, password))
    assert principal.can("cases.dispatch") and principal.grid_prefixes  # a street office


def test_settings_reject_unknown_code_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGRID_CODE_WIDTH", "16")
    with pytest.raises(ValueError, match="14 .* or 15"):
        AppSettings()


def test_cli_imports_fixes_and_computes_coverage(
    cli_env, engine: Engine, tmp_path, settings_for
) -> None:
    from service.accounts.principal import SYSTEM
    from service.patrol.workers import PatrolService, WorkerInput
    from tests.helpers.patrol import walk

    assert CliRunner().invoke(app, ["import", str(_file(tmp_path, small_city()))]).exit_code == 0
    with Session(engine) as session:
        PatrolService(session, settings_for(CLI_CITY)).save_worker(
            WorkerInput(code="W9", name="赵敏", devices=["phone-9"]), SYSTEM
        )
        session.commit()
    fixes = walk([(2, 50), (398, 50)])
    path = tmp_path / "fixes.csv"
    lines = ["device_id,time,lon,lat,accuracy_m"]
    lines += [f"phone-9,{f['time']},{f['lon']},{f['lat']},6" for f in fixes]
    lines.append("phone-0,2026-11-17T09:30:00+08:00,113.65,34.75,6")  # an unknown phone
    path.write_text("\n".join(lines))
    refused = CliRunner().invoke(app, ["import-fixes", str(path)])
    assert refused.exit_code == 1 and "phone-0" in refused.output
    done = CliRunner().invoke(app, ["import-fixes", str(path), "--mode", "rows"])
    assert done.exit_code == 0, done.output
    assert f"{len(fixes)} stored" in done.output and "1 rejected" in done.output
    again = CliRunner().invoke(app, ["import-fixes", str(path), "--mode", "rows"])
    assert f"{len(fixes)} already stored" in again.output
    cov = CliRunner().invoke(app, ["coverage", "2026-11-16", "--period", "day", "--periods", "3"])
    assert cov.exit_code == 0, cov.output
    with Session(engine) as session:
        runs = session.scalars(select(CoverageRun).where(CoverageRun.city == CLI_CITY)).all()
        assert len(runs) == 3
        visits = session.scalar(
            select(func.sum(GridCoverage.visits)).where(
                GridCoverage.run_id.in_([r.id for r in runs])
            )
        )
        assert visits == 4  # the walk crosses the four grids of the south row, on the 17th
    bad = CliRunner().invoke(app, ["coverage", "2026-11-16T10:30", "--period", "day"])
    assert bad.exit_code == 1 and "starts at" in bad.output


def test_cli_manages_accounts_and_keys(cli_env, engine: Engine, settings_for) -> None:
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "user",
            "create",
            "ops",
            "--name",
            "运维",
            "--role",
            "leader",
            "--password",
            "s3cret-pass",
        ],
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["user", "list"])
    assert "ops\tleader\twhole city\tactive" in listed.output
    assert "s3cret" not in listed.output
    changed = runner.invoke(app, ["user", "password", "ops", "--password", "another-pass"])
    assert changed.exit_code == 0, changed.output
    short = runner.invoke(app, ["user", "password", "ops", "--password", "short"])
    assert short.exit_code == 1 and "at least 8" in short.output
    key = runner.invoke(app, ["key", "create", "12345热线", "--permission", "cases.report"])
    assert key.exit_code == 0, key.output
    secret = key.stdout.strip().splitlines()[-1]
    assert secret.startswith("cgk_")
    keys = runner.invoke(app, ["key", "list"])
    assert "12345热线" in keys.output and secret not in keys.output and "live" in keys.output
    key_id = next(line for line in keys.output.splitlines() if "12345热线" in line).split("\t")[0]
    assert runner.invoke(app, ["key", "revoke", key_id]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["key", "list"]).output
    with Session(engine) as session:
        accounts = AccountService(session, settings_for(CLI_CITY))
        assert accounts.login("ops", "another-pass").login == "ops"
        for user in accounts.users():
            session.delete(user)
        for k in accounts.keys():
            session.delete(k)
        session.commit()


def test_cli_fixes_partitions_makes_the_days_ahead_once(cli_env, engine: Engine) -> None:
    """``citygrid fixes partitions`` makes today's and the days ahead that are missing; a second
    run makes none. The partitions it made (days 11-12 ahead) are removed afterwards."""
    from service.patrol.partitions import SCHEMA, list_partitions

    with Session(engine) as session:
        before = {p.name for p in list_partitions(session)}
    try:
        first = CliRunner().invoke(app, ["fixes", "partitions", "--ahead-days", "12"])
        assert first.exit_code == 0, first.output
        with Session(engine) as session:
            made = {p.name for p in list_partitions(session)} - before
        assert len(made) >= 1 and all(f"created {name}" in first.output for name in made)
        second = CliRunner().invoke(app, ["fixes", "partitions", "--ahead-days", "12"])
        assert second.exit_code == 0, second.output
        assert "0 partitions created" in second.output and "0 dropped" in second.output
    finally:
        with Session(engine) as session:
            for part in list_partitions(session):
                if part.name not in before:
                    session.execute(text(f'DROP TABLE {SCHEMA}."{part.name}"'))
            session.commit()
