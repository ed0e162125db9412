"""Identity graph benchmark: a full rebuild at scale, and incremental stitching of 1,000-event batches.

    python bench/identity_graph.py [--people 1000000] [--events-per-person 10] [--batches 40]

Generates a customer base straight into a fresh store's event log (DuckDB SQL, no HTTP): each
person has a user id (60%), one to five browsers, an app device (50%), one or two emails (70%),
a mobile number (40%); 2% share a family tablet with two other people; some identify calls carry
junk ids (`null`, `test@test.com`). 1M people give 4.9M identifiers. Then it times:

- the rebuild: the identity stage over the whole log as one batch (target: 1M people, 5M
  identifiers, 10M events in under 60 s);
- loading the stage's in-memory index of the graph (what a restart costs), and its size;
- incremental stitching: batches of 1,000 new events (returning and new people) through the
  live stage, in a process whose garbage collector is set as the server's: p50 and p95 of wall
  time (target: p95 under 100 ms) and of the process's CPU time (which other work on a shared
  machine inflates less); then as many batches through the stage's SQL path, which scans the
  tables for the graph around each batch (the design before the index);
- the baseline, in the same run: one DuckDB pass that extracts and groups every identifier of the
  log (the least work any stitching must do), so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from tailor.identity import IdentityGraph
from tailor.process import Processor
from tailor.process.heap import quiet_garbage_collector
from tailor.store import Database, open_database

# One person's k-th event. h(p, s) is a deterministic pseudo-random number per person and salt.
_GENERATE = """
INSERT INTO events
WITH base AS (
    SELECT i AS seq0, i // {per} AS p, i % {per} AS k FROM range({lo}, {hi}) t(i)
),
person AS (
    SELECT seq0, p, k,
           hash(p, 1) % 10 < 6 AS has_user,
           1 + hash(p, 2) % 5 AS n_anon,
           hash(p, 3) % 2 = 0 AS has_app,
           hash(p, 4) % 10 < 7 AS has_email,
           hash(p, 5) % 10 < 1 AS two_emails,
           hash(p, 6) % 10 < 4 AS has_phone,
           hash(p, 7) % 100 < 2 AS family,
           hash(p, 8) % 200 = 0 AS junk
    FROM base
),
ev AS (
    SELECT *,
        CASE WHEN k = 0 AND has_user THEN 'identify'
             WHEN k = 1 AND family AND has_user THEN 'identify'
             WHEN k = 2 AND junk THEN 'identify'
             WHEN k % 3 = 0 THEN 'page' ELSE 'track' END AS type,
        CASE WHEN k = 1 AND family THEN 'fam-' || (p // 3)
             ELSE 'a' || p || '-' || (k % n_anon) END AS anon,
        has_app AND k % 4 = 3 AS app
    FROM person
)
SELECT seq0 + 1, 'bench', 'm' || seq0, hash(seq0), type,
       CASE WHEN type = 'track' THEN 'Product Viewed' END, NULL,
       CASE WHEN type = 'identify' AND junk AND k = 2 THEN 'null'
            WHEN has_user AND (type = 'identify' OR app) THEN 'u' || p END,
       anon, NULL, NULL,
       TIMESTAMPTZ '2026-01-01' + to_seconds(seq0), NULL, NULL, TIMESTAMPTZ '2026-01-01' + to_seconds(seq0),
       NULL,
       CASE WHEN type = 'identify' THEN json_object(
           'email', CASE WHEN junk AND k = 2 THEN 'test@test.com'
                         WHEN has_email AND k = 0 THEN 'P' || p || '@Example.org'
                         WHEN has_email AND two_emails AND k = 1 THEN 'p' || p || '.work@example.org' END,
           'phone', CASE WHEN has_phone AND k = 0
                         THEN '07911 ' || lpad(CAST(p % 1000000 AS VARCHAR), 6, '0') END
       )::VARCHAR END,
       CASE WHEN app THEN json_object('device', json_object('id', 'd' || p, 'type', 'ios'))::VARCHAR
            WHEN k = 5 AND has_email
            THEN json_object('traits', json_object('email', 'p' || p || '@example.org'))::VARCHAR
       END,
       NULL
FROM ev
"""

_BASELINE = """
SELECT count(*) FROM (
    SELECT t, v FROM (
        SELECT 'user_id' AS t, user_id AS v FROM events WHERE user_id IS NOT NULL
        UNION ALL SELECT 'anonymous_id', anonymous_id FROM events WHERE anonymous_id IS NOT NULL
        UNION ALL SELECT 'email', json_extract_string(traits, '$.email') FROM events WHERE type = 'identify'
        UNION ALL SELECT 'device_id', json_extract_string(context, '$.device.id') FROM events
            WHERE context IS NOT NULL
    ) WHERE v IS NOT NULL GROUP BY t, v
)
"""


def _add_batch(db: Database, people: int, per: int, b: int, head: int) -> int:
    """Appends batch `b`: 500 events of new people (after the base) and 500 of returning ones."""
    new_lo = people * per + b * 500
    db.execute(
        _GENERATE.format(per=per, lo=new_lo, hi=new_lo + 500).replace(
            "SELECT seq0 + 1,", f"SELECT {head} + 1 + (seq0 - {new_lo}),"
        )
    )
    old_lo = (b * 7919 % max(1, people - 100)) * per
    db.execute(
        _GENERATE.format(per=per, lo=old_lo, hi=old_lo + 500)
        .replace("SELECT seq0 + 1,", f"SELECT {head} + 501 + (seq0 - {old_lo}),")
        .replace("'m' || seq0", f"'r{b}-' || seq0")
    )
    return head + 1000


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events-per-person", type=int, default=10)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the store (default: a temp dir)")
    parser.add_argument(
        "--log-steps", action="store_true", help="print every SQL step's time (DEBUG logging)"
    )
    args = parser.parse_args()
    if args.log_steps:
        logging.basicConfig(format="%(message)s")
        for name in ("tailor.process", "tailor.identity"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    # As `tailor serve` does: start-up objects frozen out of full collections, which otherwise land
    # inside batches (23-37 ms each, a few in 40 batches).
    quiet_garbage_collector()
    per = args.events_per_person
    total = args.people * per
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        db = open_database(Path(tmp))
        started = time.perf_counter()
        step = 2_000_000
        for lo in range(0, total, step):
            db.execute(_GENERATE.format(per=per, lo=lo, hi=min(total, lo + step)))
        print(
            f"generated {total:,} events of {args.people:,} people in {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        (ids,) = db.execute(_BASELINE)[0]
        baseline = time.perf_counter() - started
        print(f"baseline: one pass grouping every identifier ({ids:,} distinct) in {baseline:.2f} s")

        stage = IdentityGraph()
        proc = Processor(db, [stage], max_batch_events=1 << 62)
        started = time.perf_counter()
        proc.run_once(head=total)
        rebuild = time.perf_counter() - started
        ((nodes,),) = db.execute("SELECT count(*) FROM identity_nodes")
        ((profiles,),) = db.execute("SELECT count(DISTINCT profile_id) FROM identity_profiles")
        ((edges,),) = db.execute("SELECT count(*) FROM identity_edges")
        print(
            f"rebuild: {total:,} events, {nodes:,} identifiers, {edges:,} edges -> {profiles:,} profiles "
            f"in {rebuild:.1f} s ({total / rebuild:,.0f} events/s; "
            f"{rebuild / baseline:.1f}x the baseline pass)"
        )

        # The index the live stage reads its slice of the graph from, loaded as at a restart.
        load = getattr(stage, "load_index", None)
        if load is not None:
            cur = db.cursor()
            started = time.perf_counter()
            index = load(cur)
            took = time.perf_counter() - started
            cur.close()
            print(
                f"index: {index.nodes:,} nodes, {index.edges:,} edges loaded in {took:.2f} s; "
                f"{index.nbytes() / 1e6:,.0f} MB, {index.nbytes() / index.nodes:.0f} bytes per identifier"
            )

        # Incremental: batches of 1,000 events, half from returning people, half from new ones.
        proc.max_batch_events = 1000
        times = []
        head = total
        people = args.people
        cpu = []
        for b in range(args.batches):
            head = _add_batch(db, people, per, b, head)
            started, cpu_started = time.perf_counter(), time.process_time()
            proc.run_once(head=head)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        p50, p95 = _percentiles(times)
        c50, c95 = _percentiles(cpu)
        print(
            f"incremental: {args.batches} batches of 1,000 events: p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms ({p95 / baseline:.3f}x the baseline pass); "
            f"CPU time of the process per batch p50 {c50 * 1000:.0f} ms, p95 {c95 * 1000:.0f} ms"
        )
        if load is not None:
            # The same kind of batches through the stage's SQL path, which scans the tables for the
            # graph around each batch (the design before the in-memory index), on the same store.
            scan_stage = IdentityGraph(in_memory_index=False)
            scan = Processor(db, [scan_stage], max_batch_events=1000)
            scan_times, scan_cpu = [], []
            for b in range(args.batches, 2 * args.batches):
                head = _add_batch(db, args.people, per, b, head)
                started, cpu_started = time.perf_counter(), time.process_time()
                scan.run_once(head=head)
                scan_times.append(time.perf_counter() - started)
                scan_cpu.append(time.process_time() - cpu_started)
            s50, s95 = _percentiles(scan_times)
            sc50, _ = _percentiles(scan_cpu)
            print(
                f"incremental through the SQL path (scans): p50 {s50 * 1000:.0f} ms, "
                f"p95 {s95 * 1000:.0f} ms, CPU p50 {sc50 * 1000:.0f} ms; "
                f"in-memory index / scans: p50 {p50 / s50:.3f}, p95 {p95 / s95:.3f}, CPU p50 {c50 / sc50:.3f}"
            )
            scan.close()
        proc.close()
        db.close()
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
