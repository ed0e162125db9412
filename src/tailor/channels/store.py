"""The messaging database: one SQLite file holding the outbox and, by contract, a journey runtime's state.

SQLite rather than DuckDB because the outbox is many small transactions (one row claimed, handed
over, finished); bench/outbox_store.py measures both. A journey runtime keeps its instances,
timers and its offset in the event log in this same file, so that one SQLite transaction commits
its state change, the consumed offset and the outbox rows together.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MESSAGING_FILE = "messaging.sqlite"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        idempotency_key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        category TEXT NOT NULL,
        person_key TEXT NOT NULL,
        profile_id TEXT,
        address TEXT NOT NULL,
        recipient TEXT NOT NULL,
        template TEXT NOT NULL,
        template_version INTEGER NOT NULL,
        data TEXT NOT NULL,
        journey_id TEXT,
        campaign_id TEXT,
        step_id TEXT,
        variant_id TEXT,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        created_at REAL NOT NULL,
        not_before REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        claimed_by TEXT,
        handed_over_at REAL,
        sent_at REAL,
        finished_at REAL,
        reason TEXT,
        reply TEXT,
        provider_id TEXT
    )""",
    # Per channel: a channel with nothing due must not scan another channel's queue.
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (channel, next_attempt_at) WHERE status = 'queued'",
    "CREATE INDEX IF NOT EXISTS outbox_sending ON outbox (claimed_by) WHERE status = 'sending'",
    # Frequency caps count a person's recent sends across every channel and journey.
    "CREATE INDEX IF NOT EXISTS outbox_person ON outbox (person_key, sent_at) WHERE sent_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS outbox_profile ON outbox (profile_id) WHERE profile_id IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS outbox_attempts (
        message_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at REAL NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (message_id, attempt)
    )""",
    # Tracking events waiting to be handed to the event writer; written in the same transaction
    # as the state change they report, deleted once the writer has them durably.
    """CREATE TABLE IF NOT EXISTS tracking_events (
        id INTEGER PRIMARY KEY,
        body BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS suppressions (
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        reason TEXT NOT NULL,
        message_id TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, address)
    )""",
    """CREATE TABLE IF NOT EXISTS templates (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        channel TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    """CREATE TABLE IF NOT EXISTS message_hits (
        message_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        link_id TEXT,
        at REAL NOT NULL,
        client TEXT NOT NULL,
        machine_reason TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS message_hits_message ON message_hits (message_id, at)",
    "CREATE TABLE IF NOT EXISTS messaging_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # How far a consumer of the event log (a journey runtime) has read, committed with its state.
    """CREATE TABLE IF NOT EXISTS consumer_offsets (
        consumer TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        updated_at REAL NOT NULL
    )""",
]


def connect(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Opens the messaging database in WAL mode with explicit transactions (`BEGIN IMMEDIATE`).

    Freed content is zeroed (`secure_delete`). In WAL mode synchronous=NORMAL survives a killed
    process (every commit is in the OS's page cache when it returns) but may lose the last commits
    at a power cut; FULL syncs every commit.
    """
    if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA busy_timeout=10000")
    # Every connection zeroes what it deletes or rewrites: a row updated by the dispatcher must not
    # leave its old copy in a page's free space, where an erasure of its person cannot reach it.
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Creates the messaging tables if they do not exist."""
    with transaction(conn):
        for ddl in SCHEMA:
            conn.execute(ddl)


def consumer_offset(conn: sqlite3.Connection, consumer: str) -> int:
    """The last event-log seq a consumer committed (0 before its first)."""
    row = conn.execute("SELECT seq FROM consumer_offsets WHERE consumer = ?", (consumer,)).fetchone()
    return 0 if row is None else int(row[0])


def advance_offset(conn: sqlite3.Connection, consumer: str, seq: int) -> None:
    """Records, in the caller's transaction, that a consumer has applied the event log up to `seq`."""
    if not conn.in_transaction:
        raise RuntimeError("advance_offset must run inside the caller's transaction")
    current = consumer_offset(conn, consumer)
    if seq < current:
        raise ValueError(f"offset of {consumer!r} cannot go back from {current} to {seq}")
    conn.execute(
        "INSERT INTO consumer_offsets (consumer, seq, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
        (consumer, seq, time.time()),
    )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (`BEGIN IMMEDIATE`), committed on success and rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
