"""Running connectors: one run of any declared connector, and the scheduler thread of `tailor serve`.

Every run is recorded in the connectors' state file with its counts and error. The scheduler
reads the declarations again when a file changes, and starts each scheduled connector when its
interval has passed since its last run; a connector never runs twice at once, and a failed run
is retried sooner (30 s, doubling, never later than its interval).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tailor.connectors.crm.base import MergeBase
from tailor.connectors.crm.spec import CrmSyncSpec
from tailor.connectors.crm.sync import CrmHook, CrmSync, Unlink
from tailor.connectors.declarations import DESTINATIONS, Declaration, FileSourceSpec, load_declarations
from tailor.connectors.destinations.audiences import segment_exists
from tailor.connectors.destinations.outbox import Outbox
from tailor.connectors.destinations.sync import AfterSend, sender_for, sync_destination
from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.file_import import import_file
from tailor.connectors.sql_source import PageHook, SqlSource, SqlSourceSpec
from tailor.connectors.state import ConnectorState, Run, RunCounts
from tailor.connectors.webhook_source import InboundWebhook, WebhookSourceSpec
from tailor.exceptions import TailorError, TransientError

if TYPE_CHECKING:
    from tailor.collect.writer import EventWriter
    from tailor.store.database import Database

log = logging.getLogger(__name__)
TICK_S = 1.0
FIRST_RETRY_S = 30.0


class ConnectorService:
    """The connectors of one data directory: declarations, runs, their history and the scheduler."""

    def __init__(self, data_dir: Path, db: Database, writer: EventWriter) -> None:
        self.data_dir = data_dir
        self._db = db
        self._writer = writer
        self.state = ConnectorState.of(data_dir)
        self.state.abandon_running()
        self._outbox: Outbox | None = None
        self._declared: dict[str, Declaration] = {}
        self.broken: dict[str, str] = {}
        """Declaration files that cannot be used, with their problems."""
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._running: dict[str, Future[Run]] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._run_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.page_hook: PageHook | None = None
        """Called after each durable page of a database source (tests stop a database there)."""
        self.after_send: AfterSend | None = None
        """Called between a destination's acknowledgement and its record (tests crash there)."""
        self.unlink: Unlink | None = None
        """Detaches a deleted CRM contact's record from its profile (set by the runtime)."""
        self.crm_hook: CrmHook | None = None
        """Called at points of a CRM sync cycle (tests crash or stop the database there)."""
        self._bases: MergeBase | None = None

    @property
    def bases(self) -> MergeBase:
        """The merge bases of CRM syncs (in the state file)."""
        if self._bases is None:
            self._bases = MergeBase.of(self.data_dir)
        return self._bases

    def erased(self, identifiers: list[tuple[str, str]], erasure_id: str) -> int:
        """Queues an erased person's CRM contacts for each CRM sync's next cycle; returns how many."""
        queued = 0
        for name, declared in self.declarations().items():
            spec = declared.spec
            if not isinstance(spec, CrmSyncSpec):
                continue
            prefix = f"{spec.record}:"
            contacts = [v[len(prefix) :] for t, v in identifiers if t == "record" and v.startswith(prefix)]
            if contacts:
                self.bases.request_erasure(name, contacts, erasure_id)
                queued += len(contacts)
        return queued

    @property
    def outbox(self) -> Outbox:
        """The destinations' outbox (its tables are created on first use)."""
        if self._outbox is None:
            self._outbox = Outbox(self._db)
        return self._outbox

    def declarations(self) -> dict[str, Declaration]:
        """The declared connectors, read again when a declaration file changed."""
        folder = self.data_dir / "connectors"
        files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        stamp = tuple((str(p), p.stat().st_mtime) for p in files)
        with self._lock:
            if stamp != self._stamp:
                self._declared, self.broken = load_declarations(self.data_dir)
                self._stamp = stamp
            return dict(self._declared)

    def webhook(self, name: str) -> InboundWebhook | None:
        """The inbound webhook of that name, if one is declared."""
        declared = self.declarations().get(name)
        if declared is None or not isinstance(declared.spec, WebhookSourceSpec):
            return None
        return InboundWebhook(name, declared.spec)

    # -- one run ---------------------------------------------------------------------------------

    def run(self, name: str) -> Run:
        """Runs one connector now and returns its recorded run.

        Runs of one connector never overlap: a run asked for (by the CLI, the API or a test) while
        the scheduler's is under way waits for it, then starts from where it stopped.
        """
        with self._lock:
            run_lock = self._run_locks.setdefault(name, threading.Lock())
        with run_lock:
            return self._run(name)

    def _run(self, name: str) -> Run:
        declared = self.declarations().get(name)
        if declared is None:
            problem = self.broken.get(name)
            raise ConnectorError(problem or f"no connector {name!r} is declared")
        if isinstance(declared.spec, WebhookSourceSpec):
            raise ConnectorError(f"{name} is an inbound webhook: senders POST to /v1/webhooks/{name}")
        run_id = self.state.start_run(name, declared.type, self.state.cursor(name))
        counts = RunCounts()
        details: dict[str, Any] = {}
        status, error = "ok", None
        try:
            counts, details, status, error = self._dispatch(name, declared, run_id)
        except TailorError as e:
            status, error = "failed", str(e)
            details["transient"] = isinstance(e, TransientError)
            log.warning("connector %s failed: %s", name, e)
        except Exception as e:
            status, error = "failed", f"{type(e).__name__}: {e}"
            log.exception("connector %s failed", name)
        self.state.finish_run(run_id, status, counts, error, self.state.cursor(name), details)
        return self.state.runs(name, 1)[0]

    def _dispatch(
        self, name: str, declared: Declaration, run_id: int
    ) -> tuple[RunCounts, dict[str, Any], str, str | None]:
        spec = declared.spec
        if isinstance(spec, FileSourceSpec):
            path = Path(spec.path) if Path(spec.path).is_absolute() else self.data_dir / spec.path
            c = import_file(self._db, self._writer, path, spec.mapping, name, spec.format)
            counts = RunCounts(c.rows_read, c.rows_written, c.rows_skipped, c.rows_failed)
            return counts, {"errors": c.errors[:20]}, "partial" if c.rows_failed else "ok", None
        if isinstance(spec, SqlSourceSpec):
            return self._sql_source(name, spec, run_id)
        if isinstance(spec, CrmSyncSpec):
            return self._crm_sync(name, spec)
        assert isinstance(spec, DESTINATIONS)
        if spec.segment is not None and not segment_exists(self._db, spec.segment):
            # Exporting a missing segment would delete the whole audience at the destination.
            raise ConnectorError(f"{name}: no segment named {spec.segment!r} is defined")
        sender = sender_for(spec, self.data_dir)
        try:
            r = sync_destination(name, spec, self.outbox, sender, run_id, self.after_send)
        finally:
            sender.close()
        counts = RunCounts(r.rows_read, r.rows_sent, r.rows_unchanged, r.rows_dead)
        details = msgspec.to_builtins(r) | {"outbox": self.outbox.summary(name)}
        status = "failed" if r.error else ("partial" if r.batches_dead else "ok")
        return counts, details, status, r.error or ("; ".join(r.rejected) or None)

    def _sql_source(
        self, name: str, spec: SqlSourceSpec, run_id: int
    ) -> tuple[RunCounts, dict[str, Any], str, str | None]:
        source = SqlSource(name, spec)

        def store(cursor: Any) -> None:
            self.state.set_cursor(name, cursor)

        status, error, details = "ok", None, {}
        try:
            source.run(self._db, self._writer, self.state.cursor(name), store, self.page_hook)
        except TailorError as e:
            # Pages stored before the failure stay stored, their cursor with them: count them.
            status, error, details = "failed", str(e), {"transient": isinstance(e, TransientError)}
            log.warning("connector %s failed: %s", name, e)
        c = source.counts
        counts = RunCounts(c.rows_read, c.rows_written, c.rows_skipped, c.rows_failed)
        if status == "ok" and c.rows_failed:
            status = "partial"
        return counts, details | {"errors": c.errors[:20]}, status, error

    def _crm_sync(self, name: str, spec: CrmSyncSpec) -> tuple[RunCounts, dict[str, Any], str, str | None]:
        sync = CrmSync(name, spec, self._db, self._writer, self.bases, self.unlink, self.crm_hook)
        status, error, details = "ok", None, {}
        try:
            sync.run()
        except TailorError as e:
            # What was written before the failure has its base stored: count it.
            status, error, details = "failed", str(e), {"transient": isinstance(e, TransientError)}
            log.warning("connector %s failed: %s", name, e)
        r = sync.result
        counts = RunCounts(r.contacts_read, r.written_to_crm + r.written_to_tailor, r.unchanged, r.failed)
        if status == "ok" and r.failed:
            status = "partial"
        return counts, details | msgspec.to_builtins(r), status, error

    # -- the scheduler ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the scheduler thread."""
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tailor-connector")
        self._thread = threading.Thread(target=self._loop, name="tailor-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops scheduling and waits for the runs under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self) -> None:
        """Stops the scheduler and closes the state file."""
        self.stop()
        self.state.close()
        if self._bases is not None:
            self._bases.close()

    def due(self, now: float) -> list[str]:
        """The scheduled connectors whose next run is due and that are not running."""
        last = self.state.last_runs()
        out = []
        for name, declared in self.declarations().items():
            interval = declared.interval_s
            if interval is None or (name in self._running and not self._running[name].done()):
                continue
            previous = last.get(name)
            if previous is None:
                out.append(name)
                continue
            wait = interval
            if previous.status == "failed":
                wait = min(interval, FIRST_RETRY_S * 2 ** min(self._failures.get(name, 0), 10))
            if now >= (previous.finished_at or previous.started_at) + wait:
                out.append(name)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                for name in self.due(time.time()):
                    assert self._pool is not None
                    self._running[name] = self._pool.submit(self._scheduled, name)
            except Exception:
                log.exception("connector scheduling failed; trying again")

    def _scheduled(self, name: str) -> Run:
        run = self.run(name)
        self._failures[name] = self._failures.get(name, 0) + 1 if run.status == "failed" else 0
        return run
