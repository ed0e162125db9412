"""Durable connector state in SQLite: cursors of incremental sources and the history of every run.

SQLite rather than DuckDB because these are many small transactions, and because `tailor
connectors status` must read them while `tailor serve` holds the DuckDB file (as with the keyring).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

STATE_FILE = "connectors.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    connector TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    type TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    rows_read INTEGER NOT NULL DEFAULT 0,
    rows_written INTEGER NOT NULL DEFAULT 0,
    rows_skipped INTEGER NOT NULL DEFAULT 0,
    rows_failed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    cursor_before TEXT,
    cursor_after TEXT,
    details TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_connector ON runs (connector, id);
"""


class Run(msgspec.Struct):
    """One run of a connector as its history keeps it."""

    id: int
    connector: str
    type: str
    started_at: float
    finished_at: float | None
    status: str
    """running, ok (everything done), partial (some rows quarantined or dead-lettered), failed."""
    rows_read: int
    rows_written: int
    rows_skipped: int
    rows_failed: int
    error: str | None
    cursor_before: str | None
    cursor_after: str | None
    details: str | None
    """JSON with what the kind of connector adds (batches sent, dead letters, conflicts, ...)."""


class RunCounts(msgspec.Struct):
    """The counts a run reports when it finishes."""

    rows_read: int = 0
    rows_written: int = 0
    rows_skipped: int = 0
    rows_failed: int = 0


def connect_state(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to a connectors state file, shareable between threads, with `schema` applied.

    WAL with synchronous FULL: a cursor or a merge base is moved on only after what it covers is
    stored, so a committed one must not be lost.
    """
    con = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.executescript(schema)
    return con


class ConnectorState:
    """The connectors' SQLite file of a data directory; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con = connect_state(path, _SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data_dir: Path) -> ConnectorState:
        """The state file of a data directory."""
        return cls(data_dir / STATE_FILE)

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, params).fetchall()

    def cursor(self, connector: str) -> Any:
        """The stored cursor of an incremental source (decoded JSON), or None before its first run."""
        rows = self._all("SELECT value FROM cursors WHERE connector = ?", (connector,))
        return msgspec.json.decode(rows[0][0]) if rows else None

    def set_cursor(self, connector: str, value: Any) -> None:
        """Stores a source's cursor durably (committed before returning)."""
        text = msgspec.json.encode(value).decode()
        self._all(
            "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (connector) DO UPDATE"
            " SET value = excluded.value, updated_at = excluded.updated_at",
            (connector, text, time.time()),
        )

    def reset_cursor(self, connector: str) -> None:
        """Forgets a source's cursor: its next run reads everything again (duplicates store nothing)."""
        self._all("DELETE FROM cursors WHERE connector = ?", (connector,))

    def start_run(self, connector: str, type: str, cursor: Any = None) -> int:
        """Records that a run started; returns its id."""
        before = None if cursor is None else msgspec.json.encode(cursor).decode()
        with self._lock:
            cur = self._con.execute(
                "INSERT INTO runs (connector, type, started_at, status, cursor_before)"
                " VALUES (?, ?, ?, 'running', ?)",
                (connector, type, time.time(), before),
            )
            return int(cur.lastrowid or 0)

    def progress(self, run_id: int, counts: RunCounts, cursor: Any = None) -> None:
        """Updates a running run's counts (and cursor), so status shows a long run moving."""
        after = None if cursor is None else msgspec.json.encode(cursor).decode()
        self._all(
            "UPDATE runs SET rows_read = ?, rows_written = ?, rows_skipped = ?, rows_failed = ?,"
            " cursor_after = coalesce(?, cursor_after) WHERE id = ?",
            (counts.rows_read, counts.rows_written, counts.rows_skipped, counts.rows_failed, after, run_id),
        )

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: RunCounts,
        error: str | None = None,
        cursor: Any = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Records how a run ended."""
        self.progress(run_id, counts, cursor)
        text = None if details is None else msgspec.json.encode(details).decode()
        self._all(
            "UPDATE runs SET finished_at = ?, status = ?, error = ?, details = ? WHERE id = ?",
            (time.time(), status, error, text, run_id),
        )

    def abandon_running(self) -> int:
        """Marks runs left 'running' by a process that died as failed; returns how many."""
        with self._lock:
            cur = self._con.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?,"
                " error = 'the process running it stopped before it finished' WHERE status = 'running'",
                (time.time(),),
            )
            return cur.rowcount

    def runs(self, connector: str | None = None, limit: int = 20) -> list[Run]:
        """The latest runs, newest first (of one connector, or of all)."""
        where, params = ("WHERE connector = ?", (connector,)) if connector else ("", ())
        rows = self._all(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [Run(*r) for r in rows]

    def last_runs(self) -> dict[str, Run]:
        """Each connector's latest run."""
        rows = self._all("SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY connector)")
        return {r[1]: Run(*r) for r in rows}

    def last_success(self) -> dict[str, float]:
        """When each connector last finished a run that was not a failure."""
        rows = self._all(
            "SELECT connector, max(finished_at) FROM runs"
            " WHERE status IN ('ok', 'partial') GROUP BY connector"
        )
        return {name: at for name, at in rows}

    def close(self) -> None:
        """Closes the file."""
        with self._lock:
            self._con.close()
