"""The citygrid command line against the test database."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from cityfixture import small_city
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.factory import AppSettings
from service.models import Grid

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
        session.query(Grid).filter(Grid.city == CLI_CITY).delete()
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


def test_cli_import_of_bad_file_stores_nothing(cli_env, engine: Engine, tmp_path) -> None:
    items = small_city()
    orphan = [i for i in items if i.level == "unit"]  # parents missing
    result = CliRunner().invoke(app, ["import", str(_file(tmp_path, orphan))])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert _grids(engine) == 0


def test_cli_demo_loads_once(cli_env, engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("CITYGRID_CITY", DEMO_CLI_CITY)
    first = CliRunner().invoke(app, ["demo", "--cases", "300"])
    assert first.exit_code == 0, first.output
    n = _grids(engine, DEMO_CLI_CITY)
    assert 1300 < n < 1800
    assert "cases" in first.output
    second = CliRunner().invoke(app, ["demo", "--cases", "300"])
    assert "not loaded again" in second.output
    assert _grids(engine, DEMO_CLI_CITY) == n


def test_settings_reject_unknown_code_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGRID_CODE_WIDTH", "16")
    with pytest.raises(ValueError, match="14 .* or 15"):
        AppSettings()
