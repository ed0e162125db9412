"""The journey runner in `tailor serve`: events, segment changes, schedules and due timers, pass by pass.

Each pass reads, by offset, the events the profiles stage has applied (so every event has its
person) and the segment changes after the last id consumed; the offsets commit in the same
SQLite transaction as the entries, exits and wake-ups they cause. Then due instances move on a
chunk at a time, each chunk one transaction with its messages. The processor wakes the runner
after every micro-batch, so a trigger is handled within moments of its event being processed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from tailor.channels.exceptions import OutboxError
from tailor.channels.outbox import Outbox
from tailor.channels.store import advance_offset, consumer_offset, transaction
from tailor.journeys.config import JourneysConfig
from tailor.journeys.definitions import JourneyDefinition, parse_journey
from tailor.journeys.engine import (
    INSTANCE_COLUMNS,
    VISIT_SQL,
    EventFacts,
    Instance,
    StepRunner,
    instance_from_row,
)
from tailor.journeys.entries import Candidate, ControlGroup, enter
from tailor.journeys.people import Person, TriggerEvent, events_done, load_events, load_people, matches
from tailor.journeys.store import create_journey_schema, saved_journeys
from tailor.store.database import Database

log = logging.getLogger(__name__)

EVENTS_CONSUMER = "journeys:events"
SEGMENTS_CONSUMER = "journeys:segments"
MERGES_CONSUMER = "journeys:merges"


@dataclass
class Loaded:
    """The saved journeys as the runner uses them, with the time each was first saved."""

    journeys: dict[str, JourneyDefinition]
    created: dict[str, float]
    versions: dict[str, int]


class JourneyRunner:
    """Runs every saved journey against the event log, segment changes and the clock."""

    def __init__(
        self,
        db: Database,
        connect: Callable[[], sqlite3.Connection],
        outbox: Outbox,
        config: JourneysConfig,
        applied_head: Callable[[], int],
        notify: Callable[[], None] = lambda: None,
        default_timezone: str = "UTC",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.conn = connect()
        create_journey_schema(self.conn)
        self.config = config
        self.applied_head = applied_head
        """The seq up to which the profiles stage has applied the log (events have their person)."""
        self.notify = notify
        """Wakes the dispatcher after messages were enqueued."""
        self.steps = StepRunner(outbox, default_timezone)
        self.control = ControlGroup(config.control_percent, config.control_salt)
        self.clock = clock
        self.loaded = Loaded({}, {}, {})
        self.last_error: str | None = None
        self.lock = threading.Lock()
        """One pass at a time (the thread's, or a caller's `run_once`)."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- definitions ----------------------------------------------------------------------------

    def reload(self) -> dict[str, JourneyDefinition]:
        """The saved journeys, parsed again only when a version changed."""
        versions = dict(self.conn.execute("SELECT name, version FROM journeys").fetchall())
        if versions != self.loaded.versions:
            journeys, created = {}, {}
            for saved in saved_journeys(self.conn):
                try:
                    journeys[saved.name] = parse_journey(saved.definition)
                    created[saved.name] = saved.created_at
                except Exception:
                    log.exception("journey %s cannot be read; it is not run", saved.name)
            self.loaded = Loaded(journeys, created, versions)
        return self.loaded.journeys

    # -- one pass -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass over events, segment changes, schedules and due instances; returns the work done."""
        with self.lock:
            journeys = self.reload()
            now = self.clock()
            # Merges first: the events read next are attributed to the surviving profile.
            work = self._merges(now)
            work += self._events(journeys, now)
            work += self._segment_changes(journeys, now)
            work += self._schedules(journeys, now)
            work += self._due(journeys)
            return work

    def _merges(self, now: float) -> int:
        """Moves the instances of profiles that identity resolution merged onto the surviving profile.

        Events, exits and conversions are read for the survivor, so an instance left on an absorbed
        id would never see them (a cart-abandonment reminder after the order). When both profiles
        were on the same journey, the instance that entered first goes on and the other ends.
        """
        lo = consumer_offset(self.conn, MERGES_CONSUMER)
        hi = self.applied_head()
        if hi <= lo:
            return 0
        rows = self.db.execute(
            "SELECT other_id, profile_id FROM profile_changes"
            " WHERE change = 'merged' AND seq > ? AND seq <= ? ORDER BY seq",
            [lo, hi],
        )
        moved = 0
        with transaction(self.conn):
            if rows and self.conn.execute("SELECT 1 FROM journey_instances LIMIT 1").fetchone():
                for old, survivor in rows:
                    moved += self._rekey(str(old), str(survivor), now)
            advance_offset(self.conn, MERGES_CONSUMER, hi)
        return moved

    def _rekey(self, old: str, survivor: str, now: float) -> int:
        moved = self.conn.execute(
            "UPDATE journey_instances SET profile_id = ? WHERE profile_id = ?", (survivor, old)
        ).rowcount
        if moved:
            # One person, one active instance per journey: the later entries end.
            self.conn.execute(
                """UPDATE journey_instances SET state = 'exited', finished_at = ?, due_at = NULL,
                waiting_event = NULL, reason = 'profiles merged: already on this journey'
                WHERE profile_id = ? AND state IN ('ready', 'waiting') AND id NOT IN (
                    SELECT id FROM (
                        SELECT id, row_number() OVER (PARTITION BY journey ORDER BY entered_at, id) AS n
                        FROM journey_instances WHERE profile_id = ? AND state IN ('ready', 'waiting')
                    ) WHERE n = 1)""",
                (now, survivor, survivor),
            )
        return int(moved)

    def _events(self, journeys: dict[str, JourneyDefinition], now: float) -> int:
        lo = consumer_offset(self.conn, EVENTS_CONSUMER)
        hi = min(self.applied_head(), lo + self.config.event_batch)
        if hi <= lo:
            return 0
        names = sorted({n for j in journeys.values() for n in j.events()})
        events = load_events(self.db, lo, hi, names)
        with transaction(self.conn):
            done = 0
            # Entries first: an exit event later in the same batch must end the new instance too.
            for name, journey in journeys.items():
                if journey.entry.kind == "event" and journey.entry.event is not None:
                    match = journey.entry.event
                    starts = self.loaded.created[name]
                    candidates = [
                        Candidate(e.profile_id, str(e.seq), {"event": e.data(), "seq": e.seq, "at": e.at})
                        for e in events
                        if e.at >= starts and matches(match, e)
                    ]
                    done += enter(self.conn, journey, candidates, self.control, now)
            done += self._exits(journeys, events, now) + self._arrivals(journeys, events, now)
            advance_offset(self.conn, EVENTS_CONSUMER, hi)
        return done + 1

    def _active(self, journey: str, people: list[str]) -> list[Instance]:
        rows = self.conn.execute(
            f"SELECT {INSTANCE_COLUMNS} FROM journey_instances WHERE journey = ?"
            " AND state IN ('ready', 'waiting') AND profile_id IN (SELECT value FROM json_each(?))",
            (journey, msgspec.json.encode(people).decode()),
        ).fetchall()
        return [instance_from_row(r) for r in rows]

    def _exits(self, journeys: dict[str, JourneyDefinition], events: list[TriggerEvent], now: float) -> int:
        exited = 0
        for journey in journeys.values():
            if not journey.exit_on:
                continue
            hits = [e for e in events if any(matches(m, e) for m in journey.exit_on)]
            if not hits:
                continue
            by_person: dict[str, TriggerEvent] = {}
            for e in hits:
                by_person.setdefault(e.profile_id, e)
            rows = []
            for inst in self._active(journey.name, list(by_person)):
                e = by_person[inst.profile_id]
                # An event from before the entry is no reason to leave; the entry's own event neither.
                after = (
                    e.seq > inst.context["seq"] if "seq" in inst.context else e.at >= inst.entered_at - 1.0
                )
                if after:
                    rows.append((now, f"exit event: {e.name}", inst.id))
            self._end(rows)
            exited += len(rows)
        return exited

    def _arrivals(
        self, journeys: dict[str, JourneyDefinition], events: list[TriggerEvent], now: float
    ) -> int:
        """Moves people waiting for an event that has now happened onto the event's branch."""
        moved = 0
        for journey in journeys.values():
            waits = {s.id: s for s in journey.steps if s.kind == "wait_for_event" and s.event is not None}
            if not waits:
                continue
            names = {s.event.name for s in waits.values() if s.event is not None}
            hits: dict[str, list[TriggerEvent]] = {}
            for e in events:
                if e.name in names:
                    hits.setdefault(e.profile_id, []).append(e)
            if not hits:
                continue
            rows, visits = [], []
            for inst in self._active(journey.name, list(hits)):
                step = waits.get(inst.step or "")
                if inst.state != "waiting" or step is None or step.event is None:
                    continue
                if any(
                    matches(step.event, e) and e.at >= inst.step_since - 1.0 for e in hits[inst.profile_id]
                ):
                    rows.append((step.next, now, now, inst.id))
                    visits.append((inst.id, journey.name, step.id, now, "event"))
            self.conn.executemany(
                "UPDATE journey_instances SET step = ?, state = 'ready', due_at = ?, waiting_event = NULL,"
                " step_since = ? WHERE id = ?",
                rows,
            )
            self.conn.executemany(
                VISIT_SQL,
                visits,
            )
            moved += len(rows)
        return moved

    def _segment_changes(self, journeys: dict[str, JourneyDefinition], now: float) -> int:
        lo = consumer_offset(self.conn, SEGMENTS_CONSUMER)
        rows = self.db.execute(
            "SELECT id, segment, profile_id, change, epoch(changed_at), backfill FROM segment_changes"
            " WHERE id > ? ORDER BY id LIMIT ?",
            [lo, self.config.event_batch],
        )
        if not rows:
            return 0
        with transaction(self.conn):
            for name, journey in journeys.items():
                entry = journey.entry
                if entry.kind != "segment":
                    continue
                starts = self.loaded.created[name]
                candidates = [
                    Candidate(str(pid), f"s{cid}", {})
                    for cid, segment, pid, change, at, backfill in rows
                    if segment == entry.segment
                    and str(change).startswith(entry.change)
                    and not backfill  # a new segment's first members did not just enter it
                    and float(at) >= starts
                ]
                enter(self.conn, journey, candidates, self.control, now)
            for journey in journeys.values():
                if journey.exit_segments:
                    self._segment_exits(journey, rows, now)
            advance_offset(self.conn, SEGMENTS_CONSUMER, int(rows[-1][0]))
        return len(rows)

    def _segment_exits(self, journey: JourneyDefinition, rows: list[tuple[Any, ...]], now: float) -> int:
        """Ends the instances of people who left one of the journey's exit segments after entering it."""
        left: dict[str, tuple[str, float]] = {}
        for _cid, segment, pid, change, at, _backfill in rows:
            if segment in journey.exit_segments and str(change) == "exited":
                left.setdefault(str(pid), (str(segment), float(at)))
        if not left:
            return 0
        done = [
            (now, f"left segment {left[inst.profile_id][0]}", inst.id)
            for inst in self._active(journey.name, list(left))
            if left[inst.profile_id][1] >= inst.entered_at - 1.0
        ]
        self._end(done)
        return len(done)

    def _end(self, rows: list[tuple[float, str, str]]) -> None:
        """Ends instances, each (finished at, reason, instance id), in the caller's transaction."""
        self.conn.executemany(
            "UPDATE journey_instances SET state = 'exited', finished_at = ?, reason = ?, due_at = NULL,"
            " waiting_event = NULL WHERE id = ?",
            rows,
        )

    def _schedules(self, journeys: dict[str, JourneyDefinition], now: float) -> int:
        entered = 0
        for name, journey in journeys.items():
            entry = journey.entry
            if entry.kind != "schedule" or entry.segment is None or not journey.enabled:
                continue
            first = entry.at.timestamp() if entry.at is not None else self.loaded.created[name]
            if first > now:
                continue
            run_at = first
            if entry.every is not None:
                step = entry.every.total_seconds()
                run_at = first + ((now - first) // step) * step
            done = self.conn.execute(
                "SELECT 1 FROM journey_runs WHERE journey = ? AND run_at = ?", (name, run_at)
            ).fetchone()
            if done is None:
                entered += self.broadcast(journey, entry.segment, run_at, now)
        return entered

    def broadcast(self, journey: JourneyDefinition, segment: str, run_at: float, now: float) -> int:
        """Enters a segment's members for one scheduled run, a chunk per transaction, then records the run."""
        members = [
            str(p)
            for (p,) in self.db.execute(
                "SELECT profile_id FROM segment_members WHERE segment = ? ORDER BY profile_id", [segment]
            )
        ]
        size = self.config.chunk_size
        entered = 0
        trigger = f"r{int(run_at)}"
        for start in range(0, len(members), size):
            chunk = [Candidate(pid, trigger, {}) for pid in members[start : start + size]]
            with transaction(self.conn):
                entered += enter(self.conn, journey, chunk, self.control, now)
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR IGNORE INTO journey_runs (journey, run_at, entered, done_at) VALUES (?, ?, ?, ?)",
                (journey.name, run_at, entered, now),
            )
        log.info(
            "journey %s: run at %s entered %d of %d members", journey.name, run_at, entered, len(members)
        )
        return entered

    def _due(self, journeys: dict[str, JourneyDefinition]) -> int:
        segments = sorted(
            {
                s.condition.name
                for j in journeys.values()
                for s in j.steps
                if s.condition and s.condition.kind == "segment"
            }
        )
        moved = 0
        while not self._stop.is_set():
            now = self.clock()
            rows = self.conn.execute(
                f"SELECT {INSTANCE_COLUMNS} FROM journey_instances WHERE state IN ('ready', 'waiting')"
                " AND due_at <= ? ORDER BY due_at LIMIT ?",
                (now, self.config.chunk_size),
            ).fetchall()
            if not rows:
                break
            instances = [instance_from_row(r) for r in rows]
            ids = [i.profile_id for i in instances]
            people = load_people(self.db, ids, segments)
            floor = min(float(i.context.get("at", i.entered_at)) for i in instances)
            facts = EventFacts(lambda pids, name, since: events_done(self.db, pids, name, since), ids, floor)
            try:
                with transaction(self.conn):
                    writes = self.steps.run_chunk(self.conn, journeys, instances, people, facts, now)
            except OutboxError:
                # One bad message (an address the outbox refuses) must not hold back the chunk:
                # each instance alone, and the one that fails leaves with the reason.
                writes = None
                for inst in [instance_from_row(r) for r in rows]:
                    self._run_alone(journeys, inst, people, facts, now)
            moved += len(instances)
            if writes is None or writes.messages:
                self.notify()
        return moved

    def _run_alone(
        self,
        journeys: dict[str, JourneyDefinition],
        inst: Instance,
        people: dict[str, Person],
        facts: EventFacts,
        now: float,
    ) -> None:
        try:
            with transaction(self.conn):
                self.steps.run_chunk(self.conn, journeys, [inst], people, facts, now)
        except OutboxError as e:
            with transaction(self.conn):
                self.conn.execute(
                    "UPDATE journey_instances SET state = 'exited', finished_at = ?, reason = ?,"
                    " due_at = NULL WHERE id = ?",
                    (now, f"the outbox refused a message at step {inst.step}: {e}", inst.id),
                )

    # -- background thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Runs passes on a thread until `stop()`."""
        self._thread = threading.Thread(target=self._loop, name="tailor-journeys", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something happened (a micro-batch was processed): run a pass now."""
        self._wake.set()

    def stop(self) -> None:
        """Stops after the pass in progress."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stops and closes the runner's connection."""
        self.stop()
        self.conn.close()

    def _loop(self) -> None:
        backoff = self.config.poll_ms / 1000
        while not self._stop.is_set():
            try:
                while self.run_once() and not self._stop.is_set():
                    pass  # more may be waiting: events beyond one batch, chunks due meanwhile
                self.last_error = None
                backoff = self.config.poll_ms / 1000
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("journey pass failed; retrying")
                backoff = min(backoff * 2, 30.0)
            self._wake.wait(backoff)
            self._wake.clear()
