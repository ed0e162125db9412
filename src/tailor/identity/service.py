"""Reading the identity graph back (a person's profile, the evidence of every link) and splitting it.

Profiles are found by any identifier (`email:Ana@Example.org` is normalised as the graph's values
were) or by profile id, old ids of absorbed profiles included. A split is stored as an override (an
edge removed, an identifier blocked) that the identity stage applies now and on every rebuild.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from tailor.identity.exceptions import IdentityError
from tailor.identity.graph import NODE_KEY, IdentityGraph
from tailor.process.processor import Processor
from tailor.process.stage import PyStep, SqlStep
from tailor.store.database import Database


@dataclass(frozen=True)
class ContextReader:
    """How SQL reads a member of an event's `context`: its text, and whether it is there."""

    text: Callable[[str], str]
    present: Callable[[str], str]


BY_PATH = ContextReader(
    text=lambda path: f"json_extract_string(context, '{path}')",
    present=lambda path: f"json_exists(context, '{path}')",
)
"""Each member read on its own: portable to every engine, but each call parses `context` again."""

SIGNAL_PATHS = ("$.record.kind", "$.channel", "$.userAgent", "$.device.type", "$.app", "$.page")
"""The members of `context` that `touch_channel` and `device_kind` read."""


def signals_reader(column: str) -> ContextReader:
    """Members read from `column`, which holds `CONTEXT_SIGNALS` (DuckDB only)."""
    at = {path: i for i, path in enumerate(SIGNAL_PATHS, 1)}
    return ContextReader(
        text=lambda path: f"({column}[{at[path]}] ->> '$')",
        present=lambda path: f"({column}[{at[path]}] IS NOT NULL)",
    )


CONTEXT_SIGNALS = "json_extract(context, [{}])".format(", ".join(f"'{p}'" for p in SIGNAL_PATHS))
"""`SIGNAL_PATHS` as JSON values (SQL NULL where absent) from one parse of `context`. Read `BY_PATH`,
the channel and the device kind parse it eight times: at 384k events 420 ms against 230 ms."""


def touch_channel(read: ContextReader = BY_PATH) -> str:
    """Where an event happened, as one word: the system a record came from, the messaging channel
    of a message event, the app, the web, or else the library that sent it."""
    return f"""CASE
    WHEN source_id LIKE 'import:%' THEN {read.text("$.record.kind")}
    WHEN event LIKE 'Email %' THEN 'email'
    WHEN event LIKE 'SMS %' THEN 'sms'
    WHEN {read.present("$.app")} OR {read.present("$.device.type")} THEN 'app'
    WHEN {read.present("$.page")} OR type = 'page' THEN 'web'
    ELSE coalesce({read.text("$.channel")}, 'server')
END"""


def device_kind(read: ContextReader = BY_PATH) -> str:
    """The kind of device an event came from, from the app's device type or the browser's user agent."""
    return f"""CASE
    WHEN {read.text("$.userAgent")} SIMILAR TO '.*(SmartTV|Web0S|Tizen|AFT|Roku|BRAVIA).*'
        THEN 'smart_tv'
    WHEN {read.present("$.device.type")} THEN 'app_' || {read.text("$.device.type")}
    WHEN {read.text("$.userAgent")} SIMILAR TO '.*(Mobile|iPhone|Android).*'
        THEN 'mobile_web'
    WHEN {read.present("$.userAgent")} THEN 'desktop_web'
    ELSE NULL
END"""


TOUCH_CHANNEL = touch_channel()
"""`touch_channel` of a row of `events`, in SQL every engine runs."""
DEVICE_KIND = device_kind()
"""`device_kind` of a row of `events`, in SQL every engine runs."""


class Identifier(msgspec.Struct):
    """One identifier of a profile, with when it was first and last seen."""

    type: str
    value: str
    first_seen: datetime | None
    last_seen: datetime | None


class Device(msgspec.Struct):
    """A device a profile was seen on: the device id of an app, else the browser's anonymous id."""

    kind: str
    id: str
    model: str | None
    events: int
    first_seen: datetime
    last_seen: datetime


class TraitValue(msgspec.Struct):
    """A trait's surviving value and where it came from."""

    value: Any
    source_id: str
    seq: int
    at: datetime
    policy: str | None = None
    """The survivorship policy that chose it (see `tailor.profiles.golden`)."""
    observations: int | None = None
    """How many times the trait was given, by every source together."""


class Profile(msgspec.Struct):
    """The unified profile: every identifier, when and where the person was seen, and their traits."""

    profile_id: str
    aliases: list[str]
    identifiers: list[Identifier]
    events: int
    first_seen: datetime | None
    last_seen: datetime | None
    channels: dict[str, int]
    devices: list[Device]
    sources: list[str]
    traits: dict[str, TraitValue]
    computed_traits: dict[str, Any]
    segments: list[Any]
    consents: list[Any]


class Endpoint(msgspec.Struct):
    """One end of an identity edge."""

    type: str
    value: str
    profile_id: str | None


class Evidence(msgspec.Struct):
    """What created an edge: the first event or record carrying both identifiers, and how often it recurs."""

    seq: int
    message_id: str
    kind: str
    first_seen: datetime | None
    last_seq: int
    events: int


class MatchEvidence(msgspec.Struct):
    """The probabilistic match behind a record-to-record edge: its score and each field's part in it."""

    probability: float
    weight: float
    contributions: dict[str, Any]
    veto: str | None


class Edge(msgspec.Struct):
    """A link between two identifiers and whether it joins them, with the reason when it does not."""

    a: Endpoint
    b: Endpoint
    linking: bool
    rule: str
    reason: str | None
    evidence: Evidence
    match: MatchEvidence | None = None


class Change(msgspec.Struct):
    """A merge or split of this profile, at the batch that ended with `seq`."""

    seq: int
    change: str
    profile_id: str
    other_id: str
    at: datetime


class Override(msgspec.Struct):
    """A user's split: an edge removed or an identifier blocked."""

    id: str
    action: str
    a: str
    b: str | None
    note: str | None
    created_at: datetime


class IdentityExplanation(msgspec.Struct):
    """A profile's identifiers and every edge touching them, with evidence, changes and overrides."""

    profile_id: str
    identifiers: list[Identifier]
    edges: list[Edge]
    changes: list[Change]
    overrides: list[Override]


class SplitResult(msgspec.Struct):
    """What a split did: the override stored and the profiles the old members now belong to."""

    override: Override
    profiles: dict[str, list[str]]


class NotFoundError(IdentityError, LookupError):
    """No profile holds the identifier or has the id asked for."""


class BadIdentifierError(IdentityError, ValueError):
    """An identifier in `TYPE:VALUE` form that cannot be used."""


class IdentityService:
    """Lookups, explanations and splits over the identity graph of one store."""

    def __init__(self, db: Database, processor: Processor, graph: IdentityGraph) -> None:
        self._db = db
        self._processor = processor
        self._graph = graph

    # -- finding a profile -------------------------------------------------------------------------

    def parse(self, identifier: str) -> tuple[str, str]:
        """`TYPE:VALUE` split and the value normalised as the graph's values are."""
        type, sep, raw = identifier.partition(":")
        if not sep or not type or not raw:
            raise BadIdentifierError(
                f"identifier must be TYPE:VALUE (such as email:ana@example.org), got {identifier!r}"
            )
        if type == "profile":
            return type, raw
        try:
            outcome = self._graph.normaliser.normalise(type, raw)
        except IdentityError as e:
            raise BadIdentifierError(str(e)) from e
        if outcome.value is None:
            raise BadIdentifierError(f"{type} {raw!r} cannot identify anyone: {outcome.reason}")
        return self._graph.normaliser.retype(type, outcome.value), outcome.value

    def resolve(self, identifier: str) -> str:
        """The current profile id for `TYPE:VALUE`, or for `profile:ID` (old ids of merged profiles too)."""
        type, value = self.parse(identifier)
        if type == "profile":
            return self.resolve_id(value)
        rows = self._db.execute(
            f"SELECT profile_id FROM identity_nodes WHERE k = {NODE_KEY.format(t='?', v='?')}", [type, value]
        )
        if not rows:
            raise NotFoundError(f"no profile holds {type} {value!r}")
        return str(rows[0][0])

    def resolve_id(self, profile_id: str) -> str:
        """A profile id as it is now: itself, or the profile that absorbed it."""
        return self.current(profile_id)[0]

    def current(self, profile_id: str) -> tuple[str, list[tuple[int, str, str, int]]]:
        """A (current or absorbed) profile id as it is now, with its identifiers (see `nodes`)."""
        nodes = self.nodes(profile_id)
        if nodes:
            return profile_id, nodes
        rows = self._db.execute("SELECT profile_id FROM profile_aliases WHERE old_id = ?", [profile_id])
        if not rows:
            raise NotFoundError(f"no profile {profile_id!r}")
        target = str(rows[0][0])
        return target, self.nodes(target)

    def nodes(self, profile_id: str) -> list[tuple[int, str, str, int]]:
        """The (k, type, value, first seq) of a current profile's identifiers, by key; none for an id
        no profile has now.

        Read from the identity stage's in-memory index where it is loaded (a few milliseconds at
        1M profiles), else from a scan of `identity_nodes` (the column has no index: see
        `tailor.identity.graph`).
        """
        found = self._graph.profile_nodes(profile_id)
        if found is not None:
            index, table = found
            if self._graph.index_is(index):
                rows = zip(
                    *(table.column(c).to_pylist() for c in ("k", "type", "value", "first_seq")), strict=True
                )
                return sorted((int(k), str(t), str(v), int(f)) for k, t, v, f in rows)
        return [
            (int(k), str(t), str(v), int(f))
            for k, t, v, f in self._db.execute(
                "SELECT k, type, value, first_seq FROM identity_nodes WHERE profile_id = ? ORDER BY k",
                [profile_id],
            )
        ]

    def keys(self, profile_id: str) -> list[int]:
        """The keys of a current profile's identifiers, in order (see `nodes`)."""
        return [n[0] for n in self.nodes(profile_id)]

    # -- reading a profile -------------------------------------------------------------------------

    def identifiers(self, profile_id: str) -> list[Identifier]:
        """The identifiers of a profile, oldest first."""
        return self._identifiers(self.nodes(profile_id))

    def _identifiers(self, nodes: list[tuple[int, str, str, int]]) -> list[Identifier]:
        if not nodes:
            return []
        last = dict(
            self._db.execute(
                f"""SELECT k, max(last_seq) FROM identity_sightings
                WHERE k IN ({_keys([n[0] for n in nodes])}) GROUP BY k"""
            )
        )
        seqs = {n[3] for n in nodes} | {int(q) for q in last.values()}
        at = dict(self._db.execute(f"SELECT seq, timestamp FROM events WHERE seq IN ({_keys(sorted(seqs))})"))
        return [
            Identifier(t, v, at.get(first), at.get(last[k]) if k in last else None)
            for k, t, v, first in sorted(nodes, key=lambda n: (n[3], n[1], n[2]))
        ]

    def profile(self, profile_id: str) -> Profile:
        """The unified profile of a (current or absorbed) profile id."""
        pid, nodes = self.current(profile_id)
        hubs = f"SELECT h.seq FROM identity_event_hubs h WHERE h.k IN ({_keys([n[0] for n in nodes])})"
        # The person's seqs are found once and then listed: the five reads below then skip every
        # row group of the log without one of them, instead of joining the hubs again each time.
        seqs = [int(s) for (s,) in self._db.execute(f"{hubs} LIMIT {_LISTED_SEQS + 1}")]
        listed = ", ".join(map(str, seqs)) if seqs and len(seqs) <= _LISTED_SEQS else hubs
        events = f"(SELECT e.* FROM events e WHERE e.seq IN ({listed or 'NULL'}))"
        ((count, first, last),) = self._db.execute(
            f"SELECT count(*), min(timestamp), max(timestamp) FROM {events}"
        )
        channels = dict(
            self._db.execute(
                f"SELECT {TOUCH_CHANNEL} AS c, count(*) FROM {events} GROUP BY c ORDER BY 2 DESC"
            )
        )
        devices = [
            Device(*row)
            for row in self._db.execute(
                f"""SELECT kind, id, any_value(model), count(*), min(timestamp), max(timestamp) FROM (
                    SELECT {DEVICE_KIND} AS kind,
                           coalesce(json_extract_string(context, '$.device.id'), anonymous_id) AS id,
                           json_extract_string(context, '$.device.model') AS model, timestamp
                    FROM {events}
                ) WHERE kind IS NOT NULL AND id IS NOT NULL GROUP BY kind, id ORDER BY min(timestamp)"""
            )
        ]
        sources = [s for (s,) in self._db.execute(f"SELECT DISTINCT source_id FROM {events} ORDER BY 1")]
        traits: dict[str, TraitValue] = {}
        for source_id, seq, at, text in self._db.execute(
            f"""SELECT source_id, seq, timestamp, traits FROM {events}
            WHERE type = 'identify' AND traits IS NOT NULL ORDER BY seq"""
        ):
            for key, value in msgspec.json.decode(text).items():
                if value not in (None, ""):
                    traits[key] = TraitValue(value, source_id, seq, at)
        aliases = [
            a
            for (a,) in self._db.execute(
                "SELECT old_id FROM profile_aliases WHERE profile_id = ? ORDER BY 1", [pid]
            )
        ]
        return Profile(
            profile_id=pid,
            aliases=aliases,
            identifiers=self._identifiers(nodes),
            events=int(count),
            first_seen=first,
            last_seen=last,
            channels={str(k): int(v) for k, v in channels.items()},
            devices=devices,
            sources=sources,
            traits=traits,
            computed_traits={},
            segments=[],
            consents=[],
        )

    def explain(self, profile_id: str) -> IdentityExplanation:
        """A profile's identifiers and every edge touching them, each with its evidence."""
        pid, nodes = self.current(profile_id)
        mine = _keys([n[0] for n in nodes])
        rows = self._db.execute(
            f"""WITH touching AS (SELECT * FROM identity_edges WHERE a IN ({mine}) OR b IN ({mine})),
            seen AS (
                SELECT a, b, max(last_seq) AS last_seq, sum(events) AS events FROM identity_edge_sightings
                WHERE a IN (SELECT a FROM touching) GROUP BY a, b
            )
            SELECT e.a_type, e.a_value, pa.profile_id, e.b_type, e.b_value, pb.profile_id,
                   e.linking, e.shared, e.cut, e.reason, e.seq, e.message_id, e.kind, ev.timestamp,
                   coalesce(s.last_seq, e.seq), coalesce(s.events, 1)
            FROM touching e
            LEFT JOIN seen s USING (a, b)
            LEFT JOIN identity_nodes pa ON pa.k = e.a
            LEFT JOIN identity_nodes pb ON pb.k = e.b
            LEFT JOIN events ev ON ev.seq = e.seq
            ORDER BY e.seq, e.a_type, e.a_value, e.b_type, e.b_value"""
        )
        edges = []
        for at, av, ap, bt, bv, bp, linking, shared, cut, reason, seq, mid, kind, seen, last, n in rows:
            rule = _rule(linking, shared, cut, reason)
            edges.append(
                Edge(
                    Endpoint(at, av, ap),
                    Endpoint(bt, bv, bp),
                    bool(linking),
                    rule,
                    reason,
                    Evidence(int(seq), mid, kind, seen, int(last), int(n)),
                )
            )
        matched = [(e.a.value, e.b.value) for e in edges if e.evidence.kind == "match"]
        if matched:
            found = {
                (a, b): MatchEvidence(p, w, msgspec.json.decode(c), v)
                for a, b, p, w, c, v in self._db.execute(
                    """SELECT a, b, probability, weight, contributions, veto FROM identity_matches
                    WHERE list_contains(?, a)""",
                    [[a for a, _ in matched]],
                )
            }
            for e in edges:
                e.match = found.get((e.a.value, e.b.value))
        changes = [
            Change(*r)
            for r in self._db.execute(
                """SELECT seq, change, profile_id, other_id, changed_at FROM profile_changes
                WHERE profile_id = ? OR other_id = ? ORDER BY seq, changed_at""",
                [pid, pid],
            )
        ]
        identifiers = self._identifiers(nodes)
        touched = {f"{e.a.type}:{e.a.value}" for e in edges} | {f"{e.b.type}:{e.b.value}" for e in edges}
        touched |= {f"{i.type}:{i.value}" for i in identifiers}
        overrides = [o for o in self.overrides() if o.a in touched or o.b in touched]
        return IdentityExplanation(pid, identifiers, edges, changes, overrides)

    def overrides(self) -> list[Override]:
        """Every split users made, oldest first."""
        return [
            Override(oid, action, f"{at}:{av}", None if bt is None else f"{bt}:{bv}", note, created)
            for oid, action, at, av, bt, bv, note, created in self._db.execute(
                """SELECT id, action, a_type, a_value, b_type, b_value, note, created_at
                FROM identity_overrides ORDER BY created_at"""
            )
        ]

    # -- splitting ---------------------------------------------------------------------------------

    def split(
        self,
        profile_id: str,
        *,
        remove_edge: tuple[str, str] | None = None,
        block: str | None = None,
        note: str | None = None,
    ) -> SplitResult:
        """Splits a profile by removing one of its edges or blocking one of its identifiers.

        The override is stored, the edges it cuts stop linking, and the profile's component is formed
        again at once; every later batch and every rebuild applies it too.
        """
        pid, nodes = self.current(profile_id)
        if (remove_edge is None) == (block is None):
            raise BadIdentifierError(
                "a split needs exactly one of remove_edge (two identifiers) or block (one)"
            )
        members = {(t, v) for _, t, v, _ in nodes}
        if block is not None:
            a = self.parse(block)
            if a not in members:
                raise BadIdentifierError(f"profile {pid} does not hold {a[0]}:{a[1]}")
            b: tuple[str, str] | None = None
            action = "block"
        else:
            assert remove_edge is not None
            a, b = sorted((self.parse(remove_edge[0]), self.parse(remove_edge[1])))
            if a not in members or b not in members:
                raise BadIdentifierError(f"profile {pid} does not hold both {a[0]}:{a[1]} and {b[0]}:{b[1]}")
            if not self._db.execute(
                """SELECT 1 FROM identity_edges
                WHERE a_type = ? AND a_value = ? AND b_type = ? AND b_value = ?""",
                [*a, *b],
            ):
                raise BadIdentifierError(f"there is no edge between {a[0]}:{a[1]} and {b[0]}:{b[1]}")
            action = "remove_edge"
        oid = f"ovr_{uuid.uuid4().hex[:16]}"
        created = datetime.now(UTC)

        def steps(hi: int) -> list[SqlStep | PyStep]:
            # The override goes in with the recomputation, in one transaction.
            return [_insert_override(oid, action, a, b, note, created), *self._graph.override_steps(oid, hi)]

        self._processor.run_exclusive(self._graph.name, steps)
        profiles: dict[str, list[str]] = {}
        for t, v in sorted(members):
            rows = self._db.execute(
                f"SELECT profile_id FROM identity_nodes WHERE k = {NODE_KEY.format(t='?', v='?')}", [t, v]
            )
            profiles.setdefault(str(rows[0][0]), []).append(f"{t}:{v}")
        override = Override(
            oid, action, f"{a[0]}:{a[1]}", None if b is None else f"{b[0]}:{b[1]}", note, created
        )
        return SplitResult(override, profiles)


def _rule(linking: bool, shared: bool, cut: bool, reason: str | None) -> str:
    """The merge rule behind an edge's verdict, as one word."""
    if cut:
        return "match_refused" if (reason or "").startswith("match refused") else "split"
    if shared:
        return "shared_device" if (reason or "").startswith("shared device") else "shared_identifier"
    if linking:
        return "linked"
    return "limit" if (reason or "").startswith("limit") else "one_user_id"


_LISTED_SEQS = 20_000
"""Up to this many events, a profile's events are read by their listed seqs (see `profile`)."""


def _keys(keys: list[int]) -> str:
    """A list of keys as SQL (NULL for none, which `IN` never matches)."""
    return ", ".join(map(str, keys)) or "NULL"


def _q(text: str) -> str:
    return text.replace("'", "''")


def _insert_override(
    oid: str, action: str, a: tuple[str, str], b: tuple[str, str] | None, note: str | None, created: datetime
) -> SqlStep:
    def lit(v: str | None) -> str:
        return "NULL" if v is None else f"'{_q(v)}'"

    values = ", ".join(
        [
            lit(oid),
            lit(action),
            lit(a[0]),
            lit(a[1]),
            lit(None if b is None else b[0]),
            lit(None if b is None else b[1]),
            lit(note),
            f"'{created.isoformat()}'::TIMESTAMPTZ",
        ]
    )
    return SqlStep(f"INSERT INTO identity_overrides VALUES ({values})", "identity_overrides")
