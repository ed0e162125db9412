"""The live event debugger: the latest events and rejected messages as they arrive.

The console polls with the highest seq and quarantine id it has seen and gets only what is newer,
so a poll reads a few row groups at the end of the log (seqs are in storage order, and DuckDB
skips row groups by their seq range), never the whole log.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from tailor.store.database import Database

MAX_ROWS = 200


class LiveEvent(msgspec.Struct):
    """A stored event as the debugger lists it."""

    seq: int
    source_id: str
    received_at: datetime
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    message_id: str
    payload: msgspec.Raw
    """The event as stored: properties, traits and context."""


class Rejection(msgspec.Struct):
    """A message that failed validation and went to the quarantine, with each field's error."""

    id: int
    source_id: str
    received_at: datetime
    endpoint: str
    reason: str
    errors: msgspec.Raw
    status: str


class LiveFeed(msgspec.Struct):
    """What arrived after the seq and quarantine id the caller had seen, newest first."""

    events: list[LiveEvent]
    rejections: list[Rejection]
    last_seq: int
    last_quarantine_id: int


def live_feed(
    db: Database, head: int, after_seq: int | None, after_quarantine: int | None, limit: int = 50
) -> LiveFeed:
    """Events with seq above `after_seq` (the last `limit` when None) up to the loaded `head`."""
    limit = max(1, min(limit, MAX_ROWS))
    low = max(head - limit, 0) if after_seq is None else max(after_seq, head - MAX_ROWS)
    # Literal bounds, so that DuckDB prunes row groups by their zone maps.
    rows = db.execute(
        f"""SELECT seq, source_id, received_at, type, event, user_id, anonymous_id, message_id,
               json_object('properties', properties::JSON, 'traits', traits::JSON, 'context', context::JSON)
        FROM events WHERE seq > {int(low)} AND seq <= {int(head)} ORDER BY seq DESC LIMIT {limit}"""
    )
    events = [
        LiveEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], msgspec.Raw(str(r[8]).encode()))
        for r in rows
    ]
    ((top,),) = db.execute("SELECT coalesce(max(id), 0) FROM quarantine")
    q_low = max(int(top) - limit, 0) if after_quarantine is None else after_quarantine
    rejected = db.execute(
        f"""SELECT id, source_id, received_at, endpoint, reason, errors, status FROM quarantine
        WHERE id > {int(q_low)} ORDER BY id DESC LIMIT {limit}"""
    )
    rejections = [
        Rejection(r[0], r[1], r[2], r[3], r[4], msgspec.Raw(str(r[5]).encode()), str(r[6])) for r in rejected
    ]
    return LiveFeed(events, rejections, max(head, after_seq or 0), max(int(top), after_quarantine or 0))
