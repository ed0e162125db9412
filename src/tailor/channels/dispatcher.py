"""The dispatcher: claims due messages, applies the send-time checks, renders and delivers them.

It runs its own asyncio loop on a thread of its own (or in a process of its own for tests and
benchmarks). Claims, verdicts and outcomes are recorded in the messaging database; outcomes are
committed in groups, each with its tracking events, while the hand-over mark is committed per
message at the moment it matters (see lifecycle.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tailor.channels import lifecycle
from tailor.channels.base import Channel, Delivery
from tailor.channels.exceptions import PermanentDeliveryError, TemplateError, TransientDeliveryError
from tailor.channels.lifecycle import Outcome, RetryPolicy
from tailor.channels.outbox import StoredMessage
from tailor.channels.policy import SendCheck, decide
from tailor.channels.relay import EventRelay, EventSink
from tailor.channels.store import connect, transaction
from tailor.channels.templates import TemplateStore
from tailor.channels.tracking import TrackingLinks

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 1.0
"""How often the dispatcher copies the WAL into the messaging database (never inside a hand-over)."""


class Dispatcher:
    """Delivers the outbox through the channels until stopped."""

    def __init__(
        self,
        path: Path,
        channels: Sequence[Channel],
        links: TrackingLinks,
        checks: Sequence[SendCheck] = (),
        retry: dict[str, RetryPolicy] | None = None,
        sink: EventSink | None = None,
        batch_size: int = 500,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.channels = {c.name: c for c in channels}
        self.links = links
        self.checks = list(checks)
        self.retry = {name: RetryPolicy() for name in self.channels} | (retry or {})
        self.sink = sink
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.clock = clock
        self.templates = TemplateStore()
        self.run_id = secrets.token_hex(6)
        self.last_error: str | None = None
        self.sent = 0
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._relay_stop = False
        self._inflight: dict[str, int] = dict.fromkeys(self.channels, 0)
        self._people: Counter[str] = Counter()
        """Profiles with a message in flight: their next one waits, so a person's messages arrive in order."""
        self._claimed: set[str] = set()
        self._outcomes: list[Outcome] = []
        self._checkpointed = 0.0
        # wait_idle's requests and the loop's answers: an answer counts only from a pass that began
        # after the request, so a pass already past its claim cannot report idle for a message
        # enqueued just before the request.
        self._idle = threading.Condition()
        self._idle_asked = 0
        self._idle_answered = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Runs the dispatcher on a thread with its own event loop."""
        ready = threading.Event()

        def main() -> None:
            try:
                import uvloop

                loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            except ImportError:  # pragma: no cover - uvloop is not built for Windows
                loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            loop.run_until_complete(self.run())
            loop.close()

        self._thread = threading.Thread(target=main, name="tailor-dispatcher", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Lets messages in delivery finish, puts the other claimed ones back, flushes events, and stops."""
        self._stopping = True
        self.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def notify(self) -> None:
        """Wakes the dispatcher early (something was enqueued); safe from any thread."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Waits until nothing is due, in flight or waiting to be relayed (for tests and the demo)."""
        with self._idle:
            self._idle_asked += 1
            asked = self._idle_asked
        self.notify()
        with self._idle:
            return self._idle.wait_for(lambda: self._idle_answered >= asked, timeout)

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Delivers until `stop()`: the main coroutine (also run directly by a sender process)."""
        self._wake = asyncio.Event()
        self._conn = conn = connect(self.path)
        # SQLite checkpoints a large WAL inside the commit that grew it, after the commit is durable:
        # in a hand-over commit that would put milliseconds of copying and syncing between the mark
        # and the bytes it stands for. This connection checkpoints in `_flush` instead.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointed = time.monotonic()
        requeued, unconfirmed = lifecycle.recover(conn, self.clock())
        if requeued or unconfirmed:
            log.warning(
                "recovered the outbox: %d messages requeued, %d counted as sent", requeued, unconfirmed
            )
        relay = EventRelay(connect(self.path), self.sink) if self.sink is not None else None
        relaying = asyncio.create_task(self._relay(relay)) if relay is not None else None
        for channel in self.channels.values():
            await channel.start()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                asked = self._idle_asked  # before the claim: see `wait_idle`
                try:
                    claimed = self._claim()
                    for m in claimed:
                        task = asyncio.create_task(self._send(m))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    self._flush()
                    self.last_error = None
                except Exception as e:  # a locked or failing database must not end the dispatcher
                    self.last_error = f"{type(e).__name__}: {e}"
                    log.exception("dispatching failed; retrying")
                    claimed = []
                    await asyncio.sleep(1.0)
                quiet = not claimed and not tasks and not self._outcomes
                if quiet and (relay is None or relay.pending() == 0):
                    with self._idle:
                        self._idle_answered = max(self._idle_answered, asked)
                        self._idle.notify_all()
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_s)
                    self._wake.clear()
                else:
                    await asyncio.sleep(0)
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._flush()
            if self._claimed:
                lifecycle.release(conn, sorted(self._claimed))
                self._claimed.clear()
            if relaying is not None and relay is not None:
                self._relay_stop = True
                await asyncio.gather(relaying, return_exceptions=True)
                try:
                    while await relay.pump():
                        pass
                except Exception:
                    log.exception(
                        "relaying tracking events at stop failed; they are relayed at the next start"
                    )
                relay.conn.close()
            for channel in self.channels.values():
                await channel.close()
            conn.close()

    async def _relay(self, relay: EventRelay) -> None:
        """Moves tracking events into the event log, apart from the sending loop (the writer may be slow)."""
        while not self._relay_stop:
            try:
                if await relay.pump():
                    continue
            except Exception as e:
                self.last_error = f"relaying events: {type(e).__name__}: {e}"
                log.exception("relaying tracking events failed; retrying")
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.poll_s)

    def _claim(self) -> list[StoredMessage]:
        """Claims due messages for channels with room, after the send-time checks."""
        assert self._conn is not None
        # Up to eight messages per connection wait ready, so a connection never idles between two;
        # a channel is topped up once half of that is used, not after every message: each claim is
        # a write transaction and a query, and the consent check costs ~3 ms a batch whatever its
        # size (measured: 190 µs a message in batches of 16, 50 in batches of 64).
        room = {
            n: 8 * c.concurrency - self._inflight[n]
            for n, c in self.channels.items()
            if self._inflight[n] <= 4 * c.concurrency
        }
        room = {n: r for n, r in room.items() if r > 0}
        if not room:
            return []
        now = self.clock()
        with transaction(self._conn) as conn:
            due = [m for n, r in room.items() for m in lifecycle.due(conn, now, min(r, self.batch_size), n)]
            batch = self._one_per_person(due)
            if not batch:
                return []
            verdicts = decide(self.checks, conn, batch, now)
            claimed = lifecycle.settle_verdicts(conn, self.run_id, batch, verdicts, now)
        for m in claimed:
            self._inflight[m.channel] += 1
            self._claimed.add(m.message_id)
            if m.recipient.profile_id is not None:
                self._people[m.recipient.profile_id] += 1
        return claimed

    def _one_per_person(self, due: list[StoredMessage]) -> list[StoredMessage]:
        """The due messages of people with none in flight, the oldest one each; the rest wait their turn.

        Two messages to one person (a journey's two sends in a row, an email and an SMS) would
        otherwise go out on two connections at once and may arrive in either order. Messages without
        a profile (an API call to a webhook URL) are not held back.
        """
        out, seen = [], set()
        for m in due:
            person = m.recipient.profile_id
            if person is not None:
                if person in seen or self._people[person]:
                    continue
                seen.add(person)
            out.append(m)
        return out

    def _flush(self) -> None:
        if self._outcomes and self._conn is not None:
            outcomes, self._outcomes = self._outcomes, []
            lifecycle.record(self._conn, outcomes, self.retry, self.clock())
        if self._conn is not None and time.monotonic() - self._checkpointed >= CHECKPOINT_EVERY_S:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._checkpointed = time.monotonic()

    def _data(self, m: StoredMessage) -> dict[str, Any]:
        return {
            **m.data,
            "message_id": m.message_id,
            "unsubscribe_url": self.links.unsubscribe_url(m.message_id),
        }

    async def _send(self, m: StoredMessage) -> None:
        channel = self.channels[m.channel]
        try:
            if self._stopping:
                return  # released at stop, still queued
            self._claimed.discard(m.message_id)
            outcome = await self._attempt(channel, m)
            if outcome.status in ("sent", "delivered"):
                self.sent += 1
            self._outcomes.append(outcome)
            if len(self._outcomes) >= 200:
                self._flush()
        finally:
            self._inflight[m.channel] -= 1
            person = m.recipient.profile_id
            if person is not None:
                self._people[person] -= 1
                if not self._people[person]:
                    del self._people[person]
            if self._wake is not None:
                self._wake.set()

    async def _attempt(self, channel: Channel, m: StoredMessage) -> Outcome:
        assert self._conn is not None
        try:
            template = self.templates.get(self._conn, m.template, m.template_version)
            prepared = channel.prepare(m, template.render(self._data(m)))
        except TemplateError as e:
            reason = f"template error: {'; '.join(str(p) for p in e.problems)}"
            return Outcome(m, "failed", self.clock(), reason, events=[("failed", {"reason": reason})])
        except Exception as e:
            reason = f"the message could not be built: {type(e).__name__}: {e}"
            return Outcome(m, "failed", self.clock(), reason, events=[("failed", {"reason": reason})])
        conn = self._conn

        def handover() -> None:
            lifecycle.handed_over(conn, m.message_id, self.clock())

        try:
            delivery = await channel.deliver(prepared, handover)
        except PermanentDeliveryError as e:
            now = self.clock()
            if e.bounce:
                props = {"reason": str(e), "bounce_type": "hard", "smtp_code": e.code, "synchronous": True}
                return Outcome(
                    m, "bounced", now, str(e), events=[("bounced", props)], suppress=f"hard bounce: {e}"
                )
            return Outcome(m, "failed", now, str(e), events=[("failed", {"reason": str(e)})])
        except TransientDeliveryError as e:
            return Outcome(m, "retry", self.clock(), str(e))
        except Exception as e:
            log.exception("delivering %s failed unexpectedly", m.message_id)
            return Outcome(m, "retry", self.clock(), f"unexpected error: {type(e).__name__}: {e}")
        return self._delivered(m, delivery)

    def _delivered(self, m: StoredMessage, d: Delivery) -> Outcome:
        now = self.clock()
        events: list[tuple[str, dict[str, Any]]] = [("sent", {"confirmed": True, **d.properties})]
        if d.delivered:
            events.append(("delivered", dict(d.properties)))
        return Outcome(m, "delivered" if d.delivered else "sent", now, None, d.reply, d.provider_id, events)
