"""Runs the population through the history day by day and streams its events in time order."""

from __future__ import annotations

import hashlib
import heapq
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import numpy as np

from tailor.demo.behaviour import browse
from tailor.demo.campaigns import campaign_calendar
from tailor.demo.channels import WEB_CHANNELS, Arrival, arrival
from tailor.demo.config import SynthConfig
from tailor.demo.model import Person, PlannedOrder, Population
from tailor.demo.session import Visit
from tailor.demo.touches import call, message, review_request, send_campaign, store_purchase
from tailor.demo.world import EventLabel, Pending, Start, World

_HOUR = 3_600_000
_PHONES = ("mobile_web", "app")


def message_id_prefix(config: SynthConfig) -> str:
    """The fixed part of every messageId of a config, so different configs never share ids."""
    h = hashlib.sha256(repr(config).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-"


def labelled_events(
    population: Population, config: SynthConfig
) -> Iterator[tuple[EventLabel, dict[str, Any]]]:
    """Every event of the history with its ground-truth label, ordered by timestamp."""
    prefix = message_id_prefix(config)
    n = 0
    for batch in batches(population, config):
        for _, _, label, event in batch:
            event["messageId"] = f"{prefix}{n:012x}"
            n += 1
            yield label, event


def events(population: Population, config: SynthConfig) -> Iterator[dict[str, Any]]:
    """Every event of the history, ordered by timestamp."""
    prefix = message_id_prefix(config)
    n = 0
    for batch in batches(population, config):
        for _, _, _, event in batch:
            event["messageId"] = f"{prefix}{n:012x}"
            n += 1
            yield event


def batches(population: Population, config: SynthConfig) -> Iterator[list[Pending]]:
    """The events of the history in small batches, each ordered by timestamp.

    Visits are planned a day at a time and run in the order they start; events are released as
    soon as no visit still to run can produce an earlier one. Memory therefore stays bounded by
    the events of the visits in progress (plus messages opened later) however long the history
    is. Message ids are left empty for the caller to number.
    """
    w = World(population, config)
    cal, dice, people = w.cal, w.dice, population.people
    rates = np.array([p.visit_rate for p in people])
    store_rates = np.array(
        [
            (p.archetype.store_visits_per_week + 0.003) / 7 * config.activity
            if p.archetype.buy > 0 and (p.pos_token is not None or p.scans_loyalty)
            else 0.0
            for p in people
        ]
    )
    first = np.array([p.active[0] for p in people])
    last = np.array([p.active[1] for p in people])
    planned: dict[int, list[tuple[int, str, int, Any]]] = {}
    for p in people:
        for order in p.guest_orders:
            # A guest starts shopping a little before the moment the order goes through.
            start = max(cal.start_ms, order.ms - 1_200_000)
            planned.setdefault(cal.day_of(start), []).append((start, "guest", p.index, order))
        for c in p.calls:
            planned.setdefault(c.day, []).append((c.ms, "call", p.index, c))
    campaigns = campaign_calendar(cal)
    for day in range(config.days):
        active = (first <= day) & (day <= last)
        visits = w.rng.poisson(rates * cal.online[day] * active)
        for i in np.flatnonzero(visits).tolist():
            person = people[i]
            for _ in range(int(visits[i])):
                device = person.devices[dice.index(person.device_weights)]
                kind = population.devices[device].profile.kind
                w.schedule(cal.moment(dice, day, kind), "visit", i, (device, None))
        trips = w.rng.poisson(store_rates * cal.store[day] * active)
        for i in np.flatnonzero(trips).tolist():
            w.schedule(cal.moment(dice, day, "store"), "store", i)
        for ms, kind, i, item in planned.get(day, ()):
            w.schedule(ms, kind, i, item)
        for campaign in campaigns.get(day, ()):
            local_hour = 8 if campaign.channel == "email" else 11
            send = cal.day_start(day) + (local_hour - cal.offset[day]) * _HOUR
            send_campaign(w, campaign, send)
        day_end = cal.day_start(day + 1)
        while w.starts and w.starts[0].ms < day_end:
            _run(w, heapq.heappop(w.starts))
            # Release at once what no later start can overtake: events held back longer outlive
            # garbage collections, which with a large population costs a third of the time.
            if w.starts and (batch := _release(w, min(w.starts[0].ms, day_end))):
                yield batch
        if batch := _release(w, day_end):
            yield batch


def _release(w: World, before: int) -> list[Pending]:
    """Takes the pending events that happen before an instant, in time order."""
    w.pending.sort()
    ready = bisect_left(w.pending, before, key=lambda e: e[0])
    batch = w.pending[:ready]
    del w.pending[:ready]
    return batch


def _run(w: World, start: Start) -> None:
    person = w.pop.people[start.person]
    if start.kind == "visit":
        device, arrived = start.payload if isinstance(start.payload, tuple) else (None, start.payload)
        _visit(w, person, start.ms, device, arrived, None)
    elif start.kind == "guest":
        order: PlannedOrder = start.payload
        if order.tracked:
            _visit(w, person, start.ms, order.device, None, order)
    elif start.kind == "store":
        store_purchase(w, person, start.ms)
    elif start.kind == "call":
        call(w, person, start.payload, start.ms)
    elif start.kind == "message":
        campaign, stage = start.payload
        message(w, person, campaign, stage, start.ms)
    elif start.kind == "review_request":
        review_request(w, person, start.ms)


def _visit(
    w: World,
    person: Person,
    ms: int,
    device_index: int | None,
    arrived: Arrival | None,
    planned: PlannedOrder | None,
) -> None:
    dice, pop = w.dice, w.pop
    if device_index is None:
        # Message links open in a browser or the app, mostly on a phone; never on the TV.
        readers = [d for d in person.devices if pop.devices[d].profile.kind != "tv"]
        if not readers:
            return
        phones = [d for d in readers if pop.devices[d].profile.kind in _PHONES]
        device_index = dice.pick(phones if phones and dice.chance(0.7) else readers)
    device = pop.devices[device_index]
    kind = device.profile.kind
    day = w.cal.day_of(ms)
    category = person.categories[dice.index(person.category_weights)]
    if arrived is None:
        if kind in ("app", "tv"):
            arrived = Arrival("app", "", None, "home" if dice.chance(0.6) else "category", category, "")
        else:
            channel = WEB_CHANNELS[dice.index(person.channel_weights)]
            basket = w.states[person.index].abandoned_day >= day - 10
            if basket and dice.chance(0.25):
                channel = "display"  # retargeting ads follow people who left a full basket
            item = w.catalogue.pick(dice, category).item
            arrived = arrival(dice, channel, category, item, w.cal.dates[day].year, basket)
    home = pop.households[person.household]
    wifi = kind in ("desktop", "tv") or device.shared or dice.chance(0.55)
    ip = home.ip if wifi else dice.pick(pop.carrier_ips)
    label = w.session_label(person.index, arrived.channel)
    browse(Visit(w, person, device, ms, ip, wifi, arrived, label), planned)
