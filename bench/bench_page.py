"""Dispatcher page: HTML size, data each default layer fetches, time to first render, and
aggregation time per heat layer.

Runs a live server on ``CITYGRID_DATABASE_URL`` (loading the demo world there when it has no
unit grids) or, without it, on a throw-away database with the demo world (grids, hotspots,
20,000 cases, a week of patrols), or with ``--size large`` the large city of ``bigcity.py``
(30,000 irregular unit grids, 1M cases of a year). The first visitor ever computes the heat
layers the page needs and the server stores them; the server is then restarted and the first
visitor after the restart is timed (stored layers, empty in-memory caches). Headless Chromium
(``/usr/bin/chromium``, Playwright) opens the page with an empty cache each run; time to first
render is navigation start → the density choropleth drawn (the page's ``citygrid:drawn:…``
performance mark). Baseline in the same run: the same choropleth with its data embedded in the
page (``layers.report.heat_html``, what a plain folium page would be), opened from a file,
timed to the same paths drawn. Aggregation is timed twice: ``HeatService`` straight on a
session, and ``GET /api/heat/{layer}``.
Run: ``python bench/bench_page.py [--from 2026-11-16 --to 2026-11-22] [--runs 5]`` or
``python bench/bench_page.py --size large [--runs 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx  # the dev dependency (pyproject: httpx2)
import numpy as np
from bigcity import load_large_city
from common import admin_headers, live_server, machine_line, scratch_database
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from layers.page import PageFilter, layer_titles
from layers.report import heat_html
from service.accounts.principal import SYSTEM
from service.db.engine import make_engine, resolve_database_url
from service.db.models import Case, Grid
from service.demo import load_demo_world
from service.maps.heat import HeatService
from service.settings import AppSettings

LAYER_TITLES = layer_titles()  # the default (Chinese) page's titles

CHROMIUM = "/usr/bin/chromium"
DENSITY = LAYER_TITLES["density"]
# page layer → (heat layer, options) as the page asks for them
HEAT = {
    "density": ("grids", {}),
    "per_patrol_hour": ("grids", {"per": "patrol_hour"}),
    "hexbins": ("hexbins", {}),
    "kde": ("kde", {}),
    "gi": ("gi", {}),
    "coverage": ("coverage", {"metric": "share"}),
    "since": ("coverage", {"metric": "since"}),
    "tracks": ("tracks", {}),
    "blind": ("blind", {}),
}


def _ms(samples: list[float]) -> str:
    a = np.asarray(samples) * 1000
    return f"p50 {np.median(a):8.1f} ms  (min {a.min():7.1f}, max {a.max():7.1f})"


def _kb(n: float) -> str:
    return f"{n / 1024:9.1f} KB"


def _database(stack: ExitStack, size: str = "demo") -> str:
    """URL of a database holding the demo world (the configured one, or a scratch one), or
    a scratch one holding the large city."""
    url = os.environ.get("CITYGRID_DATABASE_URL")
    if size == "large":
        _, url = stack.enter_context(scratch_database())
        os.environ["CITYGRID_DATABASE_URL"] = url
        engine = make_engine(url)
        with Session(engine) as session:
            print("loading the large city (30,000 unit grids, 1M cases) …")
            load_large_city(session, AppSettings())
            session.commit()
        engine.dispose()
        return url
    if url is None:
        _, url = stack.enter_context(scratch_database())
        os.environ["CITYGRID_DATABASE_URL"] = url
    settings = AppSettings()
    engine = make_engine(resolve_database_url(settings.database))
    with Session(engine) as session:
        present = session.scalar(
            select(Grid.id).where(Grid.city == settings.grids.city, Grid.level == "unit").limit(1)
        )
        if present is None:
            print("loading the demo world (grids, hotspots, 20,000 cases, a week of patrols) …")
            load_demo_world(session, settings, cases=20_000)
            session.commit()
    engine.dispose()
    return url


def _browser_runs(
    base: str,
    query: str,
    runs: int,
    embedded: Path | None = None,
    paths: int = 0,
    headers: dict[str, str] | None = None,
) -> dict:
    """Per run: time to the density layer drawn, bytes per resource kind; and the baseline.
    ``headers`` (the admin's token) go with every request of the page."""
    from playwright.sync_api import sync_playwright

    out: dict = {"first_render": [], "bytes": [], "baseline": []}
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        for _ in range(runs):
            context = browser.new_context(  # cold cache; Chinese, the titles waited for
                viewport={"width": 1400, "height": 900},
                extra_http_headers=headers or {},
                locale="zh-CN",
            )
            page = context.new_page()
            page.goto(f"{base}/?{query}")
            page.wait_for_function(
                "t => window.L && L.Citygrid && L.Citygrid.layers[t] && L.Citygrid.layers[t].drawn",
                arg=DENSITY,
                timeout=300_000,
            )
            page.wait_for_load_state("networkidle")
            mark = page.evaluate(
                "t => performance.getEntriesByName('citygrid:drawn:' + t)[0].startTime",
                DENSITY,
            )
            out["first_render"].append(mark / 1000)
            entries = page.evaluate(
                "() => performance.getEntriesByType('navigation').concat("
                "performance.getEntriesByType('resource'))"
                ".map(e => [e.name, e.encodedBodySize])"
            )
            sizes: dict[str, int] = defaultdict(int)
            counts: dict[str, int] = defaultdict(int)
            for name, size in entries:
                kind = _kind(name)
                sizes[kind] += int(size)
                counts[kind] += 1
            out["bytes"].append((dict(sizes), dict(counts)))
            context.close()
        for _ in range(runs if embedded is not None else 0):
            assert embedded is not None
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(embedded.as_uri())
            page.wait_for_function(
                "n => document.querySelectorAll('.leaflet-overlay-pane path').length >= n",
                arg=paths,
                polling="raf",
                timeout=300_000,
            )
            out["baseline"].append(page.evaluate("() => performance.now()") / 1000)
            context.close()
        browser.close()
    return out


def _kind(url: str) -> str:
    path = urlsplit(url).path
    for prefix in (
        "/static",
        "/api/heat/grids",
        "/api/hotspots",
        "/tiles/grids",
        "/tiles/cases",
        "/tiles/heat",
    ):
        if path.startswith(prefix):
            return prefix
    return "page (HTML)" if path == "/" else path


def main(argv: list[str] | None = None) -> int:
    """Measure and print the page figures beside the embedded-data baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default="2026-11-16")
    parser.add_argument("--to", dest="last", default="2026-11-22")
    parser.add_argument("--runs", type=int, help="browser runs (default 5, 2 with --size large)")
    parser.add_argument("--size", choices=("demo", "large"), default="demo")
    opts = parser.parse_args(argv)
    opts.runs = opts.runs or (2 if opts.size == "large" else 5)
    reps = 3
    # the large city: the density layer only (the others take minutes each to compute there,
    # the coverage raster of 30,000 grids alone a few), and no notification sweeps (they scan
    # every overdue case)
    heat_layers = {"density": HEAT["density"]} if opts.size == "large" else HEAT
    env = {"CITYGRID_NOTIFY_ENABLED": "false"} if opts.size == "large" else {}
    print(machine_line(), f"; load average {os.getloadavg()[0]:.1f}")
    flt = PageFilter(date.fromisoformat(opts.first), date.fromisoformat(opts.last))
    query = f"from={flt.first_day}&to={flt.last_day}"
    with ExitStack() as stack:
        _database(stack, opts.size)
        settings = AppSettings()
        engine = make_engine(resolve_database_url(settings.database))
        start, end = flt.window(settings.grids.timezone)

        # aggregation straight on a session
        direct: dict[str, list[float]] = defaultdict(list)
        with Session(engine) as session:
            city = settings.grids.city
            grids = session.scalar(
                select(func.count()).where(
                    Grid.city == city, Grid.level == "unit", Grid.valid_to.is_(None)
                )
            )
            cases = session.scalar(
                select(func.count()).where(
                    Case.city == city, Case.reported_at >= start, Case.reported_at < end
                )
            )
            heat = HeatService(session, settings)
            window = heat.checked(start, end, by=SYSTEM)
            for _ in range(reps if opts.size == "demo" else 0):
                for kind, (layer, options) in heat_layers.items():
                    t = time.perf_counter()
                    heat.layer(layer, window, **options)
                    direct[kind].append(time.perf_counter() - t)
            session.rollback()
        engine.dispose()
        print(
            f"{opts.size} city: {grids} unit grids, {cases} cases reported {flt.first_day} – "
            f"{flt.last_day}; {opts.runs} browser runs, cold browser cache each"
        )

        auth = admin_headers(make_engine(resolve_database_url(settings.database)), settings)
        # the first visitor ever: the page's heat layer is computed and stored (asked for
        # through its legend, as the page does, with no browser time-out), then the page
        with (
            live_server(env=env) as base,
            httpx.Client(base_url=base, timeout=3600, headers=auth) as client,
        ):
            t = time.perf_counter()
            r = client.get("/api/heat/grids", params={**flt.query(), "features": "false"})
            assert r.status_code == 200, r.text[:500]
            computed = time.perf_counter() - t
            # that visitor's browser: the tiles of the view are rendered (and kept)
            first = _browser_runs(base, query, 1, headers=auth)
        with (
            live_server(env=env) as base,
            httpx.Client(base_url=base, timeout=600, headers=auth) as client,
        ):
            # the first visitor right after a restart (the server warms its grid index and
            # coverage raster in the background meanwhile; the stored layers are reused), then,
            # once warm, the first visitor of another period (nothing of it computed yet)
            cold = _browser_runs(base, query, 1, headers=auth)
            page_times, http = [], defaultdict(list)
            html = ""
            for _ in range(opts.runs):
                t = time.perf_counter()
                r = client.get(f"/?{query}")
                page_times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:500]
                html = r.text
            fresh = {"first_render": [np.nan]}  # the large city: minutes (see above)
            if opts.size == "demo":
                time.sleep(15)
                shifted = f"from={flt.first_day - timedelta(days=1)}&to={flt.last_day}"
                fresh = _browser_runs(base, shifted, 1, headers=auth)
            answers: dict[str, bytes] = {}
            for _ in range(reps + 1 if opts.size == "demo" else 2):
                for kind, (layer, options) in heat_layers.items():
                    params = {**flt.query(), **options}  # as the page asks
                    t = time.perf_counter()
                    r = client.get(f"/api/heat/{layer}", params=params)
                    http[kind].append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text[:500]
                    answers[kind] = r.content
            density = json.loads(answers["density"])
            with tempfile.TemporaryDirectory() as tmp:
                embedded = Path(tmp) / "embedded.html"
                embedded.write_text(heat_html(density, title="density"), encoding="utf-8")
                browser = _browser_runs(
                    base, query, opts.runs, embedded, paths=len(density["features"]), headers=auth
                )
                embedded_size = embedded.stat().st_size

        print("\npage")
        print(f"  HTML of GET /                   {_kb(len(html.encode()))}   {_ms(page_times)}")
        sizes, counts = browser["bytes"][0]
        print("\ndata fetched on opening (first run, bytes as sent, by kind)")
        for kind in sorted(sizes, key=lambda k: -sizes[k]):
            print(f"  {kind:<30} {_kb(sizes[kind])}  in {counts[kind]:3d} requests")
        print(f"  {'total':<30} {_kb(sum(sizes.values()))}")
        print("\ntime to first render (navigation start → density choropleth drawn)")
        print(f"  the page's layer computed and stored once: {computed:.1f} s (first visitor ever)")
        print(f"  the first visitor's page then   {_ms(first['first_render'])}")
        print(f"  first visitor after a restart   {_ms(cold['first_render'])}")
        print(f"  first visitor of a new period   {_ms(fresh['first_render'])}")
        print(f"  later visitors (server cached)  {_ms(browser['first_render'])}")
        label = f"baseline: embedded, {embedded_size / 1024:.0f} KB"
        print(f"  {label:<31} {_ms(browser['baseline'])}")
        print(
            "\naggregation per heat layer: HeatService direct (computed) | GET /api/heat "
            "first | again (cached) | answer size"
        )
        for kind in heat_layers:
            print(
                f"  {kind:<16} {np.median(direct[kind] or [np.nan]) * 1000:9.1f} ms | "
                f"{http[kind][0] * 1000:9.1f} ms | {np.median(http[kind][1:]) * 1000:9.1f} ms | "
                f"{_kb(len(answers[kind]))}"
            )
    print(
        f"load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews HTTP)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
