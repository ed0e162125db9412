"""Funnel benchmark: a 5-step funnel over 10M events, per-step cost for 2..6 steps, and a naive baseline.

    python bench/funnel.py [--events 10000000] [--people 1000000] [--baseline-steps 4]

Generates identity-resolved events straight into DuckDB (each person one profile; seven event
names in a shop's order: Product List Viewed, Product Viewed, Product Added, Cart Viewed, Checkout
Started, Payment Info Entered, Order Completed, each less likely than the one before), then times
`run_funnel` (ordered, 7-day window) for 2 to 6 steps, resolution of each event's person included.
The baseline, in the same run, is the textbook formulation: one self-join per step, every chain of
step events within the window enumerated, then the furthest step per person counted. Both give the
same counts (checked); the ratio and the cost per added step are printed.
"""

from __future__ import annotations

import argparse
import os
import time

import duckdb

from tailor.analytics.funnels import FunnelDefinition, run_funnel

NAMES = [
    "Product List Viewed",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
]
GENERATE = """
CREATE TABLE events AS
WITH base AS (SELECT i AS seq, i % {people} AS p FROM range({events}) t(i))
SELECT seq, 'bench' AS source_id, 'track' AS type,
       -- a skewed draw: later steps are rarer
       ['{names}'][1 + CAST(floor(7 * pow((hash(seq, 1) % 10000) / 10000.0, 1.8)) AS INTEGER)] AS event,
       NULL::VARCHAR AS name, '{{}}' AS properties, '{{}}' AS context,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(CAST((seq // {people}) * 3600 + hash(seq, 2) % 3000 AS BIGINT))
           AS "timestamp",
       p
FROM base;
CREATE TABLE identity_event_hubs AS SELECT seq, CAST(p AS UBIGINT) AS k FROM events;
CREATE TABLE identity_nodes AS SELECT DISTINCT CAST(p AS UBIGINT) AS k, 'p' || p AS profile_id FROM events;
"""


def naive(cur: duckdb.DuckDBPyConnection, steps: list[str], window_s: float) -> list[int]:
    """One self-join per step over the person's step events: every chain is enumerated."""
    names = ", ".join(f"'{s}'" for s in steps)
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE nv AS SELECT n.profile_id AS person, e."timestamp" AS ts, e.seq, e.event
        FROM events e JOIN identity_event_hubs h ON h.seq = e.seq JOIN identity_nodes n ON n.k = h.k
        WHERE e.event IN ({names})"""
    )
    joins, level = [], ["1"]
    for k in range(2, len(steps) + 1):
        joins.append(
            f"""LEFT JOIN nv e{k} ON e{k}.person = e1.person AND e{k}.event = '{steps[k - 1]}'
            AND (e{k}.ts, e{k}.seq) > (e{k - 1}.ts, e{k - 1}.seq)
            AND epoch(e{k}.ts) - epoch(e1.ts) <= {window_s}"""
        )
        level.append(f"CASE WHEN e{k}.seq IS NOT NULL THEN 1 ELSE 0 END")
    reached = " + ".join(level[1:]) if len(level) > 1 else "0"
    counts = ", ".join(f"count(*) FILTER (WHERE lvl >= {k})" for k in range(1, len(steps) + 1))
    row = cur.execute(
        f"""SELECT {counts} FROM (
            SELECT e1.person, max(1 + {reached}) AS lvl FROM nv e1 {" ".join(joins)}
            WHERE e1.event = '{steps[0]}' GROUP BY e1.person)"""
    ).fetchone()
    assert row is not None
    return [int(x) for x in row]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--baseline-steps", type=int, default=4, help="Most steps the naive baseline is run for.")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(GENERATE.format(events=args.events, people=args.people, names="', '".join(NAMES)))
    print(
        f"generated {args.events:,} events of {args.people:,} people in {time.perf_counter() - started:.1f} s"
    )
    window = 7 * 24.0
    ours: dict[int, float] = {}
    for n in range(2, 7):
        steps = NAMES[:n] if n < 6 else NAMES[1:7]
        cur = con.cursor()
        t = time.perf_counter()
        result = run_funnel(cur, FunnelDefinition(steps, window_hours=window))
        ours[n] = time.perf_counter() - t
        people = [s.people for s in result.steps]
        line = f"Tailor {n} steps: {ours[n]:.2f} s  {people}"
        if n <= args.baseline_steps:
            t = time.perf_counter()
            base = naive(cur, steps, window * 3600)
            elapsed = time.perf_counter() - t
            assert base == people, (base, people)
            line += f"  | self-join per step: {elapsed:.2f} s (ratio Tailor/baseline {ours[n] / elapsed:.2f})"
        print(line, flush=True)
        cur.close()
    per_step = [ours[n + 1] - ours[n] for n in range(2, 6)]
    print(
        "added cost per step (s): "
        + ", ".join(f"{n + 1}: {d:+.2f}" for n, d in zip(range(2, 6), per_step, strict=True))
    )
    print(f"5-step funnel over {args.events:,} events: {ours[5]:.2f} s (target < 5 s)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
