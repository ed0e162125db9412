"""PostgreSQL and MySQL/MariaDB tables or queries as sources, full or incremental.

Incremental reads page through the rows in (cursor column, key column) order: each page is
converted, submitted to the event writer, and only once its receipt says the events are durable
is the cursor (the last row's cursor and key values) stored. A source that goes away mid-read
leaves the cursor at the last stored page, and the next run resumes there; a row read twice (a
crash between storing a page and storing the cursor, or `lookback_s`) is a duplicate the writer
drops, because event ids hash the row's content.

`lookback_s` re-reads rows whose `updated_at` lies that far behind the cursor: a transaction that
commits late with an older timestamp is otherwise never seen (a known trap of timestamp cursors).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import msgspec
import pyarrow as pa

from tailor.collect.writer import EventWriter
from tailor.connectors.events import EventShape
from tailor.connectors.exceptions import ConnectorError, SourceUnavailableError
from tailor.connectors.files import RowChunk
from tailor.connectors.importer import EventImport, ImportCounts
from tailor.connectors.mapping import Mapping
from tailor.connectors.sqldb import Dialect, dialect_of
from tailor.store.database import Database


class SqlSourceSpec(msgspec.Struct, forbid_unknown_fields=True, tag="sql_source", tag_field="type"):
    """A table or query of a PostgreSQL or MySQL/MariaDB database, read on an interval."""

    url: str
    """Connection URL, `postgresql://user@host:5432/db` or `mysql://user@host:3306/db` (or `env:VAR`)."""
    mapping: Mapping
    """How each row becomes an event."""
    table: str | None = None
    """The table to read (schema.table allowed); or give `query`."""
    query: str | None = None
    """A SELECT to read instead of a table; its columns are what the mapping names."""
    mode: Literal["incremental", "full"] = "incremental"
    """incremental: rows past the stored cursor; full: every row, every run (unchanged rows store nothing)."""
    cursor: str | None = None
    """The column that grows as rows change (`updated_at`, or an id); incremental mode needs it."""
    key: str | None = None
    """A unique column that orders rows with the same cursor value (the primary key)."""
    batch_rows: int = 50_000
    """Rows per page: one durable write and one cursor step."""
    lookback_s: float = 0
    """Seconds behind a timestamp cursor that each run reads again (late commits)."""
    interval_s: float = 300
    """Seconds between two scheduled runs."""

    def problems(self) -> list[str]:
        """What is wrong with the declaration, each with its field."""
        out = []
        if (self.table is None) == (self.query is None):
            out.append("table/query: give exactly one of them")
        if self.mode == "incremental" and not self.cursor:
            out.append("cursor: incremental mode needs the column that grows as rows change")
        if self.batch_rows < 1:
            out.append("batch_rows: must be at least 1")
        return out + [f"mapping.{p}" for p in self.mapping.problems()]


PageHook = Callable[[int], None]
"""Called after each page is durably stored and the cursor moved, with the page's number (tests)."""


def _column(values: list[Any]) -> pa.Array:
    converted = [float(v) if isinstance(v, Decimal) else v for v in values]
    try:
        return pa.array(converted)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _cursor_value(value: Any) -> Any:
    """A cursor value as JSON can keep it (timestamps as ISO text, decimals as text)."""
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return str(value)
    return value


def _from_cursor(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    return value


class SqlSource:
    """One declared database source: reads pages and imports them, moving its cursor as they are stored."""

    def __init__(self, name: str, spec: SqlSourceSpec) -> None:
        problems = spec.problems()
        if problems:
            raise ConnectorError(f"connector {name}: " + "; ".join(problems))
        self.name = name
        self.spec = spec
        self.dialect: Dialect = dialect_of(spec.url)
        self.source_id = f"{self.dialect.name}:{name}"
        self.counts = ImportCounts()
        """What the current (or last) run stored, kept up to date page by page."""

    def _select(self, after: Any, lookback: bool) -> tuple[str, list[Any]]:
        s, q = self.spec, self.dialect.quote
        origin = q(s.table) if s.table else f"({s.query}) AS src"
        order = [c for c in (s.cursor, s.key) if c and (c != s.cursor or s.mode == "incremental")]
        if s.mode == "full" and s.key:
            order = [s.key]
        where, params = "", []
        if after is not None:
            if s.mode == "incremental" and s.cursor:
                value, key = after
                if lookback and isinstance(value, datetime) and s.lookback_s > 0:
                    where, params = f"WHERE {q(s.cursor)} >= %s", [value - timedelta(seconds=s.lookback_s)]
                elif s.key and s.key != s.cursor:
                    where = f"WHERE ({q(s.cursor)} > %s OR ({q(s.cursor)} = %s AND {q(s.key)} > %s))"
                    params = [value, value, key]
                else:
                    where, params = f"WHERE {q(s.cursor)} > %s", [value]
            elif s.key:
                where, params = f"WHERE {q(s.key)} > %s", [after[1]]
        order_by = f" ORDER BY {', '.join(q(c) for c in order)}" if order else ""
        limit = f" LIMIT {int(s.batch_rows)}" if order else ""
        return f"SELECT * FROM {origin} {where}{order_by}{limit}", params

    def _position(self, row: dict[str, Any]) -> tuple[Any, Any]:
        s = self.spec
        value = row.get(s.cursor) if s.cursor else None
        key = row.get(s.key) if s.key else None
        return value, key

    def run(
        self,
        db: Database,
        writer: EventWriter,
        cursor: Any,
        store_cursor: Callable[[Any], None],
        on_page: PageHook | None = None,
    ) -> ImportCounts:
        """Reads every page past `cursor`; `store_cursor` is called after each durable page."""
        s = self.spec
        shape = EventShape(s.mapping, self.source_id, s.mapping.record or self.name)
        origin = s.table or "query"
        run = EventImport(db, writer, shape, f"{self.dialect.name}:{origin}", "row", endpoint=self.source_id)
        self.counts = run.counts
        full_scan = s.mode == "full"
        after = None if full_scan else _decode_position(cursor)
        lookback = after is not None
        page = 0
        number = 0
        try:
            con = self.dialect.connect(s.url)
            try:
                checked = False
                while True:
                    sql, params = self._select(after, lookback)
                    lookback = False
                    rows, names = self._fetch(con, sql, params)
                    if not checked:
                        s.mapping.check_columns(names, f"connector {self.name}")
                        checked = True
                    if not rows:
                        break
                    chunk = self._chunk(rows, names, number)
                    number += len(rows)
                    receipt = run.submit(chunk).result()  # durable before the cursor moves
                    run.collect(receipt)
                    last = dict(zip(names, rows[-1], strict=True))
                    after = self._position(last)
                    if not full_scan:
                        store_cursor(_encode_position(after))
                    page += 1
                    if on_page is not None:
                        on_page(page)
                    if len(rows) < s.batch_rows or not (s.key or s.cursor):
                        break
            finally:
                # A connection the server already dropped cannot be closed cleanly.
                with contextlib.suppress(Exception):
                    con.close()
        finally:
            run.close()
        writer.flush()
        return run.counts

    def _fetch(self, con: Any, sql: str, params: list[Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
        try:
            cur = con.cursor()
            try:
                cur.execute(sql, params)
                names = [d[0] for d in cur.description or []]
                rows = list(cur.fetchall())
            finally:
                cur.close()
            con.commit()  # ends the read transaction: a long-lived snapshot would hold back vacuum
            return rows, names
        except Exception as e:
            if self.dialect.is_transient(e):
                raise SourceUnavailableError(f"{self.dialect.name} source {self.name}: {e}".strip()) from e
            raise ConnectorError(
                f"{self.dialect.name} source {self.name}: {e}\n-- failing SQL:\n{sql}"
            ) from e

    def _chunk(self, rows: list[tuple[Any, ...]], names: list[str], start: int) -> RowChunk:
        columns = {n: _column([r[i] for r in rows]) for i, n in enumerate(names)}

        def payload(i: int) -> bytes:
            return msgspec.json.encode(dict(zip(names, rows[i], strict=True)), enc_hook=str)

        numbers = list(range(start + 1, start + len(rows) + 1))
        return RowChunk(columns, numbers, payload, [], start + len(rows))


def _encode_position(position: tuple[Any, Any]) -> list[Any]:
    return [_cursor_value(position[0]), _cursor_value(position[1])]


def _decode_position(stored: Any) -> tuple[Any, Any] | None:
    if stored is None:
        return None
    value, key = stored
    return _from_cursor(value), _from_cursor(key)
