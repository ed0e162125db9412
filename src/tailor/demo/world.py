"""The changing state of the simulation: who is logged in where, carts, and the outgoing events."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tailor.demo.config import SynthConfig
from tailor.demo.dice import Dice
from tailor.demo.model import Population
from tailor.demo.rhythm import Calendar


class EventLabel(NamedTuple):
    """Ground truth about one event: who really caused it, in which visit, through which channel."""

    person_id: str
    session_id: str  # "" for events outside a visit (messages, calls, tills, refunds)
    channel: str


@dataclass(slots=True)
class CartLine:
    """A product in a basket."""

    product: int
    quantity: int
    recommendation_id: str | None  # set when it was added from a recommendation


@dataclass(slots=True)
class PersonState:
    """What the simulation remembers about a person between visits."""

    signed_up: bool
    email_subscribed: bool
    sms_subscribed: bool
    identified_email: str | None = None  # the address last sent in an identify
    phone_text: str | None = None  # the phone number as typed into their account; "" for none given
    abandoned_day: int = -999  # last day they left a full basket
    grouped: bool = False  # whether they have joined the family account online
    to_review: list[tuple[int, int]] = field(default_factory=list)  # (product, day bought)


Pending = tuple[int, int, EventLabel, dict[str, Any]]


class Start(NamedTuple):
    """Something that will happen to a person at a time: a visit, a shop trip, a call, a message."""

    ms: int
    seq: int  # tie-breaker, so equal times keep the order they were planned in
    kind: str  # "visit", "guest", "store", "call", "message" or "review_request"
    person: int
    payload: Any  # the device and arrival, planned order, planned call or (campaign, stage)


class World:
    """Mutable simulation state for one pass over the history; every pass starts afresh."""

    def __init__(self, population: Population, config: SynthConfig) -> None:
        self.pop = population
        self.config = config
        self.rng = np.random.default_rng([config.seed, 2])
        self.dice = Dice(self.rng)
        self.cal = Calendar(config.end, config.days)
        self.catalogue = population.catalogue
        self.pending: list[Pending] = []
        self.starts: list[Start] = []
        self.seq = 0
        self.counters = {"order": 1_000_000, "review": 0, "rec": 0, "session": 0, "store": 0}
        self.carts: dict[tuple[int, int], list[CartLine]] = {}
        self.states = [
            PersonState(
                signed_up=p.signup_day is not None and p.signup_day < 0,
                email_subscribed=p.email_opt_in,
                sms_subscribed=p.sms_opt_in,
            )
            for p in population.people
        ]
        # Devices where someone logged in before the history began start out logged in.
        self.device_user: list[int | None] = []
        for d in population.devices:
            early = [u for u, day in zip(d.users, d.logins, strict=True) if day is not None and day < 0]
            self.device_user.append(early[0] if early else None)

    def push(self, ms: int, label: EventLabel, event: dict[str, Any]) -> None:
        """Queues an event happening at epoch ms."""
        self.seq += 1
        self.pending.append((ms, self.seq, label, event))

    def schedule(self, ms: int, kind: str, person: int, payload: Any = None) -> None:
        """Plans something a person starts doing at epoch ms."""
        self.seq += 1
        heapq.heappush(self.starts, Start(ms, self.seq, kind, person, payload))

    def next_id(self, counter: str) -> int:
        """The next number of a counter (orders, reviews, recommendations, sessions, till receipts)."""
        self.counters[counter] += 1
        return self.counters[counter]

    def session_label(self, person: int, channel: str) -> EventLabel:
        """A label for the events of a new visit."""
        return EventLabel(self.pop.people[person].person_id, f"visit-{self.next_id('session'):08d}", channel)
