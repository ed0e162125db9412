"""Paths: each person's sequence of touchpoints, pages or events across devices, cut into sessions and
cleaned; the most travelled paths, the paths leading to and from an event, and Sankey links.

Cleaning rules: noise events (deliveries, impressions, identify calls) are left out, the same item
twice in a row is one step, and a session ends after `session_gap_minutes` of inactivity.
"""

from __future__ import annotations

from typing import Literal

import duckdb
import msgspec

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.settings import AnalyticsConfig
from tailor.process.stage import SqlStep, run_steps

Kind = Literal["channel", "campaign", "page", "event"]
NOISE = ("Email Delivered", "SMS Delivered", "Recommendation Shown", "Email Opened")
"""Events that happen to a person rather than being done by them; left out of page and event paths."""


class TopPath(msgspec.Struct):
    """A path (its first steps) and how many sessions or journeys took it."""

    steps: list[str]
    journeys: int


class SankeyLink(msgspec.Struct):
    """People going from one step of a path to the next; node names carry the step number."""

    source: str
    target: str
    value: int


class PathReport(msgspec.Struct):
    """The top paths and the Sankey links among their steps."""

    kind: str
    anchor: str | None
    direction: str
    paths: list[TopPath]
    links: list[SankeyLink]


def _items_sql(kind: Kind) -> str:
    noise = ", ".join(f"'{n}'" for n in NOISE)
    if kind == "channel":
        return "SELECT person, ts, seq, channel AS item FROM an_touches"
    if kind == "campaign":
        return "SELECT person, ts, seq, channel || ' / ' || campaign AS item FROM an_touches"
    if kind == "page":
        return "SELECT person, ts, seq, name AS item FROM an_events WHERE type IN ('page', 'screen')"
    if kind == "event":
        return f"SELECT person, ts, seq, name AS item FROM an_events WHERE type = 'track' AND name NOT IN ({noise})"
    raise AnalyticsError(f"unknown path kind {kind!r}: use channel, campaign, page or event")


def path_steps(kind: Kind, config: AnalyticsConfig, by_session: bool) -> list[SqlStep]:
    """Steps leaving `pa_steps(person, session, pos, item)`: cleaned, numbered steps of each session."""
    gap = config.session_gap_minutes * 60
    session = (
        f"sum(CASE WHEN prev_ts IS NULL OR epoch(ts) - epoch(prev_ts) > {gap!r} THEN 1 ELSE 0 END)"
        " OVER (PARTITION BY person ORDER BY ts, seq)"
        if by_session
        else "1"
    )
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE pa_items AS
            SELECT person, ts, seq, item, {session} AS session FROM (
                SELECT *, lag(ts) OVER (PARTITION BY person ORDER BY ts, seq) AS prev_ts FROM ({_items_sql(kind)})
            )""",
            "pa_items",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE pa_steps AS
            SELECT person, session, row_number() OVER (PARTITION BY person, session ORDER BY ts, seq) AS pos, item
            FROM (
                SELECT *, lag(item) OVER (PARTITION BY person, session ORDER BY ts, seq) AS prev_item FROM pa_items
            ) WHERE prev_item IS NULL OR prev_item <> item""",
            "pa_steps",
        ),
    ]


def top_paths(
    cur: duckdb.DuckDBPyConnection,
    config: AnalyticsConfig,
    kind: Kind = "channel",
    anchor: str | None = None,
    direction: Literal["from", "to"] = "from",
    steps: int = 4,
    limit: int = 10,
    by_session: bool = False,
) -> PathReport:
    """The most travelled paths of `steps` steps: from the start (or from / to the first `anchor`)."""
    if not 1 <= steps <= 10:
        raise AnalyticsError(f"paths have 1 to 10 steps, got {steps}")
    run_steps(cur, "paths", path_steps(kind, config, by_session))
    if anchor is None:
        window = f"pos <= {steps}"
        rel = "pos"
        anchored = "SELECT person, session, 0 AS at FROM pa_steps GROUP BY person, session"
    else:
        anchored = """SELECT person, session, min(pos) AS at FROM pa_steps WHERE item = ?
            GROUP BY person, session"""
        if direction == "from":
            window, rel = f"s.pos >= a.at AND s.pos < a.at + {steps}", "s.pos - a.at + 1"
        else:
            window, rel = f"s.pos <= a.at AND s.pos > a.at - {steps}", f"{steps} - (a.at - s.pos)"
    params = [] if anchor is None else [anchor]
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE pa_window AS
        SELECT s.person, s.session, {rel.replace("pos", "s.pos") if anchor is None else rel} AS step, s.item
        FROM pa_steps s JOIN ({anchored}) a ON a.person = s.person AND a.session = s.session
        WHERE {window.replace("pos", "s.pos") if anchor is None else window}""",
        params,
    )
    rows = cur.execute(
        f"""SELECT p, count(*) FROM (
            SELECT person, session, string_agg(item, chr(31) ORDER BY step) AS p FROM pa_window GROUP BY person, session
        ) GROUP BY p ORDER BY 2 DESC, 1 LIMIT {int(limit)}"""
    ).fetchall()
    links = cur.execute(
        """SELECT a.step, a.item, b.item, count(*) FROM pa_window a
        JOIN pa_window b ON b.person = a.person AND b.session = a.session AND b.step = a.step + 1
        GROUP BY a.step, a.item, b.item ORDER BY 4 DESC LIMIT 60"""
    ).fetchall()
    return PathReport(
        kind,
        anchor,
        direction,
        [TopPath(str(p).split("\x1f"), int(n)) for p, n in rows],
        [SankeyLink(f"{s}. {a}", f"{s + 1}. {b}", int(n)) for s, a, b, n in links],
    )
