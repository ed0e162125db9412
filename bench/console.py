"""Console benchmark: every page's API calls and its rendering in Chromium, at 1M profiles and 10M events.

    python bench/console.py [--people 1000000] [--events-per-person 10] [--runs 5]

Generates a store straight into a fresh data directory with DuckDB SQL (the events, computed
traits and segments of bench/segments.py; one user id and one email per person, linked by an
edge; the golden record, computed traits and segments evaluated for everyone), marks every stage
as caught up, starts `tailor serve` on it and signs in as a console user. Then, in the same run:

- server time of each page's API calls (median of `--runs` requests over loopback), against the
  baseline of GET /healthz and of a static file;
- analytics: the first (cold) computation of each analysis, then the cached answer;
- render time in Chromium (Playwright, /usr/bin/chromium): from navigation start until the page
  says it is ready (its data loaded and drawn), median of three loads, against the sign-in page
  (the shell and its modules, no data) as the baseline. Target: every page under 500 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from segments import _EVENTS, _IDENTITY, NOW, _catalog
from tailor.access.store import AccessStore
from tailor.datadir import init_data_dir
from tailor.keyring import KEYRING_FILE
from tailor.process.stage import Batch, run_steps
from tailor.process.volume import EventVolume
from tailor.runtime import default_stages
from tailor.store import open_database

console = Console()
PASSWORD = "bench-console-password"
_EMAILS = """
INSERT INTO identity_nodes
SELECT md5_number_lower('email:n' || p || '@example.org'), 'email', 'n' || p || '@example.org',
       p * {per} + 1, false, 0, 'prof_' || p
FROM range({people}) t(p);
INSERT INTO identity_edges
SELECT md5_number_lower('email:n' || p || '@example.org'), md5_number_lower('user_id:u' || p),
       'email', 'n' || p || '@example.org', 'user_id', 'u' || p, p * {per} + 1, 'm' || (p * {per}),
       'event', true, NULL, false, false
FROM range({people}) t(p);
"""


def generate(data: Path, people: int, per: int) -> None:
    """Writes the store: events, identity, event volume, golden record, traits and segments."""
    total = people * per
    db = open_database(data)
    stages = default_stages()
    for stage in stages:
        stage.setup(db)
    with console.status("writing events") as status:
        for lo in range(0, total, 2_000_000):
            status.update(f"writing events {lo:,} of {total:,}")
            db.execute(_EVENTS.format(per=per, lo=lo, hi=min(total, lo + 2_000_000), now=NOW.isoformat()))
        status.update("writing the identity graph")
        for sql in (_IDENTITY + _EMAILS).format(per=per, people=people).split(";"):
            if sql.strip():
                db.execute(sql)
        cur = db.cursor()
        cur.execute("BEGIN")
        cur.execute("CREATE OR REPLACE TEMP VIEW batch_events AS SELECT * FROM events")
        status.update("counting event volume")
        run_steps(cur, "volume", EventVolume().steps(Batch(0, total)))
        profiles = next(s for s in stages if getattr(s, "name", "") == "profiles")
        steps = profiles.steps(Batch(0, total))  # type: ignore[attr-defined]
        facts = [s for s in steps if s.output in ("_pf_bf", "profile_facts", "_pf_obs", "trait_observations")]
        status.update("copying facts and trait observations")
        run_steps(cur, "facts", facts)
        cur.execute("COMMIT")
        status.update("evaluating the golden record, 20 computed traits and 20 segments for everyone")
        profiles.clock = lambda: NOW  # type: ignore[attr-defined]
        profiles.install(cur, _catalog(), force=True)  # type: ignore[attr-defined]
        for stage in stages:
            cur.execute(
                'INSERT INTO stage_offsets VALUES (?, ?, now()) ON CONFLICT DO UPDATE SET "offset" = excluded."offset"',
                [stage.name, total],
            )
        cur.close()
        status.update("checkpointing")
        db.checkpoint()
    db.close()


def _median_ms(call: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        r = call()
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, (r.status_code, r.text[:300])
    return statistics.median(times)


JOURNEY = "bench_winback"


def add_journey(url: str, client: httpx.Client) -> None:
    """A triggered journey for the journeys pages (nobody has entered it: no event triggers it here)."""
    template = {"name": "bench_mail", "channel": "email", "subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}
    client.post(url + "/api/v1/templates", json=template).raise_for_status()
    journey = {
        "name": JOURNEY,
        "entry": {"event": "Cart Abandoned"},
        "holdout_percent": 10,
        "conversion": {"event": "Order Completed", "within": "7d"},
        "steps": [
            {"id": "wait", "wait": {"duration": "1h"}},
            {"id": "ask", "split": {"variants": [{"name": "A", "weight": 1}, {"name": "B", "weight": 1}]}},
            {"id": "mail", "send": {"channel": "email", "template": "bench_mail"}},
        ],
    }
    client.put(url + f"/api/v1/journeys/{JOURNEY}", json=journey).raise_for_status()


def measure_api(
    url: str, client: httpx.Client, runs: int, person: str, email: str
) -> list[tuple[str, str, float]]:
    """(page, call, median ms) for every API call of every page, baselines first."""
    get = lambda path, **q: lambda: client.get(url + path, params=q)  # noqa: E731
    calls: list[tuple[str, str, Any]] = [
        ("baseline", "GET /healthz", get("/healthz")),
        ("baseline", "GET /static/app.js", get("/static/app.js")),
        ("overview", "GET /api/v1/console/overview", get("/api/v1/console/overview", minutes=60)),
        ("sources", "GET /api/v1/sources", get("/api/v1/sources")),
        ("sources", "GET /api/v1/console/live", get("/api/v1/console/live", limit=50)),
        ("sources", "GET /api/v1/quarantine", get("/api/v1/quarantine")),
        ("people", "search: an email, exactly", get("/api/v1/console/search", q=email.upper())),
        ("people", "search: a name's start", get("/api/v1/console/search", q="N12345")),
        ("people", "search: an identifier's start", get("/api/v1/console/search", q="u98765")),
        ("profile", "GET /api/v1/profiles/{id}", get(f"/api/v1/profiles/{person}")),
        ("profile", "GET /api/v1/profiles/{id}/identity", get(f"/api/v1/profiles/{person}/identity")),
        (
            "profile",
            "GET /api/v1/console/profiles/{id}/timeline",
            get(f"/api/v1/console/profiles/{person}/timeline", limit=50),
        ),
        ("segments", "GET /api/v1/segments", get("/api/v1/segments")),
        ("segment", "GET /api/v1/console/vocabulary", get("/api/v1/console/vocabulary")),
        ("segment", "GET /api/v1/segments/{name}", get("/api/v1/segments/big_spenders")),
        (
            "segment",
            "GET /api/v1/segments/{name}/members",
            get("/api/v1/segments/big_spenders/members", limit=50),
        ),
        ("journeys", "GET /api/v1/journeys", get("/api/v1/journeys")),
        ("journey", "GET /api/v1/journeys/{name}/counts", get(f"/api/v1/journeys/{JOURNEY}/counts")),
        ("journey", "GET /api/v1/journeys/{name}/results", get(f"/api/v1/journeys/{JOURNEY}/results")),
        ("privacy", "GET /api/v1/consents", get("/api/v1/consents", identifier=f"profile:{person}")),
        ("privacy", "GET /api/v1/privacy/erasures", get("/api/v1/privacy/erasures")),
    ]
    out = [(page, name, _median_ms(call, runs)) for page, name, call in calls]
    body = {
        "name": "preview",
        "condition": {"event": "Order Completed", "within": "30d", "op": ">=", "value": 2},
    }
    out.append(
        (
            "segment",
            "POST /api/v1/segments/preview (whole base)",
            _median_ms(lambda: client.post(url + "/api/v1/segments/preview", json=body), min(runs, 3)),
        )
    )
    return out


ANALYSES = [
    ("funnel", {"steps": "Product Viewed,Product Added,Order Completed", "window_hours": "72"}),
    ("paths", {"kind": "channel", "steps": "4"}),
    ("retention", {"period": "week", "cohort_by": "first_seen", "activity": "any"}),
    ("attribution", {"level": "channel"}),
    ("roas", {"level": "channel"}),
    ("budget", {"model": "markov"}),
    ("engagement", {"limit": "10"}),
    ("lifecycle", {}),
]


def measure_analytics(url: str, client: httpx.Client, runs: int) -> list[tuple[str, float, float]]:
    """(analysis, cold seconds, cached median ms)."""
    out = []
    for name, params in ANALYSES:
        with console.status(f"computing {name} over the whole store (cold)"):
            started = time.perf_counter()
            r = client.get(f"{url}/api/v1/console/analytics/{name}", params=params, timeout=1800)
            cold = time.perf_counter() - started
        if r.status_code != 200:
            console.print(f"  {name}: {r.status_code} {r.text[:200]}")
            out.append((name, cold, float("nan")))
            continue
        warm = _median_ms(
            lambda n=name, q=params: client.get(f"{url}/api/v1/console/analytics/{n}", params=q), runs
        )
        out.append((name, cold, warm))
    return out


def measure_render(url: str, person: str) -> list[tuple[str, float]]:
    """(page, median ms from navigation start to ready) in Chromium, the sign-in page first."""
    from playwright.sync_api import sync_playwright

    pages = ["/signin", "/", "/sources", "/people?q=N12345", f"/profiles/{person}", "/segments",
             "/segments/big_spenders", "/segments/new", "/journeys", f"/journeys/{JOURNEY}",
             f"/journeys/{JOURNEY}/edit", "/journeys/new", "/analytics", "/privacy"]  # fmt: skip
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url + "/signin")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.signin button[type=submit]")
        page.wait_for_selector("body[data-page=overview][data-state=ready]")
        for path in pages:
            times = []
            for _ in range(3):
                page.goto(url + path)
                page.wait_for_selector("body[data-state=ready], body[data-state=error]")
                assert page.evaluate("document.body.dataset.state") == "ready", path
                times.append(float(page.evaluate("performance.now()")))
            out.append((path, statistics.median(times)))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events-per-person", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8977)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=args.dir, prefix="tailor-console-bench-"))
    data = tmp / "data"
    proc = None
    try:
        init_data_dir(data, "bench")
        started = time.perf_counter()
        generate(data, args.people, args.events_per_person)
        total = args.people * args.events_per_person
        console.print(
            f"generated {total:,} events of {args.people:,} people in {time.perf_counter() - started:.0f} s"
        )
        store = AccessStore(data / KEYRING_FILE)
        store.add_user("bench", PASSWORD, "admin")
        store.close()
        log = (tmp / "server.log").open("wb")
        cmd = [sys.executable, "-m", "tailor.cli", "serve", "--data", str(data), "--port", str(args.port)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=os.environ.copy())
        url = f"http://127.0.0.1:{args.port}"
        with console.status("starting tailor serve"):
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        client = httpx.Client(timeout=600)
        signed = client.post(url + "/api/v1/sessions", json={"username": "bench", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        person, email = f"prof_{args.people // 2}", f"n{args.people // 2}@example.org"
        add_journey(url, client)
        load = os.getloadavg()
        api = measure_api(url, client, args.runs, person, email)
        analytics = measure_analytics(url, client, args.runs)
        render = measure_render(url, person) if Path("/usr/bin/chromium").exists() else []
        client.close()
        base = statistics.median([ms for page, _, ms in api if page == "baseline"])
        table = Table(title=f"server time per API call ({args.people:,} profiles, {total:,} events)")
        for column in ("page", "call", "median ms", "x baseline"):
            table.add_column(column)
        for page, name, ms in api:
            table.add_row(page, name, f"{ms:,.1f}", f"{ms / base:,.1f}")
        console.print(table)
        t2 = Table(title="analytics: first computation, then the cached answer")
        for column in ("analysis", "cold s", "cached ms", "cached x baseline"):
            t2.add_column(column)
        for name, cold, warm in analytics:
            t2.add_row(name, f"{cold:,.1f}", f"{warm:,.1f}", f"{warm / base:,.1f}")
        console.print(t2)
        if render:
            signin = render[0][1]
            t3 = Table(title="render in Chromium: navigation start to ready (median of 3)")
            for column in ("page", "ms", "x sign-in page", "under 500 ms"):
                t3.add_column(column)
            for path, ms in render:
                t3.add_row(path, f"{ms:,.0f}", f"{ms / signin:,.2f}", "yes" if ms < 500 else "NO")
            console.print(t3)
        console.print(
            f"load average before measuring: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (2 cores)"
        )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
