"""Scoped admin tokens, console users and their sessions, kept in the data directory's keyring.

Tokens and session ids are stored as SHA-256 hashes (they are long random strings, so a fast hash
is enough); passwords as argon2id hashes (slow on purpose). Tokens made before scopes existed
(`tailor init`, `tailor token`) hold `admin`, so they keep every right.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tailor.access.scopes import parse_scopes
from tailor.exceptions import TerminalError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    disabled_at REAL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    session_hash TEXT PRIMARY KEY,
    csrf_hash TEXT NOT NULL,
    username TEXT NOT NULL REFERENCES console_users(username),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""
_TOKEN_COLUMNS = (
    ("scopes", "TEXT NOT NULL DEFAULT 'admin'"),
    ("prefix", "TEXT"),
    ("revoked_at", "REAL"),
)
_hasher = PasswordHasher()


def digest(secret: str) -> str:
    """SHA-256 of a random secret (token, session id), as the keyring stores it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class AccessError(TerminalError):
    """A user, token or session operation that cannot be done (unknown user, bad password, ...)."""


@dataclass(frozen=True)
class Principal:
    """Who makes an admin request: a token or a console user, with their scopes."""

    kind: str
    name: str
    scopes: frozenset[str]
    session_csrf: str | None = None
    """For a session: the hash of its CSRF token, which unsafe requests must present."""


@dataclass(frozen=True)
class TokenInfo:
    """An admin token as listed: never the token, only its prefix."""

    name: str
    prefix: str | None
    scopes: str
    created_at: float
    revoked: bool


class AccessStore:
    """Tokens with scopes, users, sessions: tables of the keyring's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(admin_tokens)")}
        for column, ddl in _TOKEN_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE admin_tokens ADD COLUMN {column} {ddl}")

    def close(self) -> None:
        """Closes the SQLite connection."""
        self._db.close()

    def version(self) -> int:
        """Changes when any connection commits to the keyring."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0]) + self._local

    _local = 0

    # -- tokens ---------------------------------------------------------------------------------------

    def add_token(self, name: str, scopes: str) -> str:
        """Creates a token with the given comma-separated scopes; returns it (only its hash is kept)."""
        held = ",".join(sorted(parse_scopes(scopes)))
        token = "at_" + secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO admin_tokens (token_hash, name, created_at, scopes, prefix) VALUES (?, ?, ?, ?, ?)",
            (digest(token), name, time.time(), held, token[:8]),
        )
        self._local += 1
        return token

    def revoke_token(self, prefix_or_name: str) -> int:
        """Revokes the tokens with that prefix or name at once; returns how many."""
        cur = self._db.execute(
            "UPDATE admin_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (prefix = ? OR name = ?)",
            (time.time(), prefix_or_name, prefix_or_name),
        )
        self._local += 1
        return int(cur.rowcount)

    def tokens(self) -> list[TokenInfo]:
        """Every token, newest first."""
        rows = self._db.execute(
            "SELECT name, prefix, scopes, created_at, revoked_at IS NOT NULL FROM admin_tokens"
            " ORDER BY created_at DESC"
        ).fetchall()
        return [TokenInfo(n, p, s, c, bool(r)) for n, p, s, c, r in rows]

    def token_index(self) -> dict[str, Principal]:
        """Live tokens by hash."""
        rows = self._db.execute(
            "SELECT token_hash, name, scopes FROM admin_tokens WHERE revoked_at IS NULL"
        ).fetchall()
        return {h: Principal("token", n, parse_scopes(s)) for h, n, s in rows}

    # -- users and sessions ---------------------------------------------------------------------------

    def add_user(self, username: str, password: str, scopes: str) -> None:
        """Creates a console user; the password is kept as an argon2id hash."""
        if (
            not username
            or len(username) > 64
            or not username.replace("_", "").replace(".", "").replace("-", "").isalnum()
        ):
            raise AccessError("a username is 1-64 letters, digits, '.', '-' or '_'")
        if len(password) < 12:
            raise AccessError("a password needs at least 12 characters")
        held = ",".join(sorted(parse_scopes(scopes)))
        try:
            self._db.execute(
                "INSERT INTO console_users VALUES (?, ?, ?, ?, NULL)",
                (username, _hasher.hash(password), held, time.time()),
            )
        except sqlite3.IntegrityError as e:
            raise AccessError(f"a user named {username!r} already exists") from e

    def sign_in(self, username: str, password: str, hours: float) -> tuple[str, str]:
        """Checks a password and opens a session; returns the session id and its CSRF token."""
        row = self._db.execute(
            "SELECT password_hash FROM console_users WHERE username = ? AND disabled_at IS NULL", (username,)
        ).fetchone()
        try:
            if row is None:
                # The same work as a real check, so timing does not tell which usernames exist.
                _hasher.verify(_DUMMY, password)
                raise AccessError("unknown user or wrong password")
            _hasher.verify(row[0], password)
        except (VerificationError, InvalidHashError) as e:
            raise AccessError("unknown user or wrong password") from e
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        self._db.execute(
            "INSERT INTO console_sessions VALUES (?, ?, ?, ?, ?)",
            (digest(session), digest(csrf), username, now, now + hours * 3600),
        )
        self._db.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
        return session, csrf

    def session(self, session_id: str) -> Principal | None:
        """The user of a live session, or None."""
        row = self._db.execute(
            """SELECT u.username, u.scopes, s.csrf_hash FROM console_sessions s
            JOIN console_users u USING (username)
            WHERE s.session_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL""",
            (digest(session_id), time.time()),
        ).fetchone()
        return None if row is None else Principal("user", row[0], parse_scopes(row[1]), row[2])

    def sign_out(self, session_id: str) -> bool:
        """Ends a session; False if it was not open."""
        cur = self._db.execute("DELETE FROM console_sessions WHERE session_hash = ?", (digest(session_id),))
        return bool(cur.rowcount)


_DUMMY = _hasher.hash(secrets.token_urlsafe(16))
