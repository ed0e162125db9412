"""Reading the event log and the quarantine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from tailor.store.database import Database, run


class StoredEvent(msgspec.Struct):
    """One committed event as the admin API shows it."""

    seq: int
    source_id: str
    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    received_at: datetime
    properties: msgspec.Raw | None
    context: msgspec.Raw | None
    traits: msgspec.Raw | None


class QuarantineEntry(msgspec.Struct):
    """One quarantined message: why it failed and the payload as received."""

    id: int
    source_id: str
    received_at: datetime
    endpoint: str
    batch_index: int | None
    reason: str
    errors: msgspec.Raw
    status: str
    payload: str
    """The payload as text; bytes that were not UTF-8 are shown as U+FFFD."""
    replayed_seq: int | None


def _raw(text: str | None) -> msgspec.Raw | None:
    return None if text is None else msgspec.Raw(text.encode())


class EventLog:
    """Queries over the committed event log and the quarantine."""

    def __init__(self, db: Database, sync: Callable[[], None] | None = None) -> None:
        self._db = db
        self._sync = sync
        """Called before reading events, to make every acknowledged event readable."""

    def recent(
        self, limit: int = 50, type: str | None = None, source_id: str | None = None
    ) -> list[StoredEvent]:
        """The last committed events, newest first."""
        if self._sync is not None:
            self._sync()
        where, params = _filters({"type": type, "source_id": source_id})
        rows = self._db.execute(
            "SELECT seq, source_id, message_id, type, event, name, user_id, anonymous_id, timestamp,"
            f" received_at, properties, context, traits FROM events {where} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        return [
            StoredEvent(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                _raw(r[10]),
                _raw(r[11]),
                _raw(r[12]),
            )
            for r in rows
        ]

    def quarantine(self, status: str | None = "open", limit: int = 100) -> list[QuarantineEntry]:
        """Quarantined messages, newest first."""
        where, params = _filters({"status": status})
        rows = self._db.execute(f"{_QUARANTINE_SELECT} {where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_entry(r) for r in rows]

    def quarantine_entry(self, entry_id: int) -> QuarantineEntry | None:
        """One quarantined message by id."""
        rows = self._db.execute(f"{_QUARANTINE_SELECT} WHERE id = ?", [entry_id])
        return _entry(rows[0]) if rows else None

    def quarantine_payload(self, entry_id: int) -> bytes | None:
        """The exact bytes of a quarantined message."""
        rows = self._db.execute("SELECT payload FROM quarantine WHERE id = ?", [entry_id])
        return bytes(rows[0][0]) if rows else None

    def discard(self, entry_id: int) -> bool:
        """Marks an open quarantine entry as discarded by an operator; False if it was not open."""
        cur = self._db.cursor()
        try:
            row = run(
                cur,
                "UPDATE quarantine SET status = 'discarded', resolved_at = now()"
                " WHERE id = ? AND status = 'open'"
                " RETURNING id",
                [entry_id],
            ).fetchone()
            return row is not None
        finally:
            cur.close()


_QUARANTINE_SELECT = (
    "SELECT id, source_id, received_at, endpoint, batch_index, reason, errors, status, payload, replayed_seq"
    " FROM quarantine"
)


def _entry(r: tuple[Any, ...]) -> QuarantineEntry:
    payload = bytes(r[8]).decode("utf-8", "replace")
    return QuarantineEntry(
        r[0], r[1], r[2], r[3], r[4], r[5], msgspec.Raw(r[6].encode()), r[7], payload, r[9]
    )


def _filters(equal: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses = [(f'"{column}" = ?', value) for column, value in equal.items() if value is not None]
    if not clauses:
        return "", []
    return "WHERE " + " AND ".join(c for c, _ in clauses), [v for _, v in clauses]
