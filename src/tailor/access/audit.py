"""The audit log: one row per admin action (who, what, on which route, with what outcome).

It holds no personal data: the route's template (`/api/v1/profiles/{id}`), not the URL with its
query string, and identifiers only as they appear in path parameters (profile ids, entry ids).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import msgspec

AUDIT_FILE = "audit.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    status INTEGER NOT NULL,
    detail TEXT
);
"""


class AuditEntry(msgspec.Struct):
    """One admin action."""

    id: int
    at: float
    actor: str
    action: str
    target: str | None
    status: int
    detail: str | None


class AuditLog:
    """Appends and lists admin actions in the data directory's `audit.sqlite`."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def record(
        self, actor: str, action: str, status: int, target: str | None = None, detail: str | None = None
    ) -> None:
        """Appends one action."""
        with self._lock:
            self._db.execute(
                "INSERT INTO audit_log (at, actor, action, target, status, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), actor, action, target, status, detail),
            )

    def entries(self, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        """The latest actions, newest first."""
        where, params = ("WHERE actor = ?", [actor]) if actor else ("", [])
        rows = self._db.execute(
            f"SELECT id, at, actor, action, target, status, detail FROM audit_log {where}"
            " ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [AuditEntry(*r) for r in rows]

    def close(self) -> None:
        """Closes the SQLite connection."""
        self._db.close()
