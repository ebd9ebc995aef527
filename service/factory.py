"""The FastAPI app factory; the lifespan owns the database engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from layers.page import BaseMap
from service import scratch
from service.accounts.accounts import AccountService
from service.auth import RENEWAL_COOKIE, SESSION_COOKIE, Anyone
from service.cases.open311.documents import PREFIX as OPEN311_PREFIX
from service.cases.open311.documents import error_document
from service.cases.overdue import sweep_overdue
from service.db.changes import ChangeListener
from service.db.engine import make_engine, make_sessionmaker, resolve_database_url
from service.http.activity import Activity, ActivityMeter
from service.http.bodyguard import GuardedRoute
from service.http.cookies import PendingCookies
from service.http.csrf import CsrfGuard
from service.http.errors import ErrorShapes, install_error_handlers
from service.http.overload import AdmissionControl
from service.http.security import SecurityHeaders, trusted_proxies
from service.http.timeparse import DisplayTimeZone
from service.notify.deliverer import DeliveryWorker, Sweep
from service.notify.retention import prune_deliveries
from service.patrol.partitions import maintain_partitions
from service.photos.photos import sweep_photos
from service.routers import (
    accounts,
    assessment,
    auth,
    briefs,
    campaigns,
    cases,
    catalogue,
    citizen,
    coverage,
    grids,
    heat,
    hotspots,
    inspection,
    mobile,
    notify,
    ogc,
    open311,
    pages,
    patrol,
    photos,
    scores,
    streets,
    supervision,
    tiles,
)
from service.settings import DEFAULT_ADMIN_PASSWORD, AppSettings
from service.supervision.escalation import escalate


def background_sweeps(settings: AppSettings) -> list[Sweep]:
    """The sweeps the background worker runs every ``CITYGRID_NOTIFY_SWEEP_INTERVAL_S`` (the
    server's and ``citygrid deliver``'s): newly overdue cases, the 督办 escalation rules, the
    retention of the delivery log, the day partitions of GPS fixes (created ahead, old ones
    dropped with ``CITYGRID_PATROL_FIX_RETENTION_DAYS``) and — with
    ``CITYGRID_PHOTO_RETENTION_DAYS`` > 0 — the photo retention sweep."""
    sweeps: list[Sweep] = [sweep_overdue, escalate, prune_deliveries, maintain_partitions]
    if settings.photos.retention_days > 0:
        sweeps.append(sweep_photos)
    return sweeps


def create_app(
    settings: AppSettings | None = None,
    sessions: sessionmaker[Session] | None = None,
    *,
    claim_scratch: bool = False,
) -> FastAPI:
    """Build the citygrid app.

    ``sessions`` lets tests hand in a session factory bound to their own transaction; otherwise
    the lifespan creates the engine from ``settings.database`` and disposes it on shutdown.
    ``claim_scratch`` (server processes): while the app runs, the process's temporary files
    (staged uploads …) go to a scratch folder of its own, so that a process killed outright
    leaves nothing behind for long (``service.scratch``); tests leave their process's
    temporary folder alone.
    """
    settings = settings or AppSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine: Engine | None = None
        app.state.changes = None
        worker: DeliveryWorker | None = None
        if sessions is None:
            url = resolve_database_url(settings.database)
            engine = make_engine(
                url,
                pool_size=settings.pool_size(),
                pool_timeout_s=settings.database.pool_timeout_s,
                max_overflow=0,  # the pool is exactly what the settings size it to
            )
            app.state.sessions = make_sessionmaker(engine)
            _seed_accounts(app.state.sessions, settings)
            _ensure_partitions(app.state.sessions, settings)
            # committed writes announced by PostgreSQL keep in-memory answers fresh; an app on
            # sessions handed in (a test's transaction) has no such thing and asks every time
            app.state.changes = ChangeListener.for_url(url).start()
            _warm_in_background(app.state.sessions, settings, app.state.changes, app.state.activity)
            if settings.briefs.schedule:
                from service.briefs.schedule import BriefScheduler

                app.state.brief_scheduler = BriefScheduler(app.state.sessions, settings).start()
            if settings.notify.enabled:  # webhooks, and the sweeps that feed them: newly
                # overdue cases, and the 督办 escalation rules (orders issued announce themselves);
                # and the retention of the delivery log
                worker = DeliveryWorker(
                    app.state.sessions, settings, sweeps=background_sweeps(settings)
                ).start()
        else:
            app.state.sessions = sessions
        # the thread pool is sized with the admission limit and the database pool
        to_thread.current_default_thread_limiter().total_tokens = settings.server.thread_count()
        claimed = claim_scratch and _claim_scratch()
        yield
        if claimed:
            scratch.release()
        scheduler = getattr(app.state, "brief_scheduler", None)
        if scheduler is not None:
            scheduler.stop()
        if worker is not None:  # waits for a send in flight, at most the timeout
            await to_thread.run_sync(worker.stop)
        if app.state.changes is not None:
            app.state.changes.stop()
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="citygrid",
        summary="Grid management for city management offices (网格化城市管理)",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by the pages router from /static (no CDN), under the CSP
        redoc_url=None,
    )
    app.state.settings = settings
    app.router.route_class = GuardedRoute  # the app's own routes parse bodies like the rest
    # cookies set by code that has no answer in hand (the web session's renewal)
    app.add_middleware(PendingCookies)
    app.add_middleware(DisplayTimeZone, tz=settings.grids.timezone)
    # heat layers and GeoJSON exports are large, repetitive text: gzip cuts them ~5-10×
    app.add_middleware(GZipMiddleware, minimum_size=4096)
    # Open311 answers every error in its own document, whatever raised it
    shapes = ErrorShapes({OPEN311_PREFIX: error_document})
    install_error_handlers(app, shapes)
    # writes authenticated by the web session's cookies need the CSRF token; the API's
    # login endpoints take a password or a refresh token in the body, never the cookie
    app.add_middleware(
        CsrfGuard,
        secret=settings.auth.secret_key,
        session_cookies=(SESSION_COOKIE, RENEWAL_COOKIE),
        always=(pages.LOGIN_PATH,),
        exempt=(r".*/api/auth/(token|refresh|logout)$",),
        refused=pages.csrf_refused,
    )
    # a request the process cannot take on is refused before any other work
    app.add_middleware(
        AdmissionControl,
        limit=settings.server.max_active_requests,
        queue=settings.server.max_queued_requests,
        wait_s=settings.server.queue_wait_s,
        shapes=shapes,
    )
    # every answer, the 503 of admission control included, carries the security headers
    basemap = BaseMap(settings.map.basemap, settings.map.tile_url, settings.map.tianditu_key)
    app.add_middleware(SecurityHeaders, img_sources=basemap.image_sources())
    proxies = trusted_proxies(settings.server.trusted_proxies)
    if proxies:  # outermost: the scheme (https) and client address as the proxy says
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    # requests in flight: the start-up warm-up waits for a quiet moment
    app.state.activity = Activity()
    app.add_middleware(ActivityMeter, activity=app.state.activity)

    for module in (
        auth,
        accounts,
        grids,
        cases,
        hotspots,
        streets,
        catalogue,
        patrol,
        assessment,
        scores,
        inspection,
        supervision,
        campaigns,
        briefs,
        photos,
        notify,
        coverage,
        heat,
        open311,
        citizen,
        ogc,
        tiles,
        pages,
        mobile,
    ):
        app.include_router(module.router)
    app.include_router(supervision.case_router)
    app.include_router(citizen.page_router)
    pages.mount_static(app)

    @app.get("/healthz", include_in_schema=False, dependencies=[Anyone()])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _claim_scratch() -> bool:
    """Claim this process's scratch folder (the folders of killed server processes are
    removed here); a temporary folder the process cannot write to is logged, not fatal —
    nothing needs one to start."""
    import logging

    try:
        scratch.claim()
    except OSError:
        logging.getLogger("citygrid").warning(
            "cannot make a scratch folder under the temporary folder (TMPDIR)", exc_info=True
        )
        return False
    return True


def _warm_in_background(
    sessions: sessionmaker[Session],
    settings: AppSettings,
    changes: ChangeListener,
    activity: Activity,
) -> None:
    """Build the grid snapshot, grid index and coverage raster once the server has been quiet
    for ``CITYGRID_WARM_QUIET_S`` seconds, in a thread at the lowest CPU priority: the first
    visitors after a start are answered from the stored aggregates and must not share the CPU
    (and the interpreter lock) with tens of seconds of raster work of every worker process."""
    import logging
    import os
    import threading

    def warm() -> None:
        from service.grids.snapshot import committed_snapshot
        from service.patrol.coverage import CoverageService

        try:  # Linux: a thread's id names it alone
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        activity.wait_quiet(settings.server.warm_quiet_s)
        try:
            committed_snapshot(sessions, settings.grids.city, changes)
            with sessions() as session:
                CoverageService(session, settings).warm()
        except Exception:  # a cold cache only costs the first request some seconds
            logging.getLogger("citygrid").warning("warming the caches failed", exc_info=True)

    threading.Thread(target=warm, name="citygrid-warm", daemon=True).start()


def _ensure_partitions(sessions: sessionmaker[Session], settings: AppSettings) -> None:
    """Today's and the ahead day partitions of GPS fixes before the first request. A failure
    (a lock not granted in time) only logs: the default partition takes fixes meanwhile and
    the background sweep tries again."""
    import logging

    from service.clock import now
    from service.patrol.partitions import ensure_partitions

    log = logging.getLogger("citygrid")
    try:
        with sessions() as session:
            report = ensure_partitions(
                session, settings.patrol.partitions_ahead_days, settings.grids.timezone, now()
            )
            session.commit()
        if report.skipped:
            log.warning("fix partitions not made at start: %s", report.skipped)
    except Exception:
        log.warning("making the fix partitions at start failed", exc_info=True)


def _seed_accounts(sessions: sessionmaker[Session], settings: AppSettings) -> None:
    """The city's roles, and its first admin account when it has none (so a fresh database is
    usable). In production, refuse to serve while an active account still has the default
    admin password (the settings already refuse a default secret)."""
    with sessions() as session:
        accounts = AccountService(session, settings)
        accounts.seed()
        session.commit()
        if settings.auth.environment == "production":
            weak = accounts.logins_with_password(DEFAULT_ADMIN_PASSWORD)
            if weak:
                raise RuntimeError(
                    f"account(s) {', '.join(weak)} still have the default admin password: set "
                    "a new one (`citygrid user password LOGIN`) before serving in production"
                )
