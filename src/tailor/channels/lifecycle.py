"""A message's way through the outbox once the dispatcher has it: claimed, handed over, finished.

The exactly-once rule: a message is marked handed over (committed) just before the last bytes
that make the server act on it leave this process — the SMTP end-of-data dot, the last byte of
an HTTP request body. A crash before that mark leaves the message `sending` with nothing
handed over: it goes back to the queue. A crash after it leaves it handed over: it is counted
as sent and never sent again. What is left in doubt is a few microseconds of straight-line code
between the commit and the socket write, not the wait for the server's reply.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tailor.channels.events import tracking_event
from tailor.channels.outbox import MESSAGE_COLUMNS, StoredMessage, message_from_row
from tailor.channels.policy import Defer, Suppress, Verdict
from tailor.channels.store import transaction

UNCONFIRMED = "handed over; the sender stopped before the server's reply"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits base * 2^(n-1), capped, between half and all of it."""

    base_s: float = 30.0
    max_s: float = 3600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempt`-th failed attempt (1-based)."""
        full = min(self.max_s, self.base_s * 2 ** max(0, attempt - 1))
        return float(full / 2 + (rng or random).uniform(0, full / 2))


@dataclass
class Outcome:
    """What came of one attempt to send a message."""

    message: StoredMessage
    status: str
    """sent, delivered, retry, failed, bounced."""
    at: float
    reason: str | None = None
    reply: str | None = None
    provider_id: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Tracking events to emit with the outcome: (kind, extra properties)."""
    suppress: str | None = None
    """Puts the address on the suppression list with this reason (a hard bounce)."""


def queue_events(conn: sqlite3.Connection, bodies: Sequence[bytes | None]) -> None:
    """Adds tracking events to the relay's queue, in the caller's transaction."""
    conn.executemany("INSERT INTO tracking_events (body) VALUES (?)", [(b,) for b in bodies if b is not None])


def recover(conn: sqlite3.Connection, now: float) -> tuple[int, int]:
    """Settles what a stopped dispatcher left `sending`; returns (requeued, counted as sent).

    Only one dispatcher runs per data directory (the event store's lock guarantees it), so every
    `sending` row at start-up belongs to a process that is gone.
    """
    with transaction(conn):
        unconfirmed = [
            message_from_row(r)
            for r in conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM outbox"
                " WHERE status = 'sending' AND handed_over_at IS NOT NULL"
            )
        ]
        conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, finished_at = ?, reason = ?,"
            " claimed_by = NULL WHERE status = 'sending' AND handed_over_at IS NOT NULL",
            (now, UNCONFIRMED),
        )
        queue_events(
            conn,
            [tracking_event("sent", m, m.handed_over_at or now, {"confirmed": False}) for m in unconfirmed],
        )
        requeued = conn.execute(
            "UPDATE outbox SET status = 'queued', claimed_by = NULL WHERE status = 'sending'"
        ).rowcount
    return requeued, len(unconfirmed)


def due(conn: sqlite3.Connection, now: float, limit: int, channel: str) -> list[StoredMessage]:
    """A channel's queued messages whose time has come, oldest first, in the order they were enqueued
    (read in the claiming transaction)."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM outbox"
        " WHERE status = 'queued' AND channel = ? AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at, id LIMIT ?",
        (channel, now, limit),
    ).fetchall()
    return [message_from_row(r) for r in rows]


def settle_verdicts(
    conn: sqlite3.Connection,
    run_id: str,
    batch: Sequence[StoredMessage],
    verdicts: Sequence[Verdict],
    now: float,
) -> list[StoredMessage]:
    """Claims the messages that may go, records suppressions and deferrals; returns the claimed ones."""
    claimed, suppressed, deferred = [], [], []
    for m, v in zip(batch, verdicts, strict=True):
        if v is None:
            claimed.append((run_id, m.message_id))
        elif isinstance(v, Suppress):
            suppressed.append((now, v.reason, m.message_id))
        elif isinstance(v, Defer):
            deferred.append((v.until, v.reason, m.message_id))
    conn.executemany("UPDATE outbox SET status = 'sending', claimed_by = ? WHERE message_id = ?", claimed)
    conn.executemany(
        "UPDATE outbox SET status = 'suppressed', finished_at = ?, reason = ? WHERE message_id = ?",
        suppressed,
    )
    conn.executemany("UPDATE outbox SET next_attempt_at = ?, reason = ? WHERE message_id = ?", deferred)
    return [m for m, v in zip(batch, verdicts, strict=True) if v is None]


def handed_over(conn: sqlite3.Connection, message_id: str, now: float) -> None:
    """Commits that the message is about to leave this process for good (see the module's docstring)."""
    conn.execute(
        "UPDATE outbox SET handed_over_at = ?, sent_at = ? WHERE message_id = ? AND status = 'sending'",
        (now, now, message_id),
    )


def release(conn: sqlite3.Connection, message_ids: Sequence[str]) -> None:
    """Puts claimed messages that were never handed over back in the queue (a clean stop)."""
    with transaction(conn):
        conn.executemany(
            "UPDATE outbox SET status = 'queued', claimed_by = NULL"
            " WHERE message_id = ? AND status = 'sending' AND handed_over_at IS NULL",
            [(m,) for m in message_ids],
        )


def record(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome], retry: dict[str, RetryPolicy], now: float
) -> None:
    """Records outcomes with their tracking events in one transaction."""
    events: list[bytes | None] = []
    attempts: list[tuple[str, int, float, str, str]] = []
    retries: list[tuple[Any, ...]] = []
    finals: list[tuple[Any, ...]] = []
    suppressions: list[tuple[Any, ...]] = []
    for o in outcomes:
        m = o.message
        attempt = m.attempts + 1
        status = o.status
        if status == "retry" and attempt >= m.max_attempts:
            status = "dead"
            o.reason = f"{o.reason}; gave up after {attempt} attempts"
        if status == "retry":
            wait = retry[m.channel].delay(attempt)
            retries.append((attempt, o.at + wait, o.reason, o.reply, m.message_id))
        else:
            sent_at = o.at if status in ("sent", "delivered") else None
            finals.append(
                (status, attempt, o.at, o.reason, o.reply, o.provider_id, sent_at, sent_at, m.message_id)
            )
        if status not in ("sent", "delivered"):
            attempts.append((m.message_id, attempt, o.at, status, o.reason or o.reply or ""))
        if status == "dead":
            o.events.append(("failed", {"reason": o.reason, "attempts": attempt}))
        if o.suppress is not None:
            suppressions.append((m.channel, m.recipient.address, o.suppress, m.message_id, now))
        events.extend(tracking_event(kind, m, o.at, props) for kind, props in o.events)
    with transaction(conn):
        conn.executemany(
            "UPDATE outbox SET status = 'queued', attempts = ?, next_attempt_at = ?, reason = ?,"
            " reply = ?, claimed_by = NULL, handed_over_at = NULL, sent_at = NULL"
            " WHERE message_id = ?",
            retries,
        )
        # A message handed over keeps the time it left as its sent time.
        conn.executemany(
            "UPDATE outbox SET status = ?, attempts = ?, finished_at = ?, reason = ?, reply = ?,"
            " provider_id = coalesce(?, provider_id), claimed_by = NULL,"
            " sent_at = CASE WHEN ? IS NULL THEN NULL ELSE coalesce(sent_at, ?) END"
            " WHERE message_id = ?",
            finals,
        )
        conn.executemany(
            "INSERT INTO suppressions (channel, address, reason, message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            suppressions,
        )
        conn.executemany(
            "INSERT OR REPLACE INTO outbox_attempts (message_id, attempt, at, outcome, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            attempts,
        )
        queue_events(conn, events)
