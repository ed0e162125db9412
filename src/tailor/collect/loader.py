"""The loader: moves staged events into DuckDB's event log in large appends, off the request path."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow as pa

from tailor.exceptions import StoreError, TransientError
from tailor.store.database import Database, arrow_transaction, run
from tailor.store.staging import StagingLog

log = logging.getLogger(__name__)

# DuckDB writes an append of at least one row group (122,880 rows) straight to the database file,
# compressed, and logs only its location in the WAL: measured 4.0 us/event for INSERT + COMMIT and
# nothing left for a checkpoint, against 6.3 us/event when the rows go through the WAL.
ROW_GROUP_ROWS = 122_880


# DuckDB's scan of an Arrow table takes the GIL for every chunk: 2,000 one-event chunks (a
# second of /v1/track) measured 1.2 s to load and stalled the event loop for up to 73 ms, one
# combined chunk 0.1 s and 7 ms. Large chunks are scanned in parallel, so they stay apart.
COALESCE_ROWS = 16_384


def coalesce(tables: list[pa.Table], rows: int = COALESCE_ROWS) -> pa.Table:
    """The tables as one, with runs of small ones combined into chunks of about `rows` rows."""
    chunks: list[pa.Table] = []
    run: list[pa.Table] = []
    size = 0
    for table in tables:
        run.append(table)
        size += table.num_rows
        if size >= rows:
            chunks.append(pa.concat_tables(run).combine_chunks())
            run, size = [], 0
    if run:
        chunks.append(pa.concat_tables(run).combine_chunks())
    return pa.concat_tables(chunks)


class LoaderStoppedError(TransientError):
    """Loading was asked for but could not finish (the store keeps failing)."""


class EventLoader:
    """Loads staged events into the `events` table in seq order; `loaded_head` is how far it got.

    Tables arrive from the writer once they are durable in the staging log. A load starts when
    `load_events` are waiting, when the oldest has waited `load_delay_s`, or when someone needs
    everything loaded (`flush`). After a load, segments wholly loaded are deleted once a
    checkpoint has made the load part of the database file.
    """

    def __init__(
        self,
        db: Database,
        staging: StagingLog,
        load_events: int = ROW_GROUP_ROWS,
        load_delay_s: float = 2.0,
    ) -> None:
        self._db = db
        self._cur = db.cursor()
        self.staging = staging
        """Where acknowledged events wait, on disk, to be loaded."""
        self.load_events = load_events
        self.load_delay_s = load_delay_s
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._staged: collections.deque[tuple[float, pa.Table]] = collections.deque()
        self._unloaded = 0
        self._wanted = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failing: str | None = None
        """The last loading error, while loads keep failing."""
        self.on_load: Callable[[], None] | None = None
        """Called after each load (the processor's `wake`), outside the loader's locks."""
        self.on_stage: Callable[[], None] | None = None
        """Called when a table is handed over (the processor's `wake`: it loads what is staged as
        soon as it is idle), outside the loader's locks."""
        ((head,),) = run(self._cur, "SELECT coalesce(max(seq), 0) FROM events").fetchall()
        self.loaded_head: int = int(head)
        self.staged_head = self.loaded_head
        self._recover()

    def _recover(self) -> None:
        """Loads what a previous process staged but did not load, then drops its segments."""
        records = self.staging.recover()
        tables = [r.table for r in records if r.first_seq + r.table.num_rows - 1 > self.loaded_head]
        if tables and records[0].first_seq > self.loaded_head + 1:
            # Not expected: segments are deleted only after a checkpoint covers them.
            log.error(
                "staging log starts at seq %d but the event log ends at %d: events are missing",
                records[0].first_seq,
                self.loaded_head,
            )
        if tables:
            head = self._insert(tables)
            log.info("loaded %d staged events left by the previous run", head - self.loaded_head)
            self.loaded_head = self.staged_head = head
        if records or self.staging.segments():
            self._db.checkpoint()
            self.staging.release(self.loaded_head)

    # -- what the writer and readers call ---------------------------------------------------------

    @property
    def unloaded_events(self) -> int:
        """Events acknowledged (staged) but not yet in the `events` table."""
        return self._unloaded

    def add(self, table: pa.Table) -> None:
        """Hands over a durably staged table of events, the next seqs after the previous one."""
        with self._cond:
            self._staged.append((time.monotonic(), table))
            self._unloaded += table.num_rows
            self.staged_head += table.num_rows
            # The first table starts the delay clock; enough tables start a load.
            if len(self._staged) == 1 or self._unloaded >= self.load_events:
                self._cond.notify_all()
        if self.on_stage is not None:
            self.on_stage()

    def unloaded_tables(self) -> list[pa.Table]:
        """The staged tables not yet loaded (a snapshot: read it before querying `events`)."""
        with self._cond:
            return [t for _, t in self._staged]

    def flush(self, through: int | None = None, timeout: float = 120.0) -> None:
        """Returns once every event up to seq `through` (default: all staged) is in `events`."""
        with self._cond:
            target = self.staged_head if through is None else through
            if self.loaded_head >= target:
                return
            running = self._thread is not None and not self._stopping
            if running:
                self._wanted = max(self._wanted, target)
                self._cond.notify_all()
                if not self._cond.wait_for(lambda: self.loaded_head >= target, timeout):
                    raise LoaderStoppedError(f"events up to seq {target} are not loaded: {self.failing}")
                return
        self._load()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Loads everything staged, then holds loading off while the caller writes `events` directly.

        The caller must call `advance` for the events it commits in that time.
        """
        with self._load_lock:
            self._load_locked()
            yield

    def advance(self, rows: int) -> None:
        """Records `rows` events committed straight to `events` (inside `exclusive`)."""
        with self._cond:
            self.staged_head += rows
            self.loaded_head = self.staged_head
            self._cond.notify_all()

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        with self._load_lock:
            self._load_locked()

    def _load_locked(self) -> None:
        with self._cond:
            taken = [t for _, t in self._staged]
        if not taken:
            return
        head = self._insert(taken)
        with self._cond:
            for _ in taken:
                self._staged.popleft()
            self._unloaded -= sum(t.num_rows for t in taken)
            self.loaded_head = head
            self.failing = None
            self._cond.notify_all()
        if self.staging.releasable(head):
            self._release(head)
        if self.on_load is not None:
            self.on_load()

    def _insert(self, tables: list[pa.Table]) -> int:
        """Appends the events above the loaded head in one transaction; returns the new head."""
        with arrow_transaction(self._cur, staged_arrow=coalesce(tables)):
            run(self._cur, "INSERT INTO events SELECT * FROM staged_arrow WHERE seq > ?", [self.loaded_head])
        return max(self.loaded_head, int(tables[-1].column("seq")[-1].as_py()))

    def _release(self, head: int) -> None:
        try:
            run(self._cur, "CHECKPOINT")
        except StoreError as e:  # another transaction is open: the segments wait for the next load
            log.debug("checkpoint before releasing staging segments postponed: %s", e)
            return
        self.staging.release(head)

    # -- the loader thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the loader thread."""
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="tailor-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Loads everything staged, then stops the thread."""
        if self._thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._thread.join()
            self._thread = None
        self._load()

    def close(self) -> None:
        """Stops, checkpoints so that no segment is needed any more, and releases the connection."""
        self.stop()
        self.staging.close()
        self._release(self.loaded_head)
        self._cur.close()

    def _due(self) -> float | None:
        """0 when a load should start now, else how long to wait (None: until notified)."""
        if self._stopping:
            return 0.0
        if not self._staged:
            return None
        if self._unloaded >= self.load_events or self._wanted > self.loaded_head:
            return 0.0
        return max(0.0, self._staged[0][0] + self.load_delay_s - time.monotonic())

    def _loop(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                while (wait := self._due()) != 0.0:
                    self._cond.wait(wait)
                if self._stopping:
                    return
            if backoff:
                time.sleep(backoff)
            try:
                self._load()
                backoff = 0.0
            except Exception as e:
                # The events stay staged (on disk and here); the writer answers 503 once too many wait.
                self.failing = f"{type(e).__name__}: {e}"
                log.exception("loading staged events failed; retrying")
                backoff = min(max(backoff * 2, 0.1), 10.0)
