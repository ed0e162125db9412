"""Importing CSV files of records from other systems (CRM, call centre, guest checkouts).

Each good row becomes an event in the event log: an `identify` of the record, whose traits are
the row's columns kept as text exactly as the source system wrote them (identity resolution
cleans and matches the values later, and keeping the original lets every match be explained),
and whose `context.externalIds` name the record itself (`record:KIND:ID`) and the identifier
columns (email, phone, CRM id, ...). So records go through the same processing loop as
collected events, and a rebuild replays them too. The message id hashes the row's content:
importing an unchanged row again stores nothing, a changed row is stored as the record's next
version.

Rows that cannot be read (wrong number of fields, an empty record id, bytes that are not UTF-8)
go to the quarantine with their line number, the column and the reason; the good rows are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tailor.collect.writer import EventWriter
from tailor.connectors.events import EventShape
from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.files import CsvFile
from tailor.connectors.importer import EventImport
from tailor.connectors.mapping import Mapping
from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database

IMPORT_SOURCE = "import"
RECORD_SOURCES = (IMPORT_SOURCE, "postgres", "mysql")
"""Source id prefixes of connectors whose events may carry records (never an SDK's own events)."""

IDENTIFIER_COLUMNS = {
    "email": "email",
    "e_mail": "email",
    "email_address": "email",
    "phone": "phone",
    "phone_number": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "crm_id": "crm_id",
    "user_id": "user_id",
    "userid": "user_id",
    "customer_id": "crm_id",
}
"""Column names (lower-case, spaces as underscores) recognised as identifiers of a type."""


def recognise_identifiers(header: list[str]) -> dict[str, str]:
    """The identifier columns of a header, by column name: {column: identifier type}."""
    found = {}
    for column in header:
        key = column.strip().lower().replace(" ", "_").replace("-", "_")
        if key in IDENTIFIER_COLUMNS:
            found[column] = IDENTIFIER_COLUMNS[key]
    return found


class RecordImportError(ConnectorError):
    """A record file that cannot be imported at all (missing, not UTF-8, no id column)."""


@dataclass
class RecordImport:
    """What one import did."""

    kind: str
    file: str
    rows_read: int = 0
    rows_stored: int = 0
    """Rows stored as new records or new versions of records."""
    rows_unchanged: int = 0
    """Rows identical to a version already stored (a re-import), which store nothing."""
    rows_quarantined: int = 0
    errors: list[str] = field(default_factory=list)


def record_mapping(kind: str, id_column: str, identifiers: dict[str, str]) -> Mapping:
    """The mapping of a record file: every column a text trait, the record keyed by `id_column`."""
    return Mapping(kind="identify", record=kind, id=id_column, identifiers=identifiers, text_traits=True)


def import_records(
    db: Database,
    writer: EventWriter,
    kind: str,
    path: Path,
    id_column: str,
    identifiers: dict[str, str] | None = None,
) -> RecordImport:
    """Imports a CSV file of `kind` records keyed by `id_column` into the event log; bad rows are quarantined.

    `identifiers` maps columns to identifier types; by default they are recognised by name. A file
    may hold the same id twice (a CRM export with an edited row): both versions are stored, in
    line order, so the later line is the record's latest version.
    """
    try:
        source = CsvFile(path)
        header = source.columns
    except ConnectorError as e:
        raise RecordImportError(str(e)) from e
    if id_column not in header:
        raise RecordImportError(f"{path}: no column {id_column!r} (columns: {', '.join(header)})")
    if identifiers is None:
        identifiers = recognise_identifiers(header)
    missing = [c for c in identifiers if c not in header]
    if missing:
        raise RecordImportError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
    mapping = record_mapping(kind, id_column, identifiers)
    shape = EventShape(mapping, f"{IMPORT_SOURCE}:{kind}", kind)
    run = EventImport(db, writer, shape, str(path), endpoint=f"import:{kind}")
    try:
        counts = run.run(source.chunks())
    except ConnectorError as e:
        raise RecordImportError(str(e)) from e
    finally:
        run.close()
    return RecordImport(
        kind,
        str(path),
        rows_read=counts.rows_read,
        rows_stored=counts.rows_written,
        rows_unchanged=counts.rows_skipped,
        rows_quarantined=counts.rows_failed,
        errors=counts.errors,
    )


_from_record_sources = " OR ".join(f"source_id LIKE '{p}:%'" for p in RECORD_SOURCES)


class RecordTable:
    """The processing stage that keeps the latest version of every imported record in `records`."""

    name = "records"

    def setup(self, db: Database) -> None:
        """The `records` table is created by the store's migrations."""

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the table; a rebuild fills it again from the record events."""
        cur.execute("DELETE FROM records")

    def steps(self, batch: Batch) -> list[SqlStep]:
        """Each record's latest version in the batch replaces the stored one."""
        return [
            SqlStep(
                f"""INSERT OR REPLACE INTO records
                SELECT json_extract_string(context, '$.record.kind'),
                       json_extract_string(context, '$.record.id'), traits,
                       json_extract_string(context, '$.record.file'),
                       CAST(json_extract(context, '$.record.line') AS BIGINT), received_at, seq
                FROM {BATCH_VIEW}
                WHERE ({_from_record_sources}) AND json_exists(context, '$.record.id')
                QUALIFY row_number() OVER (
                    PARTITION BY json_extract_string(context, '$.record.kind'),
                                 json_extract_string(context, '$.record.id')
                    ORDER BY seq DESC) = 1""",
                "records",
            )
        ]


def records_count(db: Database) -> dict[str, int]:
    """How many records of each kind are stored (as far as the processor has applied the log)."""
    return {
        kind: n for kind, n in db.execute("SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind")
    }
