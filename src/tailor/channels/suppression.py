"""Suppression-list addresses kept as keyed hashes once their person is erased."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3

PREFIX = "hmac:"


def suppression_key(conn: sqlite3.Connection) -> bytes:
    """The key of the hashes (created on first use, kept in the messaging database)."""
    row = conn.execute("SELECT value FROM messaging_settings WHERE name = 'suppression_key'").fetchone()
    if row is None:
        conn.execute(
            "INSERT OR IGNORE INTO messaging_settings (name, value) VALUES ('suppression_key', ?)",
            (secrets.token_hex(32),),
        )
        row = conn.execute("SELECT value FROM messaging_settings WHERE name = 'suppression_key'").fetchone()
    return bytes.fromhex(str(row[0]))


def hashed_address(conn: sqlite3.Connection, address: str, key: bytes | None = None) -> str:
    """The form an erased person's address keeps on the suppression list."""
    digest = hmac.new(key or suppression_key(conn), address.strip().lower().encode(), hashlib.sha256)
    return PREFIX + digest.hexdigest()
