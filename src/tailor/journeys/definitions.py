"""Journey definitions: entry, steps, re-entry, exits, holdout, conversion and offers, read from JSON or YAML.

Reading collects every problem of the shape with its path (`steps[2].send.channel`);
`tailor.journeys.validate` adds the problems that need the rest of the data directory (unknown
segments and templates, template variables) and those of the step graph (unknown references,
unreachable steps, cycles without a wait).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from tailor.journeys.exceptions import InvalidJourney
from tailor.profiles.exceptions import Problem
from tailor.profiles.reading import Reader

MAX_STEPS = 300
"""Steps in one journey at most (the graph checks walk it depth first)."""
STEP_KINDS = ("wait", "wait_for_event", "condition", "split", "send", "update_trait", "webhook", "exit")
OPS = ("=", "!=", ">", ">=", "<", "<=", "in", "contains", "exists")
SEND_CHANNELS = ("email", "sms")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_STEP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class PropertyFilter:
    """A test of one event property: `category = Home Accessories`."""

    property: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class EventMatch:
    """An event by name, with property filters that must all hold."""

    name: str
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class Entry:
    """How people enter: an event, a segment entry or exit, or a scheduled broadcast to a segment."""

    kind: str
    """event, segment or schedule."""
    event: EventMatch | None = None
    segment: str | None = None
    change: str = "enter"
    """For segment entries: enter or exit."""
    at: datetime | None = None
    """For schedules: the first run (now when missing)."""
    every: timedelta | None = None
    """For schedules: the interval between runs (one run when missing)."""


@dataclass(frozen=True)
class Condition:
    """A yes/no question about a person: a trait, a segment membership, or an event done."""

    kind: str
    """trait, segment or event."""
    name: str
    op: str = "exists"
    value: Any = None
    within: timedelta | None = None
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One arm of a random split."""

    name: str
    weight: int
    next: str | None


@dataclass(frozen=True)
class Step:
    """One step of a journey; which fields matter depends on `kind`."""

    id: str
    kind: str
    next: str | None = None
    """The step after this one (the next in the list unless given; None ends the journey)."""
    # wait
    duration: timedelta | None = None
    until_time: time | None = None
    """Wait until this local time in the person's time zone."""
    until_trait: str | None = None
    """Wait until the date in this trait (plus `offset`)."""
    until_offer: str | None = None
    """Wait until the offer expires (plus `offset`, e.g. -24h for a reminder)."""
    offset: timedelta = timedelta(0)
    # wait_for_event
    event: EventMatch | None = None
    timeout: timedelta | None = None
    on_timeout: str | None = None
    # condition
    condition: Condition | None = None
    otherwise: str | None = None
    # split
    variants: tuple[Variant, ...] = ()
    # send, webhook
    channel: str | None = None
    template: str | None = None
    offer: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    category: str = "marketing"
    # update_trait
    traits: dict[str, Any] = field(default_factory=dict)

    def branches(self) -> list[str | None]:
        """Every step this one can lead to (None is the end of the journey)."""
        if self.kind == "exit":
            return []
        if self.kind == "split":
            return [v.next for v in self.variants]
        if self.kind == "condition":
            return [self.next, self.otherwise]
        if self.kind == "wait_for_event":
            return [self.next, self.on_timeout]
        return [self.next]

    @property
    def waits(self) -> bool:
        """Whether a person stays on this step for a while (a timer or an event)."""
        return self.kind in ("wait", "wait_for_event")


@dataclass(frozen=True)
class Offer:
    """An offer a campaign makes, at most once per person whichever channel carries it."""

    name: str
    code: str
    title: str = ""
    discount_percent: float | None = None
    valid_for: timedelta | None = None
    url: str = ""


@dataclass(frozen=True)
class Conversion:
    """What counts as a conversion, within how long after a send (or an entry), and its revenue."""

    event: str
    within: timedelta = timedelta(days=7)
    revenue: str | None = "total"
    """The property of the conversion event that holds its revenue."""


@dataclass(frozen=True)
class JourneyDefinition:
    """A journey as saved."""

    name: str
    entry: Entry
    steps: tuple[Step, ...]
    description: str = ""
    campaign: str = ""
    re_entry: str = "never"
    """never, always or after (see `re_entry_after`)."""
    re_entry_after: timedelta | None = None
    exit_on: tuple[EventMatch, ...] = ()
    exit_segments: tuple[str, ...] = ()
    """Segments whose leavers leave the journey too (`exit_on: [{segment_exit: NAME}]`)."""
    holdout_percent: float = 0.0
    conversion: Conversion | None = None
    offers: dict[str, Offer] = field(default_factory=dict)
    enabled: bool = True

    def step(self, step_id: str | None) -> Step | None:
        """The step with this id (None for None or an unknown id)."""
        return self._by_id.get(step_id) if step_id is not None else None

    @property
    def _by_id(self) -> dict[str, Step]:
        cached: dict[str, Step] | None = self.__dict__.get("_steps_by_id")
        if cached is None:
            cached = {s.id: s for s in self.steps}
            object.__setattr__(self, "_steps_by_id", cached)
        return cached

    @property
    def first(self) -> str | None:
        """The id of the first step."""
        return self.steps[0].id if self.steps else None

    def events(self) -> set[str]:
        """Every event name this journey listens to (entry, waits, exits)."""
        names = {m.name for m in self.exit_on}
        if self.entry.event is not None:
            names.add(self.entry.event.name)
        names |= {s.event.name for s in self.steps if s.event is not None}
        return names


# -- reading ----------------------------------------------------------------------------------------


def _filters(r: Reader, body: Mapping[str, Any]) -> tuple[PropertyFilter, ...]:
    def read(item: Any) -> PropertyFilter | None:
        m = r.mapping(item)
        if m is None:
            return None
        r.unknown_keys(m, {"property", "op", "value"})
        prop = r.text(m, "property", required=True)
        op = m.get("op", "=")
        if op not in OPS:
            r.problem(f"must be one of {', '.join(OPS)}", "op")
        if op != "exists" and "value" not in m:
            r.problem("is required", "value")
        return PropertyFilter(prop, str(op), m.get("value"))

    return tuple(r.each(body, "where", read))


def _event(r: Reader, value: Any, extra: set[str] | None = None) -> EventMatch | None:
    if isinstance(value, str):
        value = {"name": value}
    m = r.mapping(value, "an event name or an object with name and where")
    if m is None:
        return None
    r.unknown_keys(m, {"name", "where", *(extra or set())})
    return EventMatch(r.text(m, "name", required=True), _filters(r, m))


def _entry(r: Reader, body: Mapping[str, Any]) -> Entry | None:
    with r.at("entry"):
        return _entry_body(r, body)


def _entry_body(r: Reader, body: Mapping[str, Any]) -> Entry | None:
    m = r.mapping(body.get("entry"), "an object with one of event, segment or schedule")
    if m is None:
        return None
    kinds = [k for k in ("event", "segment", "schedule") if k in m]
    if len(kinds) != 1:
        r.problem("must have exactly one of event, segment or schedule")
        return None
    r.unknown_keys(m, {"event", "segment", "schedule"})
    kind = kinds[0]
    with r.at(kind):
        if kind == "event":
            return Entry("event", event=_event(r, m["event"]))
        if kind == "segment":
            seg = m["segment"]
            seg = {"name": seg} if isinstance(seg, str) else seg
            s = r.mapping(seg, "a segment name or an object with name and on")
            if s is None:
                return None
            r.unknown_keys(s, {"name", "on"})
            change = s.get("on", "enter")
            if change not in ("enter", "exit"):
                r.problem("must be enter or exit", "on")
            return Entry("segment", segment=r.text(s, "name", required=True), change=str(change))
        s = r.mapping(m["schedule"], "an object with segment, at and every")
        if s is None:
            return None
        r.unknown_keys(s, {"segment", "at", "every"})
        at = None
        if s.get("at") is not None:
            try:
                at = _datetime(s["at"])
            except ValueError:
                r.problem("must be an ISO date and time with a zone (2026-12-01T09:00:00Z)", "at")
        return Entry(
            "schedule", segment=r.text(s, "segment", required=True), at=at, every=r.duration(s, "every")
        )


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("not a date")
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def _condition(r: Reader, value: Any) -> Condition | None:
    m = r.mapping(value, "an object with trait, segment or event")
    if m is None:
        return None
    kinds = [k for k in ("trait", "segment", "event") if k in m]
    if len(kinds) != 1:
        r.problem("must have exactly one of trait, segment or event")
        return None
    kind = kinds[0]
    r.unknown_keys(m, {kind, "op", "value", "within", "where"})
    op = m.get("op", "exists" if kind == "trait" else ">=")
    if op not in OPS:
        r.problem(f"must be one of {', '.join(OPS)}", "op")
    value_ = m.get("value", 1 if kind == "event" else None)
    if kind == "trait" and op != "exists" and "value" not in m:
        r.problem("is required", "value")
    return Condition(
        kind, r.text(m, kind, required=True), str(op), value_, r.duration(m, "within"), _filters(r, m)
    )


_KIND_KEYS: dict[str, set[str]] = {
    "wait": {"duration", "until_time", "until_trait", "until_offer", "offset"},
    "wait_for_event": {"event", "where", "timeout", "on_timeout"},
    "condition": {"if", "then", "else"},
    "split": {"variants"},
    "send": {"channel", "template", "offer", "data", "category"},
    "update_trait": {"traits", "tags"},
    "webhook": {"url", "template", "data"},
    "exit": set(),
}


def _step(r: Reader, value: Any, following: str | None) -> Step | None:
    m = r.mapping(value, "an object with id and one step kind")
    if m is None:
        return None
    kinds = [k for k in STEP_KINDS if k in m]
    r.unknown_keys(m, {"id", "next", *STEP_KINDS})
    step_id = r.text(m, "id", required=True)
    if step_id and not _STEP_ID.match(step_id):
        r.problem("must start with a letter and hold only letters, digits, _ and - (at most 63)", "id")
    if len(kinds) != 1:
        r.problem(f"must have exactly one of {', '.join(STEP_KINDS)}")
        return None
    kind = kinds[0]
    nxt = m.get("next", following)
    if nxt is not None and not isinstance(nxt, str):
        r.problem("must be a step id", "next")
        nxt = None
    raw = m[kind]
    if kind == "exit" and raw in (None, True, {}):
        return Step(step_id, "exit")
    with r.at(kind):
        body = r.mapping(raw)
        if body is None:
            return None
        r.unknown_keys(body, _KIND_KEYS[kind])
        return _step_body(r, step_id, kind, body, nxt)


def _step_body(r: Reader, step_id: str, kind: str, b: Mapping[str, Any], nxt: str | None) -> Step | None:
    if kind == "wait":
        forms = [k for k in ("duration", "until_time", "until_trait", "until_offer") if k in b]
        if len(forms) != 1:
            r.problem("must have exactly one of duration, until_time, until_trait or until_offer")
            return None
        until_time = None
        if "until_time" in b:
            text = b["until_time"]
            if not isinstance(text, str) or not _HHMM.match(text):
                r.problem("must be a local time HH:MM", "until_time")
            else:
                until_time = time(int(text[:2]), int(text[3:]))
        offset = _signed_duration(r, b, "offset")
        return Step(
            step_id,
            kind,
            nxt,
            duration=r.duration(b, "duration"),
            until_time=until_time,
            until_trait=b.get("until_trait") if isinstance(b.get("until_trait"), str) else None,
            until_offer=b.get("until_offer") if isinstance(b.get("until_offer"), str) else None,
            offset=offset,
        )
    if kind == "wait_for_event":
        event = _event(r, b.get("event")) if "event" in b else None
        if event is None and "event" not in b:
            r.problem("is required", "event")
        if event is not None and "where" in b:
            event = EventMatch(event.name, event.where + _filters(r, b))
        timeout = r.duration(b, "timeout")
        if timeout is None:
            r.problem("is required (how long to wait for the event)", "timeout")
        return Step(step_id, kind, nxt, event=event, timeout=timeout, on_timeout=_ref(r, b, "on_timeout"))
    if kind == "condition":
        with r.at("if"):
            cond = _condition(r, b.get("if"))
        return Step(step_id, kind, _ref(r, b, "then", nxt), condition=cond, otherwise=_ref(r, b, "else"))
    if kind == "split":
        return Step(step_id, kind, nxt, variants=tuple(r.each(b, "variants", lambda v: _variant(r, v, nxt))))
    if kind in ("send", "webhook"):
        data = b.get("data", {})
        if not isinstance(data, dict):
            r.problem("must be an object", "data")
            data = {}
        if kind == "send":
            channel = r.text(b, "channel", required=True)
            if channel and channel not in SEND_CHANNELS:
                r.problem(f"must be one of {', '.join(SEND_CHANNELS)}", "channel")
            category = b.get("category", "marketing")
            if category not in ("marketing", "transactional"):
                r.problem("must be marketing or transactional", "category")
            offer = b.get("offer")
            if offer is not None and not isinstance(offer, str):
                r.problem("must be the name of one of the journey's offers", "offer")
                offer = None
            return Step(
                step_id,
                kind,
                nxt,
                channel=channel,
                template=r.text(b, "template", required=True),
                offer=offer,
                data=data,
                category=str(category),
            )
        url = r.text(b, "url", required=True)
        if url and not re.match(r"^https?://\S+$", url):
            r.problem("must be an http(s) URL", "url")
        return Step(
            step_id,
            kind,
            nxt,
            channel="webhook",
            template=r.text(b, "template", required=True),
            url=url,
            data=data,
        )
    if kind == "update_trait":
        traits = b.get("traits", {})
        if not isinstance(traits, dict):
            r.problem("must be an object of trait: value", "traits")
            traits = {}
        tags = r.names(b, "tags")
        merged = {**traits, **{f"tag_{t}": True for t in tags}}
        if not merged:
            r.problem("needs traits or tags to set")
        return Step(step_id, kind, nxt, traits=merged)
    return Step(step_id, kind, nxt)


def _signed_duration(r: Reader, b: Mapping[str, Any], key: str) -> timedelta:
    raw = b.get(key)
    if raw is None:
        return timedelta(0)
    if isinstance(raw, str) and raw.strip().startswith("-"):
        d = r.duration({key: raw.strip()[1:]}, key)
        return -d if d is not None else timedelta(0)
    return r.duration(b, key) or timedelta(0)


def _ref(r: Reader, b: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = b.get(key, default)
    if value is not None and not isinstance(value, str):
        r.problem("must be a step id", key)
        return None
    return value


def _variant(r: Reader, value: Any, nxt: str | None) -> Variant | None:
    m = r.mapping(value, "an object with name, weight and next")
    if m is None:
        return None
    r.unknown_keys(m, {"name", "weight", "next"})
    return Variant(
        r.text(m, "name", required=True), r.integer(m, "weight", 1, 1, 10_000), _ref(r, m, "next", nxt)
    )


def _offer(r: Reader, name: str, value: Any) -> Offer | None:
    m = r.mapping(value, "an object with code, title, discount_percent, valid_for and url")
    if m is None:
        return None
    r.unknown_keys(m, {"code", "title", "discount_percent", "valid_for", "url"})
    pct = m.get("discount_percent")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 < pct <= 100):
        r.problem("must be a number above 0 and at most 100", "discount_percent")
        pct = None
    return Offer(
        name,
        r.text(m, "code", required=True),
        r.text(m, "title"),
        pct,
        r.duration(m, "valid_for"),
        r.text(m, "url"),
    )


def _re_entry(r: Reader, value: Any) -> tuple[str, timedelta | None]:
    if value in (None, "never"):
        return "never", None
    if value == "always":
        return "always", None
    if isinstance(value, dict) and set(value) == {"after"}:
        value = value["after"]
    d = r.duration({"re_entry": value}, "re_entry")
    return ("after", d) if d is not None else ("never", None)


def _exit(r: Reader, value: Any) -> EventMatch | None:
    if isinstance(value, dict) and "event" in value:
        value = {"name": value["event"], **{k: v for k, v in value.items() if k != "event"}}
    return _event(r, value)


def parse_journey(body: Mapping[str, Any]) -> JourneyDefinition:
    """Reads a journey definition; InvalidJourney lists every problem of its shape."""
    journey, problems = read_journey(body)
    if problems:
        raise InvalidJourney(journey.name or None, problems)
    return journey


def read_journey(body: Mapping[str, Any]) -> tuple[JourneyDefinition, list[Problem]]:
    """Reads as much of a journey definition as is readable, with every problem of its shape."""
    r = Reader()
    r.unknown_keys(
        body,
        {
            "name",
            "description",
            "campaign",
            "entry",
            "steps",
            "re_entry",
            "exit_on",
            "holdout_percent",
            "conversion",
            "offers",
            "enabled",
        },
    )
    name = r.name(body)
    entry = _entry(r, body)
    raw_steps = body.get("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        r.problem("must be a non-empty list of steps", "steps")
    elif len(raw_steps) > MAX_STEPS:
        r.problem(f"a journey has at most {MAX_STEPS} steps, not {len(raw_steps)}", "steps")
    else:
        ids = [s.get("id") if isinstance(s, dict) else None for s in raw_steps]
        with r.at("steps"):
            for i, item in enumerate(raw_steps):
                following = ids[i + 1] if i + 1 < len(ids) and isinstance(ids[i + 1], str) else None
                with r.at(i):
                    step = _step(r, item, following)
                if step is not None:
                    steps.append(step)
        seen: set[str] = set()
        for i, s in enumerate(steps):
            if s.id in seen:
                r.problem(f"step id {s.id!r} is used twice", f"steps[{i}].id")
            seen.add(s.id)
    re_entry, after = _re_entry(r, body.get("re_entry"))
    exit_segments: list[str] = []

    def exit_item(value: Any) -> EventMatch | None:
        if isinstance(value, dict) and "segment_exit" in value:
            r.unknown_keys(value, {"segment_exit"})
            segment = r.text(value, "segment_exit", required=True)
            if segment:
                exit_segments.append(segment)
            return None
        return _exit(r, value)

    exits = r.each(body, "exit_on", exit_item)
    holdout = body.get("holdout_percent", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 100:
        r.problem("must be a number from 0 to below 100", "holdout_percent")
        holdout = 0
    conversion = None
    if body.get("conversion") is not None:
        with r.at("conversion"):
            c = r.mapping(body["conversion"], "an object with event, within and revenue")
            if c is not None:
                r.unknown_keys(c, {"event", "within", "revenue"})
                conversion = Conversion(
                    r.text(c, "event", required=True),
                    r.duration(c, "within") or timedelta(days=7),
                    c.get("revenue", "total") if isinstance(c.get("revenue", "total"), str | None) else None,
                )
    offers: dict[str, Offer] = {}
    raw_offers = body.get("offers") or {}
    if not isinstance(raw_offers, dict):
        r.problem("must be an object of offer name: offer", "offers")
    else:
        with r.at("offers"):
            for key, value in raw_offers.items():
                with r.at(str(key)):
                    offer = _offer(r, str(key), value)
                if offer is not None:
                    offers[str(key)] = offer
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        r.problem("must be true or false", "enabled")
        enabled = True
    journey = JourneyDefinition(
        name=name,
        entry=entry or Entry("invalid"),
        steps=tuple(steps),
        description=r.text(body, "description"),
        campaign=r.text(body, "campaign") or name,
        re_entry=re_entry,
        re_entry_after=after,
        exit_on=tuple(e for e in exits if e is not None),
        exit_segments=tuple(dict.fromkeys(exit_segments)),
        holdout_percent=float(holdout),
        conversion=conversion,
        offers=offers,
        enabled=enabled,
    )
    return journey, r.problems
