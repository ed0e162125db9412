"""Messages as personal data: the privacy part's export and erasure reach messaging.sqlite.

Registered with `tailor.privacy.registry` when imported. The part finds the data directory from
the DuckDB cursor it is given (its database file's folder) and the person from the `_pp_*`
tables: their profile ids, emails and phone numbers. Erasure deletes their messages, attempts,
hits and queued events (`Outbox.forget`), turns their suppression-list entries into keyed hashes
(so an unsubscribed or bounced address still is not mailed, without being kept), and leaves no
copy behind: secure_delete zeroes the freed pages and the write-ahead log is truncated.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb

from tailor.channels.outbox import MESSAGE_COLUMNS, Outbox, message_from_row
from tailor.channels.store import MESSAGING_FILE, connect, transaction
from tailor.channels.suppression import hashed_address
from tailor.exceptions import StoreError

_PEOPLE = """SELECT (SELECT list(profile_id) FROM _pp_profiles),
                    (SELECT list(value) FROM _pp_keys WHERE type IN ('email', 'phone'))"""


class MessagingRecords:
    """The person's messages in the outbox, for export and erasure."""

    name = "messages"

    def _open(self, cur: duckdb.DuckDBPyConnection) -> tuple[sqlite3.Connection, list[str], list[str]] | None:
        (path,) = cur.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone() or (None,)
        if not path:
            return None
        messaging = Path(path).parent / MESSAGING_FILE
        if not messaging.exists():
            return None
        profiles, addresses = cur.execute(_PEOPLE).fetchone() or (None, None)
        conn = connect(messaging)  # zeroes what it deletes (secure_delete)
        return conn, list(profiles or []), list(addresses or [])

    def export(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        opened = self._open(cur)
        if opened is None:
            return []
        conn, profiles, addresses = opened
        try:
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM outbox WHERE profile_id IN (SELECT value FROM json_each(?))"
                " OR address IN (SELECT value FROM json_each(?)) ORDER BY id",
                (_json(profiles), _json(addresses)),
            ).fetchall()
        finally:
            conn.close()
        out = []
        for row in rows:
            m = message_from_row(row)
            out.append(
                {f: getattr(m, f) for f in m.__struct_fields__ if f != "recipient"}
                | {"recipient": {"address": m.recipient.address, "profile_id": m.recipient.profile_id}}
            )
        return out

    def erase(self, cur: duckdb.DuckDBPyConnection) -> int:
        opened = self._open(cur)
        if opened is None:
            return 0
        conn, profiles, addresses = opened
        try:
            with transaction(conn):
                rows = conn.execute(
                    "SELECT DISTINCT address FROM outbox"
                    " WHERE profile_id IN (SELECT value FROM json_each(?))",
                    (_json(profiles),),
                )
                found = [a for (a,) in rows]
                everyone = sorted(set(addresses) | set(found))
                count = Outbox.forget(conn, profiles, everyone)
                for address in everyone:
                    conn.execute(
                        "UPDATE OR IGNORE suppressions SET address = ?, message_id = NULL WHERE address = ?",
                        (hashed_address(conn, address), address),
                    )
                    conn.execute("DELETE FROM suppressions WHERE address = ?", (address,))
            _truncate_log(conn)
        finally:
            conn.close()
        return count


def _truncate_log(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Copies the write-ahead log into the database and empties it, so that no earlier page image
    holding the person is left in it. SQLite answers busy, without waiting, when another
    connection is in the middle of a checkpoint or a write: tried again for up to ~5 s."""
    for _ in range(attempts):
        (busy, _log, _done) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        time.sleep(0.1)
    raise StoreError("messaging.sqlite: its write-ahead log could not be emptied after an erasure; retry it")


def _json(values: list[str]) -> str:
    import json

    return json.dumps(values)
