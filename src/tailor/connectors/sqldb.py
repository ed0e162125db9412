"""PostgreSQL and MySQL/MariaDB as connectors see them: one dialect object per engine.

Each dialect knows how to connect from a URL, quote a name, write an upsert and tell a lost
connection (worth retrying later) from a query that is wrong; business code never asks which
engine it talks to. psycopg 3 serves PostgreSQL, PyMySQL MySQL and MariaDB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from tailor.connectors.exceptions import ConnectorError, SourceUnavailableError


class Connection(Protocol):
    """The part of a DB-API connection connectors use."""

    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def resolve_secret(value: str) -> str:
    """A declared value, or the environment variable it names as `env:NAME` (for passwords in URLs)."""
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConnectorError(f"the environment variable {name} is not set")
        return os.environ[name]
    return value


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines connectors read from and write to."""

    name: str
    quote_char: str
    upsert_template: str
    """An INSERT that updates on a key conflict: {table}, {columns}, {values}, {key}, {updates}."""
    update_template: str
    """How one column takes its proposed value in the upsert: {c} is the quoted column."""
    clock: str = "CURRENT_TIMESTAMP"
    """The current time with sub-second precision, as a CRM sync stamps the rows it writes."""
    insert_new_template: str = ""
    """An INSERT that does nothing (0 rows) when a unique column {key} already holds the value."""

    def quote(self, name: str) -> str:
        """A quoted identifier; dotted names are quoted part by part (schema.table)."""
        q = self.quote_char
        return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))

    def upsert(self, table: str, columns: Sequence[str], key: str) -> str:
        """The upsert statement of rows of `columns` keyed by `key`, with %s placeholders."""
        quoted = [self.quote(c) for c in columns]
        updates = ", ".join(self.update_template.format(c=c) for c in quoted if c != self.quote(key))
        return self.upsert_template.format(
            table=self.quote(table),
            columns=", ".join(quoted),
            values=", ".join(["%s"] * len(columns)),
            key=self.quote(key),
            updates=updates or f"{self.quote(key)} = {self.quote(key)}",
        )

    def connect(self, url: str) -> Connection:
        """A new connection from a URL (`postgresql://user@host:port/db`, `mysql://user@host/db`)."""
        url = resolve_secret(url)
        try:
            if self.name == "postgres":
                import psycopg

                return psycopg.connect(url, connect_timeout=10)
            import pymysql

            parts = urlsplit(url)
            return pymysql.connect(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                database=parts.path.lstrip("/") or None,
                connect_timeout=10,
                charset="utf8mb4",
            )
        except Exception as e:
            if self.is_transient(e):
                raise SourceUnavailableError(f"{self.name}: cannot connect: {e}") from e
            raise ConnectorError(f"{self.name}: cannot connect: {e}") from e

    def is_transient(self, error: BaseException) -> bool:
        """Whether an error is a lost or refused connection (retry later) rather than a wrong query."""
        if self.name == "postgres":
            import psycopg

            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        import pymysql

        if isinstance(error, pymysql.err.InterfaceError):
            return True
        # 1044/1045/1049 (access denied, unknown database) are operational errors that will not pass.
        code = error.args[0] if isinstance(error, pymysql.err.OperationalError) and error.args else None
        return isinstance(error, pymysql.err.OperationalError) and code not in (1044, 1045, 1049)


POSTGRES = Dialect(
    "postgres",
    '"',
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE SET {updates}",
    "{c} = EXCLUDED.{c}",
    "clock_timestamp()",
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING",
)
MYSQL = Dialect(
    "mysql",
    "`",
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON DUPLICATE KEY UPDATE {updates}",
    "{c} = VALUES({c})",
    "CURRENT_TIMESTAMP(6)",
    "INSERT INTO {table} ({columns}) VALUES ({values}) ON DUPLICATE KEY UPDATE {key} = {key}",
)
DIALECTS = {"postgres": POSTGRES, "mysql": MYSQL}


def dialect_of(url: str) -> Dialect:
    """The dialect a connection URL names by its scheme."""
    scheme = urlsplit(resolve_secret(url)).scheme.split("+")[0]
    if scheme in ("postgres", "postgresql"):
        return POSTGRES
    if scheme in ("mysql", "mariadb"):
        return MYSQL
    raise ConnectorError(f"unknown database URL scheme {scheme!r}: use postgresql:// or mysql://")
