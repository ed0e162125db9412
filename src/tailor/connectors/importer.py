"""The one import loop every source shares: chunks of rows -> validated columns -> events -> the writer.

Each chunk's bad rows (a value of the wrong type, a required value missing, no identifier at all)
go to the quarantine with their line or row number, the column and the reason, in the same
submission as the chunk's good rows, which are stored. Submissions go through the event writer,
the same durable path as collected events; a chunk is durable once its receipt arrives, which is
what a database source waits for before it moves its cursor on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailor.collect.messages import FieldError, Rejection
from tailor.collect.writer import EventWriter, Receipt, Submission
from tailor.connectors.convert import convert_column
from tailor.connectors.events import EventShape
from tailor.connectors.files import RowChunk
from tailor.connectors.mapping import Mapping
from tailor.exceptions import OverloadedError
from tailor.store.database import Database

MAX_ERRORS_KEPT = 100
"""Reasons kept in an import's result; every bad row is in the quarantine regardless."""

Progress = Callable[[int, int], None]
"""Called after each chunk with (position reached, rows read so far)."""


@dataclass
class ImportCounts:
    """What one import or connector run did with the rows it read."""

    rows_read: int = 0
    rows_written: int = 0
    """Rows stored as new events."""
    rows_skipped: int = 0
    """Rows identical to ones stored before (a re-import), which store nothing."""
    rows_failed: int = 0
    """Rows quarantined, each with its line or row number and reason."""
    errors: list[str] = field(default_factory=list)
    """The first reasons of failed rows (the quarantine holds them all)."""

    def add(self, other: ImportCounts) -> None:
        """Adds another run's counts to these."""
        self.rows_read += other.rows_read
        self.rows_written += other.rows_written
        self.rows_skipped += other.rows_skipped
        self.rows_failed += other.rows_failed
        self.errors.extend(other.errors[: MAX_ERRORS_KEPT - len(self.errors)])


@dataclass
class ConvertedChunk:
    """A chunk's good rows as typed columns with `__line`, and a rejection for each bad row."""

    table: pa.Table
    rejections: list[Rejection]


def convert_chunk(mapping: Mapping, chunk: RowChunk, unit: str) -> ConvertedChunk:
    """Converts the mapped columns of a chunk to their types; rows with a bad value become rejections."""
    n = len(chunk)
    wanted = list(chunk.columns) if mapping.text_traits else mapping.columns()
    problems: dict[int, list[FieldError]] = {}
    converted: dict[str, pa.Array] = {}

    def flag(i: int, column: str, message: str) -> None:
        where = f"{unit} {chunk.numbers[i]}: column {column!r}"
        problems.setdefault(i, []).append(FieldError(f"$.{column}", f"{where}: {message}"))

    types = {c: f.type for c, f in mapping.fields().items()}
    required = {c for c, f in mapping.fields().items() if f.required}
    if mapping.timestamp:
        types[mapping.timestamp] = "timestamp"
        required.add(mapping.timestamp)
    if mapping.id:
        required.add(mapping.id)
    if mapping.kind == "track" and mapping.event_column:
        required.add(mapping.event_column)
    for column in wanted:
        raw = chunk.columns.get(column)
        if raw is None:
            raw = pa.nulls(n, pa.string())
        values, bad = convert_column(raw, "string" if mapping.text_traits else types.get(column, "string"))
        for i, message in bad.items():
            flag(i, column, message)
        if column in required:
            present = values if values.type != pa.string() else _non_blank(values)
            for i in _null_positions(present):
                if i not in bad:
                    flag(i, column, "is empty" if column != mapping.id else "the row id is empty")
        converted[column] = values
    identifiers = [c for c in mapping.identifiers if c in converted]
    if identifiers and mapping.record is None:
        anyone = None
        for column in identifiers:
            present = _non_blank(converted[column]).is_valid()
            anyone = present if anyone is None else pc.or_(anyone, present)
        assert anyone is not None
        for i in _null_positions(pc.if_else(anyone, True, None)):
            flag(i, ",".join(identifiers), "no identifier: every identifier column is empty")
    rejections = [
        Rejection(chunk.numbers[i], errors, chunk.payload(i)) for i, errors in sorted(problems.items())
    ]
    table = pa.table({**converted, "__line": pa.array(chunk.numbers, pa.int64())})
    if problems:
        keep = [i not in problems for i in range(n)]
        table = table.filter(pa.array(keep))
    every = sorted(chunk.rejections + rejections, key=lambda r: r.index or 0)
    return ConvertedChunk(table, every)


def _non_blank(values: pa.Array) -> pa.Array:
    if not pa.types.is_string(values.type):
        return values
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), values)


def _null_positions(values: pa.Array) -> list[int]:
    if values.null_count == 0:
        return []
    return np.flatnonzero(~np.asarray(values.is_valid())).tolist()


class EventImport:
    """Feeds chunks of one source through a mapping into the event writer, a few submissions in flight."""

    def __init__(
        self,
        db: Database,
        writer: EventWriter,
        shape: EventShape,
        origin: str,
        unit: str = "line",
        endpoint: str | None = None,
    ) -> None:
        self._cur = db.cursor()
        self._writer = writer
        self.shape = shape
        self.origin = origin
        """The file or table the rows come from, kept with each record."""
        self.unit = unit
        self.endpoint = endpoint or shape.source
        """What the quarantine names as where bad rows came in."""
        self.counts = ImportCounts()
        self.last_rejections: list[Rejection] = []
        """The rows of the latest submitted chunk that were quarantined (numbered as in the chunk)."""

    def submit(self, chunk: RowChunk) -> Future[Receipt]:
        """Converts a chunk and submits its events and rejections; the future resolves once durable."""
        converted = convert_chunk(self.shape.mapping, chunk, self.unit)
        self.last_rejections = converted.rejections
        rows = self.shape.rows(self._cur, converted.table, self.origin)
        submission = Submission(
            self.shape.source, self.endpoint, datetime.now(UTC), rows, converted.rejections
        )
        self.counts.rows_read += len(chunk) + len(chunk.rejections)
        self.counts.rows_failed += len(converted.rejections)
        room = MAX_ERRORS_KEPT - len(self.counts.errors)
        self.counts.errors.extend(r.reason for r in converted.rejections[: max(room, 0)])
        while True:
            try:
                return self._writer.submit(submission)
            except OverloadedError as e:
                time.sleep(min(e.retry_after_s, 0.2))  # the loader is behind: wait, do not drop

    def collect(self, receipt: Receipt) -> None:
        """Counts what the writer stored of one submission."""
        self.counts.rows_written += receipt.stored
        self.counts.rows_skipped += receipt.duplicates

    def run(self, chunks: Iterable[RowChunk], progress: Progress | None = None) -> ImportCounts:
        """Imports every chunk; returns once all are durable and loaded into the event log."""
        in_flight: list[Future[Receipt]] = []
        try:
            for chunk in chunks:
                in_flight.append(self.submit(chunk))
                # Two submissions in flight: the next chunk is prepared while the writer commits.
                while len(in_flight) > 2:
                    self.collect(in_flight.pop(0).result())
                if progress is not None:
                    progress(chunk.position, self.counts.rows_read)
            for future in in_flight:
                self.collect(future.result())
            in_flight = []
        finally:
            for future in in_flight:  # a failed read: what was submitted is still counted
                self.collect(future.result())
        self._writer.flush()
        return self.counts

    def close(self) -> None:
        """Releases the DuckDB cursor."""
        self._cur.close()
