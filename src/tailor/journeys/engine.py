"""Moving journey instances through their steps: a chunk of due instances per SQLite transaction.

An instance runs step after step until it has to wait (a timer or an event), leaves, or ends.
Every state change of a chunk, the visits, the offers given, the messages (key
`journey:<instance>:<step>`) and the trait updates (identify events, queued for the event log)
are written in the caller's one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import xxhash

from tailor import __version__
from tailor.channels.lifecycle import queue_events
from tailor.channels.outbox import Outbox, OutboxMessage, Recipient
from tailor.journeys.definitions import JourneyDefinition, Offer, Step
from tailor.journeys.people import Happened, Person, compare, holds

log = logging.getLogger(__name__)

JOURNEYS_SOURCE = "tailor-journeys"
MAX_STEPS_AT_ONCE = 100
"""A guard: more steps than this without a wait in one go ends the instance (validation forbids it)."""

_decode = msgspec.json.Decoder(dict[str, Any])


def bucket(*parts: str) -> int:
    """A person's stable bucket 0..9999 for a purpose (holdout, control, a split)."""
    return int(xxhash.xxh64_intdigest(":".join(parts).encode()) % 10_000)


def message_key(instance_id: str, step_id: str) -> str:
    """The idempotency key of the message a step sends."""
    return f"journey:{instance_id}:{step_id}"


@dataclass
class Instance:
    """One person's way through one journey."""

    id: str
    journey: str
    profile_id: str
    grp: str
    variant: str | None
    step: str | None
    state: str
    due_at: float | None
    waiting_event: str | None
    step_since: float
    entered_at: float
    context: dict[str, Any]
    finished_at: float | None = None
    reason: str | None = None


VISIT_SQL = (
    "INSERT OR IGNORE INTO journey_visits (instance_id, journey, step, at, outcome) VALUES (?, ?, ?, ?, ?)"
)
"""Records that an instance went through a step, with the outcome (once per instance and step)."""

INSTANCE_COLUMNS = (
    "id, journey, profile_id, grp, variant, step, state, due_at, waiting_event, step_since, entered_at,"
    " context"
)


def instance_from_row(row: Sequence[Any]) -> Instance:
    """An Instance from a row of INSTANCE_COLUMNS."""
    iid, journey, pid, grp, variant, step, state, due, waiting, since, entered, context = row
    return Instance(
        iid, journey, pid, grp, variant, step, state, due, waiting, since, entered, _decode.decode(context)
    )


@dataclass
class EventFacts:
    """Lazily asks, once per chunk and question, who of the chunk has done an event since when.

    `floor` is the earliest time any instance of the chunk looks back to (its entry): one query
    per event name serves every instance, each filtering by its own time.
    """

    lookup: Callable[[Sequence[str], str, float | None], dict[str, list[Happened]]]
    profile_ids: Sequence[str]
    floor: float | None = None
    cache: dict[tuple[str, float | None], dict[str, list[Happened]]] = field(default_factory=dict)

    def done(self, name: str, since: float | None) -> dict[str, list[Happened]]:
        """Each person's events of `name` at or after `since`."""
        start = since if self.floor is None or since is None else min(since, self.floor)
        key = (name, start)
        if key not in self.cache:
            self.cache[key] = self.lookup(self.profile_ids, name, start)
        found = self.cache[key]
        if since is None or start == since:
            return found
        return {p: [h for h in happened if h[0] >= since] for p, happened in found.items()}


@dataclass
class ChunkWrites:
    """What one chunk's transaction writes."""

    messages: list[OutboxMessage] = field(default_factory=list)
    visits: list[tuple[str, str, str, float, str]] = field(default_factory=list)
    offers: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepRunner:
    """Runs due instances through their steps."""

    def __init__(self, outbox: Outbox, default_timezone: str = "UTC") -> None:
        self.outbox = outbox
        self.default_timezone = default_timezone

    def run_chunk(
        self,
        conn: sqlite3.Connection,
        journeys: dict[str, JourneyDefinition],
        instances: list[Instance],
        people: dict[str, Person],
        facts: EventFacts,
        now: float,
    ) -> ChunkWrites:
        """Advances `instances` (due now) in the caller's transaction; returns what was written."""
        writes = ChunkWrites()
        claims = self._claims(conn, journeys, instances)
        for inst in instances:
            journey = journeys.get(inst.journey)
            person = people.get(inst.profile_id, Person(inst.profile_id))
            if journey is None:
                self._finish(inst, "exited", now, "journey deleted")
                continue
            try:
                self._advance(journey, inst, person, facts, claims, writes, now)
            except Exception as e:  # one person's bad data must not stop the chunk
                log.exception("journey %s: instance %s failed at step %s", inst.journey, inst.id, inst.step)
                self._finish(inst, "exited", now, f"error at step {inst.step}: {type(e).__name__}: {e}")
        conn.executemany(
            "UPDATE journey_instances SET variant = ?, step = ?, state = ?, due_at = ?, waiting_event = ?,"
            " step_since = ?, finished_at = ?, reason = ? WHERE id = ?",
            [
                (
                    i.variant,
                    i.step,
                    i.state,
                    i.due_at,
                    i.waiting_event,
                    i.step_since,
                    i.finished_at,
                    i.reason,
                    i.id,
                )
                for i in instances
            ],
        )
        conn.executemany(
            VISIT_SQL,
            writes.visits,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO journey_offers (campaign, profile_id, offer, instance_id, code, channel,"
            " given_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            writes.offers,
        )
        if writes.messages:
            self.outbox.enqueue_many(conn, writes.messages)
        queue_events(conn, writes.events)
        return writes

    @staticmethod
    def _claims(
        conn: sqlite3.Connection, journeys: dict[str, JourneyDefinition], instances: list[Instance]
    ) -> dict[tuple[str, str], tuple[str, float | None]]:
        """Offers given in the chunk's campaigns to its people: (campaign, person) -> (instance, expiry)."""
        campaigns = {j.campaign for j in journeys.values() if j.offers}
        people = list({i.profile_id for i in instances})
        if not campaigns or not people:
            return {}
        rows = conn.execute(
            "SELECT campaign, profile_id, instance_id, expires_at FROM journey_offers"
            " WHERE campaign IN (SELECT value FROM json_each(?))"
            " AND profile_id IN (SELECT value FROM json_each(?))",
            (msgspec.json.encode(sorted(campaigns)).decode(), msgspec.json.encode(people).decode()),
        )
        return {(c, p): (i, e) for c, p, i, e in rows}

    @staticmethod
    def _finish(inst: Instance, state: str, now: float, reason: str | None) -> None:
        inst.state, inst.finished_at, inst.reason = state, now, reason
        inst.due_at, inst.waiting_event = None, None

    def _advance(
        self,
        journey: JourneyDefinition,
        inst: Instance,
        person: Person,
        facts: EventFacts,
        claims: dict[tuple[str, str], tuple[str, float | None]],
        writes: ChunkWrites,
        now: float,
    ) -> None:
        if inst.state == "waiting":
            # The timer of a wait (or a wait for an event's timeout) has run out.
            step = journey.step(inst.step)
            if step is None:
                self._finish(inst, "exited", now, f"step {inst.step!r} is no longer in the journey")
                return
            writes.visits.append(
                (
                    inst.id,
                    journey.name,
                    step.id,
                    now,
                    "timed out" if step.kind == "wait_for_event" else "waited",
                )
            )
            self._move(inst, step.on_timeout if step.kind == "wait_for_event" else step.next, now)
        for _ in range(MAX_STEPS_AT_ONCE):
            if inst.state != "ready":
                return
            step = journey.step(inst.step)
            if step is None:
                if inst.step is not None:
                    self._finish(inst, "exited", now, f"step {inst.step!r} is no longer in the journey")
                else:
                    self._finish(inst, "done", now, None)
                return
            self._run_step(journey, step, inst, person, facts, claims, writes, now)
        self._finish(inst, "exited", now, f"more than {MAX_STEPS_AT_ONCE} steps without a wait")

    @staticmethod
    def _move(inst: Instance, target: str | None, now: float) -> None:
        inst.step, inst.state, inst.due_at, inst.waiting_event, inst.step_since = (
            target,
            "ready",
            now,
            None,
            now,
        )

    def _run_step(
        self,
        journey: JourneyDefinition,
        step: Step,
        inst: Instance,
        person: Person,
        facts: EventFacts,
        claims: dict[tuple[str, str], tuple[str, float | None]],
        writes: ChunkWrites,
        now: float,
    ) -> None:
        def visit(outcome: str) -> None:
            writes.visits.append((inst.id, journey.name, step.id, now, outcome))

        kind = step.kind
        if kind == "wait":
            until = self._wait_until(journey, step, person, claims, now)
            if until is None or until <= now:
                visit("waited" if until is not None else "no date: not waited")
                self._move(inst, step.next, now)
            else:
                inst.state, inst.due_at, inst.step_since = "waiting", until, now
        elif kind == "wait_for_event":
            assert step.event is not None
            assert step.timeout is not None
            # The event may already have happened since the person entered (in the same micro-batch
            # as the entry, say: an order right after the basket add); later ones come as they happen.
            since = float(inst.context.get("at", inst.entered_at))
            done = facts.done(step.event.name, since).get(inst.profile_id, [])
            if any(all(holds(f, props) for f in step.event.where) for _, props in done):
                visit("event")
                self._move(inst, step.next, now)
            else:
                inst.state, inst.waiting_event, inst.step_since = "waiting", step.event.name, now
                inst.due_at = now + step.timeout.total_seconds()
        elif kind == "condition":
            yes = self._holds(step, person, facts, now)
            visit("yes" if yes else "no")
            self._move(inst, step.next if yes else step.otherwise, now)
        elif kind == "split":
            total = sum(v.weight for v in step.variants)
            point = bucket("split", journey.name, step.id, inst.profile_id) * total // 10_000
            for variant in step.variants:
                point -= variant.weight
                if point < 0:
                    break
            inst.variant = variant.name
            visit(f"variant {variant.name}")
            self._move(inst, variant.next, now)
        elif kind in ("send", "webhook"):
            visit(self._send(journey, step, inst, person, claims, writes, now))
            self._move(inst, step.next, now)
        elif kind == "update_trait":
            visit(self._update_traits(journey, step, inst, person, writes, now))
            self._move(inst, step.next, now)
        else:  # exit
            visit("exited")
            self._finish(inst, "exited", now, f"exit step {step.id}")

    def _wait_until(
        self,
        journey: JourneyDefinition,
        step: Step,
        person: Person,
        claims: dict[tuple[str, str], tuple[str, float | None]],
        now: float,
    ) -> float | None:
        offset = step.offset.total_seconds()
        if step.duration is not None:
            return now + step.duration.total_seconds()
        if step.until_time is not None:
            zone_name = str(person.trait("timezone") or self.default_timezone)
            try:
                zone = zoneinfo.ZoneInfo(zone_name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = zoneinfo.ZoneInfo(self.default_timezone)
            local = dt.datetime.fromtimestamp(now, zone)
            target = dt.datetime.combine(local.date(), step.until_time, zone)
            if target.timestamp() <= now:
                target = dt.datetime.combine(local.date() + dt.timedelta(days=1), step.until_time, zone)
            return target.timestamp() + offset
        if step.until_trait is not None:
            raw = person.trait(step.until_trait)
            if not isinstance(raw, str):
                return None
            try:
                when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp() + offset
        claim = claims.get((journey.campaign, person.profile_id))
        if claim is None or claim[1] is None:
            return None
        return claim[1] + offset

    @staticmethod
    def _holds(step: Step, person: Person, facts: EventFacts, now: float) -> bool:
        c = step.condition
        assert c is not None
        if c.kind == "segment":
            return c.name in person.segments
        if c.kind == "trait":
            return compare(person.trait(c.name), c.op, c.value, c.name in person.traits)
        since = now - c.within.total_seconds() if c.within is not None else None
        done = facts.done(c.name, since).get(person.profile_id, [])
        count = sum(1 for _, props in done if all(holds(f, props) for f in c.where))
        return compare(count, c.op if c.op != "exists" else ">=", c.value if c.op != "exists" else 1)

    def _send(
        self,
        journey: JourneyDefinition,
        step: Step,
        inst: Instance,
        person: Person,
        claims: dict[tuple[str, str], tuple[str, float | None]],
        writes: ChunkWrites,
        now: float,
    ) -> str:
        if inst.grp != "treatment":
            return f"not sent: {inst.grp}"
        channel = step.channel or "email"
        profile = person.profile_data()
        if channel == "webhook":
            address: str | None = step.url
        else:
            address = profile["email"] if channel == "email" else profile["phone"]
        if not address:
            return f"not sent: no {'email address' if channel == 'email' else 'phone number'}"
        data: dict[str, Any] = {
            "profile": profile,
            "campaign_name": journey.campaign,
            "journey_name": journey.name,
            **step.data,
        }
        if "event" in inst.context:
            data["event"] = inst.context["event"]
        if step.offer is not None:
            offer = journey.offers[step.offer]
            key = (journey.campaign, person.profile_id)
            claim = claims.get(key)
            if claim is not None and claim[0] != inst.id:
                return "not sent: offer already given in this campaign"
            if claim is None:
                expires = now + offer.valid_for.total_seconds() if offer.valid_for is not None else None
                claims[key] = (inst.id, expires)
                writes.offers.append(
                    (
                        journey.campaign,
                        person.profile_id,
                        offer.name,
                        inst.id,
                        offer.code,
                        channel,
                        now,
                        expires,
                    )
                )
                claim = claims[key]
            data["offer"] = _offer_data(offer, claim[1])
        recipient = Recipient(
            address,
            profile_id=person.profile_id,
            user_id=person.user_id,
            anonymous_id=None if person.user_id else person.anonymous_id,
            timezone=_zone(person.trait("timezone")),
        )
        writes.messages.append(
            OutboxMessage(
                message_key(inst.id, step.id),
                channel,
                recipient,
                step.template or "",
                data,
                category=step.category,
                journey_id=journey.name,
                campaign_id=journey.campaign,
                step_id=step.id,
                variant_id=inst.variant,
            )
        )
        return "sent"

    @staticmethod
    def _update_traits(
        journey: JourneyDefinition,
        step: Step,
        inst: Instance,
        person: Person,
        writes: ChunkWrites,
        now: float,
    ) -> str:
        if person.user_id is None and person.anonymous_id is None:
            return "not updated: the person has no user id or anonymous id"
        message: dict[str, Any] = {
            "type": "identify",
            "messageId": message_key(inst.id, step.id),
            "timestamp": _iso(now),
            "traits": step.traits,
            "context": {
                "library": {"name": JOURNEYS_SOURCE, "version": __version__},
                "journey": {"name": journey.name, "step": step.id, "instance": inst.id},
            },
        }
        if person.user_id is not None:
            message["userId"] = person.user_id
        else:
            message["anonymousId"] = person.anonymous_id
        writes.events.append(msgspec.json.encode(message))
        person.traits.update(step.traits)  # later steps of this run see the new values
        return "updated"


def _offer_data(offer: Offer, expires_at: float | None) -> dict[str, Any]:
    return {
        "code": offer.code,
        "title": offer.title,
        "discount_percent": offer.discount_percent,
        "expires_at": _iso(expires_at) if expires_at is not None else "",
        "url": offer.url,
    }


def _zone(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return value
