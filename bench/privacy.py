"""Access export and erasure of one person with 10,000 events in a store of 10M events.

    python bench/privacy.py [--events 10000000] [--person-events 10000] [--people 1000000]

Writes a customer base straight into a fresh data directory with DuckDB SQL (no HTTP), in the
shape the pipeline leaves it: events with Segment-like context (~470 bytes of JSON each), one
identity node per person's browser, one hub per event, and the person measured, whose 10,000
events (identify calls with email and phone among them) are spread over the whole log, as a long
customer's are. Then it times, each against baselines measured in the same run (a full scan of
the event log, and copying the database file):

- the access export (`PrivacyService.export`, as JSON bytes);
- the erasure (logical: every row of theirs deleted, tombstone, audit record);
- the compaction that removes the bytes (every table written again, free blocks overwritten).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from tailor.datadir import init_data_dir
from tailor.identity.graph import NODE_KEY
from tailor.privacy.export import to_json
from tailor.runtime import Runtime

console = Console()

_EVENTS = """
INSERT INTO events
SELECT i + 1, 'src_bench', 'm' || i, hash(i), type, CASE WHEN type = 'track' THEN 'Product Viewed' END, NULL,
       CASE WHEN target THEN 'target-user' WHEN i % 10 < 6 THEN 'u' || p END,
       CASE WHEN target THEN 'target-browser' ELSE 'a' || p END, NULL, NULL,
       TIMESTAMPTZ '2025-01-01' + to_seconds(i * 3), NULL, NULL, TIMESTAMPTZ '2025-01-01' + to_seconds(i * 3),
       '{{"sku":"SKU-' || (hash(i) % 5000) || '","price":' || (i % 500) || ',"currency":"GBP"}}',
       CASE WHEN type = 'identify' AND target
            THEN '{{"email":"Target.Person@Example.org","phone":"07911 123456","first_name":"Tara"}}'
            WHEN type = 'identify' THEN '{{"email":"p' || p || '@example.org"}}' END,
       '{{"page":{{"url":"https://shop.example/p/' || (hash(i * 3) % 20000) || '","title":"Item ' ||
       (hash(i * 3) % 20000) || '","referrer":"https://www.google.com/"}},' ||
       '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) ' ||
       'Chrome/124.0 Safari/537.36","ip":"81.2.' || (i % 255) ||
       '.' || (i % 251) || '","library":{{"name":"analytics.js","version":"5.2.0"}},"campaign":{{"source":' ||
       '"newsletter","medium":"email","name":"spring-' || (i % 12) || '"}}}}',
       NULL
FROM (
    SELECT i, i % {step} = 7 AS target, (i // 10) % {people} AS p,
           CASE WHEN i % 10 = 0 THEN 'identify' WHEN i % 3 = 0 THEN 'page' ELSE 'track' END AS type
    FROM range({lo}, {hi}) t(i)
)
"""

_HUBS = """
INSERT INTO identity_event_hubs
SELECT i + 1, CASE WHEN i % {step} = 7 THEN {target} ELSE {key} END
FROM (SELECT i, 'a' || ((i // 10) % {people}) AS v FROM range({lo}, {hi}) t(i))
"""


def generate(rt: Runtime, events: int, person_events: int, people: int) -> None:
    """The event log, identity nodes and hubs, as the identity stage would have left them."""
    step = events // person_events
    target = NODE_KEY.format(t="'user_id'", v="'target-user'")
    key = NODE_KEY.format(t="'anonymous_id'", v="v")
    chunk = 1_000_000
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating events", total=events)
        for lo in range(0, events, chunk):
            hi = min(events, lo + chunk)
            rt.db.execute(_EVENTS.format(step=step, people=people, lo=lo, hi=hi))
            rt.db.execute(_HUBS.format(step=step, people=people, lo=lo, hi=hi, target=target, key=key))
            progress.advance(task, hi - lo)
    rt.db.execute(
        f"""INSERT INTO identity_nodes
        SELECT {NODE_KEY.format(t="'anonymous_id'", v="v")}, 'anonymous_id', v, p * 10 + 1, FALSE, 0,
               'prof_' || p FROM (SELECT p, 'a' || p AS v FROM range({people}) t(p))"""
    )
    for type, value in (
        ("user_id", "target-user"),
        ("anonymous_id", "target-browser"),
        ("email", "target.person@example.org"),
        ("phone", "+447911123456"),
    ):
        rt.db.execute(
            f"INSERT INTO identity_nodes VALUES ({NODE_KEY.format(t='?', v='?')}, ?, ?, 8, FALSE, 1,"
            " 'prof_target')",
            [type, value, type, value],
        )
    rt.db.execute(
        "INSERT INTO stage_offsets SELECT stage, ?, now() FROM (SELECT unnest(?::VARCHAR[]) AS stage)",
        [events, [s.name for s in rt.processor.stages]],
    )
    rt.db.checkpoint()


# The person's identifiers as the store holds them, and their first 12 bytes: DuckDB keeps that
# much of a segment's smallest and largest value uncompressed in its statistics (zstd hides the
# rest of the values from a byte scan, not the statistics).
NEEDLES = tuple(
    n[:length]
    for n in (b"Target.Person@Example.org", b"target.person@example.org", b"+447911123456", b"07911 123456")
    for length in (len(n), 12)
)


def scan_files(root: Path) -> dict[str, int]:
    """Where in the data directory's files the person's identifiers appear: file:needle -> count."""
    hits: dict[str, int] = {}
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        data = f.read_bytes()
        for needle in NEEDLES:
            if n := data.count(needle):
                hits[f"{f.relative_to(root)}:{needle.decode()}"] = n
    return hits


def timed(label: str, work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    console.print(f"{label}: {seconds:.2f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--person-events", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    console.print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "data"
        init_data_dir(path)
        rt = Runtime(path)
        try:
            started = time.perf_counter()
            generate(rt, args.events, args.person_events, args.people)
            size = (path / "tailor.duckdb").stat().st_size
            console.print(
                f"generated {args.events:,} events ({size / 1e9:.2f} GB)"
                f" in {time.perf_counter() - started:.0f} s"
            )
            scan = timed(
                "baseline: full scan of the event log",
                lambda: rt.db.execute(
                    "SELECT count(*), sum(length(context)), sum(length(properties)) FROM events"
                ),
            )
            copy = timed(
                "baseline: copy of the database file",
                lambda: shutil.copy(path / "tailor.duckdb", Path(tmp) / "copy"),
            )
            os.unlink(Path(tmp) / "copy")
            before = scan_files(path)
            console.print(
                "the person's bytes in the data directory before erasure (the scan's positive control): "
                + (", ".join(f"{k} x{n}" for k, n in sorted(before.items())) or "none")
            )
            rt.writer.start()
            doc_box: list[bytes] = []
            export = timed(
                "export of the person (JSON)",
                lambda: doc_box.append(to_json(rt.privacy.export("email:Target.Person@Example.org"))),
            )
            console.print(f"  {len(doc_box[0]) / 1e6:.1f} MB of JSON")
            result_box: list[object] = []
            erase = timed(
                "erasure (rows deleted, tombstone, audit)",
                lambda: result_box.append(
                    rt.privacy.erase("user_id:target-user", "bench", compact_now=False)
                ),
            )
            console.print(f"  {result_box[0].rows_deleted['events']:,} events deleted")  # type: ignore[attr-defined]
            compaction = timed("compaction (bytes removed)", rt.privacy.compact)
            console.print(
                f"ratios: export {export / scan:.1f}x scan, {export / copy:.2f}x copy;"
                f" erasure {erase / scan:.1f}x"
                f" scan; compaction {compaction / scan:.1f}x scan, {compaction / copy:.1f}x copy;"
                f" erasure + compaction {(erase + compaction):.1f} s"
            )
            rt.writer.flush()
            left = scan_files(path)
            console.print(
                "the person's bytes left in the data directory after compaction: "
                + (", ".join(f"{k} x{n}" for k, n in sorted(left.items())) or "none")
            )
            console.print(f"load average after: {os.getloadavg()[0]:.2f}")
        finally:
            rt.close()


if __name__ == "__main__":
    main()
