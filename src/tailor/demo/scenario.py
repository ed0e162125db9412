"""`tailor demo`: the main job end to end on the embedded default.

It creates a data directory, starts the server in this process, sends a synthetic multi-channel
customer base through the real HTTP collector as an SDK would (gzip, Basic auth, 100-event
batches on several connections), imports the CRM, call-centre and guest-checkout files, waits for
the processor, checks the live state against a rebuild, and shows what arrived.
"""

from __future__ import annotations

import base64
import gzip
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tailor.analytics.demo import show_analytics
from tailor.api import create_app
from tailor.connectors.records import import_records, records_count
from tailor.console.demo import create_demo_user
from tailor.datadir import Credentials, init_data_dir
from tailor.demo.journeys import configure_messaging, run_campaigns
from tailor.demo.mailbox import Mailbox
from tailor.demo.segments import define_demo_segments, show_segments
from tailor.demo.synth import RECORD_KINDS, SynthConfig, generate
from tailor.exceptions import DataDirError
from tailor.identity.scoring import score_profiles
from tailor.keyring import KEYRING_FILE
from tailor.runtime import Runtime
from tailor.server import serve as serve_forever

DEFAULT_DIR = Path("demo-data")
DEMO_SOURCE = "web-and-app"
BATCH = 100
SENDERS = 4
# A misconfigured till integration: the kinds of mistakes real feeds make, to show the quarantine.
BROKEN_FEED: list[dict[str, Any]] = [
    {"type": "track", "event": "Order Completed", "properties": {"total": 18.5}},
    {"type": "track", "userId": "null", "event": "Order Completed", "timestamp": "24/11/2026 10:02"},
    {"type": "track", "userId": "till-7", "properties": {"total": 12}},
    {"type": "identify", "userId": True, "traits": "ana@example.com"},
]


def _prepare_dir(data_dir: Path | None, console: Console) -> tuple[Path, Credentials | None]:
    if data_dir is None:
        data_dir = DEFAULT_DIR
        if data_dir.exists():
            shutil.rmtree(data_dir)  # the default directory belongs to the demo: start afresh
    if (data_dir / KEYRING_FILE).exists():
        console.print(f"Reusing {data_dir}: events already stored there are deduplicated, not stored twice.")
        return data_dir, None
    if data_dir.exists() and any(data_dir.iterdir()):
        raise DataDirError(f"{data_dir} exists and is not a Tailor data directory; choose another --data")
    return data_dir, init_data_dir(data_dir, DEMO_SOURCE)


def _batches(events: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for event in events:
        chunk.append(event)
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Server:
    """The HTTP server in a background thread of this process."""

    def __init__(self, runtime: Runtime, port: int) -> None:
        config = uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, name="tailor-http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DataDirError(
                    f"the server could not start on {self.url} (is the port in use? try --port)"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def _send(
    url: str, write_key: str, events: Iterator[dict[str, Any]], total: int, console: Console
) -> dict[str, int]:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    counts = {"sent": 0, "stored": 0, "duplicates": 0, "rejected": 0}
    lock = threading.Lock()
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(batch: list[dict[str, Any]]) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
            with lock:
                clients.append(client)
        body = gzip.compress(msgspec.json.encode({"batch": batch}), 1)
        for attempt in range(10):  # retry like an SDK: 5xx and 429 are transient
            r = client.post("/v1/batch", content=body, headers=headers)
            if r.status_code == 200:
                break
            if r.status_code not in (429, 503):
                raise RuntimeError(f"collector answered {r.status_code}: {r.text}")
            time.sleep(float(r.headers.get("Retry-After", "1")) * (attempt + 1) / 4)
        answer = r.json()
        with lock:
            counts["sent"] += len(batch)
            counts["stored"] += answer.get("stored", len(batch))
            counts["duplicates"] += answer.get("duplicates", 0)
            counts["rejected"] += len(answer.get("rejected", []))
        return len(batch)

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress, ThreadPoolExecutor(SENDERS) as pool:
            task = progress.add_task("sending events to /v1/batch", total=total, rate="")
            started = time.perf_counter()
            pending = []
            for batch in _batches(events):
                pending.append(pool.submit(post, batch))
                if len(pending) >= SENDERS * 4:
                    done = pending.pop(0).result()
                    rate = f"{progress.tasks[0].completed / (time.perf_counter() - started):,.0f} events/s"
                    progress.update(task, advance=done, rate=rate)
            for future in pending:
                progress.update(task, advance=future.result())
    finally:
        for client in clients:
            client.close()
    return counts


def _state(runtime: Runtime) -> list[list[tuple[Any, ...]]]:
    """What the processing stages hold, to compare live state with a rebuild."""
    runtime.processor.refresh()  # windows and merges due since the last batch
    tables = (
        "event_volume",
        "records",
        "identity_nodes",
        "identity_edges",
        "identity_refused_values",
        "profile_traits",
        "profile_computed",
        "segment_members (segment, profile_id)",
    )
    out = []
    for table in tables:
        name, _, columns = table.partition(" ")
        select = columns.strip("()") or "*"
        out.append(runtime.db.execute(f"SELECT {select} FROM {name} ORDER BY ALL"))
    return out


def _bar_chart(title: str, rows: list[tuple[str, int]], width: int = 40) -> Table:
    table = Table(title=title, show_header=False, box=None, padding=(0, 1))
    top = max((n for _, n in rows), default=1) or 1
    for label, n in rows:
        table.add_row(label, f"{n:>9,}", "[cyan]" + "█" * max(1, round(width * n / top)) + "[/cyan]")
    return table


def _summary(
    runtime: Runtime, counts: dict[str, int], imports: list[Any], seconds: float, console: Console
) -> None:
    db = runtime.db
    people = runtime.db.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT anonymous_id),"
        " count(DISTINCT context::JSON->>'$.device.id') FROM events"
    )[0]
    table = Table(title="What arrived", show_header=False)
    table.add_row("events sent through the HTTP collector", f"{counts['sent']:,}")
    table.add_row("stored (durably, before the 200)", f"{counts['stored']:,}")
    table.add_row("duplicates dropped (same source + messageId)", f"{counts['duplicates']:,}")
    table.add_row("quarantined with a reason", f"{runtime.writer.quarantined_total:,}")
    table.add_row("ingest rate (sender in the same process)", f"{counts['sent'] / seconds:,.0f} events/s")
    table.add_row(
        "user ids / anonymous ids / app+TV device ids", f"{people[0]:,} / {people[1]:,} / {people[2]:,}"
    )
    for kind, n in records_count(db).items():
        table.add_row(f"{kind} records imported", f"{n:,}")
    console.print(table)
    top = db.execute(
        "SELECT type || ': ' || event, sum(events)::BIGINT FROM event_volume WHERE event <> ''"
        " GROUP BY ALL ORDER BY 2 DESC LIMIT 12"
    )
    console.print(_bar_chart("Most frequent events and pages (from the live event_volume stage)", top))
    channels = db.execute(
        """SELECT coalesce(context::JSON->>'$.campaign.medium',
                  CASE WHEN type = 'screen' OR context::JSON->>'$.app.name' IS NOT NULL THEN 'app'
                  ELSE 'direct / organic' END) AS medium, count(*)
           FROM events WHERE context::JSON->>'$.campaign.source' IS NOT NULL OR type IN ('page', 'screen')
           GROUP BY 1 ORDER BY 2 DESC LIMIT 10"""
    )
    console.print(_bar_chart("Arrivals by UTM medium (page and screen views)", channels))
    monthly = db.execute(
        "SELECT strftime(day, '%Y-%m'), sum(events)::BIGINT FROM event_volume GROUP BY 1 ORDER BY 1"
    )
    console.print(_bar_chart("Events per month", monthly))
    quarantined = runtime.events.quarantine(limit=6)
    if quarantined:
        q = Table(
            title="Quarantine (kept with the reason; fix and replay via /api/v1/quarantine/{id}/replay)"
        )
        q.add_column("id")
        q.add_column("from")
        q.add_column("reason")
        for entry in quarantined:
            q.add_row(str(entry.id), entry.endpoint, entry.reason)
        console.print(q)
    for result in imports:
        console.print(
            f"imported {result.file}: {result.rows_stored:,} rows stored, "
            f"{result.rows_quarantined} quarantined"
        )


def _identity_summary(runtime: Runtime, truth: list[tuple[str, str, str]], console: Console) -> None:
    db = runtime.db
    score = score_profiles(db, truth, runtime.identity.normaliser)
    ((profiles, identifiers),) = db.execute("SELECT count(DISTINCT profile_id), count(*) FROM identity_nodes")
    table = Table(title="Identity resolution (live, in the processing loop)", show_header=False)
    table.add_row("identifiers -> unified profiles", f"{identifiers:,} -> {profiles:,}")
    for rule, n in db.execute(
        """SELECT CASE WHEN linking AND kind = 'match' THEN 'probabilistic record matches joining profiles'
                       WHEN linking THEN 'links joining identifiers'
                       WHEN cut AND reason LIKE 'match refused%'
                       THEN 'record matches refused: email or birth date differ'
                       WHEN cut THEN 'links cut by a user split'
                       WHEN shared THEN 'links refused: shared device, mailbox or landline'
                       WHEN reason LIKE 'limit%' THEN 'links refused: per-type limit'
                       ELSE 'links refused: two user ids' END, count(*)
           FROM identity_edges GROUP BY 1 ORDER BY 1"""
    ):
        table.add_row(rule, f"{n:,}")
    ((refused,),) = db.execute("SELECT count(*) FROM identity_refused_values")
    table.add_row("junk or invalid identifier values refused (null, test@test.com, ...)", f"{refused:,}")
    table.add_row(
        "scored against the ground truth (never ingested)",
        f"precision {score.precision:.3f}  recall {score.recall:.3f}  F1 {score.f1:.3f}",
    )
    table.add_row("profiles holding two people (over-merged)", f"{score.over_merged_profiles:,}")
    table.add_row("people spread over several profiles", f"{score.split_persons:,} of {score.persons:,}")
    console.print(table)
    types = db.execute("SELECT type, count(*) FROM identity_nodes GROUP BY 1 ORDER BY 2 DESC")
    console.print(_bar_chart("Identifiers by type", types))
    # The person seen on the most kinds of device, as the profile API shows them.
    rows = db.execute(
        """SELECT profile_id FROM identity_nodes GROUP BY profile_id HAVING bool_or(type = 'user_id')
           ORDER BY count(*) FILTER (WHERE type IN ('device_id', 'anonymous_id')) DESC, profile_id LIMIT 1"""
    )
    if rows:
        profile = runtime.identity_service.profile(str(rows[0][0]))
        view = Table(title=f"One unified profile: {profile.profile_id} ({profile.events:,} events)")
        view.add_column("identifiers")
        view.add_column("devices")
        view.add_column("channels")
        ids = "\n".join(f"{i.type}: {i.value}" for i in profile.identifiers[:12])
        devices = "\n".join(f"{d.kind} ({d.events})" for d in profile.devices[:8])
        channels = "\n".join(f"{c}: {n}" for c, n in profile.channels.items())
        view.add_row(ids, devices, channels)
        console.print(view)


def run_demo(data_dir: Path | None, serve: bool, people: int, seed: int, port: int, console: Console) -> None:
    """Runs the demo; with `serve`, keeps serving until interrupted."""
    data_dir, creds = _prepare_dir(data_dir, console)
    console.print(
        Panel.fit(f"Tailor demo: {people:,} synthetic customers (seed {seed}) into [bold]{data_dir}[/bold]")
    )
    base = generate(SynthConfig(people=people, seed=seed))
    with console.status("planning the customer base"):
        total = sum(1 for _ in base.events())
    mailbox = Mailbox().start()
    configure_messaging(data_dir, mailbox, port)
    runtime = Runtime(data_dir)
    # One evaluation time for the whole run, so the live state and the rebuild see the same windows.
    demo_now = datetime.now(UTC)
    runtime.profiles.clock = lambda: demo_now
    define_demo_segments(runtime)
    server = _Server(runtime, port)
    server.start()
    try:
        if creds:
            write_key = creds.write_key
        else:
            # Keys are kept only as hashes, so a reused directory's key cannot be shown again: issue a
            # new key for the same source (the old one keeps working), so that dedupe still applies.
            if DEMO_SOURCE not in {s.name for s in runtime.keyring.sources()}:
                runtime.keyring.add_source(DEMO_SOURCE)
            write_key = runtime.keyring.rotate_key(DEMO_SOURCE)
            runtime.keys.refresh()
        started = time.perf_counter()
        counts = _send(server.url, write_key, base.events(), total, console)
        broken = httpx.post(
            f"{server.url}/v1/batch", json={"batch": BROKEN_FEED}, headers={"X-Write-Key": write_key}
        )
        seconds = time.perf_counter() - started
        counts["rejected"] += len(broken.json().get("rejected", []))
        files = base.write_records(data_dir / "imports")
        imports = []
        for kind, path in files.items():
            with console.status(f"importing {path.name}"):
                imports.append(import_records(runtime.db, runtime.writer, kind, path, RECORD_KINDS[kind][0]))
        with console.status("processing the event log"):
            runtime.processor.run_once()
            live = _state(runtime)
            runtime.processor.rebuild()
            rebuilt = _state(runtime)
        _summary(runtime, counts, imports, seconds, console)
        _identity_summary(runtime, base.truth(), console)
        show_segments(runtime, console)
        verdict = "[green]equal[/green]" if live == rebuilt else "[red]DIFFERENT[/red]"
        console.print(f"live processing state vs. a full rebuild from the event log: {verdict}")
        show_analytics(runtime, data_dir, console)
        run_campaigns(runtime, server.url, write_key, mailbox, seed, console)
        base.write_truth(data_dir / "ground-truth" / "truth.csv")
        user, password = create_demo_user(runtime)
        console.print(f"console user [bold]{user}[/bold], password [bold]{password}[/bold] (shown only now)")
    finally:
        server.stop()  # closes the runtime: the store is checkpointed and released
        mailbox.stop()
    if not serve:
        return
    console.print(
        Panel.fit(
            f"Serving {data_dir} on [bold]http://127.0.0.1:{port}[/bold] (Ctrl-C stops)\n"
            f"console     http://127.0.0.1:{port}/  user {user}  password {password}\n"
            f"write key   {write_key}\n"
            + (f"admin token {creds.admin_token}\n" if creds else "")
            + f"try: curl -u {write_key}: http://127.0.0.1:{port}/v1/track"
            " -H 'Content-Type: application/json' "
            '-d \'{"userId":"me","event":"Tried Tailor"}\''
        )
    )
    serve_forever(data_dir, "127.0.0.1", port)


__all__ = ["run_demo"]
