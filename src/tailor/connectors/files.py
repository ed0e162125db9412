"""Reading CSV, JSON Lines and Parquet files in chunks of rows, each row with its line or row number.

Rows that cannot be read at all (the wrong number of fields, bytes that are not UTF-8, a line that
is not a JSON object) come out as rejections naming their line; the rest are handed on as Arrow
columns. CSV is parsed by Arrow in blocks whose rows are exactly their lines, so each row's line
number is its position; from the first block that is not that clean, Python's csv module reads
the rest and names the line of every bad row (Arrow's reader cannot say on which line one is).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from tailor.collect.messages import FieldError, Rejection
from tailor.connectors.csv_blocks import CleanBlock, fast_csv_blocks
from tailor.connectors.exceptions import ConnectorError

CHUNK_ROWS = 50_000
"""Rows per chunk: one writer submission each (the writer commits at most 50,000 events at once)."""

FORMATS = ("csv", "jsonl", "parquet")


@dataclass
class RowChunk:
    """Rows read from a source: columns, the number of each row, and rows that could not be read."""

    columns: dict[str, pa.Array]
    numbers: list[int]
    """Each row's line (CSV, JSON Lines) or row (Parquet, databases) number, counted from 1."""
    payload: Callable[[int], bytes]
    """The row at a position as the source held it, for the quarantine."""
    rejections: list[Rejection] = field(default_factory=list)
    position: int = 0
    """How far into the source this chunk ends (bytes or rows), for progress."""

    def __len__(self) -> int:
        return len(self.numbers)


class SourceFile:
    """A file of rows of one format; `size` is in the unit `RowChunk.position` counts."""

    unit = "line"

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise ConnectorError(f"{path}: no such file")
        self.size = path.stat().st_size

    @property
    def columns(self) -> list[str]:
        """The columns of the file (for JSON Lines, the keys of its first rows)."""
        raise NotImplementedError

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
        """The file's rows, `rows` at a time."""
        raise NotImplementedError


def detect_format(path: Path) -> str:
    """The format of a file by its extension: csv, jsonl or parquet."""
    suffix = path.suffix.lower().lstrip(".")
    known = {"csv": "csv", "txt": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}
    known |= {"parquet": "parquet", "pq": "parquet"}
    if suffix not in known:
        raise ConnectorError(f"{path}: unknown format {suffix!r}; name it .csv, .jsonl or .parquet")
    return known[suffix]


def open_source_file(path: Path, format: str | None = None) -> SourceFile:
    """The reader of a file, by its format (or its extension)."""
    kind = format or detect_format(path)
    readers: dict[str, type[SourceFile]] = {"csv": CsvFile, "jsonl": JsonLinesFile, "parquet": ParquetFile}
    if kind not in readers:
        raise ConnectorError(f"{path}: unknown format {kind!r} (known: {', '.join(FORMATS)})")
    return readers[kind](path)


def _csv_line(row: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue().encode("utf-8", "surrogateescape")


def _utf8_row(row: list[str]) -> bool:
    """Whether a row holds only text that was valid UTF-8 (one C-level check; most rows are ASCII)."""
    text = "".join(row)
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_utf8(row: list[str], header: list[str]) -> tuple[str, int] | None:
    """The first column holding bytes that are not UTF-8 (read as surrogates), with the first such byte."""
    for name, value in zip(header, row, strict=False):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                return name, ord(value[e.start]) - 0xDC00
    return None


class CsvFile(SourceFile):
    """A CSV file with a header row, UTF-8 with or without a byte-order mark.

    Blocks of whole lines are parsed by Arrow's CSV reader (all columns as text): a block whose
    rows are exactly its lines (no blank lines, no line breaks inside quoted values, no row with
    the wrong number of fields, nothing that is not UTF-8) gives each row its line number by
    position. The first block that is not so clean is read from its first line to the end of the
    file with Python's csv module, which names the line and column of every bad row.
    """

    def _open(self) -> tuple[io.TextIOWrapper, Any, list[str]]:
        f = self.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(f)
        try:
            header = next(reader, [])
        except csv.Error as e:
            f.close()
            raise ConnectorError(f"{self.path}: {e}") from e
        if _not_utf8(header, header) is not None:
            f.close()
            raise ConnectorError(f"{self.path}: the header line is not UTF-8; convert the file to UTF-8")
        if not header:
            f.close()
            raise ConnectorError(f"{self.path}: the file is empty (no header line)")
        return f, reader, header

    @property
    def columns(self) -> list[str]:
        f, _, header = self._open()
        f.close()
        return header

    def _header_end(self) -> int | None:
        """The byte offset just past the header line, if the header is one line (no quoted line break)."""
        with self.path.open("rb") as f:
            first = f.readline(1 << 20)
        if not first.endswith(b"\n") or first.count(b'"') % 2:
            return None
        return len(first)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
        header = self.columns
        start = self._header_end()
        if start is None:
            yield from self._python_chunks(header, 0, 1, rows, skip_header=True)
            return
        for block in fast_csv_blocks(self.path, header, start, 2):
            if isinstance(block, CleanBlock):
                yield from _block_chunks(header, block, rows)
                continue
            # The first block that is not clean: the rest row by row, each bad row with its line.
            yield from self._python_chunks(header, block.offset, block.line, rows)
            return

    def _python_chunks(
        self, header: list[str], offset: int, line: int, rows: int, skip_header: bool = False
    ) -> Iterator[RowChunk]:
        """Rows from a byte offset (a line that starts a row) to the end, numbered from `line`."""
        raw = self.path.open("rb")
        raw.seek(offset)
        encoding = "utf-8-sig" if offset == 0 else "utf-8"
        f = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline="")
        reader = csv.reader(f)
        width = len(header)
        base = line - 1
        with f:
            if skip_header:
                next(reader, None)
                base = 0
            buffer: Any = f.buffer  # its position is how far the text reader has read
            good: list[list[str]] = []
            numbers: list[int] = []
            bad: list[Rejection] = []
            last = base + reader.line_num
            try:
                for row in reader:
                    first, last = last + 1, base + reader.line_num
                    if len(row) != width:
                        if not row:  # a blank line holds no row
                            continue
                        reason = f"line {first}: {len(row)} fields where the header has {width}"
                        bad.append(Rejection(first, [FieldError("$", reason)], _csv_line(row)))
                    elif not _utf8_row(row) and (not_utf8 := _not_utf8(row, header)) is not None:
                        column, byte = not_utf8
                        reason = f"line {first}: column {column!r} is not UTF-8 (byte 0x{byte:02x})"
                        bad.append(Rejection(first, [FieldError(f"$.{column}", reason)], _csv_line(row)))
                    else:
                        good.append(row)
                        numbers.append(first)
                    if len(good) + len(bad) >= rows:
                        yield self._chunk(header, good, numbers, bad, buffer.tell())
                        good, numbers, bad = [], [], []
            except csv.Error as e:
                raise ConnectorError(f"{self.path}: line {base + reader.line_num}: {e}") from e
            yield self._chunk(header, good, numbers, bad, self.size)

    @staticmethod
    def _chunk(
        header: list[str], good: list[list[str]], numbers: list[int], bad: list[Rejection], position: int
    ) -> RowChunk:
        transposed = list(zip(*good, strict=True)) if good else [() for _ in header]
        columns = {
            name: pa.array(values, pa.string()) for name, values in zip(header, transposed, strict=True)
        }
        return RowChunk(columns, numbers, lambda i: _csv_line(good[i]), bad, position)


def _block_chunks(header: list[str], block: CleanBlock, rows: int) -> Iterator[RowChunk]:
    """A clean block in chunks of `rows`, columns by header name (a repeated name: the last one)."""
    table = block.table
    for start in range(0, table.num_rows, rows):
        part = table.slice(start, rows)
        columns = {name: part.column(i).combine_chunks() for i, name in enumerate(header)}
        first = block.first_line + start

        def payload(i: int, part: pa.Table = part) -> bytes:
            return _csv_line([str(v) for v in part.slice(i, 1).to_pylist()[0].values()])

        done = (start + part.num_rows) / table.num_rows  # progress: a share of the block's bytes
        position = block.start + int((block.end - block.start) * done)
        yield RowChunk(columns, list(range(first, first + part.num_rows)), payload, [], position)


class JsonLinesFile(SourceFile):
    """A file of one JSON object per line (UTF-8); blank lines are skipped."""

    _SAMPLE = 1000

    @property
    def columns(self) -> list[str]:
        keys: dict[str, None] = {}
        with self.path.open("rb") as f:
            for n, raw in enumerate(f):
                if n >= self._SAMPLE:
                    break
                try:
                    value = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    continue
                if isinstance(value, dict):
                    keys.update(dict.fromkeys(value))
        return list(keys)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
        decode = msgspec.json.decode
        with self.path.open("rb") as f:
            objects: list[dict[str, Any]] = []
            lines: list[bytes] = []
            numbers: list[int] = []
            bad: list[Rejection] = []
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    value = decode(raw)
                except msgspec.DecodeError as e:
                    reason = f"line {number}: not JSON ({e})"
                    value = None
                else:
                    reason = f"line {number}: a {type(value).__name__}, not a JSON object"
                if isinstance(value, dict):
                    objects.append(value)
                    lines.append(raw.rstrip(b"\r\n"))
                    numbers.append(number)
                else:
                    bad.append(Rejection(number, [FieldError("$", reason)], raw.rstrip(b"\r\n")))
                if len(objects) + len(bad) >= rows:
                    yield self._chunk(objects, lines, numbers, bad, f.tell())
                    objects, lines, numbers, bad = [], [], [], []
            yield self._chunk(objects, lines, numbers, bad, self.size)

    @staticmethod
    def _chunk(
        objects: list[dict[str, Any]], lines: list[bytes], numbers: list[int], bad: list[Rejection], at: int
    ) -> RowChunk:
        keys = dict.fromkeys(k for o in objects for k in o)
        # Values stay Python objects until the mapping converts them: one JSON key may hold a
        # number on one line and text on another, which no single Arrow type holds.
        columns = {k: _objects([o.get(k) for o in objects]) for k in keys}
        return RowChunk(columns, numbers, lambda i: lines[i], bad, at)


def _objects(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        encode = msgspec.json.encode
        return pa.array([v if v is None or isinstance(v, str) else encode(v).decode() for v in values])


class ParquetFile(SourceFile):
    """A Parquet file; its columns keep their types, rows are numbered from 1."""

    unit = "row"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise ConnectorError(f"{path}: not a Parquet file ({e})") from e
        self.size = self._file.metadata.num_rows

    @property
    def columns(self) -> list[str]:
        return list(self._file.schema_arrow.names)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[RowChunk]:
        start = 1
        for batch in self._file.iter_batches(batch_size=rows):
            columns = dict(zip(batch.schema.names, batch.columns, strict=True))
            numbers = list(range(start, start + batch.num_rows))

            def payload(i: int, batch: pa.RecordBatch = batch) -> bytes:
                return msgspec.json.encode(batch.slice(i, 1).to_pylist()[0], enc_hook=str)

            start += batch.num_rows
            yield RowChunk(columns, numbers, payload, [], start - 1)
