"""Funnels: ordered steps within a conversion window, per person, at a cost linear in the steps.

Every event of a step's first kind starts an attempt. An attempt at step k-1 moves on to step k at
the first step-k event after the event that reached step k-1, if it falls within the window from
the attempt's start. "The first step-k event after" is, for every attempt at once, a running
minimum over the person's events in order (a window function over attempts and step-k events
together): one sort per step, so each step costs about the same and none multiplies the work of
the others (a self-join per step multiplies candidate chains instead). A person's level is the
furthest step any of their attempts reached; their earliest such attempt gives its times.

Modes: `ordered` (other events may come between steps), `strict` (step k must be the person's very
next event after step k-1, among all their events), `unordered` (the steps in any order, each
counted once, within the window from whichever step came first).
"""

from __future__ import annotations

from typing import Literal

import duckdb
import msgspec

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.touchpoints import person_events_sql
from tailor.identity.service import DEVICE_KIND, TOUCH_CHANNEL
from tailor.process.stage import SqlStep, run_steps

Mode = Literal["ordered", "strict", "unordered"]
MAX_STEPS = 20


class FunnelDefinition(msgspec.Struct, frozen=True):
    """Steps (event names, or page/screen names), a conversion window and a mode."""

    steps: list[str]
    window_hours: float = 24.0 * 7
    mode: Mode = "ordered"
    breakdown: str | None = None
    """None, `device`, `platform` (web, app, email...), `acquisition_channel`, or `trait:NAME`."""


class StepResult(msgspec.Struct):
    """People reaching one step, their share of the first step and of the previous, and times."""

    name: str
    people: int
    conversion: float
    from_previous: float
    dropped: int
    median_seconds: float | None
    mean_seconds: float | None


class FunnelResult(msgspec.Struct):
    """A funnel's steps overall and, with a breakdown, per breakdown value."""

    mode: str
    window_hours: float
    steps: list[StepResult]
    breakdown: str | None = None
    groups: dict[str, list[StepResult]] = msgspec.field(default_factory=dict)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _breakdown_sql(breakdown: str | None) -> str:
    if breakdown is None:
        return "'all'"
    if breakdown == "device":
        return f"coalesce({DEVICE_KIND}, 'unknown')"
    if breakdown == "platform":
        return TOUCH_CHANNEL
    if breakdown == "acquisition_channel":
        return "coalesce((SELECT arg_min(channel, ts) FROM an_touches a WHERE a.person = x.person), '(none)')"
    if breakdown.startswith("trait:") and breakdown[6:].replace("_", "").isalnum():
        name = breakdown[6:]
        return f"""coalesce((SELECT arg_max(json_extract_string(i.traits, '$.{name}'), i.ts)
            FROM an_traits i WHERE i.person = x.person AND json_extract_string(i.traits, '$.{name}') IS NOT NULL),
            '(none)')"""
    raise AnalyticsError(
        f"unknown breakdown {breakdown!r}: use device, platform, acquisition_channel or trait:NAME"
    )


def funnel_steps(f: FunnelDefinition, source: str | None = None) -> list[SqlStep]:
    """The SQL steps of a funnel; the last leaves `fn_people(person, level, group_key, t1..tn)`."""
    n = len(f.steps)
    if not 1 <= n <= MAX_STEPS:
        raise AnalyticsError(f"a funnel has 1 to {MAX_STEPS} steps, got {n}")
    if f.window_hours <= 0:
        raise AnalyticsError(f"the conversion window must be positive, got {f.window_hours} hours")
    window = f.window_hours * 3600
    events = source or person_events_sql()
    names = ", ".join(f"({i + 1}, {_lit(s)})" for i, s in enumerate(f.steps))
    strict = f.mode == "strict"
    steps = [
        SqlStep(
            f"CREATE OR REPLACE TEMP TABLE fn_names AS SELECT * FROM (VALUES {names}) v(step, name)",
            "fn_names",
        ),
    ]
    # A person's events in order, o numbering them by (ts, seq). In strict mode o counts all their
    # events (nothing may come between two steps); otherwise only the events of a step, numbered
    # in the same pass (dense_rank: an event matching two steps keeps one number).
    if strict:
        steps += [
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE fn_order AS
                SELECT x.seq, dense_rank() OVER (PARTITION BY x.person ORDER BY x.ts, x.seq) AS o FROM ({events}) x""",
                "fn_order",
            ),
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE fn_events AS
                SELECT x.person, o.o, x.ts, s.step, {_breakdown_sql(f.breakdown)} AS group_key
                FROM ({events}) x JOIN fn_names s ON s.name = x.name JOIN fn_order o ON o.seq = x.seq""",
                "fn_events",
            ),
        ]
    elif f.mode == "ordered":
        # The seq orders events of the same microsecond (see `_ordered`): no numbering pass.
        steps.append(
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE fn_events AS
                SELECT x.person, x.seq AS o, x.ts, s.step, {_breakdown_sql(f.breakdown)} AS group_key
                FROM ({events}) x JOIN fn_names s ON s.name = x.name""",
                "fn_events",
            )
        )
    else:
        steps.append(
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE fn_events AS
                SELECT x.person, dense_rank() OVER (PARTITION BY x.person ORDER BY x.ts, x.seq) AS o, x.ts, s.step,
                       {_breakdown_sql(f.breakdown)} AS group_key
                FROM ({events}) x JOIN fn_names s ON s.name = x.name""",
                "fn_events",
            )
        )
    if f.mode == "unordered":
        return steps + _unordered(n, window)
    if f.mode == "ordered":
        return steps + _ordered(n, window)
    steps.append(
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE fn_1 AS
            SELECT person, o AS attempt, o, ts AS start_ts, ts AS t, group_key FROM fn_events WHERE step = 1""",
            "fn_1",
        )
    )
    for k in range(2, n + 1):
        if strict:
            sql = f"""CREATE OR REPLACE TEMP TABLE fn_{k} AS
                SELECT a.attempt, a.person, e.o, a.start_ts, e.ts AS t, a.group_key
                FROM fn_{k - 1} a JOIN fn_events e ON e.person = a.person AND e.o = a.o + 1 AND e.step = {k}
                WHERE {_seconds("a.start_ts", "e.ts")} <= {window!r}"""
        else:
            # o follows (ts, seq), so the first step-k event after an attempt has both the least o
            # and the least ts of the events after it: one frame gives both, no lookup needed.
            sql = f"""CREATE OR REPLACE TEMP TABLE fn_{k} AS
                WITH u AS (
                    SELECT person, o, 1 AS is_attempt, attempt, start_ts, group_key, NULL::BIGINT AS ev,
                           NULL::TIMESTAMPTZ AS ev_ts FROM fn_{k - 1}
                    UNION ALL SELECT person, o, 0, NULL, NULL, NULL, o, ts FROM fn_events WHERE step = {k}
                ), nx AS (
                    SELECT attempt, person, start_ts, group_key, is_attempt,
                        min(ev) OVER w AS next_o, min(ev_ts) OVER w AS next_ts
                    FROM u WINDOW w AS (PARTITION BY person ORDER BY o, is_attempt
                        ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
                )
                SELECT attempt, person, next_o AS o, start_ts, next_ts AS t, group_key FROM nx
                WHERE is_attempt = 1 AND next_o IS NOT NULL AND {_seconds("start_ts", "next_ts")} <= {window!r}"""
        steps.append(SqlStep(sql, f"fn_{k}"))
    times = ", ".join(f"fn_{k}.t AS t{k}" for k in range(1, n + 1))
    joins = " ".join(
        f"LEFT JOIN fn_{k} ON fn_{k}.person = fn_1.person AND fn_{k}.attempt = fn_1.attempt"
        for k in range(2, n + 1)
    )
    level = " + ".join(f"(fn_{k}.attempt IS NOT NULL)::INTEGER" for k in range(2, n + 1)) or "0"
    steps.append(
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE fn_people AS
            SELECT person, level, group_key, {", ".join(f"t{k}" for k in range(1, n + 1))} FROM (
                SELECT fn_1.person, 1 + {level} AS level, fn_1.group_key, {times},
                       row_number() OVER (PARTITION BY fn_1.person ORDER BY 1 + {level} DESC, fn_1.o) AS best
                FROM fn_1 {joins}
            ) WHERE best = 1""",
            "fn_people",
        )
    )
    return steps


def _ordered(n: int, window: float) -> list[SqlStep]:
    """Ordered funnels from per-person sorted lists of each step's events: no sort of the whole log.

    An event's place in its person's order is one BIGINT, its microsecond time shifted left by 12
    bits with the low bits of its seq as the tie-break, so a list of places sorts with `list_sort`
    (a person's lists are short) and "the first step-k event after" is the first element of step
    k's list above the previous step's place. Aggregating lists of plain numbers and sorting them
    afterwards measured 4x faster than ordered lists of (time, seq) pairs, and the whole funnel
    about 3x faster than a window pass per step, at 10M events.
    """
    window_us = int(window * 1_000_000)
    lists = ", ".join(f"list_sort(list(pos) FILTER (WHERE step = {k})) AS l{k}" for k in range(2, n + 1))
    attempt = "SELECT p.person, p.pos AS p1, p.group_key" + "".join(f", l.l{k}" for k in range(2, n + 1))
    query = f"{attempt} FROM fn_pos p LEFT JOIN fn_lists l USING (person) WHERE p.step = 1"
    for k in range(2, n + 1):
        nxt = f"list_filter(l{k}, lambda x: x > p{k - 1} AND (x >> 12) - (p1 >> 12) <= {window_us})[1]"
        query = f"SELECT *, CASE WHEN p{k - 1} IS NOT NULL THEN {nxt} END AS p{k} FROM ({query})"
    level = " + ".join(f"(p{k} IS NOT NULL)::INTEGER" for k in range(1, n + 1))
    times = ", ".join(f"to_timestamp((p{k} >> 12) / 1000000.0) AS t{k}" for k in range(1, n + 1))
    return [
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE fn_pos AS
            SELECT person, (epoch_us(ts) << 12) + (o % 4096) AS pos, step, group_key FROM fn_events""",
            "fn_pos",
        ),
        SqlStep(
            f"CREATE OR REPLACE TEMP TABLE fn_lists AS SELECT person, {lists} FROM fn_pos GROUP BY person"
            if n > 1
            else "CREATE OR REPLACE TEMP TABLE fn_lists AS SELECT DISTINCT person FROM fn_pos",
            "fn_lists",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE fn_people AS
            SELECT person, {level} AS level, group_key, {times} FROM ({query})
            QUALIFY row_number() OVER (PARTITION BY person ORDER BY {level} DESC, p1) = 1""",
            "fn_people",
        ),
    ]


def _seconds(a: str, b: str) -> str:
    return f"(epoch({b}) - epoch({a}))"


def _unordered(n: int, window: float) -> list[SqlStep]:
    steps = [
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE fn_starts AS
            SELECT row_number() OVER (ORDER BY person, o) AS attempt, person, o, ts AS start_ts, group_key
            FROM (SELECT DISTINCT person, o, ts, group_key FROM fn_events)""",
            "fn_starts",
        )
    ]
    for k in range(1, n + 1):
        steps.append(
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE fn_next_{k} AS
                WITH u AS (
                    SELECT person, o, 1 AS is_attempt, attempt, start_ts, NULL::BIGINT AS ev,
                           NULL::TIMESTAMPTZ AS ev_ts FROM fn_starts
                    UNION ALL SELECT person, o, 0, NULL, NULL, o, ts FROM fn_events WHERE step = {k}
                ), nx AS (
                    SELECT attempt, start_ts, is_attempt, min(ev) OVER w AS next_o, min(ev_ts) OVER w AS next_ts
                    FROM u WINDOW w AS (PARTITION BY person ORDER BY o, is_attempt DESC
                        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
                )
                SELECT attempt, next_ts AS t FROM nx
                WHERE is_attempt = 1 AND next_o IS NOT NULL AND {_seconds("start_ts", "next_ts")} <= {window!r}""",
                f"fn_next_{k}",
            )
        )
    union = " UNION ALL ".join(f"SELECT attempt, t FROM fn_next_{k}" for k in range(1, n + 1))
    times = ", ".join(f"max(CASE WHEN rank = {k} THEN t END) AS t{k}" for k in range(1, n + 1))
    steps.append(
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE fn_people AS
            SELECT person, level, group_key, {", ".join(f"t{k}" for k in range(1, n + 1))} FROM (
                SELECT s.person, s.group_key, count(*) AS level, {times},
                       row_number() OVER (PARTITION BY s.person ORDER BY count(*) DESC, min(s.o)) AS best
                FROM (SELECT attempt, t, row_number() OVER (PARTITION BY attempt ORDER BY t) AS rank
                      FROM ({union})) u
                JOIN fn_starts s ON s.attempt = u.attempt GROUP BY s.attempt, s.person, s.group_key, s.o
            ) WHERE best = 1""",
            "fn_people",
        )
    )
    return steps


def _results(cur: duckdb.DuckDBPyConnection, f: FunnelDefinition, where: str) -> list[StepResult]:
    n = len(f.steps)
    cols = ", ".join(
        f"count(*) FILTER (WHERE level >= {k}), median({_seconds('t1', f't{k}')}) FILTER (WHERE level >= {k}),"
        f" avg({_seconds('t1', f't{k}')}) FILTER (WHERE level >= {k})"
        for k in range(1, n + 1)
    )
    row = cur.execute(f"SELECT {cols} FROM fn_people WHERE {where}").fetchone()
    assert row is not None
    out: list[StepResult] = []
    first = int(row[0])
    for k in range(n):
        people = int(row[3 * k])
        before = first if k == 0 else out[-1].people
        median, mean = row[3 * k + 1], row[3 * k + 2]
        name = f.steps[k] if f.mode != "unordered" else f"any {k + 1} of the {n} steps"
        out.append(
            StepResult(
                name,
                people,
                people / first if first else 0.0,
                people / before if before else 0.0,
                before - people,
                None if k == 0 or median is None else float(median),
                None if k == 0 or mean is None else float(mean),
            )
        )
    return out


def run_funnel(
    cur: duckdb.DuckDBPyConnection, f: FunnelDefinition, source: str | None = None
) -> FunnelResult:
    """Computes a funnel on `cur` (which needs `an_touches`/`an_traits` only for those breakdowns)."""
    run_steps(cur, "funnel", funnel_steps(f, source))
    result = FunnelResult(f.mode, f.window_hours, _results(cur, f, "TRUE"), f.breakdown)
    if f.breakdown is not None:
        groups = [g for (g,) in cur.execute("SELECT DISTINCT group_key FROM fn_people ORDER BY 1").fetchall()]
        for g in groups[:50]:
            result.groups[str(g)] = _results(cur, f, f"group_key = {_lit(str(g))}")
    return result
