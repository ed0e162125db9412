"""Retention by cohort: people grouped by when they were first seen (or first bought), and the share of
each cohort active again in each later day, week or month."""

from __future__ import annotations

from typing import Literal

import duckdb
import msgspec

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.settings import AnalyticsConfig

Period = Literal["day", "week", "month"]
# Imported records (CRM rows...) carry the time of the import, not an act of the person.
OWN = "source_id NOT LIKE 'import:%'"


class Cohort(msgspec.Struct):
    """One cohort: its first period, its size, and the people active in each period since (0 = first)."""

    start: str
    size: int
    active: list[int]


class Retention(msgspec.Struct):
    """A retention table; `active[k] / size` is the share of a cohort active k periods after joining."""

    period: str
    cohort_by: str
    activity: str
    cohorts: list[Cohort]


def retention(
    cur: duckdb.DuckDBPyConnection,
    config: AnalyticsConfig,
    period: Period = "week",
    cohort_by: Literal["first_seen", "first_purchase"] = "first_seen",
    activity: Literal["any", "purchase"] = "any",
    max_periods: int = 12,
) -> Retention:
    """Retention of the people of `an_events` (built by `touchpoints.build_touches`)."""
    if period not in ("day", "week", "month"):
        raise AnalyticsError(f"unknown period {period!r}: use day, week or month")
    conversion = "'" + config.conversion_event.replace("'", "''") + "'"
    starts = {"first_seen": "TRUE", "first_purchase": f"name = {conversion}"}
    acts = {"any": "TRUE", "purchase": f"name = {conversion}"}
    if cohort_by not in starts or activity not in acts:
        raise AnalyticsError("cohort_by is first_seen or first_purchase; activity is any or purchase")
    rows = cur.execute(
        f"""WITH cohort AS (
            SELECT person, date_trunc('{period}', min(ts)) AS c FROM an_events WHERE {starts[cohort_by]} AND {OWN}
            GROUP BY person
        ), active AS (
            SELECT DISTINCT person, date_trunc('{period}', ts) AS p FROM an_events WHERE {acts[activity]} AND {OWN}
        )
        SELECT strftime(c.c, '%Y-%m-%d') AS start, date_diff('{period}', c.c, a.p) AS k, count(DISTINCT a.person)
        FROM cohort c JOIN active a ON a.person = c.person AND a.p >= c.c
        WHERE date_diff('{period}', c.c, a.p) <= {int(max_periods)}
        GROUP BY 1, 2 ORDER BY 1, 2"""
    ).fetchall()
    sizes = dict(
        cur.execute(
            f"""SELECT strftime(date_trunc('{period}', min(ts)), '%Y-%m-%d'), NULL FROM an_events
            WHERE {starts[cohort_by]} AND {OWN} GROUP BY person"""
        ).fetchall()
    )
    cohorts: dict[str, list[int]] = {s: [0] * (max_periods + 1) for s in sorted(sizes)}
    for start, k, n in rows:
        cohorts[str(start)][int(k)] = int(n)
    out = []
    for start, active in cohorts.items():
        # A cohort's size is the people who joined in it (all active in period 0 for "any").
        size = active[0] if activity == "any" else _size(cur, period, starts[cohort_by], start)
        out.append(Cohort(start, size, active))
    return Retention(period, cohort_by, activity, out)


def _size(cur: duckdb.DuckDBPyConnection, period: str, where: str, start: str) -> int:
    row = cur.execute(
        f"""SELECT count(*) FROM (SELECT person FROM an_events WHERE {where} AND {OWN} GROUP BY person
            HAVING strftime(date_trunc('{period}', min(ts)), '%Y-%m-%d') = ?)""",
        [start],
    ).fetchone()
    return int(row[0]) if row else 0
