"""The merge base of CRM syncs: per (connector, contact, field) the value both sides last agreed on.

Kept in the connectors' SQLite file (`crm_base`), next to cursors and run history. A contact's
rows change only after the side that was written acknowledged it: the event writer's durable
receipt, or the CRM's commit. A crash in between leaves the old base; the next cycle then finds
both sides equal and only moves the base (or finds the CRM change again and imports it again,
a duplicate the writer drops), so nothing is lost or written twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from tailor.connectors.crm.merge import Base
from tailor.connectors.state import STATE_FILE, connect_state

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crm_base (
    connector TEXT NOT NULL,
    contact TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT,
    tailor_seq INTEGER NOT NULL,
    PRIMARY KEY (connector, contact, field)
);
CREATE TABLE IF NOT EXISTS crm_erasures (
    connector TEXT NOT NULL,
    contact TEXT NOT NULL,
    erasure_id TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connector, contact)
);
"""

BaseRow = tuple[str, str, str | None, int]
"""(contact, field, value, tailor_seq)."""


class MergeBase:
    """The merge bases and pending erasures of every CRM sync of a data directory."""

    def __init__(self, path: Path) -> None:
        self._con = connect_state(path, _SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, data_dir: Path) -> MergeBase:
        """The merge base in a data directory's connectors state file."""
        return cls(data_dir / STATE_FILE)

    def load(self, connector: str) -> dict[str, dict[str, Base]]:
        """Every contact's base, by contact and field."""
        with self._lock:
            rows = self._con.execute(
                "SELECT contact, field, value, tailor_seq FROM crm_base WHERE connector = ?", (connector,)
            ).fetchall()
        out: dict[str, dict[str, Base]] = {}
        for contact, field, value, seq in rows:
            out.setdefault(contact, {})[field] = Base(value, int(seq))
        return out

    def store(self, connector: str, rows: Iterable[BaseRow]) -> None:
        """Records agreed values, in one transaction."""
        with self._lock:
            self._con.execute("BEGIN")
            try:
                self._con.executemany(
                    "INSERT INTO crm_base VALUES (?, ?, ?, ?, ?) ON CONFLICT (connector, contact, field)"
                    " DO UPDATE SET value = excluded.value, tailor_seq = excluded.tailor_seq",
                    [(connector, *r) for r in rows],
                )
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def forget(self, connector: str, contacts: Iterable[str]) -> None:
        """Drops the bases of contacts that were deleted or erased."""
        with self._lock:
            self._con.executemany(
                "DELETE FROM crm_base WHERE connector = ? AND contact = ?", [(connector, c) for c in contacts]
            )

    def request_erasure(self, connector: str, contacts: Iterable[str], erasure_id: str) -> None:
        """Queues contacts of an erased person for the next cycle, and forgets their bases (personal data)."""
        pending = [(connector, c, erasure_id) for c in contacts]
        with self._lock:
            self._con.execute("BEGIN")
            self._con.executemany(
                "INSERT OR IGNORE INTO crm_erasures (connector, contact, erasure_id) VALUES (?, ?, ?)",
                pending,
            )
            self._con.executemany(
                "DELETE FROM crm_base WHERE connector = ? AND contact = ?",
                [(connector, c) for _, c, _ in pending],
            )
            self._con.execute("COMMIT")

    def erasures(self, connector: str, done: bool = False) -> list[str]:
        """Contacts waiting to be deleted or blanked in the CRM (or, `done`, those already treated)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT contact FROM crm_erasures WHERE connector = ? AND done = ?", (connector, int(done))
            )
            return [c for (c,) in rows.fetchall()]

    def erased(self, connector: str, contacts: Iterable[str]) -> None:
        """Marks contacts as treated in the CRM (after its commit); they are never synced again."""
        with self._lock:
            self._con.executemany(
                "UPDATE crm_erasures SET done = 1 WHERE connector = ? AND contact = ?",
                [(connector, c) for c in contacts],
            )

    def close(self) -> None:
        """Closes the file."""
        with self._lock:
            self._con.close()
