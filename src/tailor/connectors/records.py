"""Importing CSV files of records from other systems (CRM, call centre, guest checkouts).

Every column is kept as text, exactly as the source system wrote it: identity resolution cleans
and matches the values later, and keeping the original lets every match be explained. Rows that
cannot be read (wrong number of fields, an empty record id) go to the quarantine with their line
number and text; the good rows are stored. Importing the same record id again replaces it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from tailor.collect.messages import FieldError, Rejection
from tailor.collect.validate import EventRows
from tailor.collect.writer import EventWriter, Submission
from tailor.exceptions import TerminalError
from tailor.store.database import Database, run

IMPORT_SOURCE = "import"


class RecordImportError(TerminalError):
    """A record file that cannot be imported at all (missing, not UTF-8, no id column)."""


@dataclass
class RecordImport:
    """What one import did."""

    kind: str
    file: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_quarantined: int = 0
    errors: list[str] = field(default_factory=list)


def _line(row: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue().encode()


def read_records(path: Path, id_column: str) -> tuple[pa.Table, list[Rejection]]:
    """Reads a CSV file into a table of text columns plus `__line`; unreadable rows become rejections."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if id_column not in header:
                raise RecordImportError(f"{path}: no column {id_column!r} (columns: {', '.join(header)})")
            key = header.index(id_column)
            width = len(header)
            good: list[list[str]] = []
            lines: list[int] = []
            bad: list[Rejection] = []
            for row in reader:
                if len(row) != width:
                    reason = f"line {reader.line_num}: {len(row)} fields where the header has {width}"
                    bad.append(Rejection(reader.line_num, [FieldError("$", reason)], _line(row)))
                elif not row[key].strip():
                    reason = f"line {reader.line_num}: the record id column {id_column!r} is empty"
                    bad.append(Rejection(reader.line_num, [FieldError(f"$.{id_column}", reason)], _line(row)))
                else:
                    good.append(row)
                    lines.append(reader.line_num)
    except FileNotFoundError as e:
        raise RecordImportError(f"{path}: no such file") from e
    except UnicodeDecodeError as e:
        raise RecordImportError(f"{path}: not UTF-8 (byte {e.start}); convert it to UTF-8 first") from e
    except csv.Error as e:
        raise RecordImportError(f"{path}: {e}") from e
    columns = {name: pa.array([r[i] for r in good], pa.string()) for i, name in enumerate(header)}
    columns["__line"] = pa.array(lines, pa.int64())
    return pa.table(columns), bad


def import_records(db: Database, writer: EventWriter, kind: str, path: Path, id_column: str) -> RecordImport:
    """Imports one CSV file of `kind` records keyed by `id_column`; bad rows are quarantined."""
    table, bad = read_records(path, id_column)
    names = [n for n in table.column_names if n != "__line"]
    fields = ", ".join(f'"{n}" := "{n}"' for n in names)
    cur = db.cursor()
    try:
        cur.register("records_arrow", table)
        # A file may hold the same id twice (a CRM export with an edited row): the later line wins.
        run(
            cur,
            f"""INSERT OR REPLACE INTO records
            SELECT ?, "{id_column}", to_json(struct_pack({fields}))::VARCHAR, ?, __line, ?
            FROM records_arrow
            QUALIFY row_number() OVER (PARTITION BY "{id_column}" ORDER BY __line DESC) = 1""",
            [kind, str(path), datetime.now(UTC)],
        )
        cur.unregister("records_arrow")
    finally:
        cur.close()
    result = RecordImport(kind, str(path), rows_read=table.num_rows + len(bad), rows_stored=table.num_rows)
    if bad:
        writer.write(Submission(IMPORT_SOURCE, f"import:{kind}", datetime.now(UTC), EventRows(), bad))
        result.rows_quarantined = len(bad)
        result.errors = [r.reason for r in bad]
    return result


def records_count(db: Database) -> dict[str, int]:
    """How many records of each kind are stored."""
    return {
        kind: n for kind, n in db.execute("SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind")
    }
