"""Rows to events: the mapped, converted columns of a chunk become Segment-shaped event rows.

The JSON of every event (traits or properties, context with `externalIds`) is built by one DuckDB
query over the chunk's Arrow columns rather than row by row in Python. Each event's message id
hashes the row's mapped content, so a re-import of an unchanged row is a duplicate the writer
drops; a record's message id also names the record, so each changed version is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from tailor.collect.validate import EventRows
from tailor.connectors.mapping import SEGMENT_ID_TYPES, Mapping
from tailor.exceptions import StoreError
from tailor.store.database import registered


def arrow_query(cur: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The result of a query as an Arrow table; driver errors carry the SQL."""
    try:
        return cur.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise StoreError(f"{type(e).__name__}: {e}", sql) from e


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _json_text(text: str) -> str:
    """SQL of a constant as JSON text (DuckDB folds it once; its escaping is to_json's)."""
    return f"to_json({_literal(text)})"


def _context_json(ids: list[tuple[str, str]], collection: str, record: list[tuple[str, str]]) -> str:
    """SQL of each event's context JSON: `externalIds` (empty ids left out) and the `record`.

    Concatenated from to_json() of single values rather than to_json() of a list of structs: the
    same text, in half the time. `ids` are (type, SQL of the id); `record` (key, SQL of JSON).
    """
    entries = []
    for id_type, value in ids:
        entry = (
            f"'{{\"type\":' || {_json_text(id_type)} || ',\"id\":' || to_json({value})"
            f' || \',"collection":\' || {_json_text(collection)} || \',"encoding":"none"}}\''
        )
        entries.append(f"CASE WHEN coalesce({value}, '') <> '' THEN {entry} END")
    # concat_ws skips the NULLs (empty ids), and gives '' when all are.
    external = f"concat_ws(',', {', '.join(entries)})" if entries else "''"
    text = f"'{{\"externalIds\":[' || {external} || ']'"
    if record:
        parts = " || ',' || ".join(f"'\"{k}\":' || {v}" for k, v in record)
        text += f" || ',\"record\":{{' || {parts} || '}}'"
    return f"({text} || '}}')"


def _printed(relation: str, stamped: tuple[str, ...]) -> str:
    """The relation with its `stamped` timestamp columns as ISO 8601 text."""
    if not stamped:
        return relation
    replaced = ", ".join(f"strftime({quote(c)}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {quote(c)}" for c in stamped)
    return f"(SELECT * REPLACE ({replaced}) FROM {relation}) AS {relation}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class EventShape:
    """The SQL that turns a chunk (the view `chunk`, with `__line`) into event columns, for one mapping."""

    mapping: Mapping
    source: str
    """The source id the events are stored under (`import:crm`, `postgres:orders`, ...)."""
    collection: str
    """The `collection` of each externalIds entry: the record kind, else the connector's name."""

    def sql(self, columns: list[str], origin: str, stamped: tuple[str, ...] = ()) -> str:
        """The query over `chunk`; `columns` are the chunk's columns in order, `origin` the file or table.

        `stamped` columns are microsecond timestamps (no zone, UTC) the query prints as ISO 8601 text.
        """
        m = self.mapping
        fields = m.fields()
        if m.text_traits:
            data = ", ".join(f"{quote(c)} := {quote(c)}" for c in columns)
        else:
            data = ", ".join(
                f"{quote(f.name or c)} := {quote(c)}{'::JSON' if f.type == 'json' else ''}"
                for c, f in fields.items()
            )
        body = f"to_json(struct_pack({data}))" if data else "'{}'"
        # Record files keep every identifier in externalIds, as the first record import did; other
        # mappings put user and anonymous ids in the event's own userId / anonymousId.
        segment = {} if m.text_traits else {t: c for c, t in m.identifiers.items() if t in SEGMENT_ID_TYPES}
        ids: list[tuple[str, str]] = []
        for column, id_type in m.identifiers.items():
            if id_type not in segment:
                ids.append((id_type, f"trim({quote(column)})"))
        record: list[tuple[str, str]] = []
        if m.record is not None:
            assert m.id is not None
            rid = f"trim({quote(m.id)})"
            ids.insert(0, ("record", f"{_literal(m.record + ':')} || {rid}"))
            record = [("kind", _json_text(m.record)), ("id", f"to_json({rid})")]
            record += [("file", _json_text(origin)), ("line", "CAST(__line AS VARCHAR)")]
        context = _context_json(ids, self.collection, record)
        user = f"nullif(trim({quote(segment['user_id'])}), '')" if "user_id" in segment else "NULL"
        anon = f"nullif(trim({quote(segment['anonymous_id'])}), '')" if "anonymous_id" in segment else "NULL"
        # What a re-import must find unchanged: every mapped value, identifiers included.
        everything = ", ".join(f"{quote('c' + str(i))} := {quote(c)}" for i, c in enumerate(m.columns()))
        content = body if m.text_traits or not everything else f"to_json(struct_pack({everything}))"
        event = quote(m.event_column) if m.event_column else (_literal(m.event) if m.event else "NULL")
        stamp = quote(m.timestamp) if m.timestamp else "NULL::TIMESTAMPTZ"
        rid_sql = f"trim({quote(m.id)})" if m.id else "NULL"
        return f"""SELECT {body} AS body, {content} AS content,
            {context} AS context,
            {user} AS user_id, {anon} AS anonymous_id, {event}::VARCHAR AS event,
            {stamp} AS original_timestamp, {rid_sql}::VARCHAR AS rid, __pos
        FROM {_printed("chunk", stamped)}"""

    def rows(self, cur: duckdb.DuckDBPyConnection, chunk: pa.Table, origin: str) -> EventRows:
        """The event rows of a chunk of converted columns (with `__line`); one per row, in order."""
        names = [n for n in chunk.column_names if n != "__line"]
        # Timestamps are carried as ISO 8601 text in the JSON (`...T10:00:00.000000Z`, as Arrow's
        # strftime prints them): microsecond ones are printed by the query (13x faster, same text).
        stamped = []
        for i, name in enumerate(chunk.column_names):
            kind = chunk.schema.field(i).type
            if not pa.types.is_timestamp(kind) or name == self.mapping.timestamp:
                continue
            if kind.unit == "us":
                chunk = chunk.set_column(i, name, chunk.column(i).cast(pa.timestamp("us")))
                stamped.append(name)
            else:
                text = pc.strftime(chunk.column(i), format="%Y-%m-%dT%H:%M:%SZ")
                chunk = chunk.set_column(i, name, text)
        chunk = chunk.append_column("__pos", pa.array(range(chunk.num_rows), pa.int64()))
        with registered(cur, chunk=chunk):
            out = arrow_query(cur, self.sql(names, origin, tuple(stamped)))
        # DuckDB keeps a scan's order (preserve_insertion_order); sorting every chunk costs a fifth
        # of the query, so the order is checked and restored only if it was not kept.
        positions = out.column("__pos").to_numpy()
        if len(positions) > 1 and not bool((positions[1:] > positions[:-1]).all()):
            out = out.sort_by("__pos")
        return self._event_rows(out)

    def _event_rows(self, out: pa.Table) -> EventRows:
        m = self.mapping
        rows = EventRows()
        n = out.num_rows
        bodies = out.column("body").to_pylist()
        # One pass per row is left: xxhash has no vectorised form (and the ids must stay as they were).
        raw = [c.encode("utf-8", "surrogatepass") for c in out.column("content").to_pylist()]
        digest = xxhash.xxh3_64_hexdigest
        if m.record is not None or m.id is not None:
            prefix = f"record:{m.record}:" if m.record is not None else "row:"
            rids = out.column("rid").to_pylist()
            message_ids = [f"{prefix}{r}:{digest(c)}" for r, c in zip(rids, raw, strict=True)]
        else:
            message_ids = [f"row:{digest(c)}" for c in raw]
        rows.message_id = message_ids
        # dedupe_hash(source, id) for every id, without building "source\0id" text per row.
        head = f"{self.source}\0".encode("utf-8", "surrogatepass")
        hash64 = xxhash.xxh3_64_intdigest
        rows.dedupe_hash = [hash64(head + mid.encode("utf-8", "surrogatepass")) for mid in message_ids]
        kind = m.kind
        rows.type = [kind] * n
        rows.event = out.column("event").to_pylist() if kind == "track" else [None] * n
        rows.name = [None] * n
        rows.user_id = _values(out, "user_id")
        rows.anonymous_id = _values(out, "anonymous_id")
        rows.group_id = [None] * n
        rows.previous_id = [None] * n
        rows.original_timestamp = _values(out, "original_timestamp")
        rows.sent_at = [None] * n
        rows.properties = bodies if kind == "track" else [None] * n
        rows.traits = bodies if kind == "identify" else [None] * n
        rows.context = out.column("context").to_pylist()
        rows.integrations = [None] * n
        rows.raw = list(raw)  # the list type EventRows declares
        return rows


def _values(out: pa.Table, name: str) -> list[Any]:
    """A column as Python values (all None without converting, when it holds none)."""
    column = out.column(name)
    return [None] * len(column) if column.null_count == len(column) else column.to_pylist()
