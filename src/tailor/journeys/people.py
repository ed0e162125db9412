"""What a journey needs to know about people, read from the analytical store one chunk of people at a time.

Every read is one query for a whole chunk (a broadcast's 2,000 people, a micro-batch's events):
identifiers, golden traits, computed traits and memberships of the segments journeys name, and
the events the journeys listen to, each stitched to its person through the identity graph.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tailor.journeys.definitions import EventMatch, PropertyFilter
from tailor.store.database import Database

_decode = msgspec.json.decode


@dataclass
class Person:
    """One person as a journey step sees them."""

    profile_id: str
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    """Golden traits, then computed traits (a computed trait wins on a shared name)."""
    segments: set[str] = field(default_factory=set)

    def trait(self, name: str) -> Any:
        """A trait's value, or None."""
        return self.traits.get(name)

    def profile_data(self) -> dict[str, Any]:
        """The `profile` object of a message's template data."""
        t = self.traits
        return {
            "first_name": t.get("first_name") or "",
            "last_name": t.get("last_name") or "",
            "email": self.email or t.get("email") or "",
            "phone": self.phone or t.get("phone") or "",
            "user_id": self.user_id or "",
            "city": t.get("city") or "",
            "country": t.get("country") or "",
            "timezone": t.get("timezone") or "",
            "traits": t,
        }


@dataclass(frozen=True)
class TriggerEvent:
    """An event a journey listens to, stitched to its person."""

    seq: int
    profile_id: str
    name: str
    at: float
    properties: dict[str, Any]

    def data(self) -> dict[str, Any]:
        """The `event` object of a message's template data."""
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat()
        return {"name": self.name, "timestamp": when, "properties": self.properties}


_LISTED = "(SELECT unnest(?::VARCHAR[]))"

_IDS = """
WITH p AS (SELECT DISTINCT unnest(?::VARCHAR[]) AS profile_id)
SELECT p.profile_id,
       min(n.value) FILTER (WHERE n.type = 'email'),
       min(n.value) FILTER (WHERE n.type = 'phone'),
       min(n.value) FILTER (WHERE n.type = 'user_id'),
       min(n.value) FILTER (WHERE n.type = 'anonymous_id')
FROM p LEFT JOIN identity_nodes n ON n.profile_id = p.profile_id
GROUP BY p.profile_id
"""


def load_people(db: Database, profile_ids: Iterable[str], segments: Iterable[str] = ()) -> dict[str, Person]:
    """The people with these profile ids: identifiers, traits and memberships of `segments`."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    cur = db.cursor()
    try:
        people = {
            pid: Person(pid, email, phone, user_id, anon)
            for pid, email, phone, user_id, anon in cur.execute(_IDS, [ids]).fetchall()
        }
        for pid, trait, value in cur.execute(
            f"SELECT profile_id, trait, value FROM profile_traits WHERE profile_id IN {_LISTED}",
            [ids],
        ).fetchall():
            people[pid].traits[trait] = _decode(value)
        result = cur.execute(f"SELECT * FROM profile_computed WHERE profile_id IN {_LISTED}", [ids])
        names = [d[0] for d in result.description or []]
        for row in result.fetchall():
            person = people[row[0]]
            for n, v in zip(names[1:], row[1:], strict=True):
                if not n.startswith("_") and v is not None:
                    person.traits[n] = _plain(v)
        wanted = sorted(set(segments))
        if wanted:
            for pid, seg in cur.execute(
                f"SELECT profile_id, segment FROM segment_members WHERE segment IN {_LISTED}"
                f" AND profile_id IN {_LISTED}",
                [wanted, ids],
            ).fetchall():
                people[pid].segments.add(seg)
    finally:
        cur.close()
    return people


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


_EVENTS = """
SELECT e.seq, coalesce(a.profile_id, n.profile_id), e.event, epoch(e.timestamp), e.properties
FROM events e
JOIN profile_facts f ON f.seq = e.seq
JOIN identity_nodes n ON n.k = f.k
LEFT JOIN profile_aliases a ON a.old_id = n.profile_id
WHERE e.seq > ? AND e.seq <= ? AND e.type = 'track' AND e.event IN (SELECT unnest(?::VARCHAR[]))
ORDER BY e.seq
"""


def load_events(db: Database, lo: int, hi: int, names: Sequence[str]) -> list[TriggerEvent]:
    """The track events named `names` with lo < seq <= hi, each with its person, in log order."""
    if not names or hi <= lo:
        return []
    rows = db.execute(_EVENTS, [lo, hi, sorted(set(names))])
    return [
        TriggerEvent(int(seq), str(pid), str(name), float(at), _decode(props) if props else {})
        for seq, pid, name, at, props in rows
    ]


Happened = tuple[float, dict[str, Any]]
"""An event a person did: its time (epoch seconds) and its properties."""


def events_done(
    db: Database, profile_ids: Sequence[str], name: str, since: float | None
) -> dict[str, list[Happened]]:
    """Each person's events of one name since `since` (epoch seconds; None: ever): time and properties."""
    rows = db.execute(
        """SELECT coalesce(a.profile_id, n.profile_id), epoch(f.ts), e.properties
        FROM profile_facts f
        JOIN identity_nodes n ON n.k = f.k
        LEFT JOIN profile_aliases a ON a.old_id = n.profile_id
        JOIN events e ON e.seq = f.seq
        WHERE f.event = ? AND f.type = 'track' AND (? IS NULL OR f.ts >= to_timestamp(?))
          AND coalesce(a.profile_id, n.profile_id) IN (SELECT unnest(?::VARCHAR[]))""",
        [name, since, since, list(profile_ids)],
    )
    out: dict[str, list[Happened]] = {}
    for pid, at, props in rows:
        out.setdefault(str(pid), []).append((float(at), _decode(props) if props else {}))
    return out


def holds(f: PropertyFilter, properties: dict[str, Any]) -> bool:
    """Whether one property filter holds for an event's properties."""
    return compare(properties.get(f.property), f.op, f.value, f.property in properties)


def compare(actual: Any, op: str, expected: Any, present: bool = True) -> bool:
    """`actual op expected`, False when the types cannot be compared."""
    if op == "exists":
        return present and actual is not None
    try:
        if op == "=":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if op == "in":
            return isinstance(expected, list) and actual in expected
        if op == "contains":
            return isinstance(actual, str | list) and expected in actual
        if actual is None:
            return False
        if op == ">":
            return bool(actual > expected)
        if op == ">=":
            return bool(actual >= expected)
        if op == "<":
            return bool(actual < expected)
        if op == "<=":
            return bool(actual <= expected)
    except TypeError:
        return False
    return False


def matches(match: EventMatch, event: TriggerEvent) -> bool:
    """Whether an event is the one a match names, with every filter holding."""
    return event.name == match.name and all(holds(f, event.properties) for f in match.where)
