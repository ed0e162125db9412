"""Profiles benchmark: full evaluation of 20 computed traits and 20 segments at 1M profiles, ticks, batches.

    python bench/segments.py [--people 1000000] [--events-per-person 10] [--batches 20]

Generates a customer base straight into a fresh store (DuckDB SQL, no HTTP): per person ten
events by default — page views, product views with a category, cart adds, orders with a total
and products (some bought from a recommendation), recommendations shown, email opens, identify
calls with a city — over the 180 days before the evaluation time. The identity graph is written
directly too (one user id per person: identity is measured by bench/identity_graph.py), with
profile ids of the form identity resolution gives them ('prof_' and 16 hex digits), then it
times, on the profiles stage alone:

- the facts: copying what definitions read out of the event log into `profile_facts`;
- a full evaluation of every person: golden record, 20 computed traits, 20 segments
  (target: under 10 s at 1M profiles);
- the naive baseline, in the same run: each of the 40 definitions evaluated for every person on
  its own, by a query over the raw event log (JSON parsed each time, no shared pass), as a
  system that tests every segment against every profile does;
- a time-based tick when 1% and 10% of people have a window expiring (it must cost in proportion);
- micro-batches of 1,000 new events of known people (p50, p95).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailor.identity import IdentityGraph
from tailor.process.stage import Batch, run_steps
from tailor.profiles.catalog import Catalog, parse_segment, parse_trait
from tailor.profiles.config import ProfilesConfig
from tailor.profiles.golden import golden_steps
from tailor.profiles.library import LIBRARY
from tailor.profiles.stage import ProfileStage
from tailor.store import open_database
from tailor.store.database import Database

NOW = datetime(2026, 12, 1, tzinfo=UTC)

_EVENTS = """
INSERT INTO events
WITH base AS (SELECT i AS s, i // {per} AS p, i % {per} AS k FROM range({lo}, {hi}) t(i)),
ev AS (
    SELECT s, p, k, hash(s, 11) % 100 AS r, hash(p, 12) % 6 AS fav,
           CASE WHEN k = 0 THEN 'identify' WHEN hash(s, 13) % 100 < 30 THEN 'page' ELSE 'track' END AS type
    FROM base
),
named AS (
    SELECT *, CASE WHEN type <> 'track' THEN NULL
                   WHEN r < 45 THEN 'Product Viewed' WHEN r < 60 THEN 'Product Added'
                   WHEN r < 70 THEN 'Order Completed' WHEN r < 85 THEN 'Recommendation Shown'
                   ELSE 'Email Opened' END AS event,
              ['Women', 'Men', 'Kids', 'Home Accessories', 'Furniture', 'Bedroom'][CAST(1 + (fav + hash(s, 14) % 2) % 6 AS BIGINT)]
                  AS category
    FROM ev
)
SELECT s + 1, 'bench', 'm' || s, hash(s), type, event, CASE WHEN type = 'page' THEN 'Product' END,
       'u' || p, NULL, NULL, NULL,
       TIMESTAMPTZ '{now}' - to_seconds(CAST(hash(s, 15) % (180 * 86400) AS BIGINT)) AS ts, NULL, NULL,
       TIMESTAMPTZ '{now}' - to_seconds(CAST(hash(s, 15) % (180 * 86400) AS BIGINT)),
       CASE WHEN event = 'Order Completed' THEN json_object(
                'total', round(10 + hash(s, 16) % 30000 / 100.0, 2), 'category', category,
                'products', [json_object('product_id', 'P' || hash(s, 17) % 500, 'category', category,
                             'recommendation_id', CASE WHEN hash(s, 18) % 5 = 0 THEN 'rec-' || s END)])::VARCHAR
            WHEN event IN ('Product Viewed', 'Product Added') THEN json_object('category', category)::VARCHAR
            WHEN event = 'Recommendation Shown' THEN json_object('recommendation_id', 'rec-' || s)::VARCHAR
       END,
       CASE WHEN type = 'identify' THEN json_object(
           'city', ['London', 'Leeds', 'York', 'Bristol'][CAST(1 + hash(p, 19) % 4 AS BIGINT)], 'first_name', 'N' || p)::VARCHAR END,
       CASE WHEN type = 'page' THEN '{{"page": {{"path": "/p"}}, "userAgent": "Mozilla/5.0 (iPhone) Mobile"}}'
            WHEN hash(s, 20) % 2 = 0 THEN '{{"app": {{"name": "x"}}, "device": {{"type": "ios", "id": "d' || p || '"}}}}'
       END,
       NULL
FROM named
"""

_IDENTITY = """
INSERT INTO identity_nodes
SELECT md5_number_lower('user_id:u' || p), 'user_id', 'u' || p, p * {per} + 1, false, 0,
       printf('prof_%016x', hash(p))
FROM range({people}) t(p);
INSERT INTO identity_event_hubs SELECT seq, md5_number_lower('user_id:' || user_id) FROM events;
"""

TRAITS = [
    "orders_lifetime", "revenue_lifetime", "orders_90d", "revenue_90d", "average_order_value",
    "purchase_threshold", "first_order_at", "last_order_at", "days_since_last_order",
    "categories_browsed", "category_breadth", "recommendations_shown", "recommendations_bought",
    "cross_sell_acceptance", "views_90d", "high_touch_non_buyer", "last_cart_add_at", "cart_abandoner",
    "preferred_channel", "devices_used",
]  # fmt: skip
_CATS = ["Women", "Men", "Kids", "Home Accessories", "Furniture", "Bedroom"]
SEGMENTS: list[dict[str, Any]] = [
    *(
        {"name": f"viewed_{i}", "condition": {"event": "Product Viewed", "within": "90d",
         "where": [{"property": "category", "op": "=", "value": c}]}}
        for i, c in enumerate(_CATS)
    ),
    *({"name": f"orders_at_least_{n}", "condition": {"computed": "orders_lifetime", "op": ">=", "value": n}} for n in (1, 2, 3)),
    {"name": "big_spenders", "condition": {"event": "Order Completed", "aggregate": "sum", "of": "total", "within": "90d", "op": ">", "value": 250}},
    {"name": "lapsed", "condition": {"all": [{"segment": "orders_at_least_1"}, {"not": {"event": "Order Completed", "within": "60d"}}]}},
    {"name": "cart_abandoners", "condition": {"computed": "cart_abandoner", "op": "=", "value": True}},
    {"name": "multi_category", "condition": {"computed": "category_breadth", "op": ">=", "value": 3}},
    {"name": "high_touch", "condition": {"computed": "high_touch_non_buyer", "op": "=", "value": True}},
    {"name": "londoners", "condition": {"trait": "city", "op": "=", "value": "London"}},
    {"name": "email_engaged", "condition": {"event": "Email Opened", "within": "30d", "op": ">=", "value": 2}},
    {"name": "cross_sell", "condition": {"computed": "recommendations_bought", "op": ">", "value": 0}},
    {"name": "aov_over_100", "condition": {"computed": "average_order_value", "op": ">", "value": 100}},
    {"name": "recent_app_users", "condition": {"event": "Product Viewed", "within": "14d", "where": [{"field": "channel", "op": "=", "value": "app"}]}},
    {"name": "london_lapsed", "condition": {"all": [{"segment": "londoners"}, {"segment": "lapsed"}]}},
]  # fmt: skip

# The naive way, one definition at a time over the raw log (JSON parsed every time, no shared pass).
_NAIVE_PERSON = "(SELECT e.*, 'prof_' || substr(e.user_id, 2) AS profile_id FROM events e)"
NAIVE: list[str] = [
    *(
        f"""SELECT profile_id, count(*) FILTER (WHERE event = 'Product Viewed'
              AND json_extract_string(properties, '$.category') = '{c}'
              AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY) >= 1 FROM {_NAIVE_PERSON} GROUP BY 1"""
        for c in _CATS
    ),
    *(f"SELECT profile_id, count(*) FILTER (WHERE event = 'Order Completed') >= {n} FROM {_NAIVE_PERSON} GROUP BY 1" for n in (1, 2, 3)),
    f"""SELECT profile_id, sum(CAST(json_extract_string(properties, '$.total') AS DOUBLE))
          FILTER (WHERE event = 'Order Completed' AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY) > 250
        FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, count(*) FILTER (WHERE event = 'Order Completed') >= 1 AND count(*) FILTER (
          WHERE event = 'Order Completed' AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 60 DAY) = 0
        FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, max(timestamp) FILTER (WHERE event = 'Product Added') >
          coalesce(max(timestamp) FILTER (WHERE event = 'Order Completed'), TIMESTAMPTZ '1970-01-01')
        FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, count(DISTINCT json_extract_string(properties, '$.category'))
          FILTER (WHERE event = 'Product Viewed') >= 3 FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, count(*) FILTER (WHERE type IN ('page', 'screen')) >= 20
          AND count(*) FILTER (WHERE event = 'Order Completed') = 0 FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, arg_max(json_extract_string(traits, '$.city'), timestamp) = 'London'
        FROM {_NAIVE_PERSON} WHERE type = 'identify' GROUP BY 1""",
    f"""SELECT profile_id, count(*) FILTER (WHERE event = 'Email Opened'
          AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 30 DAY) >= 2 FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, count(json_extract_string(properties, '$.products[0].recommendation_id')) > 0
        FROM {_NAIVE_PERSON} WHERE event = 'Order Completed' GROUP BY 1""",
    f"""SELECT profile_id, avg(CAST(json_extract_string(properties, '$.total') AS DOUBLE)) > 100
        FROM {_NAIVE_PERSON} WHERE event = 'Order Completed' GROUP BY 1""",
    f"""SELECT profile_id, count(*) FILTER (WHERE event = 'Product Viewed' AND json_exists(context, '$.app')
          AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 14 DAY) >= 1 FROM {_NAIVE_PERSON} GROUP BY 1""",
    f"""SELECT profile_id, arg_max(json_extract_string(traits, '$.city'), timestamp) = 'London'
        FROM {_NAIVE_PERSON} WHERE type = 'identify' GROUP BY 1""",
]  # fmt: skip
# And the 20 traits the same way: one aggregate query each.
NAIVE_TRAITS = [
    f"SELECT profile_id, {agg} FROM {_NAIVE_PERSON} GROUP BY 1"
    for agg in [
        "count(*) FILTER (WHERE event = 'Order Completed')",
        "sum(CAST(json_extract_string(properties, '$.total') AS DOUBLE)) FILTER (WHERE event = 'Order Completed')",
        f"count(*) FILTER (WHERE event = 'Order Completed' AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY)",
        f"sum(CAST(json_extract_string(properties, '$.total') AS DOUBLE)) FILTER (WHERE event = 'Order Completed' AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY)",
        "avg(CAST(json_extract_string(properties, '$.total') AS DOUBLE)) FILTER (WHERE event = 'Order Completed')",
        "quantile_cont(CAST(json_extract_string(properties, '$.total') AS DOUBLE), 0.9) FILTER (WHERE event = 'Order Completed')",
        "min(timestamp) FILTER (WHERE event = 'Order Completed')",
        "max(timestamp) FILTER (WHERE event = 'Order Completed')",
        f"date_diff('day', max(timestamp) FILTER (WHERE event = 'Order Completed'), TIMESTAMPTZ '{NOW.isoformat()}')",
        "list_sort(list_distinct(list(json_extract_string(properties, '$.category')) FILTER (WHERE event = 'Product Viewed')))",
        "count(DISTINCT json_extract_string(properties, '$.category')) FILTER (WHERE event = 'Product Viewed')",
        "count(*) FILTER (WHERE event = 'Recommendation Shown')",
        "count(json_extract_string(properties, '$.products[0].recommendation_id')) FILTER (WHERE event = 'Order Completed')",
        "count(json_extract_string(properties, '$.products[0].recommendation_id')) FILTER (WHERE event = 'Order Completed') / nullif(count(*) FILTER (WHERE event = 'Recommendation Shown'), 0)",
        f"count(*) FILTER (WHERE type IN ('page', 'screen') AND timestamp > TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY)",
        "count(*) FILTER (WHERE type IN ('page', 'screen')) >= 20 AND count(*) FILTER (WHERE event = 'Order Completed') = 0",
        "max(timestamp) FILTER (WHERE event = 'Product Added')",
        "max(timestamp) FILTER (WHERE event = 'Product Added') > coalesce(max(timestamp) FILTER (WHERE event = 'Order Completed'), TIMESTAMPTZ '1970-01-01')",
        "mode(CASE WHEN json_exists(context, '$.app') THEN 'app' ELSE 'web' END)",
        "list_distinct(list(CASE WHEN json_exists(context, '$.device.type') THEN 'app_ios' ELSE 'mobile_web' END))",
    ]
]  # fmt: skip


def _catalog() -> Catalog:
    by_name = {d["name"]: d for d in LIBRARY}
    needed: list[str] = []

    def need(name: str) -> None:
        if name in needed:
            return
        body = by_name[name]
        for other in by_name:
            if other != name and other in str(body.get("expression", "")):
                need(other)
        needed.append(name)

    for name in TRAITS:
        need(name)
    traits = tuple(parse_trait(by_name[n]) for n in needed)
    return Catalog(traits, tuple(parse_segment(s) for s in SEGMENTS))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(label: str, call: Any) -> float:
    """Runs `call`; prints and returns its wall time (and prints the CPU time of all its threads)."""
    started, cpu = time.perf_counter(), _cpu()
    call()
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.2f} s (CPU {_cpu() - cpu:.2f} s)")
    return seconds


def _run(db: Database, sql_list: list[str]) -> None:
    for sql in sql_list:
        db.execute(f"SELECT count(*) FROM ({sql})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--events-per-person", type=int, default=10)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    per, people = args.events_per_person, args.people
    total = people * per
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        db = open_database(Path(tmp))
        IdentityGraph().setup(db)  # its tables; the graph itself is written below
        # No tick interval: every tick below evaluates its due people at the fixed clock.
        stage = ProfileStage(ProfilesConfig(tick_seconds=0), clock=lambda: NOW)
        stage.setup(db)
        started = time.perf_counter()
        for lo in range(0, total, 2_000_000):
            db.execute(_EVENTS.format(per=per, lo=lo, hi=min(total, lo + 2_000_000), now=NOW.isoformat()))
        for statement in _IDENTITY.format(per=per, people=people).split(";"):
            if statement.strip():
                db.execute(statement)
        print(f"generated {total:,} events of {people:,} people in {time.perf_counter() - started:.1f} s")

        catalog = _catalog()
        print(
            f"{len(catalog.traits)} computed traits ({len(TRAITS)} asked for and what they use), {len(catalog.segments)} segments"
        )
        cur = db.cursor()
        with_facts = stage
        # Definitions first (on an empty facts table), then the facts, as a rebuild does.
        _timed("install the definitions (no facts yet)", lambda: with_facts.install(cur, catalog, force=True))
        batch = Batch(0, total)
        steps = with_facts.steps(batch)
        # What a rebuild does of them, with the temporary tables it drops after its batch (12M rows
        # of them left in memory made the first evaluation below 2-2.5 s slower).
        facts_steps = [
            s
            for s in steps
            if s.output in ("_pf_bf", "profile_facts", "_pf_obs", "trait_observations", "cleanup")
        ]
        print("timings (a fully loaded 2-core machine makes them noisy; the ratios hold better):")
        cur.execute("BEGIN")
        cur.execute("CREATE OR REPLACE TEMP VIEW batch_events AS SELECT * FROM events")
        facts_s = _timed(
            "facts and trait observations out of the event log", lambda: run_steps(cur, "facts", facts_steps)
        )
        cur.execute("COMMIT")
        full_s = _timed(
            "full evaluation: 20 traits, 20 segments, memberships",
            lambda: with_facts.install(cur, catalog, force=True),
        )
        full2_s = _timed("full evaluation again", lambda: with_facts.install(cur, catalog, force=True))

        def golden() -> None:
            cur.execute("BEGIN")
            run_steps(cur, "golden", golden_steps(None, "most_recent", {}))
            cur.execute("COMMIT")

        _timed("golden record of everyone (separately: definitions do not change it)", golden)
        naive_s = _timed(
            "naive baseline: 40 definitions one by one over the raw log",
            lambda: _run(db, NAIVE + NAIVE_TRAITS),
        )
        best = min(full_s, full2_s)
        print(
            f"full evaluation {best:.2f} s = {best / naive_s:.2f} of the naive baseline ({naive_s:.2f} s); facts {facts_s:.2f} s once"
        )

        members = db.execute("SELECT count(*) FROM segment_members")[0][0]
        print(f"  {members:,} memberships in {len(SEGMENTS)} segments")
        for share in (0.01, 0.10):
            modulo = int(1 / share)
            db.execute(
                f"""UPDATE profile_schedule SET next_check = TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 1 SECOND
                WHERE hash(profile_id) % {modulo} = 0"""
            )
            due = db.execute(
                f"SELECT count(*) FROM profile_schedule WHERE next_check <= TIMESTAMPTZ '{NOW.isoformat()}'"
            )[0][0]

            def tick() -> None:
                cur.execute("BEGIN")
                run_steps(cur, "tick", with_facts.refresh(cur))
                cur.execute("COMMIT")

            _timed(f"tick with {due:,} people due ({share:.0%})", tick)

        # Micro-batches of 1,000 new events of known people.
        durations = []
        seq = total
        for _ in range(args.batches):
            lo, hi = seq, seq + 1000
            db.execute(
                _EVENTS.format(per=per, lo=lo * 1, hi=hi, now=NOW.isoformat()).replace(
                    "'u' || p", f"'u' || (hash(s, 99) % {people})"
                )
            )
            db.execute(
                f"INSERT INTO identity_event_hubs SELECT seq, md5_number_lower('user_id:' || user_id) FROM events WHERE seq > {lo}"
            )
            cur.execute("BEGIN")
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW batch_events AS SELECT * FROM events WHERE seq > {lo} AND seq <= {hi}"
            )
            started = time.perf_counter()
            run_steps(cur, "batch", with_facts.steps(Batch(lo, hi)))
            durations.append(time.perf_counter() - started)
            cur.execute("COMMIT")
            seq = hi
        durations.sort()
        p95 = durations[max(0, int(len(durations) * 0.95) - 1)]
        print(
            f"  1,000-event micro-batch: p50 {statistics.median(durations) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )
        cur.close()
        db.close()


if __name__ == "__main__":
    main()
