"""The tables of the event log, the quarantine and the processing offsets, with their migrations."""

from __future__ import annotations

import pyarrow as pa

# Column order here is the order in which the writer hands Arrow tables to DuckDB. The JSON
# columns are VARCHAR: the collector has already validated them, and DuckDB's JSON type would
# parse every value again on insert (measured: 1.5x slower appends); DuckDB's JSON functions
# read VARCHAR just the same.
EVENT_COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("seq", "BIGINT NOT NULL", pa.int64()),
    ("source_id", "VARCHAR NOT NULL", pa.string()),
    ("message_id", "VARCHAR NOT NULL", pa.string()),
    ("dedupe_hash", "UBIGINT NOT NULL", pa.uint64()),
    ("type", "VARCHAR NOT NULL", pa.string()),
    ("event", "VARCHAR", pa.string()),
    ("name", "VARCHAR", pa.string()),
    ("user_id", "VARCHAR", pa.string()),
    ("anonymous_id", "VARCHAR", pa.string()),
    ("group_id", "VARCHAR", pa.string()),
    ("previous_id", "VARCHAR", pa.string()),
    ("timestamp", "TIMESTAMPTZ NOT NULL", pa.timestamp("us", tz="UTC")),
    ("original_timestamp", "TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    ("sent_at", "TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
    ("received_at", "TIMESTAMPTZ NOT NULL", pa.timestamp("us", tz="UTC")),
    ("properties", "VARCHAR", pa.string()),
    ("traits", "VARCHAR", pa.string()),
    ("context", "VARCHAR", pa.string()),
    ("integrations", "VARCHAR", pa.string()),
)

QUARANTINE_COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("id", "BIGINT NOT NULL", pa.int64()),
    ("source_id", "VARCHAR NOT NULL", pa.string()),
    ("received_at", "TIMESTAMPTZ NOT NULL", pa.timestamp("us", tz="UTC")),
    ("endpoint", "VARCHAR NOT NULL", pa.string()),
    ("batch_index", "INTEGER", pa.int32()),
    ("reason", "VARCHAR NOT NULL", pa.string()),
    ("errors", "JSON NOT NULL", pa.string()),
    ("payload", "BLOB NOT NULL", pa.binary()),
)

EVENT_SCHEMA = pa.schema([(name, arrow) for name, _, arrow in EVENT_COLUMNS])
QUARANTINE_SCHEMA = pa.schema([(name, arrow) for name, _, arrow in QUARANTINE_COLUMNS])


def _columns(columns: tuple[tuple[str, str, pa.DataType], ...], text_compression: str = "") -> str:
    def column(name: str, sql: str) -> str:
        if text_compression and sql.startswith("VARCHAR"):
            sql = sql.replace("VARCHAR", f"VARCHAR USING COMPRESSION {text_compression}", 1)
        return f'"{name}" {sql}'

    return ",\n    ".join(column(name, sql) for name, sql, _ in columns)


MIGRATIONS: tuple[str, ...] = (
    # 1: the event log, the quarantine and per-stage offsets. The log's text columns (mostly JSON)
    # are compressed with zstd whatever `[store] compression` says for other tables: measured on
    # the synthetic base (150,000 events), DuckDB's own choice (dictionary/FSST analysis)
    # checkpoints at 3.5 us/event into 226 bytes/event, zstd at 1.3 us/event into 131, for full
    # scans about 1.6x slower; ingest is the hot path. (Stores created before this clause hold
    # `compression = "zstd"` in their tailor.toml, which forces it on every table as before.)
    f"""
    CREATE TABLE events (
        {_columns(EVENT_COLUMNS, text_compression="zstd")}
    );
    CREATE TABLE quarantine (
        {_columns(QUARANTINE_COLUMNS)},
        status VARCHAR NOT NULL DEFAULT 'open',
        resolved_at TIMESTAMPTZ,
        replayed_seq BIGINT
    );
    CREATE TABLE stage_offsets (
        stage VARCHAR PRIMARY KEY,
        "offset" BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: records imported from other systems (CRM, call centre, e-commerce), one row per record id.
    """
    CREATE TABLE records (
        kind VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        fields VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        row_number BIGINT NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (kind, record_id)
    );
    """,
    # 3: the seq of the event that carried each record's latest version (records are events now).
    """
    ALTER TABLE records ADD COLUMN seq BIGINT;
    """,
)
