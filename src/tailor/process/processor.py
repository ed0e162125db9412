"""The processor: reads committed events by offset and applies each stage to each micro-batch."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import duckdb

from tailor.process.priority import lower_this_thread
from tailor.process.stage import BATCH_VIEW, Batch, PyStep, SqlStep, Stage, run_steps
from tailor.store.database import Database, run

log = logging.getLogger(__name__)


class Processor:
    """Carries the event log through an ordered list of stages, each at its own offset."""

    def __init__(
        self,
        db: Database,
        stages: list[Stage],
        max_batch_events: int = 200_000,
        interval_s: float = 0.2,
        head_source: Callable[[], int] | None = None,
        catch_up: Callable[[], None] | None = None,
        load_acknowledged: bool = True,
        nice: int = 0,
    ) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        self._db = db
        self.stages = stages
        self.max_batch_events = max_batch_events
        self.interval_s = interval_s
        self._cur = db.cursor()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        self.head_source = head_source
        """Where the processor learns how far the `events` table is filled without gaps (the
        loader's head); without it, the highest stored seq (right when nothing writes concurrently)."""
        self.catch_up = catch_up
        """Makes every acknowledged event readable; `run_once()` without a head calls it first."""
        self.load_acknowledged = load_acknowledged
        """Whether each batch of the loop first makes every acknowledged event readable (`catch_up`)
        or applies only what is loaded already."""
        self.nice = nice
        """The CPU priority of the loop's thread (`tailor.process.priority`)."""
        self.last_error: str | None = None
        self.on_batch: list[Callable[[], None]] = []
        """Called after the loop has applied new events (the journey runner wakes on it)."""
        for stage in stages:
            stage.setup(db)

    def offsets(self) -> dict[str, int]:
        """Each stage's committed offset: the last sequence number it has applied."""
        # A fresh cursor, not the processor's own: other threads (the admin API) ask too, and the
        # processor's cursor may be in the middle of a stage's transaction.
        stored = dict(self._db.execute('SELECT stage, "offset" FROM stage_offsets'))
        return {s.name: int(stored.get(s.name, 0)) for s in self.stages}

    def head(self) -> int:
        """The seq up to which the log is committed: from `head_source`, else the highest stored."""
        if self.head_source is not None:
            return self.head_source()
        return int(self._db.execute("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    def lag(self, offsets: dict[str, int] | None = None) -> int:
        """How many committed events the slowest stage has yet to apply."""
        applied = (self.offsets() if offsets is None else offsets).values()
        return max(0, self.head() - min(applied)) if applied else 0

    def run_once(self, head: int | None = None) -> int:
        """Applies every stage up to `head`; returns how many events that was.

        The default head is every event acknowledged so far (loaded first, via `catch_up`).
        """
        if head is None and self.catch_up is not None:
            self.catch_up()
        with self._run_lock:
            if head is None:
                head = self.head()
            offsets = self.offsets()
            start = min(offsets.values(), default=head)
            lo = start
            while lo < head:
                hi = min(head, lo + self.max_batch_events)
                for stages, batch in _transactions(self.stages, offsets, lo, hi):
                    self._apply(stages, batch)
                    for stage in stages:
                        offsets[stage.name] = hi
                lo = hi
            return head - start

    @contextmanager
    def exclusive(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Holds off every micro-batch and refresh while the caller works on the processor's cursor."""
        with self._run_lock:
            yield self._cur

    def run_exclusive(self, stage_name: str, make_steps: Callable[[int], Sequence[SqlStep | PyStep]]) -> int:
        """Runs steps that change a stage's state outside a micro-batch (a user's split), in one transaction.

        `make_steps` gets the stage's offset, the seq up to which its state is applied; no
        micro-batch runs meanwhile. Returns that offset.
        """
        with self._run_lock:
            hi = self.offsets()[stage_name]
            cur = self._cur
            cur.execute("BEGIN")
            try:
                run_steps(cur, stage_name, make_steps(hi))
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
            return hi

    def refresh(self) -> int:
        """Runs what stages have due outside a micro-batch (see `Refreshing`); returns how many did."""
        ran = 0
        with self._run_lock:
            for stage in self.stages:
                refresh = getattr(stage, "refresh", None)
                if refresh is None:
                    continue
                cur = self._cur
                cur.execute("BEGIN")
                try:
                    steps = refresh(cur)
                    run_steps(cur, stage.name, steps)
                    cur.execute("COMMIT")
                except Exception:
                    cur.execute("ROLLBACK")
                    raise
                ran += bool(steps)
        return ran

    def rebuild(self) -> None:
        """Empties every stage and replays the whole event log through them as one batch."""
        with self._run_lock:
            cur = self._cur
            cur.execute("BEGIN")
            for stage in self.stages:
                stage.reset(cur)
            run(cur, "DELETE FROM stage_offsets")
            cur.execute("COMMIT")
        saved, self.max_batch_events = self.max_batch_events, 1 << 62
        try:
            self.run_once()
        finally:
            self.max_batch_events = saved

    def _apply(self, stages: list[Stage], batch: Batch) -> None:
        """Applies `batch` to each of `stages` in turn, in one transaction."""
        cur: duckdb.DuckDBPyConnection = self._cur
        started = time.perf_counter()
        # A stage may prepare outside the transaction what need not be atomic with it: dropping the
        # indexes of tables a rebuild fills, which DuckDB builds far faster than it maintains them
        # (an index dropped inside the transaction is still maintained until it commits).
        for stage in stages:
            prepare = getattr(stage, "prepare", None)
            if prepare is not None:
                prepare(batch)
        cur.execute("BEGIN")
        try:
            run(
                cur,
                f"CREATE OR REPLACE TEMP VIEW {BATCH_VIEW} AS"
                f" SELECT * FROM events WHERE seq > {int(batch.lo)} AND seq <= {int(batch.hi)}",
            )
            for stage in stages:
                stage_started = time.perf_counter()
                # A stage whose work is not all SQL (the record matcher) does it in `apply`, in the
                # same transaction, before its SQL steps.
                apply = getattr(stage, "apply", None)
                if apply is not None:
                    apply(cur, batch)
                run_steps(cur, stage.name, stage.steps(batch))
                log.debug(
                    "%s applied (%d, %d] in %.1f ms",
                    stage.name,
                    batch.lo,
                    batch.hi,
                    1000 * (time.perf_counter() - stage_started),
                )
            rows = ", ".join("(?, ?, now())" for _ in stages)
            run(
                cur,
                f'INSERT OR REPLACE INTO stage_offsets (stage, "offset", updated_at) VALUES {rows}',
                [v for stage in stages for v in (stage.name, batch.hi)],
            )
            committing = time.perf_counter()
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        done = time.perf_counter()
        log.debug(
            "batch (%d, %d] through %d stages in %.1f ms (commit %.1f ms)",
            batch.lo,
            batch.hi,
            len(stages),
            1000 * (done - started),
            1000 * (done - committing),
        )
        for stage in stages:
            committed = getattr(stage, "committed", None)
            if committed is not None:
                committed(batch)

    # -- background thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Runs the loop in a background thread until stop()."""
        self._thread = threading.Thread(target=self._loop, name="tailor-processor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the loop after the batch in progress."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stops the loop and releases the processor's connection."""
        self.stop()
        self._cur.close()

    def wake(self) -> None:
        """Says that events were loaded: the loop runs now instead of at the end of its interval."""
        self._wake.set()

    def _batch_done(self) -> None:
        for hook in self.on_batch:
            hook()

    def _loop(self) -> None:
        lower_this_thread(self.nice)
        backoff = self.interval_s
        while not self._stop.is_set():
            # Woken when events are acknowledged or loaded, or at the latest after an interval
            # (time-based refreshes). Each batch starts by loading every acknowledged event, so an
            # event waits for the batch in progress and no longer; while a batch runs, events
            # gather in the staging log, so a busy collector still yields micro-batches of many
            # events rather than one per commit.
            self._wake.wait(backoff)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self.run_once(None if self.load_acknowledged else self.head()):
                    self._batch_done()
                if self.refresh():
                    self._batch_done()
                self.last_error = None
                backoff = self.interval_s
            except Exception as e:
                # A failing stage must not take the server down; it is retried with backoff and reported.
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("processing failed; retrying")
                backoff = min(backoff * 2, 30.0)


def _transactions(
    stages: list[Stage], offsets: dict[str, int], lo: int, hi: int
) -> Iterator[tuple[list[Stage], Batch]]:
    """The stages that have events up to `hi` to apply, in order, grouped into transactions.

    Stages at the same offset share one transaction: a micro-batch commits once, not once per
    stage (each commit and each stage's statements around it cost DuckDB a few milliseconds). A
    stage behind the others (new, or catching up) gets a transaction of its own, and so does
    every stage of a rebuild's batch from the start of the log, whose tables are large enough that
    each is best committed (and its indexes built) before the next stage reads them.
    """
    group: list[Stage] = []
    group_lo = -1
    for stage in stages:
        if offsets[stage.name] >= hi:
            continue
        stage_lo = max(lo, offsets[stage.name])
        if group and (stage_lo != group_lo or stage_lo == 0):
            yield group, Batch(group_lo, hi)
            group = []
        group.append(stage)
        group_lo = stage_lo
    if group:
        yield group, Batch(group_lo, hi)
