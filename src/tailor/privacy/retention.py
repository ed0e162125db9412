"""Retention: events older than a configured age, per source or event type, deleted on a schedule.

Each rule (`[[privacy.retention]]`) names a number of days and optionally a source (name or id)
and an event (message type or track event name); an event matched by several rules keeps the
shortest. Deleted events leave the derived tables that count or index them (event volume, hubs); the
consent records they carried stay, as proof of the choice. A compaction then removes their bytes,
as for an erasure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from tailor.privacy.config import RetentionRule
from tailor.store.database import Database, run


class RetentionResult(msgspec.Struct):
    """What one retention run deleted, per rule."""

    ran_at: datetime
    deleted: dict[str, int]
    total: int


def rule_label(rule: RetentionRule) -> str:
    """A rule as one line: `30 days, source web, event page`."""
    parts = [f"{rule.days} days"]
    if rule.source:
        parts.append(f"source {rule.source}")
    if rule.event:
        parts.append(f"event {rule.event}")
    return ", ".join(parts)


def apply_retention(
    db: Database, rules: list[RetentionRule], source_ids: dict[str, str], now: datetime | None = None
) -> RetentionResult:
    """Deletes the events each rule expires, with their hubs, consent records and volume counts."""
    now = now or datetime.now(UTC)
    cur = db.cursor()
    deleted: dict[str, int] = {}
    try:
        cur.execute("BEGIN")
        run(cur, "CREATE OR REPLACE TEMP TABLE _rt_expired (seq BIGINT)")
        for rule in rules:
            where = ["timestamp < ?"]
            params: list[object] = [now - timedelta(days=rule.days)]
            if rule.source:
                where.append("source_id = ?")
                params.append(source_ids.get(rule.source, rule.source))
            if rule.event:
                where.append("(type = ? OR event = ?)")
                params += [rule.event, rule.event]
            ((before,),) = run(cur, "SELECT count(*) FROM _rt_expired").fetchall()
            run(
                cur,
                f"""INSERT INTO _rt_expired SELECT seq FROM events WHERE {" AND ".join(where)}
                AND seq NOT IN (SELECT seq FROM _rt_expired)""",
                params,
            )
            ((after,),) = run(cur, "SELECT count(*) FROM _rt_expired").fetchall()
            deleted[rule_label(rule)] = int(after - before)
        run(
            cur,
            """UPDATE event_volume SET events = event_volume.events - p.n
            FROM (SELECT CAST(timezone('UTC', timestamp) AS DATE) AS day, source_id, type,
                         coalesce(event, name, '') AS event, count(*) AS n
                  FROM events WHERE seq IN (SELECT seq FROM _rt_expired) GROUP BY ALL) p
            WHERE event_volume.day = p.day AND event_volume.source_id = p.source_id
              AND event_volume.type = p.type AND event_volume.event = p.event""",
        )
        run(cur, "DELETE FROM event_volume WHERE events <= 0")
        # Consent records stay: they are the proof of a choice, which outlives the event carrying it.
        for table in ("identity_event_hubs", "events"):
            run(cur, f"DELETE FROM {table} WHERE seq IN (SELECT seq FROM _rt_expired)")
        run(cur, "DROP TABLE _rt_expired")
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()
    return RetentionResult(now, deleted, sum(deleted.values()))
