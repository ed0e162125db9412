"""Campaign results of a journey: per step and variant, and lift over its holdout and the control group.

Message outcomes come from the outbox and its tracking hits (machine opens and clicks left out;
a human click counts as an open too, since images are often blocked); conversions are the
journey's conversion event by the same person within the attribution window after a send, read
from the event log through the identity graph, so a purchase on another device counts. Lift
compares everyone who entered in the treatment group with those held out, each measured within
the window after their entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import msgspec
import pyarrow as pa

from tailor.channels.store import connect
from tailor.journeys.definitions import read_journey
from tailor.journeys.stats import two_proportion_test
from tailor.journeys.store import SavedJourney
from tailor.store.database import Database, registered


class StepResult(msgspec.Struct):
    """The outcomes of one send step (and variant) of a journey."""

    step: str
    variant: str | None
    channel: str
    messages: int
    sent: int
    bounced: int
    delivered: int
    failed: int
    suppressed: int
    unique_opens: int
    unique_clicks: int
    open_rate: float | None
    click_rate: float | None
    click_to_open: float | None
    conversions: int
    conversion_rate: float | None
    revenue: float
    revenue_per_1000: float | None


class GroupResult(msgspec.Struct):
    """People who entered in one group, and how many converted within the window after entering."""

    group: str
    entered: int
    conversions: int
    conversion_rate: float | None
    revenue: float


class Lift(msgspec.Struct):
    """Treatment against a baseline group: the two-proportion z-test of their conversion rates."""

    baseline: str
    treatment_rate: float
    baseline_rate: float
    difference: float
    lift: float | None
    z: float | None
    p_value: float | None
    ci_low: float
    ci_high: float
    significant: bool
    """p < 0.05."""


class JourneyResults(msgspec.Struct):
    """Everything measured about one journey."""

    journey: str
    campaign: str
    conversion_event: str | None
    window_hours: float
    steps: list[StepResult]
    groups: list[GroupResult]
    lift: list[Lift]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@contextmanager
def _registered(db: Database, tables: dict[str, pa.Table]) -> Iterator[object]:
    """A cursor of its own on which `tables` are readable; closed (and they with it) at the end."""
    cur = db.cursor()
    try:
        with registered(cur, **tables):
            yield cur
    finally:
        cur.close()


_CONVERSIONS = """
WITH conv AS (
    SELECT coalesce(a.profile_id, n.profile_id) AS profile_id, epoch(e.timestamp) AS at,
           coalesce(TRY_CAST(json_extract_string(e.properties, '$.' || ?) AS DOUBLE), 0) AS revenue
    FROM profile_facts f
    JOIN identity_nodes n ON n.k = f.k
    LEFT JOIN profile_aliases a ON a.old_id = n.profile_id
    JOIN events e ON e.seq = f.seq
    WHERE f.type = 'track' AND f.event = ?
)
SELECT x.key, count(c.at) AS conversions, coalesce(sum(c.revenue), 0) AS revenue
FROM jr_starts x LEFT JOIN conv c ON c.profile_id = x.profile_id AND c.at >= x.at AND c.at <= x.at + ?
GROUP BY x.key
"""


def _conversions(
    db: Database, starts: list[tuple[str, str, float]], event: str, revenue: str | None, window_s: float
) -> dict[str, tuple[int, float]]:
    """Per (key, person, start): conversion events within the window after the start, and their revenue."""
    if not starts:
        return {}
    table = pa.table(
        {
            "key": [s[0] for s in starts],
            "profile_id": [s[1] for s in starts],
            "at": pa.array([s[2] for s in starts], pa.float64()),
        }
    )
    with _registered(db, {"jr_starts": table}) as cur:
        rows = cur.execute(_CONVERSIONS, [revenue or "__none__", event, window_s]).fetchall()  # type: ignore[attr-defined]
    return {str(k): (int(n), float(r)) for k, n, r in rows}


_MESSAGES = """
SELECT o.message_id, o.step_id, o.variant_id, o.channel, o.profile_id, o.status,
       coalesce(o.sent_at, o.finished_at, o.created_at),
       coalesce(max(h.kind = 'open' AND h.machine_reason IS NULL), 0),
       coalesce(max(h.kind = 'click' AND h.machine_reason IS NULL), 0)
FROM outbox o LEFT JOIN message_hits h ON h.message_id = o.message_id
WHERE o.journey_id = ?
GROUP BY o.message_id
"""


def journey_results(db: Database, messaging_path: Path, saved: SavedJourney) -> JourneyResults:
    """The results of one journey, now."""
    journey, _ = read_journey(saved.definition)
    conversion = journey.conversion
    window = conversion.within if conversion is not None else timedelta(days=7)
    conn: sqlite3.Connection = connect(messaging_path)
    try:
        messages = conn.execute(_MESSAGES, (saved.name,)).fetchall()
        instances = conn.execute(
            "SELECT id, profile_id, grp, entered_at FROM journey_instances WHERE journey = ?", (saved.name,)
        ).fetchall()
    finally:
        conn.close()
    sent_rows = [m for m in messages if m[5] in ("sent", "delivered", "bounced") and m[4]]
    by_message: dict[str, tuple[int, float]] = {}
    by_instance: dict[str, tuple[int, float]] = {}
    if conversion is not None:
        window_s = window.total_seconds()
        by_message = _conversions(
            db,
            [(m[0], m[4], float(m[6])) for m in sent_rows if m[5] != "bounced"],
            conversion.event,
            conversion.revenue,
            window_s,
        )
        by_instance = _conversions(
            db, [(i[0], i[1], float(i[3])) for i in instances], conversion.event, conversion.revenue, window_s
        )
    steps: dict[tuple[str, str | None, str], list[tuple[object, ...]]] = {}
    for m in messages:
        steps.setdefault((str(m[1]), m[2], str(m[3])), []).append(m)
    results = []
    for (step, variant, channel), rows in sorted(steps.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        sent = sum(1 for r in rows if r[5] in ("sent", "delivered", "bounced"))
        bounced = sum(1 for r in rows if r[5] == "bounced")
        delivered = sent - bounced
        landed = [r for r in rows if r[5] in ("sent", "delivered")]
        opens = sum(1 for r in landed if r[7] or r[8])
        clicks = sum(1 for r in landed if r[8])
        conv = [by_message.get(str(r[0]), (0, 0.0)) for r in landed]
        converted = sum(1 for n, _ in conv if n > 0)
        revenue = sum(v for _, v in conv)
        results.append(
            StepResult(
                step,
                variant,
                channel,
                len(rows),
                sent,
                bounced,
                delivered,
                sum(1 for r in rows if r[5] in ("failed", "dead")),
                sum(1 for r in rows if r[5] == "suppressed"),
                opens,
                clicks,
                _ratio(opens, delivered),
                _ratio(clicks, delivered),
                _ratio(clicks, opens),
                converted,
                _ratio(converted, delivered),
                revenue,
                revenue / delivered * 1000 if delivered else None,
            )
        )
    groups: dict[str, list[int]] = {}
    revenue_by: dict[str, float] = {}
    for iid, _, grp, _ in instances:
        n, r = by_instance.get(str(iid), (0, 0.0))
        entry = groups.setdefault(str(grp), [0, 0])
        entry[0] += 1
        entry[1] += n > 0
        revenue_by[str(grp)] = revenue_by.get(str(grp), 0.0) + r
    group_results = [
        GroupResult(g, n, x, _ratio(x, n) if conversion is not None else None, revenue_by.get(g, 0.0))
        for g, (n, x) in sorted(groups.items())
    ]
    lifts = []
    treated = groups.get("treatment")
    if conversion is not None and treated is not None:
        baselines: list[tuple[str, list[int]]] = [
            (g, groups[g]) for g in ("holdout", "control") if g in groups
        ]
        if len(baselines) == 2:
            both = [groups["holdout"][0] + groups["control"][0], groups["holdout"][1] + groups["control"][1]]
            baselines.append(("holdout+control", both))
        for name, (n, x) in baselines:
            t = two_proportion_test(treated[1], treated[0], x, n)
            significant = t.p_value is not None and t.p_value < 0.05
            lifts.append(
                Lift(
                    name,
                    t.rate,
                    t.baseline_rate,
                    t.difference,
                    t.lift,
                    t.z,
                    t.p_value,
                    t.ci_low,
                    t.ci_high,
                    significant,
                )
            )
    return JourneyResults(
        saved.name,
        journey.campaign,
        conversion.event if conversion is not None else None,
        window.total_seconds() / 3600,
        results,
        group_results,
        lifts,
    )
