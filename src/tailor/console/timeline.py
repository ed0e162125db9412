"""A person's timeline: every touch of every identifier merged into them, newest first, page by page.

Each touch carries the channel it came through and the kind of device, worked out as the profile
API does (`TOUCH_CHANNEL`, `DEVICE_KIND`), so the console can draw one icon for each. The person's
events are found through their identifiers' hubs; their seqs are read first and then looked up as
a literal list, which lets DuckDB skip every row group of the log holding none of them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from tailor.identity.service import DEVICE_KIND, TOUCH_CHANNEL, IdentityService
from tailor.store.database import Database

MAX_PAGE = 500
ORDER_BY_TIME_UP_TO = 20_000
"""A person with more events than this (a bot, a shared kiosk) is paged by arrival instead of by time."""


class Touch(msgspec.Struct):
    """One event of the person, as the timeline shows it."""

    seq: int
    at: datetime
    type: str
    event: str | None
    name: str | None
    source_id: str
    channel: str
    device: str | None
    device_id: str | None
    identifier: str | None
    """The user id or anonymous id the event was sent with."""
    summary: msgspec.Raw | None
    """The event's properties (or an identify call's traits), as sent."""


class Timeline(msgspec.Struct):
    """A page of a person's touches, newest first."""

    profile_id: str
    total: int
    offset: int
    touches: list[Touch]


def person_seqs(db: Database, profile_id: str) -> list[int]:
    """The seqs of every event of a profile's identifiers."""
    rows = db.execute(
        """SELECT DISTINCT seq FROM identity_event_hubs
        WHERE k IN (SELECT k FROM identity_nodes WHERE profile_id = ?)""",
        [profile_id],
    )
    return [int(s) for (s,) in rows]


def _newest_first(db: Database, seqs: list[int]) -> list[int]:
    """The seqs ordered by their events' time, newest first (imports arrive late with old times)."""
    if len(seqs) > ORDER_BY_TIME_UP_TO:
        return sorted(seqs, reverse=True)
    rows = db.execute(
        f"SELECT seq FROM events WHERE seq IN ({_listed(seqs)}) ORDER BY timestamp DESC, seq DESC"
    )
    return [int(s) for (s,) in rows]


def _listed(seqs: list[int]) -> str:
    return ", ".join(str(int(s)) for s in seqs)


def timeline(
    db: Database, identity: IdentityService, profile_id: str, offset: int = 0, limit: int = 100
) -> Timeline:
    """Up to `limit` touches of a (current or absorbed) profile id, newest first, from `offset` on."""
    pid = identity.resolve_id(profile_id)
    seqs = person_seqs(db, pid)
    ordered = _newest_first(db, seqs) if seqs else []
    page = ordered[offset : offset + max(1, min(limit, MAX_PAGE))]
    touches: list[Touch] = []
    if page:
        rows = db.execute(
            f"""SELECT seq, timestamp, type, event, name, source_id, {TOUCH_CHANNEL}, {DEVICE_KIND},
                   json_extract_string(context, '$.device.id'), coalesce(user_id, anonymous_id),
                   CASE WHEN type = 'identify' THEN traits ELSE properties END
            FROM events WHERE seq IN ({_listed(page)})"""
        )
        by_seq = {int(r[0]): r for r in rows}
        for seq in page:
            r = by_seq.get(seq)
            if r is None:  # erased or expired between the two reads
                continue
            raw = None if r[10] is None else msgspec.Raw(str(r[10]).encode())
            touches.append(
                Touch(seq, r[1], r[2], r[3], r[4], r[5], str(r[6] or "server"), r[7], r[8], r[9], raw)
            )
    return Timeline(pid, len(seqs), offset, touches)
