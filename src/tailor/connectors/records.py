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

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import xxhash

from tailor.collect.messages import FieldError, Rejection
from tailor.collect.validate import EventRows, dedupe_hash
from tailor.collect.writer import EventWriter, Submission
from tailor.exceptions import TerminalError
from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database

IMPORT_SOURCE = "import"

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


class RecordImportError(TerminalError):
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


def _line(row: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue().encode("utf-8", "surrogateescape")


def _undecodable(row: list[str], header: list[str]) -> tuple[str, int] | None:
    """The first column of a row holding bytes that are not UTF-8, with the offending byte."""
    for name, value in zip(header, row, strict=False):
        for ch in value:
            if "\udc80" <= ch <= "\udcff":
                return name, ord(ch) - 0xDC00
    return None


def read_records(path: Path, id_column: str) -> tuple[pa.Table, list[Rejection]]:
    """Reads a CSV file into a table of text columns plus `__line`; unreadable rows become rejections.

    The file is read as UTF-8 (with or without a byte-order mark); a row holding bytes that are not
    UTF-8 is rejected on its own, naming its line and column, so one badly encoded name does not
    stop the import of the rest.
    """
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if _undecodable(header, header) is not None:
                raise RecordImportError(f"{path}: the header line is not UTF-8; convert the file to UTF-8")
            if id_column not in header:
                raise RecordImportError(f"{path}: no column {id_column!r} (columns: {', '.join(header)})")
            key = header.index(id_column)
            width = len(header)
            good: list[list[str]] = []
            lines: list[int] = []
            bad: list[Rejection] = []
            for row in reader:
                line = reader.line_num
                undecodable = _undecodable(row, header)
                if undecodable is not None:
                    column, byte = undecodable
                    reason = f"line {line}: column {column!r} is not UTF-8 (byte 0x{byte:02x})"
                    bad.append(Rejection(line, [FieldError(f"$.{column}", reason)], _line(row)))
                elif len(row) != width:
                    reason = f"line {line}: {len(row)} fields where the header has {width}"
                    bad.append(Rejection(line, [FieldError("$", reason)], _line(row)))
                elif not row[key].strip():
                    reason = f"line {line}: the record id column {id_column!r} is empty"
                    bad.append(Rejection(line, [FieldError(f"$.{id_column}", reason)], _line(row)))
                else:
                    good.append(row)
                    lines.append(line)
    except FileNotFoundError as e:
        raise RecordImportError(f"{path}: no such file") from e
    except csv.Error as e:
        raise RecordImportError(f"{path}: {e}") from e
    columns = {name: pa.array([r[i] for r in good], pa.string()) for i, name in enumerate(header)}
    columns["__line"] = pa.array(lines, pa.int64())
    return pa.table(columns), bad


def record_rows(
    kind: str, table: pa.Table, id_column: str, identifiers: dict[str, str], file: str
) -> EventRows:
    """The events that carry a table of records of one kind: one identify per row, see the module text."""
    rows = EventRows()
    source = f"{IMPORT_SOURCE}:{kind}"
    names = [n for n in table.column_names if n != "__line"]
    encode = msgspec.json.encode
    for record in table.to_pylist():
        fields = {n: record[n] for n in names}
        rid = fields[id_column].strip()
        traits = encode(fields)
        external = [{"type": "record", "id": f"{kind}:{rid}", "collection": kind, "encoding": "none"}]
        external += [
            {"type": t, "id": fields[c].strip(), "collection": kind, "encoding": "none"}
            for c, t in identifiers.items()
            if fields[c].strip()
        ]
        context = encode(
            {
                "externalIds": external,
                "record": {"kind": kind, "id": rid, "file": file, "line": record["__line"]},
            }
        )
        message_id = f"record:{kind}:{rid}:{xxhash.xxh3_64_hexdigest(traits)}"
        rows.message_id.append(message_id)
        rows.dedupe_hash.append(dedupe_hash(source, message_id))
        rows.type.append("identify")
        for column in (
            rows.event,
            rows.name,
            rows.user_id,
            rows.anonymous_id,
            rows.group_id,
            rows.previous_id,
        ):
            column.append(None)
        rows.original_timestamp.append(None)
        rows.sent_at.append(None)
        rows.properties.append(None)
        rows.traits.append(traits.decode())
        rows.context.append(context.decode())
        rows.integrations.append(None)
        rows.raw.append(
            encode({"type": "identify", "traits": fields, "context": msgspec.json.decode(context)})
        )
    return rows


def import_records(
    db: Database,
    writer: EventWriter,
    kind: str,
    path: Path,
    id_column: str,
    identifiers: dict[str, str] | None = None,
) -> RecordImport:
    """Imports a CSV file of `kind` records keyed by `id_column` into the event log; bad rows are quarantined.

    `identifiers` maps columns to identifier types; by default they are recognised by name.
    """
    table, bad = read_records(path, id_column)
    header = [n for n in table.column_names if n != "__line"]
    if identifiers is None:
        identifiers = recognise_identifiers(header)
    missing = [c for c in identifiers if c not in header]
    if missing:
        raise RecordImportError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
    # A file may hold the same id twice (a CRM export with an edited row): both versions are
    # stored, in line order, so the later line is the record's latest version.
    rows = record_rows(kind, table, id_column, identifiers, str(path))
    now = datetime.now(UTC)
    receipt = writer.write(Submission(f"{IMPORT_SOURCE}:{kind}", f"import:{kind}", now, rows, bad))
    result = RecordImport(kind, str(path), rows_read=table.num_rows + len(bad))
    result.rows_stored = receipt.stored
    result.rows_unchanged = receipt.duplicates
    result.rows_quarantined = len(bad)
    result.errors = [r.reason for r in bad]
    return result


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
                WHERE source_id LIKE '{IMPORT_SOURCE}:%' AND json_exists(context, '$.record.id')
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
