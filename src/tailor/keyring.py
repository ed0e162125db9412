"""Sources, their write keys and admin tokens, kept in SQLite so they can change while a server runs.

Only SHA-256 hashes of keys and tokens are stored: a key is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tailor.exceptions import TerminalError

KEYRING_FILE = "keyring.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS write_keys (
    key_hash TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id),
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE TABLE IF NOT EXISTS admin_tokens (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class UnknownSourceError(TerminalError):
    """No source of that name exists."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SourceInfo:
    """A source as listed to an operator: never its keys, only how many and their prefixes."""

    id: str
    name: str
    created_at: float
    key_prefixes: tuple[str, ...]


class Keyring:
    """The store of sources, write keys and admin tokens of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._local_changes = 0

    def close(self) -> None:
        """Closes the SQLite connection."""
        self._db.close()

    def version(self) -> tuple[int, int]:
        """A value that changes whenever this keyring or another process commits a change.

        SQLite's data_version only counts other connections' commits, hence the local counter.
        """
        return int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._local_changes

    def add_source(self, name: str) -> tuple[str, str]:
        """Creates a source; returns its id and its first write key."""
        source_id = "src_" + secrets.token_hex(6)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO sources (id, name, created_at) VALUES (?, ?, ?)",
                    (source_id, name, time.time()),
                )
            except sqlite3.IntegrityError as e:
                self._db.execute("ROLLBACK")
                raise TerminalError(f"a source named {name!r} already exists") from e
            key = self._insert_key(source_id)
            self._db.execute("COMMIT")
        self._local_changes += 1
        return source_id, key

    def _insert_key(self, source_id: str) -> str:
        key = "wk_" + secrets.token_urlsafe(24)
        self._db.execute(
            "INSERT INTO write_keys (key_hash, source_id, prefix, created_at) VALUES (?, ?, ?, ?)",
            (_digest(key), source_id, key[:7], time.time()),
        )
        return key

    def source_id(self, name: str) -> str:
        """The id of the source with that name."""
        row = self._db.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownSourceError(f"no source named {name!r}")
        return str(row[0])

    def rotate_key(self, name: str, grace_s: float = 86_400.0) -> str:
        """Issues a new write key for a source; its old keys keep working for `grace_s` seconds."""
        source_id = self.source_id(name)
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "UPDATE write_keys SET expires_at = ?"
            " WHERE source_id = ? AND (expires_at IS NULL OR expires_at > ?)",
            (now + grace_s, source_id, now + grace_s),
        )
        key = self._insert_key(source_id)
        self._db.execute("COMMIT")
        self._local_changes += 1
        return key

    def revoke_keys(self, name: str) -> int:
        """Revokes every live write key of a source at once (no new key); returns how many."""
        source_id = self.source_id(name)
        now = time.time()
        cur = self._db.execute(
            "UPDATE write_keys SET expires_at = ?"
            " WHERE source_id = ? AND (expires_at IS NULL OR expires_at > ?)",
            (now, source_id, now),
        )
        self._local_changes += 1
        return int(cur.rowcount)

    def sources(self) -> list[SourceInfo]:
        """Every source with the prefixes of its live write keys."""
        now = time.time()
        rows = self._db.execute("SELECT id, name, created_at FROM sources ORDER BY created_at").fetchall()
        out = []
        for source_id, name, created_at in rows:
            prefixes = self._db.execute(
                "SELECT prefix FROM write_keys"
                " WHERE source_id = ? AND (expires_at IS NULL OR expires_at > ?)",
                (source_id, now),
            ).fetchall()
            out.append(SourceInfo(source_id, name, created_at, tuple(p for (p,) in prefixes)))
        return out

    def write_key_index(self) -> dict[str, tuple[str, float | None]]:
        """Maps each write key's hash to its source id and expiry time."""
        rows = self._db.execute("SELECT key_hash, source_id, expires_at FROM write_keys").fetchall()
        return {key_hash: (source_id, expires_at) for key_hash, source_id, expires_at in rows}

    def add_admin_token(self, name: str = "admin") -> str:
        """Creates an admin token and returns it; only its hash is kept."""
        token = "at_" + secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO admin_tokens (token_hash, name, created_at) VALUES (?, ?, ?)",
            (_digest(token), name, time.time()),
        )
        self._local_changes += 1
        return token

    def admin_token_hashes(self) -> frozenset[str]:
        """The hashes of every admin token."""
        return frozenset(h for (h,) in self._db.execute("SELECT token_hash FROM admin_tokens"))


class KeyCache:
    """An in-memory view of the keyring for the request path, refreshed when the keyring changes."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._version: tuple[int, int] = (-1, -1)
        self._write_keys: dict[str, tuple[str, float | None]] = {}
        self._admin: frozenset[str] = frozenset()
        self.refresh()

    def refresh(self) -> None:
        """Reloads keys if another process changed the keyring since the last load."""
        version = self._keyring.version()
        if version != self._version:
            self._write_keys = self._keyring.write_key_index()
            self._admin = self._keyring.admin_token_hashes()
            self._version = version

    def source_for(self, write_key: str) -> str | None:
        """The source id a live write key belongs to, or None."""
        entry = self._write_keys.get(_digest(write_key))
        if entry is None:
            return None
        source_id, expires_at = entry
        if expires_at is not None and expires_at <= time.time():
            return None
        return source_id

    def is_admin(self, token: str) -> bool:
        """Whether the token is a known admin token."""
        return _digest(token) in self._admin
