"""The event relay: moves queued tracking events from the messaging database into the event log.

Events are queued in SQLite in the same transaction as the state change they report, and deleted
only once the event writer has stored them durably; after a crash they are submitted again and
the collector's dedupe (source + messageId) stores each once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from tailor.exceptions import OverloadedError

if TYPE_CHECKING:
    from tailor.collect.validate import MessageValidator
    from tailor.collect.writer import EventWriter

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where tracking events go: returns once they are durably stored (or quarantined)."""

    async def write(self, bodies: list[bytes]) -> None:
        """Stores a batch of Segment messages (JSON bytes)."""


class WriterSink:
    """Tailor's own collector path: validate as the collector does, then the event writer's group commit."""

    def __init__(self, validator: MessageValidator, writer: EventWriter, source_id: str) -> None:
        self.validator = validator
        self.writer = writer
        self.source_id = source_id

    async def write(self, bodies: list[bytes]) -> None:
        from tailor.collect.writer import Submission

        now = datetime.now(UTC)
        rows, rejections = self.validator.validate(self.source_id, list(bodies), now)
        for r in rejections:
            log.error("a tracking event was quarantined: %s", r.reason)
        submission = Submission(self.source_id, "batch", now, rows, rejections)
        while True:
            try:
                await asyncio.wrap_future(self.writer.submit(submission))
                return
            except OverloadedError as e:
                await asyncio.sleep(e.retry_after_s)


class EventRelay:
    """Pumps `tracking_events` into a sink, oldest first."""

    def __init__(self, conn: sqlite3.Connection, sink: EventSink, batch: int = 5000) -> None:
        self.conn = conn
        self.sink = sink
        self.batch = batch
        self.relayed = 0

    def pending(self) -> int:
        """Events waiting to be relayed."""
        return int(self.conn.execute("SELECT count(*) FROM tracking_events").fetchone()[0])

    async def pump(self) -> int:
        """Relays one batch; returns how many events it held."""
        rows = self.conn.execute(
            "SELECT id, body FROM tracking_events ORDER BY id LIMIT ?", (self.batch,)
        ).fetchall()
        if not rows:
            return 0
        await self.sink.write([bytes(body) for _, body in rows])
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("DELETE FROM tracking_events WHERE id = ?", [(i,) for i, _ in rows])
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.relayed += len(rows)
        return len(rows)
