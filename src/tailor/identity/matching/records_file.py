"""Reading a CSV file of records row by row, so that one broken row rejects only itself."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from tailor.identity.matching.exceptions import RecordFileError
from tailor.identity.matching.prepare import MAX_VALUE_LENGTH

MAX_ID_LENGTH = 256
"""Longer record ids are refused: an id is a key, not a document."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not matched: where it is in the file, which field, and why."""

    row: int
    """Line number in the file where the row starts (the header is line 1)."""
    field: str | None
    """The column at fault, or None when the row as a whole is broken."""
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", field {self.field!r}" if self.field else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RecordFile:
    """The good rows of a record file as a table of text columns, and the rows that were rejected."""

    table: pa.Table
    rejected: list[RejectedRow] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    """For each row of `table`, its line number in the file."""


class _Lines:
    """Decodes a file line by line as UTF-8; lines that do not decode are rejected and skipped."""

    def __init__(self, data: bytes, rejected: list[RejectedRow]) -> None:
        self.data = data.removeprefix(b"\xef\xbb\xbf")
        self.rejected = rejected
        self.numbers: list[int] = []

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self.data.splitlines(keepends=True), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                byte = raw[e.start]
                if number == 1:
                    raise RecordFileError(
                        f"cannot read the header row: byte 0x{byte:02x} at position {e.start} is not UTF-8"
                    ) from None
                self.rejected.append(
                    RejectedRow(
                        number, None, f"undecodable byte 0x{byte:02x} at position {e.start} (not UTF-8)"
                    )
                )
                continue
            self.numbers.append(number)
            yield line


def read_record_file(path: Path, id_column: str) -> RecordFile:
    """The rows of a CSV file with a header row; broken rows are rejected with their row and field."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordFileError(f"no such file: {path}") from None
    except OSError as e:
        raise RecordFileError(f"cannot read {path}: {e.strerror}") from None
    rejected: list[RejectedRow] = []
    lines = _Lines(data, rejected)
    reader = csv.reader(iter(lines))
    try:
        header = next(reader)
    except StopIteration:
        raise RecordFileError(f"{path} is empty: expected a header row") from None
    except csv.Error as e:
        raise RecordFileError(f"cannot read the header row of {path}: {e}") from None
    if id_column not in header:
        raise RecordFileError(f"no id column {id_column!r} in {path}; columns are: {', '.join(header)}")
    id_at = header.index(id_column)
    columns: list[list[str]] = [[] for _ in header]
    rows: list[int] = []
    first_seen: dict[str, int] = {}
    while True:
        start = len(lines.numbers)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            rejected.append(
                RejectedRow(lines.numbers[start] if start < len(lines.numbers) else 0, None, str(e))
            )
            continue
        row = lines.numbers[start]
        problem = _problem(row, values, header, id_at, first_seen)
        if problem is not None:
            rejected.append(problem)
            continue
        first_seen[values[id_at]] = row
        rows.append(row)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    rejected.sort(key=lambda r: r.row)
    table = pa.table(
        {name: pa.array(values, pa.string()) for name, values in zip(_unique(header), columns, strict=True)}
    )
    return RecordFile(table, rejected, rows)


def _problem(
    row: int, values: list[str], header: list[str], id_at: int, first_seen: dict[str, int]
) -> RejectedRow | None:
    if not values or values == [""]:
        return RejectedRow(row, None, "empty row")
    if len(values) != len(header):
        return RejectedRow(row, None, f"expected {len(header)} fields, found {len(values)}")
    record_id = values[id_at]
    id_name = header[id_at]
    if not record_id.strip():
        return RejectedRow(row, id_name, "empty id")
    if len(record_id) > MAX_ID_LENGTH:
        return RejectedRow(row, id_name, f"id too long: {len(record_id)} characters, at most {MAX_ID_LENGTH}")
    if _CONTROL.search(record_id):
        return RejectedRow(row, id_name, "id contains control characters")
    if record_id in first_seen:
        return RejectedRow(
            row, id_name, f"duplicate id {record_id!r}, first seen at row {first_seen[record_id]}"
        )
    for name, value in zip(header, values, strict=True):
        if len(value) > MAX_VALUE_LENGTH:
            return RejectedRow(
                row, name, f"value too long: {len(value)} characters, at most {MAX_VALUE_LENGTH}"
            )
    return None


def _unique(header: list[str]) -> list[str]:
    # Two columns with the same header would collide in the table; the later ones get a suffix.
    seen: dict[str, int] = {}
    out = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out
