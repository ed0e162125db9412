"""The event writer: one thread that group-commits accepted and quarantined messages to the event log."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailor.collect.dedupe import DedupeIndex
from tailor.collect.loader import EventLoader
from tailor.collect.messages import FieldError, Rejection
from tailor.collect.validate import EventRows
from tailor.exceptions import OverloadedError, TransientError
from tailor.store.database import Database, arrow_transaction, run
from tailor.store.schema import EVENT_SCHEMA, QUARANTINE_SCHEMA

log = logging.getLogger(__name__)

_DERIVED = ("seq", "source_id", "received_at", "timestamp")
_ROW_COLUMNS = [name for name in EVENT_SCHEMA.names if name not in _DERIVED]
_STOP = object()


@dataclass
class Submission:
    """The outcome of validating one request, waiting to be committed."""

    source_id: str
    endpoint: str
    received_at: datetime
    rows: EventRows
    rejections: list[Rejection]
    replay_of: int | None = None
    """The quarantine entry this submission replays, marked resolved in the same transaction."""

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejections)


@dataclass
class Receipt:
    """What the writer committed for one submission."""

    stored: int = 0
    duplicates: int = 0
    quarantine_ids: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)


@dataclass
class _Pending:
    submission: Submission
    future: Future[Receipt]


def corrected_timestamp(original: pa.Array, sent_at: pa.Array, received_at: pa.Array) -> pa.Array:
    """Segment's clock-skew correction, per event: receivedAt - (sentAt - originalTimestamp).

    Without sentAt the original timestamp stands; without either, the time of receipt.
    """
    corrected = pc.subtract(received_at, pc.subtract(sent_at, original))
    return pc.coalesce(corrected, original, received_at)


class WriterStoppedError(TransientError):
    """A submission arrived while the writer thread is not running."""


class EventWriter:
    """Commits submissions in groups: many requests share one synchronous write to the staging log.

    Accepted events are durable once their group's record is in the staging log; the loader then
    moves them into DuckDB in large appends. Quarantined messages, and groups that replay a
    quarantined message, are committed to DuckDB directly (they are few).
    """

    def __init__(
        self,
        db: Database,
        loader: EventLoader,
        max_pending_events: int = 200_000,
        max_commit_events: int = 50_000,
        max_unloaded_events: int = 500_000,
    ) -> None:
        self._db = db
        self._cur = db.cursor()
        self.loader = loader
        """Moves staged events into DuckDB; its `loaded_head` is where readers of `events` stop."""
        self._staging = loader.staging
        self._max_pending = max_pending_events
        self._max_commit = max_commit_events
        self._max_unloaded = max_unloaded_events
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._pending_events = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        events, q_id, q_open = self._cur.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT coalesce(max(id), 0) FROM quarantine),"
            " (SELECT count(*) FROM quarantine)"
        ).fetchone() or (0, 0, 0)
        self.head_seq: int = self.loader.loaded_head
        """The last seq acknowledged (staged or committed)."""
        self.events_total: int = events
        self.quarantined_total: int = q_open
        self._next_quarantine_id = q_id + 1
        hashes = self._cur.execute("SELECT dedupe_hash FROM events").fetchnumpy()["dedupe_hash"]
        self._dedupe = DedupeIndex(np.asarray(hashes, dtype=np.uint64))

    @property
    def failing(self) -> str | None:
        """The last storage error, while commits or loads keep failing."""
        return self._failing or self.loader.failing

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the writer and loader threads."""
        self.loader.start()
        self._thread = threading.Thread(target=self._loop, name="tailor-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commits everything already submitted and loads everything staged, then stops the threads."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self.loader.stop()

    def close(self) -> None:
        """Stops the threads, deletes the loaded staging segments and releases the connections."""
        self.stop()
        self.loader.close()
        self._cur.close()

    def flush(self) -> None:
        """Returns once every acknowledged event is in DuckDB's `events` table (read-your-writes)."""
        self.loader.flush(self.head_seq)

    @property
    def pending_events(self) -> int:
        """Messages submitted but not yet committed."""
        return self._pending_events

    @property
    def unloaded_events(self) -> int:
        """Events acknowledged (staged) but not yet loaded into DuckDB."""
        return self.loader.unloaded_events

    # -- submitting -------------------------------------------------------------------------------

    def submit(self, submission: Submission) -> Future[Receipt]:
        """Queues a submission; the future resolves once it is durably committed."""
        if self._thread is None:
            raise WriterStoppedError("the event writer is not running")
        size = len(submission)
        with self._pending_lock:
            if self._pending_events + size > self._max_pending and self._pending_events > 0:
                raise OverloadedError(retry_after_s=1)
            if self.loader.unloaded_events > self._max_unloaded:
                raise OverloadedError(retry_after_s=1)
            self._pending_events += size
        future: Future[Receipt] = Future()
        self._queue.put(_Pending(submission, future))
        return future

    def write(self, submission: Submission, timeout: float | None = None) -> Receipt:
        """Submits and waits until the events are in DuckDB's `events` table.

        For importers and tests; the HTTP path awaits only the durable commit.
        """
        receipt = self.submit(submission).result(timeout)
        self.flush()
        return receipt

    # -- the writer thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            group: list[_Pending] = []
            item = self._queue.get()
            size = 0
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    assert isinstance(item, _Pending)
                    group.append(item)
                    size += len(item.submission)
                if size >= self._max_commit:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._commit_group(group)

    def _commit_group(self, group: list[_Pending]) -> None:
        try:
            receipts = self._commit([p.submission for p in group])
        except Exception as group_error:
            # One bad submission must not block the others: retry each one alone.
            log.warning(
                "group commit of %d submissions failed (%s); retrying singly", len(group), group_error
            )
            for pending in group:
                self._commit_alone(pending)
            return
        finally:
            with self._pending_lock:
                self._pending_events -= sum(len(p.submission) for p in group)
        for pending, receipt in zip(group, receipts, strict=True):
            pending.future.set_result(receipt)

    def _commit_alone(self, pending: _Pending) -> None:
        try:
            pending.future.set_result(self._commit([pending.submission])[0])
            return
        except Exception as e:
            error = e
        # The store refused these events as they are: keep them in quarantine with the reason.
        sub = pending.submission
        reason = f"the store refused the event: {error}"
        moved = [Rejection(None, [FieldError("$", reason)], bytes(raw)) for raw in sub.rows.raw]
        fallback = Submission(
            sub.source_id, sub.endpoint, sub.received_at, EventRows(), sub.rejections + moved
        )
        try:
            pending.future.set_result(self._commit([fallback])[0])
        except Exception as e:
            self._failing = str(e)
            pending.future.set_exception(e)

    def _commit(self, subs: list[Submission]) -> list[Receipt]:
        events, receipts = self._events_table(subs)
        quarantine = self._quarantine_table(subs, receipts)
        if any(s.replay_of is not None for s in subs):
            with self.loader.exclusive():
                self._commit_direct(subs, receipts, events, quarantine)
                self.loader.advance(events.num_rows)
            self._accepted(events)
        else:
            if events.num_rows:
                self._staging.append(events, self.head_seq + 1)
                self.loader.add(events)
                self._accepted(events)
            if quarantine.num_rows:
                self._commit_direct([], [], EVENT_SCHEMA.empty_table(), quarantine)
        self._failing = None
        self.quarantined_total += quarantine.num_rows
        self._next_quarantine_id += quarantine.num_rows
        replayed = sum(1 for s in subs if s.replay_of is not None)
        self.quarantined_total -= replayed
        return receipts

    def _accepted(self, events: pa.Table) -> None:
        """Counts durably stored events; from here on they are duplicates of any resend."""
        self._dedupe.add(np.asarray(events.column("dedupe_hash").to_numpy(), dtype=np.uint64))
        self.head_seq += events.num_rows
        self.events_total += events.num_rows

    def _commit_direct(
        self, subs: list[Submission], receipts: list[Receipt], events: pa.Table, quarantine: pa.Table
    ) -> None:
        """One DuckDB transaction: events (only inside the loader's `exclusive`), quarantine, replays."""
        cur = self._cur
        with arrow_transaction(cur, events_arrow=events, quarantine_arrow=quarantine):
            if events.num_rows:
                run(cur, "INSERT INTO events SELECT * FROM events_arrow")
            if quarantine.num_rows:
                names = ", ".join(f'"{n}"' for n in QUARANTINE_SCHEMA.names)
                run(cur, f"INSERT INTO quarantine ({names}) SELECT * FROM quarantine_arrow")
            for sub, receipt in zip(subs, receipts, strict=True):
                if sub.replay_of is not None:
                    run(
                        cur,
                        "UPDATE quarantine SET status = 'replayed', resolved_at = now(), replayed_seq = ?"
                        " WHERE id = ?",
                        [receipt.seqs[0] if receipt.seqs else None, sub.replay_of],
                    )

    def _events_table(self, subs: list[Submission]) -> tuple[pa.Table, list[Receipt]]:
        receipts = [Receipt() for _ in subs]
        sizes = np.array([len(s.rows) for s in subs], dtype=np.int64)
        total = int(sizes.sum())
        if total == 0:
            return EVENT_SCHEMA.empty_table(), receipts
        source_ids = list(itertools.chain.from_iterable([s.source_id] * len(s.rows) for s in subs))
        message_ids = list(itertools.chain.from_iterable(s.rows.message_id for s in subs))
        hashes = np.fromiter(
            itertools.chain.from_iterable(s.rows.dedupe_hash for s in subs), dtype=np.uint64, count=total
        )
        keep = self._unseen(hashes, source_ids, message_ids)
        received_us = [int(s.received_at.timestamp() * 1_000_000) for s in subs]
        columns: dict[str, pa.Array] = {
            "source_id": pa.array(source_ids, pa.string()),
            "received_at": pa.array(np.repeat(received_us, sizes)).cast(
                EVENT_SCHEMA.field("received_at").type
            ),
        }
        for name in _ROW_COLUMNS:
            values = itertools.chain.from_iterable(getattr(s.rows, name) for s in subs)
            columns[name] = pa.array(list(values), EVENT_SCHEMA.field(name).type)
        columns["timestamp"] = corrected_timestamp(
            columns["original_timestamp"], columns["sent_at"], columns["received_at"]
        )
        # Sequence numbers go to the kept events in order; each submission learns its own.
        seqs = self.head_seq + np.cumsum(keep, dtype=np.int64)
        columns["seq"] = pa.array(seqs[keep])
        if int(keep.sum()) == total:  # the usual case: no duplicate, nothing to filter
            table = pa.table([columns[n] for n in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)
        else:
            mask = pa.array(keep)
            table = pa.table(
                [columns[n] if n == "seq" else columns[n].filter(mask) for n in EVENT_SCHEMA.names],
                schema=EVENT_SCHEMA,
            )
        offset = 0
        for receipt, size in zip(receipts, sizes.tolist(), strict=True):
            part = keep[offset : offset + size]
            receipt.seqs = seqs[offset : offset + size][part].tolist()
            receipt.stored = len(receipt.seqs)
            receipt.duplicates = size - receipt.stored
            offset += size
        return table, receipts

    def _unseen(
        self, hashes: np.ndarray[Any, Any], source_ids: list[str], message_ids: list[str]
    ) -> np.ndarray[Any, Any]:
        """A mask of the events that are neither stored already nor repeated earlier in this group."""
        keep = np.ones(len(hashes), dtype=bool)
        candidates = np.flatnonzero(self._dedupe.contains(hashes))
        if len(candidates):
            wanted = hashes[candidates]
            # Staged tables first: one the loader finishes meanwhile is then found in `events`.
            staged = self.loader.unloaded_tables()
            stored = set(
                self._cur.execute(
                    "SELECT source_id, message_id FROM events WHERE dedupe_hash IN (SELECT unnest(?))",
                    [wanted.tolist()],
                ).fetchall()
            )
            for table in staged:
                hit = table.filter(pc.is_in(table.column("dedupe_hash"), pa.array(wanted, pa.uint64())))
                pairs = zip(
                    hit.column("source_id").to_pylist(), hit.column("message_id").to_pylist(), strict=True
                )
                stored.update(pairs)
            for i in candidates.tolist():
                if (source_ids[i], message_ids[i]) in stored:
                    keep[i] = False
        _, counts = np.unique(hashes, return_counts=True)
        if (counts > 1).any():
            seen: set[tuple[str, str]] = set()
            for i in range(len(hashes)):
                key = (source_ids[i], message_ids[i])
                if key in seen:
                    keep[i] = False
                seen.add(key)
        return keep

    def _quarantine_table(self, subs: list[Submission], receipts: list[Receipt]) -> pa.Table:
        rows: dict[str, list[Any]] = {name: [] for name in QUARANTINE_SCHEMA.names}
        next_id = self._next_quarantine_id
        for sub, receipt in zip(subs, receipts, strict=True):
            for rejection in sub.rejections:
                rows["id"].append(next_id)
                rows["source_id"].append(sub.source_id)
                rows["received_at"].append(sub.received_at)
                rows["endpoint"].append(sub.endpoint)
                rows["batch_index"].append(rejection.index)
                rows["reason"].append(rejection.reason)
                rows["errors"].append(msgspec.json.encode(rejection.errors).decode())
                rows["payload"].append(rejection.payload)
                receipt.quarantine_ids.append(next_id)
                next_id += 1
        return pa.table(rows, schema=QUARANTINE_SCHEMA)
