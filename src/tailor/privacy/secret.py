"""The data directory's privacy secret and the keyed hashes (HMAC-SHA256) made with it.

Tombstones of erased people keep only `HMAC(secret, "TYPE:VALUE")` of each identifier: without
the secret the hashes cannot be tested against guessed emails or phone numbers, and with it a
replayed event can still be recognised. The same HMAC is computed in DuckDB SQL (from SHA-256,
as RFC 2104 defines it), so the processing stage and the collector agree on every hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "privacy.key"
_BLOCK = 64  # SHA-256's block size, over which HMAC pads its key


def load_secret(data_dir: Path | None) -> bytes:
    """The data directory's 32-byte secret, created on first use (a fresh one for in-memory stores)."""
    if data_dir is None:
        return secrets.token_bytes(32)
    path = data_dir / SECRET_FILE
    if not path.exists():
        # O_EXCL: two processes starting at once must not each write a different secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
            f.flush()
            os.fsync(f.fileno())
    return path.read_bytes()


class KeyedHash:
    """HMAC-SHA256 of identifiers under one secret, in Python and as a SQL expression."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        self._secret = secret
        padded = secret.ljust(_BLOCK, b"\0")
        self._ipad = bytes(b ^ 0x36 for b in padded).hex()
        self._opad = bytes(b ^ 0x5C for b in padded).hex()

    def of(self, type: str, value: str) -> str:
        """The hex HMAC of one identifier `TYPE:VALUE` (the value normalised as identity keeps it)."""
        message = f"{type}:{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sql(self, type_sql: str, value_sql: str) -> str:
        """SQL computing the same hex HMAC from a type and a value expression."""
        inner = f"sha256(unhex('{self._ipad}') || encode({type_sql} || ':' || {value_sql}))"
        return f"sha256(unhex('{self._opad}') || unhex({inner}))"
