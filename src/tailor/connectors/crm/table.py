"""The CRM's contacts table as a CRM sync reads and writes it, through the engine's dialect.

Reads page through every contact by key (the full key scan that also finds hard deletes), each
page in its own short transaction. Writes are optimistic: `UPDATE ... WHERE key = ? AND
updated_at = ?` with the version the cycle read, stamping `updated_at` with the database's clock;
no row updated means the contact changed meanwhile, and the next cycle merges it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tailor.connectors.crm.spec import CrmSyncSpec
from tailor.connectors.exceptions import ConnectorError, SourceUnavailableError
from tailor.connectors.sqldb import Connection, Dialect


@dataclass(frozen=True)
class Contact:
    """One CRM row: its key (typed, and as text), version, soft-delete mark and mapped columns."""

    key: Any
    contact: str
    version: Any
    """The `updated_at` value as read: what an optimistic write must still find."""
    deleted: bool
    values: dict[str, Any]

    @property
    def changed_at(self) -> datetime | None:
        """The version as an aware time (naive MariaDB DATETIMEs are taken as UTC)."""
        v = self.version
        if not isinstance(v, datetime):
            return None
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class ContactTable:
    """One connection to the CRM and the statements a cycle runs on its contacts table."""

    def __init__(self, name: str, spec: CrmSyncSpec, dialect: Dialect) -> None:
        self.name = name
        self.spec = spec
        self.dialect = dialect
        self._con: Connection | None = None
        s, q = spec, dialect.quote
        self._columns = list(dict.fromkeys([*s.identifiers, *s.fields]))
        wanted = [s.key, s.updated_at, *([s.deleted_at] if s.deleted_at else []), *self._columns]
        self._select = f"SELECT {', '.join(q(c) for c in wanted)} FROM {q(s.table)}"

    def open(self) -> None:
        """Connects (SourceUnavailableError when the database is away)."""
        self._con = self.dialect.connect(self.spec.url)

    def close(self) -> None:
        """Closes the connection (one the server already dropped is just forgotten)."""
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None

    def _run(self, sql: str, params: list[Any], fetch: bool = False) -> tuple[int, list[tuple[Any, ...]]]:
        assert self._con is not None, "open() first"
        try:
            cur = self._con.cursor()
            try:
                cur.execute(sql, params)
                rows = list(cur.fetchall()) if fetch else []
                return int(cur.rowcount or 0), rows
            finally:
                cur.close()
        except Exception as e:
            with contextlib.suppress(Exception):
                self._con.rollback()
            if self.dialect.is_transient(e):
                raise SourceUnavailableError(f"{self.dialect.name} CRM {self.name}: {e}".strip()) from e
            raise ConnectorError(f"{self.dialect.name} CRM {self.name}: {e}\n-- failing SQL:\n{sql}") from e

    def commit(self) -> None:
        """Commits the statements since the last commit (SourceUnavailableError if the link is lost)."""
        assert self._con is not None
        try:
            self._con.commit()
        except Exception as e:
            if self.dialect.is_transient(e):
                raise SourceUnavailableError(f"{self.dialect.name} CRM {self.name}: commit: {e}") from e
            raise ConnectorError(f"{self.dialect.name} CRM {self.name}: commit: {e}") from e

    def contacts(self) -> Iterator[list[Contact]]:
        """Every contact, in pages of `batch_rows` by key."""
        s, q = self.spec, self.dialect.quote
        after: Any = None
        while True:
            where, params = ("", []) if after is None else (f" WHERE {q(s.key)} > %s", [after])
            sql = f"{self._select}{where} ORDER BY {q(s.key)} LIMIT {int(s.batch_rows)}"
            _, rows = self._run(sql, params, fetch=True)
            self.commit()  # a short read transaction per page
            if not rows:
                return
            page = [self._contact(r) for r in rows]
            yield page
            if len(rows) < s.batch_rows:
                return
            after = page[-1].key

    def _contact(self, row: tuple[Any, ...]) -> Contact:
        s = self.spec
        key, version, *rest = row
        deleted = False
        if s.deleted_at:
            deleted = rest[0] is not None
            rest = rest[1:]
        return Contact(key, str(key), version, deleted, dict(zip(self._columns, rest, strict=True)))

    def update(self, contact: Contact, values: dict[str, Any]) -> bool:
        """Writes columns of one contact if it is still at the version read; False if it changed meanwhile."""
        s, q = self.spec, self.dialect.quote
        sets = ", ".join(f"{q(c)} = %s" for c in values)
        sql = (
            f"UPDATE {q(s.table)} SET {sets}, {q(s.updated_at)} = {self.dialect.clock}"
            f" WHERE {q(s.key)} = %s AND {q(s.updated_at)} = %s"
        )
        count, _ = self._run(sql, [*values.values(), contact.key, contact.version])
        return count == 1

    def insert(self, profile_id: str, values: dict[str, Any]) -> bool:
        """Inserts a contact for a profile unless one carries its id already; False if one did."""
        s, d = self.spec, self.dialect
        assert s.profile_column is not None
        columns = [s.profile_column, *values, s.updated_at]
        # The unique profile column makes a repeat (a cycle that crashed after this commit) a no-op.
        sql = d.insert_new_template.format(
            table=d.quote(s.table),
            columns=", ".join(d.quote(c) for c in columns),
            values=", ".join(["%s"] * (len(values) + 1) + [d.clock]),
            key=d.quote(s.profile_column),
        )
        count, _ = self._run(sql, [profile_id, *values.values()])
        return count == 1

    def erase(self, contact: str, mode: str) -> None:
        """Deletes a contact, or blanks its synced and identifier columns (stamping its version)."""
        s, q = self.spec, self.dialect.quote
        if mode == "delete":
            self._run(f"DELETE FROM {q(s.table)} WHERE {q(s.key)} = %s", [contact])
            return
        blank = ", ".join(f"{q(c)} = NULL" for c in self._columns)
        stamp = f"{q(s.updated_at)} = {self.dialect.clock}"
        self._run(f"UPDATE {q(s.table)} SET {blank}, {stamp} WHERE {q(s.key)} = %s", [contact])
