"""Phone page (``/m/``): bytes transferred and time to interactive on throttled connections.

Runs a live server on a throw-away database with the demo city (grids, catalogue, hotspots,
streets and 2,000 cases; no patrol week), logs in on the login form as a seeded grid worker
(``bench-phone``: the community with the most open cases) and opens ``/m/`` in headless
Chromium (``/usr/bin/chromium``, Playwright) as a 360 × 800 touch phone. Chromium's own network
emulation (CDP ``Network.emulateNetworkConditions``) throttles the page *and* its service
worker (attached through a browser CDP session as soon as it starts: its fetches are the
worker's, not the page's) to each profile of :data:`PROFILES`; ``unthrottled`` is the
same-run baseline.

One unthrottled run first warms the server (discarded). Then per profile and repeat, a fresh
browser (empty HTTP cache, no service worker):

- cold: the first load. Bytes = the encoded sizes (``Network.loadingFinished``
  ``encodedDataLength``: headers and gzip body as sent) of every answer fetched from the
  network by the page or its service worker (the worker's install-time copy of the shell
  included) until the worker controls the page and the network is quiet, split by kind:
  HTML (``/m/``), JS, CSS, tiles (``/tiles/`` or another host: the base map; none under the
  default ``basemap=none``) and API (``/api/``). The worker's own script (``/m/sw.js``,
  fetched by the browser for the registration) is in no target's log and not counted. The
  worker is attached when Chromium announces it, racing its first fetches: a run whose
  install-time copy was missed shows as the low end of the cold bytes' min–max. "by the
  worker": the part of the cold bytes the worker fetched (its copy of ``/m/``; the static
  files come from the HTTP cache; on a slow link also API reads made after it took over).
- warm: the same page opened again, the service worker's cache warm (shell from the cache,
  the page and the API network first, as ``m-sw.js`` does).
- offline: a reload with the network off (the shell and the last API answers from the
  worker's cache).

Time to interactive (TTI): navigation start (the page's ``performance`` time origin) until
the tabs are wired (``m.js`` has run ``showTab``: the map tab is ``aria-selected``), every task
list is drawn (an entry or the "none" line in each) and my grids are drawn (their names
listed and their outlines on the map). A ``MutationObserver`` added by the benchmark stamps
the first moment all of it holds; ``m.js`` is not changed.

Reference in the same run: the dispatcher page's (``/``, the admin, 1400 × 900) first load
bytes, unthrottled, counted the same way.
Run: ``python bench/bench_phone.py [--runs 3] [--cases 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from common import admin_headers, live_server, machine_line, scratch_database
from sqlalchemy.orm import Session

from service.db.engine import make_engine
from service.demo import load_demo_world
from service.settings import AppSettings

CHROMIUM = "/usr/bin/chromium"
WORKER = "bench-phone"
PASSWORD = "bench password 1"
# name → (down kbit/s, up kbit/s, round trip ms); None: no emulation (the baseline)
PROFILES: dict[str, tuple[int, int, int] | None] = {
    "unthrottled": None,
    "Regular 3G": (750, 250, 100),
    "Slow 3G": (400, 400, 400),
}
KINDS = ("HTML", "JS", "CSS", "tiles", "API", "other")

# stamps window.__citygridReady (ms since navigation start) when the page is interactive
READY_PROBE = """
(() => {
  if (location.pathname !== '/m/') return;
  const ready = () => {
    if (!document.querySelector('#tab-map[aria-selected="true"]')) return false;
    const lists = ['tasks-verify', 'tasks-cases', 'tasks-orders']
      .map(id => document.getElementById(id)).filter(Boolean);
    return lists.length > 0 && lists.every(l => l.children.length > 0)
      && !!document.querySelector('#m-grids .m-grid')
      && !!document.querySelector('#m-map .leaflet-overlay-pane path');
  };
  const obs = new MutationObserver(() => {
    if (window.__citygridReady === undefined && ready()) {
      window.__citygridReady = performance.now();
      obs.disconnect();
    }
  });
  obs.observe(document, {subtree: true, childList: true, attributes: true});
})();
"""


def _conditions(profile: tuple[int, int, int] | None) -> dict[str, Any]:
    if profile is None:
        return {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    down, up, rtt = profile
    return {
        "offline": False,
        "latency": rtt,
        "downloadThroughput": down * 1000 / 8,  # bytes per second
        "uploadThroughput": up * 1000 / 8,
    }


def _kind(url: str, origin: str) -> str:
    parts = urlsplit(url)
    path = parts.path
    if f"{parts.scheme}://{parts.netloc}" != origin or path.startswith("/tiles/"):
        return "tiles"
    if path == "/m/" or path == "/":
        return "HTML"
    if path.startswith("/api/"):
        return "API"
    if path.endswith(".js"):
        return "JS"
    if path.endswith(".css"):
        return "CSS"
    return "other"


class Traffic:
    """Answers fetched from the network, per request id, from the page's and the service
    worker's CDP Network events (answers the worker served to the page are not counted
    twice: the page's copy says ``fromServiceWorker``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.urls: dict[str, str] = {}
        self.skip: set[str] = set()
        self.pending: set[str] = set()
        self.sizes: dict[str, int] = {}
        self.last = time.monotonic()

    def event(self, target: str, method: str, params: dict[str, Any]) -> None:
        rid = f"{target}:{params.get('requestId')}"
        self.last = time.monotonic()
        if method == "Network.requestWillBeSent":
            self.urls[rid] = params["request"]["url"]
            self.pending.add(rid)
        elif method == "Network.responseReceived":
            r = params["response"]
            if r.get("fromServiceWorker") or r.get("fromDiskCache") or r.get("fromPrefetchCache"):
                self.skip.add(rid)
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.pending.discard(rid)
            if method == "Network.loadingFinished" and rid not in self.skip and rid in self.urls:
                self.sizes[rid] = int(params.get("encodedDataLength", 0))

    def reset(self) -> None:
        self.urls.clear()
        self.skip.clear()
        self.pending.clear()
        self.sizes.clear()

    def by_kind(self, target: str | None = None) -> dict[str, int]:
        """Bytes per kind (of ``target``'s answers only: ``page``, or a worker's session)."""
        out: dict[str, int] = defaultdict(int)
        for rid, size in self.sizes.items():
            if target is not None and not rid.startswith(f"{target}:"):
                continue
            out[_kind(self.urls[rid], self.origin)] += size
        return dict(out)

    def wait_quiet(self, page: Any, quiet: float = 1.0, limit: float = 120.0) -> None:
        """Until nothing is in flight and no event came for ``quiet`` seconds."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            page.wait_for_timeout(200)
            if not self.pending and time.monotonic() - self.last > quiet:
                return


def _watch(context: Any, page: Any, traffic: Traffic) -> Any:
    """A CDP session on ``page`` whose network events ``traffic`` records (enabled)."""
    cdp = context.new_cdp_session(page)
    for method in (
        "Network.requestWillBeSent",
        "Network.responseReceived",
        "Network.loadingFinished",
        "Network.loadingFailed",
    ):
        cdp.on(method, lambda p, m=method: traffic.event("page", m, p))
    cdp.send("Network.enable")
    return cdp


def _phone_run(pw: Any, base: str, conditions: dict[str, Any]) -> dict[str, Any]:
    """One fresh browser: log in, then the cold, warm and offline loads of ``/m/``."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        context = browser.new_context(
            viewport={"width": 360, "height": 800},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
        )
        page = context.new_page()
        page.add_init_script(READY_PROBE)
        # log in on the form, landing elsewhere: the phone page's first load comes after
        page.goto(f"{base}/login?next=/healthz")
        page.fill("#login", WORKER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/healthz")

        traffic = Traffic(base)
        cdp = _watch(context, page, traffic)
        cdp.send("Network.emulateNetworkConditions", conditions)

        # the service worker: a target of its own, throttled and logged once it starts
        top = browser.new_browser_cdp_session()
        workers: dict[str, str] = {}  # session id → target id
        now = [conditions]  # what a worker that starts now is given
        sent: list[str] = []

        def on_message(event: dict[str, Any]) -> None:
            message = json.loads(event["message"])
            if "method" in message:
                traffic.event(event["sessionId"], message["method"], message.get("params", {}))

        def on_target(event: dict[str, Any]) -> None:
            info = event["targetInfo"]
            if info["type"] != "service_worker" or info["targetId"] in workers.values():
                return
            sid = top.send(
                "Target.attachToTarget", {"targetId": info["targetId"], "flatten": False}
            )["sessionId"]
            workers[sid] = info["targetId"]
            to_workers("Network.enable", {}, sid)
            to_workers("Network.emulateNetworkConditions", now[0], sid)

        def to_workers(method: str, params: dict[str, Any], only: str | None = None) -> None:
            for sid in [only] if only else list(workers):
                message = json.dumps({"id": len(sent) + 1, "method": method, "params": params})
                sent.append(message)
                top.send("Target.sendMessageToTarget", {"sessionId": sid, "message": message})

        top.on("Target.receivedMessageFromTarget", on_message)
        top.on("Target.targetCreated", on_target)
        top.on("Target.detachedFromTarget", lambda e: workers.pop(e.get("sessionId", ""), None))
        top.send("Target.setDiscoverTargets", {"discover": True})

        out: dict[str, Any] = {}
        page.goto(f"{base}/m/")
        page.wait_for_function("() => window.__citygridReady !== undefined", timeout=300_000)
        out["cold"] = page.evaluate("() => window.__citygridReady") / 1000
        page.wait_for_function("() => !!navigator.serviceWorker.controller", timeout=300_000)
        traffic.wait_quiet(page)
        out["bytes"] = traffic.by_kind()
        out["install"] = sum(out["bytes"].values()) - sum(traffic.by_kind("page").values())
        out["tasks"] = page.evaluate(
            "() => document.querySelectorAll('[id^=tasks-] li:not(.m-none)').length"
        )
        out["grids"] = page.evaluate("() => document.querySelectorAll('#m-grids .m-grid').length")
        out["workers"] = len(workers)
        # again, now that the worker runs: sent while it was starting, the conditions may
        # not hold (its install-time fetches race the attach)
        to_workers("Network.emulateNetworkConditions", now[0])

        traffic.reset()
        page.goto(f"{base}/m/")
        page.wait_for_function("() => window.__citygridReady !== undefined", timeout=300_000)
        out["warm"] = page.evaluate("() => window.__citygridReady") / 1000
        traffic.wait_quiet(page)
        out["warm_bytes"] = sum(traffic.by_kind().values())
        # offline for the page and its worker alike (Playwright's own switch reaches the
        # page and navigator.onLine; the worker's fetches are cut here)
        now[0] = {**conditions, "offline": True}
        cdp.send("Network.emulateNetworkConditions", now[0])
        to_workers("Network.emulateNetworkConditions", now[0])
        context.set_offline(True)
        traffic.reset()
        page.reload()
        page.wait_for_function("() => window.__citygridReady !== undefined", timeout=300_000)
        out["offline"] = page.evaluate("() => window.__citygridReady") / 1000
        out["offline_bytes"] = sum(traffic.by_kind().values())  # must stay 0
        context.close()
    finally:
        browser.close()
    return out


def _dispatcher_bytes(pw: Any, base: str, headers: dict[str, str]) -> dict[str, int]:
    """The dispatcher page's first load (admin, empty cache, unthrottled), counted alike."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        context = browser.new_context(
            viewport={"width": 1400, "height": 900}, extra_http_headers=headers, locale="zh-CN"
        )
        page = context.new_page()
        traffic = Traffic(base)
        _cdp = _watch(context, page, traffic)  # held while the page loads
        page.goto(f"{base}/", timeout=300_000)
        page.wait_for_load_state("networkidle", timeout=300_000)
        traffic.wait_quiet(page)
        return traffic.by_kind()
    finally:
        browser.close()


def _phone_worker(engine: Any, settings: AppSettings) -> str:
    """``bench-phone`` (grid worker) of the community with the most open cases (as a real
    worker is given a community's unit grids), so that the task lists are not empty; returns
    the community's code."""
    from sqlalchemy import func, select

    from service.accounts.accounts import AccountService, UserInput
    from service.accounts.principal import SYSTEM
    from service.db.models import Case, Grid

    open_states = ("reported", "registered", "dispatched", "handling", "fed_back")
    with Session(engine) as session:
        community = session.scalar(
            select(Grid.parent_code)  # a unit's parent is its community
            .join(Case, Case.grid_code == Grid.code)
            .where(
                Grid.city == settings.grids.city,
                Grid.level == "unit",
                Grid.valid_to.is_(None),
                Case.status.in_(open_states),
            )
            .group_by(Grid.parent_code)
            .order_by(func.count().desc(), Grid.parent_code)
            .limit(1)
        )
        assert community is not None, "no open case in the demo city: raise --cases"
        AccountService(session, settings).create_user(
            UserInput(
                login=WORKER,
                display_name=WORKER,
                password=PASSWORD,
                roles=["grid_worker"],
                scope_grids=[community],
            ),
            SYSTEM,
        )
        session.commit()
    return community


def _kb(n: float) -> str:
    return f"{n / 1024:7.1f} KB"


def _s(samples: list[float]) -> str:
    a = np.asarray(samples)
    return f"{np.median(a):6.2f} / {a.max():6.2f} s"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the phone page's figures per network profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh browsers per profile")
    parser.add_argument("--cases", type=int, default=2000, help="demo cases in the city")
    opts = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    print(machine_line())
    with scratch_database() as (_, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        engine = make_engine(url)
        with Session(engine) as session:
            print(f"loading the demo city (grids, catalogue, {opts.cases} cases) …")
            load_demo_world(session, settings, cases=opts.cases, patrol=False)
            session.commit()
        admin = admin_headers(engine, settings)
        community = _phone_worker(engine, settings)
        engine.dispose()
        results: dict[str, list[dict[str, Any]]] = {}
        with live_server() as base, sync_playwright() as pw:
            _phone_run(pw, base, _conditions(None))  # warms the server (grid index, catalogue)
            for name, profile in PROFILES.items():
                results[name] = [
                    _phone_run(pw, base, _conditions(profile)) for _ in range(opts.runs)
                ]
            dispatcher = _dispatcher_bytes(pw, base, admin)

    first = results["unthrottled"][0]
    print(
        f"\nphone page /m/ as bench-phone (grid worker of community {community}), 360 × 800; "
        f"{opts.runs} fresh browsers per profile; the task lists hold "
        f"{first['tasks']} entries, the map {first['grids']} grids"
    )
    head = "  ".join(f"{k:>8}" for k in KINDS)
    print(
        "\ncold bytes (first run of each profile, page and worker, as sent)\n"
        f"  {'profile':<12} {head}     total"
    )
    for name, runs in results.items():
        b = runs[0]["bytes"]
        cells = "  ".join(f"{b.get(k, 0) / 1024:6.1f}KB" for k in KINDS)
        print(f"  {name:<12} {cells}  {_kb(sum(b.values()))}")
    print(
        "\nprofile (down/up kbit/s, RTT)  cold bytes (min–max)  cold TTI p50 / max   "
        "warm TTI p50  offline TTI p50  warm bytes  by the worker"
    )
    for name, runs in results.items():
        profile = PROFILES[name]
        label = f"{name} ({profile[0]}/{profile[1]}, {profile[2]} ms)" if profile else name
        cold = [sum(r["bytes"].values()) / 1024 for r in runs]
        warm = np.median([r["warm_bytes"] for r in runs])
        install = np.median([r["install"] for r in runs])
        print(
            f"  {label:<28} {min(cold):5.1f}–{max(cold):5.1f} KB     "
            f"{_s([r['cold'] for r in runs])}   "
            f"{np.median([r['warm'] for r in runs]):9.2f} s  "
            f"{np.median([r['offline'] for r in runs]):12.2f} s  {_kb(warm)}   {_kb(install)}"
        )
    if any(r["offline_bytes"] for runs in results.values() for r in runs):
        print("  (an offline reload fetched from the network: its figure is not offline)")
    if not all(r["workers"] for runs in results.values() for r in runs):
        print("  (a run's service worker was not attached: its fetches went unthrottled)")
    total = sum(dispatcher.values())
    parts = ", ".join(f"{k} {_kb(v).strip()}" for k, v in sorted(dispatcher.items()))
    print(f"\nreference: dispatcher page / first load (admin, unthrottled) {_kb(total)} ({parts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
