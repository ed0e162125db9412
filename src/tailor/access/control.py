"""Access control of one running data directory: who a request is, what it may do, how often."""

from __future__ import annotations

import threading
from pathlib import Path

from tailor.access.audit import AUDIT_FILE, AuditLog
from tailor.access.config import AccessConfig
from tailor.access.ratelimit import RateLimiter
from tailor.access.store import AccessStore, Principal, digest
from tailor.keyring import KEYRING_FILE


class AccessControl:
    """Scoped tokens (cached in memory), sessions, rate limiters and the audit log."""

    def __init__(self, data_dir: Path, config: AccessConfig) -> None:
        self.config = config
        self.store = AccessStore(data_dir / KEYRING_FILE)
        self.audit = AuditLog(data_dir / AUDIT_FILE)
        self.write_keys = RateLimiter(config.write_key_rate, config.write_key_burst)
        self.admin_limits = RateLimiter(config.token_rate, config.token_burst)
        self._tokens: dict[str, Principal] = {}
        self._version = -1
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Reloads tokens when the keyring changed (another process may add or revoke them)."""
        version = self.store.version()
        if version != self._version:
            with self._lock:
                self._tokens = self.store.token_index()
                self._version = version

    def token(self, token: str) -> Principal | None:
        """The principal of a live admin token, or None."""
        found = self._tokens.get(digest(token))
        if found is None:
            self.refresh()  # a token made a moment ago by `tailor token` in another process
            found = self._tokens.get(digest(token))
        return found

    def close(self) -> None:
        """Closes the SQLite connections."""
        self.store.close()
        self.audit.close()
