"""Engagement score and lifecycle stage per person, with the stage history and the flow between stages.

The score adds up a person's interactions, each weighed by its kind and value, by the sentiment of
what they wrote (reviews, support calls), and by what followed it (an interaction followed by an
order within 7 days counts half again), fading with a 30-day half-life.

Lifecycle stage at the end of each month, from the last 180 days: advocacy (two orders or more and
a positive review), use (an order), interest (product views, basket, sign-up, message clicks),
awareness (seen at all). People move back when they stop: the window is rolling.
"""

from __future__ import annotations

import duckdb
import msgspec

from tailor.process.stage import SqlStep, run_steps

STAGES = ("awareness", "interest", "use", "advocacy")
WEIGHTS = {
    "Product Viewed": 2.0,
    "Product List Viewed": 1.0,
    "Products Searched": 1.5,
    "Product Added": 4.0,
    "Product Added to Wishlist": 3.0,
    "Cart Viewed": 2.0,
    "Checkout Started": 5.0,
    "Signed Up": 5.0,
    "Email Opened": 0.5,
    "Email Link Clicked": 3.0,
    "SMS Link Clicked": 3.0,
    "Product Reviewed": 6.0,
    "Call Completed": 2.0,
    "Unsubscribed": -8.0,
    "Order Refunded": -5.0,
}
INTEREST = (
    "Product Viewed",
    "Product Added",
    "Product Added to Wishlist",
    "Signed Up",
    "Email Link Clicked",
    "SMS Link Clicked",
    "Checkout Started",
)


class PersonEngagement(msgspec.Struct):
    """A person's engagement score, its percentile, current stage and interactions counted."""

    person: str
    score: float
    percentile: float
    stage: str
    interactions: int
    sentiment: float | None


class StageFlow(msgspec.Struct):
    """People moving from one stage to another between two consecutive months."""

    month: str
    source: str
    target: str
    people: int


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def engagement_steps(conversion_event: str) -> list[SqlStep]:
    """Steps building `an_engagement(person, score, interactions, sentiment)` (needs `an_sentiment`)."""
    weights = " ".join(f"WHEN {_lit(k)} THEN {v!r}" for k, v in WEIGHTS.items())
    conv = _lit(conversion_event)
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_interactions AS
            SELECT e.person, e.ts, e.name,
                CASE WHEN e.name = {conv} THEN 10 + ln(1 + coalesce(try_cast(json_extract_string(e.properties,
                    '$.total') AS DOUBLE), 0))
                     WHEN e.type IN ('page', 'screen') THEN 0.5
                     ELSE CASE e.name {weights} ELSE 0 END END AS base,
                min(CASE WHEN e.name = {conv} THEN e.ts END) OVER (PARTITION BY e.person ORDER BY e.ts, e.seq
                    ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_order
            FROM an_events e WHERE e.source_id NOT LIKE 'import:%' OR e.name = 'Call Completed'""",
            "an_interactions",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE an_engagement AS
            WITH clock AS (SELECT max(ts) AS now FROM an_interactions),
            felt AS (SELECT person, avg(sentiment) AS sentiment FROM an_sentiment GROUP BY person)
            SELECT i.person,
                sum(i.base
                    * CASE WHEN i.next_order IS NOT NULL AND epoch(i.next_order) - epoch(i.ts) <= 7 * 86400
                           THEN 1.5 ELSE 1.0 END
                    * CASE WHEN i.name IN ('Product Reviewed', 'Call Completed')
                           THEN 1 + coalesce(f.sentiment, 0) ELSE 1.0 END
                    * power(0.5, (epoch(a.now) - epoch(i.ts)) / (30 * 86400.0))) AS score,
                count(*) FILTER (WHERE i.base <> 0) AS interactions, any_value(f.sentiment) AS sentiment
            FROM an_interactions i CROSS JOIN clock a LEFT JOIN felt f ON f.person = i.person
            GROUP BY i.person""",
            "an_engagement",
        ),
    ]


def lifecycle_steps(conversion_event: str) -> list[SqlStep]:
    """Steps building `an_lifecycle(person, month, stage)`: each person's stage at each month's end."""
    interest = ", ".join(_lit(e) for e in INTEREST)
    conv = _lit(conversion_event)
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE an_monthly AS
            SELECT person, date_trunc('month', ts) AS month, count(*) AS seen,
                   count(*) FILTER (WHERE name IN ({interest})) AS interest,
                   count(*) FILTER (WHERE name = {conv}) AS orders
            FROM an_events WHERE source_id NOT LIKE 'import:%' GROUP BY 1, 2""",
            "an_monthly",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE an_lifecycle AS
            WITH bounds AS (SELECT min(month) AS lo, max(month) AS hi FROM an_monthly),
            months AS (SELECT unnest(generate_series(lo, hi, INTERVAL 1 MONTH)) AS month FROM bounds),
            firsts AS (SELECT person, min(month) AS first FROM an_monthly GROUP BY person),
            grid AS (SELECT f.person, m.month FROM firsts f JOIN months m ON m.month >= f.first),
            happy AS (SELECT person, date_trunc('month', ts) AS month, count(*) AS n FROM an_sentiment
                      WHERE kind = 'review' AND sentiment > 0.3 GROUP BY 1, 2),
            rolled AS (
                SELECT g.person, g.month,
                    sum(coalesce(m.seen, 0)) OVER w AS seen, sum(coalesce(m.interest, 0)) OVER w AS interest,
                    sum(coalesce(m.orders, 0)) OVER w AS orders, sum(coalesce(h.n, 0)) OVER w AS happy
                FROM grid g LEFT JOIN an_monthly m ON m.person = g.person AND m.month = g.month
                LEFT JOIN happy h ON h.person = g.person AND h.month = g.month
                WINDOW w AS (PARTITION BY g.person ORDER BY g.month ROWS BETWEEN 5 PRECEDING AND CURRENT ROW)
            )
            SELECT person, month,
                CASE WHEN orders >= 2 AND happy > 0 THEN 'advocacy' WHEN orders > 0 THEN 'use'
                     WHEN interest > 0 THEN 'interest' WHEN seen > 0 THEN 'awareness' ELSE 'dormant' END AS stage
            FROM rolled""",
            "an_lifecycle",
        ),
    ]


def build_engagement(cur: duckdb.DuckDBPyConnection, conversion_event: str) -> None:
    """Builds sentiment, `an_engagement` and `an_lifecycle` on `cur` (needs `an_events`)."""
    from tailor.analytics.sentiment import build_sentiment

    build_sentiment(cur)
    run_steps(cur, "engagement", engagement_steps(conversion_event) + lifecycle_steps(conversion_event))


def top_engaged(
    cur: duckdb.DuckDBPyConnection, limit: int = 20, person: str | None = None
) -> list[PersonEngagement]:
    """The most engaged people (or one person), with their current stage."""
    where = "WHERE person = ?" if person else ""
    rows = cur.execute(
        f"""WITH ranked AS (
            SELECT e.*, percent_rank() OVER (ORDER BY score) AS pct,
                   (SELECT arg_max(stage, month) FROM an_lifecycle l WHERE l.person = e.person) AS stage
            FROM an_engagement e
        ) SELECT person, score, pct, coalesce(stage, 'awareness'), interactions, sentiment FROM ranked {where}
        ORDER BY score DESC LIMIT {int(limit)}""",
        [person] if person else [],
    ).fetchall()
    return [
        PersonEngagement(str(p), float(s), float(q), str(st), int(n), None if m is None else float(m))
        for p, s, q, st, n, m in rows
    ]


def stage_history(cur: duckdb.DuckDBPyConnection, person: str) -> list[tuple[str, str]]:
    """A person's stage at the end of each month: (YYYY-MM, stage)."""
    rows = cur.execute(
        "SELECT strftime(month, '%Y-%m'), stage FROM an_lifecycle WHERE person = ? ORDER BY month", [person]
    ).fetchall()
    return [(str(m), str(s)) for m, s in rows]


def stage_counts(cur: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Month -> stage -> people."""
    out: dict[str, dict[str, int]] = {}
    for m, s, n in cur.execute(
        "SELECT strftime(month, '%Y-%m'), stage, count(*) FROM an_lifecycle GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall():
        out.setdefault(str(m), {})[str(s)] = int(n)
    return out


def stage_flows(cur: duckdb.DuckDBPyConnection) -> list[StageFlow]:
    """People moving between stages from each month to the next (staying put included)."""
    rows = cur.execute(
        """SELECT strftime(b.month, '%Y-%m'), a.stage, b.stage, count(*) FROM an_lifecycle a
        JOIN an_lifecycle b ON b.person = a.person AND b.month = a.month + INTERVAL 1 MONTH
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    ).fetchall()
    return [StageFlow(str(m), str(a), str(b), int(n)) for m, a, b, n in rows]
