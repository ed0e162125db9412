"""A person's golden record, computed traits and segments, as the profile API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from tailor.identity.service import Profile, TraitValue
from tailor.profiles.service import _plain
from tailor.store.database import Database


class Membership(msgspec.Struct):
    """A segment the person is in, and since when."""

    segment: str
    since: datetime


class Observation(msgspec.Struct):
    """One value a trait was given, with its provenance."""

    value: Any
    source_id: str
    seq: int
    at: datetime
    message_id: str | None


def golden(db: Database, profile_id: str) -> dict[str, TraitValue]:
    """The surviving value of every trait of a profile, with provenance."""
    rows = db.execute(
        """SELECT trait, value, source_id, seq, observed_at, policy, observations FROM profile_traits
        WHERE profile_id = ? ORDER BY trait""",
        [profile_id],
    )
    return {
        t: TraitValue(msgspec.json.decode(v), s, int(q), at, policy, int(n))
        for t, v, s, q, at, policy, n in rows
    }


def computed(db: Database, profile_id: str) -> dict[str, Any]:
    """A profile's computed traits as last evaluated (hidden segment aggregates left out)."""
    cur = db.cursor()
    try:
        result = cur.execute("SELECT * FROM profile_computed WHERE profile_id = ?", [profile_id])
        names = [d[0] for d in result.description or []]
        row = result.fetchone()
    finally:
        cur.close()
    if row is None:
        return {}
    return {
        n: _plain(v) for n, v in zip(names, row, strict=True) if n != "profile_id" and not n.startswith("_")
    }


def memberships(db: Database, profile_id: str) -> list[Membership]:
    """The segments a profile is in."""
    rows = db.execute(
        "SELECT segment, since FROM segment_members WHERE profile_id = ? ORDER BY segment", [profile_id]
    )
    return [Membership(s, at) for s, at in rows]


def history(db: Database, keys: list[int], trait: str) -> list[Observation]:
    """Every value one trait of a profile (the keys of its identifiers) was given, oldest first."""
    rows = db.execute(
        """SELECT o.value, o.source_id, o.seq, o.ts, e.message_id FROM trait_observations o
        LEFT JOIN events e ON e.seq = o.seq
        WHERE o.trait = ? AND o.k IN (SELECT unnest(?::UBIGINT[]))
        ORDER BY o.ts, o.seq""",
        [trait, keys],
    )
    return [Observation(msgspec.json.decode(v), s, int(q), at, m) for v, s, q, at, m in rows]


def consents(db: Database, profile_id: str) -> list[dict[str, Any]]:
    """The person's current consent per purpose and channel (`*`: all channels), with its proof."""
    rows = db.execute(
        """SELECT purpose, channel, status, legal_basis, origin, source_id, seq, recorded_at
        FROM profile_consents WHERE profile_id = ? ORDER BY purpose, channel""",
        [profile_id],
    )
    names = ("purpose", "channel", "status", "legal_basis", "origin", "source_id", "seq", "recorded_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def enrich(db: Database, profile: Profile) -> Profile:
    """The identity service's profile with its golden record, computed traits, segments and consents."""
    pid = profile.profile_id
    return msgspec.structs.replace(
        profile,
        traits=golden(db, pid),
        computed_traits=computed(db, pid),
        segments=memberships(db, pid),
        consents=consents(db, pid),
    )
