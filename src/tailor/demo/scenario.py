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
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tailor.api import create_app
from tailor.connectors.records import import_records, records_count
from tailor.datadir import Credentials, init_data_dir
from tailor.demo.synth import RECORD_KINDS, SynthConfig, generate
from tailor.exceptions import DataDirError
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


def run_demo(data_dir: Path | None, serve: bool, people: int, seed: int, port: int, console: Console) -> None:
    """Runs the demo; with `serve`, keeps serving until interrupted."""
    data_dir, creds = _prepare_dir(data_dir, console)
    console.print(
        Panel.fit(f"Tailor demo: {people:,} synthetic customers (seed {seed}) into [bold]{data_dir}[/bold]")
    )
    base = generate(SynthConfig(people=people, seed=seed))
    with console.status("planning the customer base"):
        total = sum(1 for _ in base.events())
    runtime = Runtime(data_dir)
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
            live = runtime.db.execute("SELECT * FROM event_volume ORDER BY ALL")
            runtime.processor.rebuild()
            rebuilt = runtime.db.execute("SELECT * FROM event_volume ORDER BY ALL")
        _summary(runtime, counts, imports, seconds, console)
        verdict = "[green]equal[/green]" if live == rebuilt else "[red]DIFFERENT[/red]"
        console.print(f"live processing state vs. a full rebuild from the event log: {verdict}")
        base.write_truth(data_dir / "ground-truth" / "truth.csv")
    finally:
        server.stop()  # closes the runtime: the store is checkpointed and released
    if not serve:
        return
    console.print(
        Panel.fit(
            f"Serving {data_dir} on [bold]http://127.0.0.1:{port}[/bold] (Ctrl-C stops)\n"
            f"write key   {write_key}\n"
            + (f"admin token {creds.admin_token}\n" if creds else "")
            + f"try: curl -u {write_key}: http://127.0.0.1:{port}/v1/track"
            " -H 'Content-Type: application/json' "
            '-d \'{"userId":"me","event":"Tried Tailor"}\''
        )
    )
    serve_forever(data_dir, "127.0.0.1", port)


__all__ = ["run_demo"]
