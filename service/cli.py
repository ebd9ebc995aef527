"""The ``citygrid`` command line: run the service, migrate, load the demo city, import, locate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.db import migrations
from service.db.engine import make_engine, make_sessionmaker, resolve_database_url, session_scope
from service.db.models import Grid
from service.errors import CitygridError, NotFound
from service.grids.registry import Registry
from service.serve import serve
from service.settings import AppSettings, ServerSettings

app = typer.Typer(
    help="citygrid: grid management for city management offices", no_args_is_help=True
)
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextmanager
def _engine(settings: AppSettings, migrate: bool = False) -> Iterator[Engine]:
    """An engine on the configured (or embedded) database, migrated on request."""
    engine = make_engine(resolve_database_url(settings.database))
    try:
        if migrate:
            migrations.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _session(settings: AppSettings, migrate: bool = False) -> Iterator[Session]:
    """A session committed on success, rolled back on error."""
    with _engine(settings, migrate) as engine, session_scope(make_sessionmaker(engine)) as s:
        yield s


@contextmanager
def _registry(settings: AppSettings) -> Iterator[Registry]:
    with _session(settings) as session:
        yield Registry(session, settings)


OperatorOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Login of the operator the audit log names (default: the system); the import "
        "then needs that account's permission and scope",
    ),
]


def _operator(session: Session, settings: AppSettings, login: str | None, permission: str):  # noqa: ANN202
    """Who a CLI write is recorded as: the account ``login`` (which must hold ``permission``),
    or the system itself."""
    from service.accounts.accounts import AccountService
    from service.accounts.principal import SYSTEM

    if login is None:
        return SYSTEM
    accounts = AccountService(session, settings)
    user = accounts.user_by_login(login)
    if user is None or not user.active:
        raise NotFound(f"no active account {login!r}", field="as")
    principal = accounts.principal_for_user(user)
    principal.require(permission)
    return principal


def _steps(bar: Progress) -> Callable[[str, int, int], None]:
    """A progress callback that shows one bar per named step."""
    tasks: dict[str, TaskID] = {}

    def advance(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bar.add_task(step, total=total)
        bar.update(tasks[step], completed=done)

    return advance


def _fail(exc: CitygridError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    for err in exc.extra.get("errors", [])[:20]:
        where = err.get("row", err.get("index"))
        console.print(f"  - {'row' if 'row' in err else 'item'} {where}: {err.get('reason')}")
    raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Apply database migrations (creates the embedded database if needed)."""
    with _engine(AppSettings(), migrate=True):
        console.print("migrations applied")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Generator seed")] = 7,
    cases: Annotated[int, typer.Option(help="Generated cases to load")] = 20_000,
) -> None:
    """Load the demo city (grids, hotspots, cases, patrols, accounts); skipped when the city
    already has grids (the parts an older demo database lacks are added)."""
    from service.db.models import Street, User, Worker
    from service.demo import (
        load_demo_accounts,
        load_demo_campaign,
        load_demo_patrol,
        load_demo_round_of_last_month,
        load_demo_streets,
        load_demo_world,
        write_credentials,
    )

    settings = AppSettings()
    city = settings.grids.city
    with _session(settings, migrate=True) as session, _progress() as bar:
        present = select(Grid.id).where(Grid.city == city).limit(1)
        if session.scalar(present) is None:
            counts = load_demo_world(session, settings, seed, cases, _steps(bar))
            console.print("demo city loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        else:
            # a database from before patrols existed gets the parts it lacks
            if session.scalar(select(Street.id).where(Street.city == city).limit(1)) is None:
                load_demo_streets(session, settings, seed)
            if session.scalar(select(Worker.code).where(Worker.city == city).limit(1)) is None:
                fixes = load_demo_patrol(session, settings, seed, _steps(bar))
                console.print(f"demo patrol loaded: {fixes} fixes")
            else:
                console.print("demo city already present; not loaded again")
        others = select(User.id).where(User.city == city, User.login != "admin").limit(1)
        if session.scalar(others) is None:
            made = load_demo_accounts(session, settings)
            write_credentials(_credentials_file(settings), made, settings.auth.admin_password)
            console.print(f"demo accounts: {len(made)} made")
            scored = load_demo_round_of_last_month(session, settings)
            if scored:
                console.print(f"demo cross-scoring round of {scored}: closed")
        campaign = load_demo_campaign(session, settings)
        if campaign:
            console.print(f"demo campaign: {campaign}")
    # a path wrapped across lines cannot be copied; rich would wrap it at the terminal's width
    console.print(f"demo logins and passwords: {_credentials_file(settings)}", soft_wrap=True)


def _credentials_file(settings: AppSettings) -> Path:
    return settings.database.data_dir / "demo-accounts.txt"


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Default CITYGRID_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default CITYGRID_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="Default CITYGRID_WORKERS")] = None,
    with_demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load the demo city")] = True,
) -> None:
    """Migrate, load the demo city when the registry is empty, and serve the API."""
    import os

    server = ServerSettings()
    host, port = host or server.host, port or server.port
    workers = workers or server.workers
    if with_demo:
        demo()
        # the demo city shows the citizen's pages (/report, /public/map); a real city opens
        # them by setting these itself (both default off: a city decides to go public)
        os.environ.setdefault("CITYGRID_PUBLIC_REPORTS", "true")
        os.environ.setdefault("CITYGRID_PUBLIC_MAP", "true")
    else:
        migrate()
    # every worker process uses the database the command just prepared (and never starts a
    # second embedded cluster)
    os.environ["CITYGRID_DATABASE_URL"] = resolve_database_url(AppSettings().database)
    console.print(
        f"serving on http://{host}:{port} with {workers} worker process(es) (API docs at /docs)"
    )
    serve(host, port, workers)


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Default CITYGRID_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default CITYGRID_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="Default CITYGRID_WORKERS")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the API on a migrated database (what ``run`` does after its preparations)."""
    server = ServerSettings()
    serve(host or server.host, port or server.port, workers or server.workers, log_level)


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON/GPKG/SHP zip/KML")
    ],
    level: Annotated[str | None, typer.Option(help="Level for features without one")] = None,
    crs: Annotated[str | None, typer.Option(help="Source CRS when the file has none")] = None,
    datum: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09")] = "wgs84",
    operator: OperatorOpt = None,
) -> None:
    """Import grids from a file, all or nothing (recorded in the audit log)."""
    from service.grids.imports import import_file

    settings = AppSettings()
    try:
        with _registry(settings) as registry, _progress() as bar:
            by = _operator(registry.session, settings, operator, "grids.import")
            task = bar.add_task(f"importing {path.name}", total=None)

            def advance(done: int) -> None:
                bar.update(task, completed=done)

            result = import_file(
                registry,
                path,
                by=by,
                level=level,
                crs=crs,
                datum=datum,
                progress=advance,
                limits=settings.grids.file_limits,
            )
            bar.update(task, total=result["features"], completed=result["features"])
    except CitygridError as exc:
        _fail(exc)
        return
    console.print(
        f"{result['features']} features: {len(result['created'])} created, "
        f"{len(result['versioned'])} new versions, {len(result['updated'])} updated, "
        f"{len(result['repaired'])} repaired"
    )
    for fix in result["repaired"]:
        console.print(f"  repaired {fix['code']}: {fix['change']}")


@app.command("locate-bulk")
def locate_bulk(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or GeoParquet")],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV or Parquet to write")],
    datum: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09")] = "wgs84",
    chunk: Annotated[int, typer.Option(help="Points per step")] = 250_000,
) -> None:
    """Add a ``grid_code`` column to every point of a CSV/GeoParquet file."""
    from service.grids.bulk_locate import locate_points, read_points

    settings = AppSettings()
    try:
        frame = read_points(source, settings.grids.file_limits)
        codes = np.empty(len(frame), dtype=object)
        with _registry(settings) as registry, _progress() as bar:
            task = bar.add_task("locating", total=len(frame))
            for start in range(0, len(frame), chunk):
                stop = min(start + chunk, len(frame))
                codes[start:stop] = locate_points(
                    registry,
                    frame["lon"].to_numpy()[start:stop],
                    frame["lat"].to_numpy()[start:stop],
                    datum,
                )
                bar.update(task, completed=stop)
    except CitygridError as exc:
        _fail(exc)
        return
    frame["grid_code"] = codes
    if output.suffix.lower() in (".parquet", ".geoparquet"):
        frame.to_parquet(output, index=False)
    else:
        frame.to_csv(output, index=False)
    located = int(np.count_nonzero(codes != None))  # noqa: E711 - elementwise on objects
    console.print(f"{located} of {len(frame)} points located; written to {output}")


@app.command("import-cases")
def import_cases(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV/Parquet/GeoJSON")],
    mode: Annotated[str, typer.Option(help="all (all or nothing) or rows")] = "all",
    datum: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09")] = "wgs84",
    allow_unassigned: Annotated[bool, typer.Option(help="Keep points outside grids")] = False,
) -> None:
    """Bulk-import cases: mapped to grid, hotspots and department, with a progress bar."""
    from service.cases.files import read_case_file
    from service.cases.importer import CaseImporter

    settings = AppSettings()
    try:
        frame = read_case_file(path, settings.grids.file_limits)
        with _session(settings) as session, _progress() as bar:
            steps = _steps(bar)
            report = CaseImporter(
                session, settings, progress=lambda step, done: steps(step, done, len(frame))
            ).run(frame, mode=mode, datum=datum, allow_unassigned=allow_unassigned)
    except CitygridError as exc:
        _fail(exc)
        return
    console.print(
        f"{report.rows} rows: {report.created} created, {report.replayed} already imported, "
        f"{report.unassigned} unassigned, {report.error_count} rejected"
    )
    for err in report.errors[:20]:
        console.print(f"  row {err['row']} {err['field']}: {err['reason']}")


@app.command("import-fixes")
def import_fixes(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or GPX")],
    device_id: Annotated[str | None, typer.Option(help="Phone of a GPX file")] = None,
    mode: Annotated[str, typer.Option(help="all (all or nothing) or rows")] = "all",
    datum: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09")] = "wgs84",
) -> None:
    """Import GPS fixes (idempotent per device and time) and rebuild the tracks they touch."""
    from service.accounts.principal import SYSTEM
    from service.patrol.fixes import FixIngester, read_fix_file

    settings = AppSettings()
    try:
        frame = read_fix_file(path, device_id, settings.grids.file_limits)
        with _session(settings) as session, _progress() as bar:
            report = FixIngester(session, settings, progress=_steps(bar)).run(
                frame, SYSTEM, mode=mode, datum=datum
            )
    except CitygridError as exc:
        _fail(exc)
        return
    console.print(
        f"{report.rows} fixes: {report.stored} stored, {report.replayed} already stored, "
        f"{report.repeated} repeated, {report.error_count} rejected; "
        f"{report.tracks} tracks rebuilt for {report.devices} devices"
    )
    for err in report.errors[:20]:
        console.print(f"  row {err['row']} {err['field']}: {err['reason']}")


@app.command("coverage")
def coverage(
    start: Annotated[str, typer.Argument(help="First period start, e.g. 2026-11-16")],
    periods: Annotated[int, typer.Option(help="How many consecutive periods")] = 1,
    period: Annotated[str, typer.Option(help="hour | day | week")] = "day",
) -> None:
    """Compute and store patrol coverage for consecutive periods (read later by the API)."""
    from datetime import datetime

    from service.patrol.coverage import PERIODS, CoverageService

    settings = AppSettings()
    try:
        first = datetime.fromisoformat(start)
        with _session(settings) as session, _progress() as bar:
            task = bar.add_task(f"coverage per {period}", total=periods)
            service = CoverageService(session, settings)
            for k in range(periods):
                run = service.run(period, first + k * PERIODS.get(period, PERIODS["day"]))
                bar.update(task, completed=k + 1)
    except (CitygridError, ValueError) as exc:
        if isinstance(exc, CitygridError):
            _fail(exc)
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"coverage stored for {periods} {period}(s), last computed {run.computed_at}")


@app.command("escalate")
def escalate_command(
    at: Annotated[
        str | None,
        typer.Option("--at", help="As of this time, YYYY-MM-DD[THH:MM] local (default: now)"),
    ] = None,
) -> None:
    """Run the supervision escalation sweep (督办升级): propose or issue orders for the cases
    that breach the rules, and escalate orders whose deadline passed unanswered."""
    from datetime import datetime

    from service.http.timeparse import aware
    from service.supervision.escalation import escalate

    settings = AppSettings()
    try:
        when = aware(datetime.fromisoformat(at), settings.grids.timezone) if at else None
    except ValueError as exc:
        console.print(f"[red]error:[/red] --at {at!r} is not a date-time: {exc}")
        raise typer.Exit(1) from exc
    try:
        with _session(settings) as session:
            report = escalate(session, settings, when)
    except CitygridError as exc:
        _fail(exc)
    console.print(
        f"escalation at {report.at.isoformat()}: {len(report.issued)} issued, "
        f"{len(report.proposed)} proposed, {len(report.escalated)} escalated one level up, "
        f"{len(report.at_top)} overdue at the top of their chain"
    )
    for order in report.issued + report.escalated:
        console.print(f"  {order['number']}  {order['unit_name']}  cases {order['case_ids']}")


@app.command("brief")
def brief(
    day: Annotated[
        str | None,
        typer.Option("--date", help="Day of the set, YYYY-MM-DD (default: yesterday, local)"),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Grid code (repeat; default: CITYGRID_BRIEF_SCOPES)"),
    ] = None,
    period: Annotated[
        str, typer.Option(help="day | week | month (the one holding the date)")
    ] = "day",
    catch_up: Annotated[
        bool, typer.Option("--catch-up", help="Also make the missing sets of the last days")
    ] = False,
) -> None:
    """Make the daily set (工作简报, 督查通报, 问题台账) of a day for scopes; a set already made
    is left as it is, so any scheduler may call this more than once."""
    from datetime import date, timedelta

    from service.briefs.figures import today
    from service.briefs.schedule import catch_up as catch_up_days
    from service.briefs.schedule import run_day

    settings = AppSettings()
    try:
        when = date.fromisoformat(day) if day else today(settings) - timedelta(days=1)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --date {day!r} is not YYYY-MM-DD")
        raise typer.Exit(2) from exc
    scopes = scope or settings.briefs.scope_list()
    if not scopes:
        console.print("[red]error:[/red] give --scope or set CITYGRID_BRIEF_SCOPES")
        raise typer.Exit(2)
    with _engine(settings) as engine:
        sessions = make_sessionmaker(engine)
        if catch_up:
            for earlier in catch_up_days(sessions, settings):
                console.print(f"caught up {earlier.day}: made {', '.join(earlier.made) or 'none'}")
        report = run_day(sessions, settings, when, scopes, period)
    for s in report.made:
        console.print(f"{when} {period} {s}: made")
    for s in report.existing:
        console.print(f"{when} {period} {s}: already made")
    for s, why in report.failed.items():
        console.print(f"[red]{when} {period} {s}: failed:[/red] {why}")
    if report.failed:
        raise typer.Exit(1)


@app.command("deliver")
def deliver(
    once: Annotated[
        bool, typer.Option("--once", help="One round (sweep, then every due delivery), then exit")
    ] = False,
) -> None:
    """Send webhook deliveries until stopped, with the server's background sweeps (newly
    overdue cases, 督办 escalation, deliveries past CITYGRID_NOTIFY_RETENTION_DAYS, photos past
    CITYGRID_PHOTO_RETENTION_DAYS when set); safe beside the server's own deliverer and other
    `citygrid deliver` processes. ``--once``: overdue cases, deliveries and their retention."""
    from service.cases.overdue import sweep_overdue
    from service.clock import now
    from service.factory import background_sweeps
    from service.notify.deliverer import Deliverer, DeliveryWorker
    from service.notify.retention import prune_deliveries

    settings = AppSettings()
    with _engine(settings) as engine:
        sessions = make_sessionmaker(engine)
        if not once:
            worker = DeliveryWorker(sessions, settings, sweeps=background_sweeps(settings)).start()
            console.print("delivering; Ctrl-C stops")
            try:
                while worker.thread.is_alive():
                    worker.thread.join(1)
            except KeyboardInterrupt:
                worker.stop()
            return
        with session_scope(sessions) as session:
            overdue = sweep_overdue(session, settings, now())
        deliverer = Deliverer(sessions, settings)
        sent = total = deliverer.run_once()
        while sent:  # until nothing is due (a round holds at most CITYGRID_NOTIFY_BATCH_SIZE)
            sent = deliverer.run_once()
            total += sent
        pruned = 0
        while True:  # a call deletes a bounded batch, each in its own short transaction
            with session_scope(sessions) as session:
                gone = prune_deliveries(session, settings, now())
            pruned += gone
            if not gone:
                break
    console.print(f"{overdue} case(s) newly overdue announced, {total} delivery attempt(s)")
    console.print(
        f"{pruned} finished delivery(ies) older than {settings.notify.retention_days} days deleted"
    )


@app.command("heatmap")
def heatmap(
    out: Annotated[Path, typer.Option("--out", "-o", help="map.png or map.html to write")],
    layer: Annotated[
        str, typer.Option(help="grids | hexbins | kde | gi | coverage | tracks | blind")
    ] = "grids",
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: 30 days ago)")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day, included (default: today)")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Category code or prefix")] = None,
    grid: Annotated[str | None, typer.Option(help="A grid code: only its subtree")] = None,
    per: Annotated[str, typer.Option(help="grids/gi: km2 | grid | patrol_hour")] = "km2",
    metric: Annotated[str, typer.Option(help="coverage: share | since")] = "share",
    size: Annotated[str, typer.Option(help="PNG size WIDTHxHEIGHT in pixels")] = "1600x1200",
) -> None:
    """Draw a heat layer to a PNG (matplotlib) or a self-contained offline HTML page."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from layers.page import FilterError, PageFilter
    from layers.report import POPUP_FIELDS, heat_html, heat_png
    from service.accounts.principal import SYSTEM
    from service.grids.repository import GridFilter, geom_of
    from service.maps.heat import LAYERS, HeatService

    settings = AppSettings()
    tz = settings.grids.timezone
    suffix = out.suffix.lower()
    try:
        if suffix not in (".png", ".html"):
            raise FilterError("--out must end in .png or .html", field="out")
        if layer not in LAYERS:
            raise FilterError(f"--layer must be one of {', '.join(LAYERS)}", field="layer")
        width, _, height = size.lower().partition("x")
        if not (width.isdigit() and height.isdigit()):
            raise FilterError("--size must look like 1600x1200", field="size")
        flt = PageFilter.parse(first, last, category, grid, today=datetime.now(ZoneInfo(tz)).date())
        options = {"grids": {"per": per}, "gi": {"per": per}, "coverage": {"metric": metric}}
        with _session(settings) as session:
            heat = HeatService(session, settings)
            window = heat.checked(*flt.window(tz), flt.category, flt.grid, by=SYSTEM)
            body = heat.layer(layer, window, **options.get(layer, {}))
            outlines = None
            if body.get("type") == "ImageOverlay":
                registry = Registry(session, settings)
                prefix = registry.subtree_prefix(flt.grid) if flt.grid else None
                rows = registry.repo.list(
                    GridFilter(settings.grids.city, window.end, "unit", subtree_prefix=prefix)
                )
                outlines = {
                    "type": "FeatureCollection",
                    "features": [
                        {"type": "Feature", "geometry": geom_of(r).__geo_interface__} for r in rows
                    ],
                }
        title = f"citygrid {layer}: {body['legend']['title']}"
        parts = [f"cases reported {flt.first_day} – {flt.last_day}"]
        parts += [f"category {flt.category}"] if flt.category else []
        parts += [f"grid {flt.grid}"] if flt.grid else []
        subtitle = " · ".join(parts)
        if suffix == ".png":
            data = heat_png(
                body,
                title=title,
                subtitle=subtitle,
                outlines=outlines,
                size=(int(width), int(height)),
            )
            out.write_bytes(data)
        else:
            page = heat_html(
                body,
                title=title,
                subtitle=subtitle,
                outlines=outlines,
                popup_fields=POPUP_FIELDS.get(layer, ()),
            )
            out.write_text(page, encoding="utf-8")
    except FilterError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    except CitygridError as exc:
        _fail(exc)
        return
    except ValueError as exc:  # a layer with nothing to draw, a size out of range
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{layer} written to {out} ({out.stat().st_size:,} bytes)")


@app.command("distribute")
def distribute_command() -> None:
    """On a Citus coordinator: make the shared tables reference tables and distribute every
    city table by its city, co-located with the grids (idempotent; run after `migrate`)."""
    from service.db.distribute import distribute

    settings = AppSettings()
    try:
        with _engine(settings, migrate=True) as engine:
            done = distribute(engine)
    except CitygridError as exc:
        _fail(exc)
        return
    console.print(
        f"distributed by city: {len(done.distributed)} tables newly, "
        f"{len(done.reference)} reference tables newly, {len(done.already)} already; "
        f"change-counter triggers replaced by the service: {len(done.triggers_dropped)}",
        soft_wrap=True,
    )


@app.command("backup")
def backup_command(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Archive to write (default: citygrid-<time>.tar)"),
    ] = None,
) -> None:
    """Back up the configured (or embedded) database and the photo folder into one archive."""
    from datetime import datetime

    from service.backup import backup
    from service.photos.photos import store_for

    settings = AppSettings()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output = output or Path(f"citygrid-{stamp}.tar")
    url = resolve_database_url(settings.database)
    try:
        with _engine(settings) as engine, _progress() as bar:
            manifest = backup(engine, url, store_for(settings), output, _steps(bar))
    except CitygridError as exc:
        _fail(exc)
        return
    counts = manifest["counts"]
    console.print(
        f"backed up to {output} ({output.stat().st_size:,} bytes): migration "
        f"{manifest['alembic_revision']}, {len(counts)} tables, {sum(counts.values()):,} rows, "
        f"{manifest['photos']['files']} photo files",
        soft_wrap=True,
    )
    if not manifest["photos"]["included"]:
        console.print(
            "[yellow]note:[/yellow] photos live in the S3 bucket "
            f"{settings.photos.s3_bucket!r} and are NOT in this archive; back the bucket up "
            "with its own tools"
        )


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Archive from `citygrid backup`")],
    database_url: Annotated[
        str | None,
        typer.Option(help="Empty database to restore into (default: the configured one)"),
    ] = None,
) -> None:
    """Restore a backup into an EMPTY database (refused otherwise), its photos into the photo
    folder; counts are checked against the backup and older dumps migrated forward."""
    from service.backup import restore
    from service.photos.photos import store_for

    settings = AppSettings()
    url = database_url or resolve_database_url(settings.database)
    engine = make_engine(url)
    try:
        with _progress() as bar:
            report = restore(file, engine, url, store_for(settings), _steps(bar))
    except CitygridError as exc:
        _fail(exc)
        return
    finally:
        engine.dispose()
    for table, (want, got) in sorted(report.counts.items()):
        mark = "" if want == got else "  [red]MISMATCH[/red]"
        console.print(f"  {table:<32} {got:>12,} rows (backup: {want:,}){mark}")
    want, got = report.photos
    console.print(f"  {'photo files':<32} {got:>12,} (backup: {want:,})")
    if report.photos_skipped:
        console.print(
            "[yellow]note:[/yellow] the photo store is an S3 bucket: the archive's photo files "
            "were NOT restored"
        )
    if report.mismatched or (got != want and not report.photos_skipped):
        console.print("[red]error:[/red] the restored data differs from the backup (see above)")
        raise typer.Exit(1)
    moved = f", migrated forward to {report.head}" if report.revision != report.head else ""
    console.print(f"restored {file} (migration {report.revision}{moved})", soft_wrap=True)


@app.command("db-stop")
def db_stop() -> None:
    """Stop the embedded database cluster (if it runs)."""
    from service.db.embedded import EmbeddedCluster

    EmbeddedCluster(AppSettings().database.data_dir).stop()
    console.print("embedded database stopped")


streets_app = typer.Typer(help="Street centre lines: import", no_args_is_help=True)
app.add_typer(streets_app, name="streets")


@streets_app.command("import")
def streets_import(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON/GPKG/SHP zip/KML")
    ],
    crs: Annotated[str | None, typer.Option(help="Source CRS when the file has none")] = None,
    datum: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09")] = "wgs84",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace every street of the city with the file's")
    ] = False,
    operator: OperatorOpt = None,
) -> None:
    """Import street centre lines from a file, all or nothing (recorded in the audit log)."""
    from service.streets.imports import import_street_file
    from service.streets.streets import StreetService

    settings = AppSettings()
    try:
        with _session(settings) as session:
            by = _operator(session, settings, operator, "grids.import")
            result = import_street_file(
                StreetService(session, settings),
                path,
                by=by,
                crs=crs,
                datum=datum,
                replace=replace,
                limits=settings.grids.file_limits,
            )
    except CitygridError as exc:
        _fail(exc)
        return
    verb = "replaced the city's streets with" if replace else "added"
    console.print(f"{result['features']} features: {verb} {result['created']} streets")


photos_app = typer.Typer(
    help="Photo evidence: the retention sweep, the evidence check again", no_args_is_help=True
)
app.add_typer(photos_app, name="photos")


@photos_app.command("sweep")
def photos_sweep() -> None:
    """Delete photos older than CITYGRID_PHOTO_RETENTION_DAYS: rows marked deleted (hashes
    kept, positions cleared), files removed once that commits (unless a kept photo shares them).
    Files staged over an hour ago by uploads that never committed go too, retention or not."""
    from service.photos.photos import PhotoService

    settings = AppSettings()
    with _session(settings) as session:
        result = PhotoService(session, settings).sweep()
    if settings.photos.retention_days <= 0:
        console.print("CITYGRID_PHOTO_RETENTION_DAYS is 0: photos are kept")
    else:
        console.print(f"{result['deleted']} photos deleted, {result['files']} files removed")
    if result["staged"]:
        console.print(f"{result['staged']} abandoned staged files removed")


@photos_app.command("recheck")
def photos_recheck() -> None:
    """Run the evidence check again over every feedback and verification photo (after a
    change of CITYGRID_PHOTO_EVIDENCE_DISTANCE_M)."""
    from service.photos.photos import PhotoService

    settings = AppSettings()
    with _session(settings) as session:
        checked = PhotoService(session, settings).recheck()
    console.print(f"{checked} photos checked")


fixes_app = typer.Typer(help="GPS fixes: day partitions and retention", no_args_is_help=True)
app.add_typer(fixes_app, name="fixes")


@fixes_app.command("partitions")
def fixes_partitions(
    ahead_days: Annotated[
        int | None,
        typer.Option(
            "--ahead-days", min=0, help="Days ahead (CITYGRID_PATROL_PARTITIONS_AHEAD_DAYS)"
        ),
    ] = None,
    retention: Annotated[
        bool,
        typer.Option(help="Also drop days older than CITYGRID_PATROL_FIX_RETENTION_DAYS"),
    ] = True,
) -> None:
    """Create the day partitions of gps_fixes for today and the days ahead (rows waiting in the
    default partition get theirs), drop those past the retention, and list what is there.
    Safe to run at any time and next to running servers (they take turns on a lock)."""
    from service.clock import now
    from service.patrol.partitions import (
        drop_expired_partitions,
        ensure_partitions,
        list_partitions,
    )

    settings = AppSettings()
    ahead = settings.patrol.partitions_ahead_days if ahead_days is None else ahead_days
    with _session(settings) as session:
        report = ensure_partitions(session, ahead, settings.grids.timezone, now())
        if retention and not report.skipped:
            expired = drop_expired_partitions(session, settings, now())
            report.dropped, report.skipped = expired.dropped, expired.skipped
            report.expired_default_rows = expired.expired_default_rows
        parts = list_partitions(session)
    console.print(
        f"{len(report.created)} partitions created, {report.moved} fixes moved out of the "
        f"default partition, {len(report.dropped)} dropped, {report.expired_default_rows} "
        "expired fixes deleted from the default partition"
    )
    for name in report.created:
        console.print(f"  created {name}")
    for name in report.dropped:
        console.print(f"  dropped {name}")
    if parts:
        console.print(f"{len(parts)} day partitions: {parts[0].name} … {parts[-1].name}")
    if report.skipped:
        console.print(f"[yellow]not finished:[/yellow] {report.skipped}; run it again")
        raise typer.Exit(1)


user_app = typer.Typer(help="Accounts: create, change password, list", no_args_is_help=True)
key_app = typer.Typer(help="API keys of system clients: create, revoke, list", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")


@user_app.command("create")
def user_create(
    login: Annotated[str, typer.Argument(help="Login name")],
    name: Annotated[str, typer.Option(help="Display name")],
    role: Annotated[list[str], typer.Option(help="Role key (repeat for several)")],
    scope: Annotated[list[str], typer.Option(help="Grid code of the scope (repeat)")] = [],  # noqa: B006
    department: Annotated[str | None, typer.Option(help="Department in scope")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Create an account (the password is asked for, never echoed)."""
    from service.accounts.accounts import AccountService, UserInput
    from service.accounts.principal import SYSTEM

    settings = AppSettings()
    try:
        with _session(settings) as session:
            accounts = AccountService(session, settings)
            accounts.seed()
            user = accounts.create_user(
                UserInput(
                    login=login,
                    display_name=name,
                    password=password,
                    roles=role,
                    scope_grids=scope,
                    department=department,
                    phone=phone,
                ),
                SYSTEM,
            )
            console.print(f"account {user.login} created (id {user.id})")
    except CitygridError as exc:
        _fail(exc)


@user_app.command("password")
def user_password(
    login: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Set a new password (also unlocks the account and ends its sessions)."""
    from service.accounts.accounts import AccountService, UserInput
    from service.accounts.principal import SYSTEM

    settings = AppSettings()
    try:
        with _session(settings) as session:
            accounts = AccountService(session, settings)
            user = accounts.user_by_login(login)
            if user is None:
                raise NotFound(f"no account {login!r}", field="login")
            accounts.update_user(user.id, UserInput(password=password), SYSTEM)
            console.print(f"password of {login} changed; its sessions are ended")
    except CitygridError as exc:
        _fail(exc)


@user_app.command("list")
def user_list() -> None:
    """Every account: login, roles, scope, whether it is active."""
    from service.accounts.accounts import AccountService

    settings = AppSettings()
    with _session(settings) as session:
        for user in AccountService(session, settings).users():
            scope = ",".join(user.scope_grids) or user.department or "whole city"
            state = "active" if user.active else "disabled"
            typer.echo(f"{user.login}\t{','.join(user.roles)}\t{scope}\t{state}")


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Argument(help="What the key is for (e.g. 12345热线)")],
    permission: Annotated[list[str], typer.Option(help="Permission (repeat for several)")],
    scope: Annotated[list[str], typer.Option(help="Grid code of the scope (repeat)")] = [],  # noqa: B006
    department: Annotated[str | None, typer.Option()] = None,
    days: Annotated[float | None, typer.Option(help="Expires after this many days")] = None,
) -> None:
    """Create an API key; its secret is printed this once (only a hash is kept)."""
    from datetime import timedelta

    from service.accounts.accounts import AccountService, KeyInput
    from service.accounts.principal import SYSTEM
    from service.clock import now

    settings = AppSettings()
    expires = now() + timedelta(days=days) if days else None
    try:
        with _session(settings) as session:
            key, secret = AccountService(session, settings).create_key(
                KeyInput(name, permission, scope, department, expires), SYSTEM
            )
            console.print(f"key {key.id} ({key.prefix}) created; send it as X-API-Key:")
            typer.echo(secret)
    except CitygridError as exc:
        _fail(exc)


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(help="Key id (see key list)")]) -> None:
    """Revoke an API key at once."""
    from service.accounts.accounts import AccountService
    from service.accounts.principal import SYSTEM

    settings = AppSettings()
    try:
        with _session(settings) as session:
            AccountService(session, settings).revoke_key(key_id, SYSTEM)
            console.print(f"key {key_id} revoked")
    except CitygridError as exc:
        _fail(exc)


@key_app.command("list")
def key_list() -> None:
    """Every API key: id, prefix, name, permissions, last use, state (never the secret)."""
    from service.accounts.accounts import AccountService

    settings = AppSettings()
    with _session(settings) as session:
        for key in AccountService(session, settings).keys():
            state = "revoked" if key.revoked_at else "live"
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            typer.echo(
                f"{key.id}\t{key.prefix}\t{key.name}\t{','.join(key.permissions)}\t"
                f"last used {used}\t{state}"
            )


if __name__ == "__main__":
    app()
