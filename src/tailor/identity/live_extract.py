"""A live micro-batch's identifiers, refusals, hubs and edges, computed in Python from one read.

A rebuild extracts identifiers and forms edges in SQL (`tailor.identity.extract` and the edge
steps of `tailor.identity.graph`): for millions of events that is what DuckDB is for. A live
batch of a thousand events ran the same seventeen statements, each with DuckDB's fixed cost of
planning and scheduling, about 60 ms in all at 1M people; here one query reads the batch's
identifier values (the rebuild's own reading of the JSON) and plain Python does the rest in a few
milliseconds. It is the same function of the same input, column for column and message for
message: tests hold live batches through it equal to batches through the SQL
(tests/identity/test_index.py) and to a rebuild (tests/identity/test_graph.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from tailor.identity.extract import PRIORITY, SOURCE_PASS, identifier_values, normalise_lists
from tailor.identity.normalise import IdentifierNormaliser
from tailor.process.stage import BATCH_VIEW

_EVENTS = f"SELECT seq, message_id, type FROM {BATCH_VIEW}"

# Every identifier value of the batch, typed by where it was found, as the rebuild's extraction
# reads it (its pass over the JSON, each column parsed once): in one statement, in the order of the
# sources and of each event's externalIds. Reading the JSON in Python instead cost 9 us an event
# at 200k-event batches (the collector's load makes such batches), mostly in the interpreter's
# handling of each field; DuckDB reads it in C on both cores.
_RAWS = f"""WITH src AS MATERIALIZED ({SOURCE_PASS})
SELECT seq, id_type, raw FROM ({identifier_values("src")}) ORDER BY seq, o, i"""

_MATCHES = """SELECT a, b, seq, probability, weight, veto FROM identity_matches WHERE found_in = ?"""

_OVERRIDES = "SELECT action, a_type, a_value, b_type, b_value FROM identity_overrides"

_RANK = {t: i for i, t in enumerate(PRIORITY)}


def node_key(type_name: str, value: str) -> int:
    """An identifier's key, as DuckDB's `md5_number_lower(type || ':' || value)` computes it."""
    return int.from_bytes(hashlib.md5(f"{type_name}:{value}".encode()).digest()[8:], "little")


@dataclass
class Extracted:
    """The batch's identifiers and their evidence, shaped like the SQL's `_idg_*` tables."""

    events: dict[int, tuple[str, str]]
    """seq → (message id, event type) of each event."""
    keys: dict[int, tuple[str, str, int]]
    """k → (type, value, priority) of each distinct identifier (`_idg_keys`)."""
    ids: list[tuple[int, int, int]]
    """(seq, k, priority): which event carries which identifier (`_idg_ids`)."""
    bad: list[tuple[str, str, str, int, str, int, int]]
    """Values that cannot be used, shaped like `identity_refusals` (`_idg_bad`)."""
    matches: list[tuple[int, int, str, str, int, float, float, str | None]] = field(default_factory=list)
    """Probabilistic matches found at this batch (`_idg_m`)."""


class Normalised:
    """Outcomes of `normalise_lists` by (type, raw value), remembered across live batches: returning
    people bring the same identifiers again, and a phone number costs `phonenumbers` ~0.2 ms."""

    def __init__(self, normaliser: IdentifierNormaliser, size: int = 200_000) -> None:
        self.normaliser = normaliser
        self._size = size
        self._memo: dict[tuple[str, str], tuple[str | None, str | None, str | None]] = {}

    def outcomes(self, pairs: list[tuple[str, str]]) -> list[tuple[str | None, str | None, str | None]]:
        """(value, reason, kept as) of each distinct (type, raw value)."""
        memo = self._memo
        missing = [p for p in pairs if p not in memo]
        if missing:
            if len(memo) + len(missing) > self._size:
                memo.clear()
            values, reasons, kept = normalise_lists(
                self.normaliser, [m[0] for m in missing], [m[1] for m in missing]
            )
            memo.update(zip(missing, zip(values, reasons, kept, strict=True), strict=True))
        return [memo[p] for p in pairs]


def extract(cur: duckdb.DuckDBPyConnection, normalised: Normalised, hi: int) -> Extracted:
    """Reads the batch once and extracts its identifiers (what `extraction_steps` builds in SQL)."""
    seqs, message_ids, kinds = cur.execute(_EVENTS).fetchnumpy().values()
    events: dict[int, tuple[str, str]] = dict(
        zip(seqs.tolist(), zip(message_ids.tolist(), kinds.tolist(), strict=True), strict=True)
    )
    raws = cur.execute(_RAWS).fetchall()  # (seq, id_type, raw), in the order of the SQL's sources

    distinct = list(dict.fromkeys((r[1], r[2]) for r in raws))
    keyed: dict[tuple[str, str], tuple[int, int] | str] = {}
    keys: dict[int, tuple[str, str, int]] = {}
    for pair, (value, reason, kept) in zip(distinct, normalised.outcomes(distinct), strict=True):
        if value is None or kept is None:  # kept as a type whenever there is a value
            keyed[pair] = reason or ""
            continue
        k = node_key(kept, value)
        priority = _RANK.get(kept, len(PRIORITY))
        keyed[pair] = (k, priority)
        keys.setdefault(k, (kept, value, priority))

    ids: dict[tuple[int, int, int], None] = {}
    refused: dict[tuple[str, str], list[Any]] = {}
    for seq, id_type, raw in raws:
        outcome = keyed[(id_type, raw)]
        if isinstance(outcome, tuple):
            ids[(seq, outcome[0], outcome[1])] = None
            continue
        row = refused.get((id_type, raw))
        if row is None:
            refused[(id_type, raw)] = [seq, seq, 1, outcome]
        else:
            row[0], row[1], row[2] = min(row[0], seq), max(row[1], seq), row[2] + 1
    bad = [
        (id_type, raw, reason, first, events[first][0], last, count)
        for (id_type, raw), (first, last, count, reason) in refused.items()
    ]
    matches = [
        (node_key("record", a), node_key("record", b), a, b, seq, p, w, veto)
        for a, b, seq, p, w, veto in cur.execute(_MATCHES, [int(hi)]).fetchall()
    ]
    return Extracted(events, keys, list(ids), bad, matches)


def drop_collisions(ex: Extracted, collided: set[int], known: dict[int, tuple[str, str]]) -> None:
    """Reports and removes the batch's keys that name another value than their stored node's."""
    if not collided:
        return
    spans: dict[int, list[int]] = {}
    for seq, k, _ in ex.ids:
        if k in collided:
            span = spans.setdefault(k, [seq, seq, 0])
            span[0], span[1], span[2] = min(span[0], seq), max(span[1], seq), span[2] + 1
    for k in collided:
        if k not in spans:
            continue
        type_name, value, _ = ex.keys[k]
        other_type, other_value = known[k]
        first, last, count = spans[k]
        reason = f"invalid: its key collides with {other_type} {other_value}; it is kept apart"
        ex.bad.append((type_name, value, reason, first, ex.events[first][0], last, count))
    ex.ids = [row for row in ex.ids if row[1] not in collided]
    for k in collided:
        ex.keys.pop(k, None)


@dataclass
class BatchGraph:
    """What the batch adds to the graph, as Arrow tables shaped like the SQL's."""

    sightings: pa.Table
    """k, last_seq, events (`identity_sightings` rows)."""
    hubs: pa.Table
    """seq, k (`identity_event_hubs` rows)."""
    new_nodes: list[tuple[int, str, str, int]]
    """(k, type, value, first seq) of identifiers not yet in the graph (`_idg_bnodes`)."""
    edges: pa.Table
    """The batch's edges with their override cuts (`_idg_be`)."""


def _ordered(a: int, b: int, ka: tuple[str, str, int], kb: tuple[str, str, int]) -> tuple[Any, ...]:
    if (ka[0], ka[1]) < (kb[0], kb[1]):
        return a, b, ka[0], ka[1], kb[0], kb[1]
    return b, a, kb[0], kb[1], ka[0], ka[1]


def _overrides(cur: duckdb.DuckDBPyConnection) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    removed: set[tuple[Any, ...]] = set()
    blocked: set[tuple[Any, ...]] = set()
    for action, a_type, a_value, b_type, b_value in cur.execute(_OVERRIDES).fetchall():
        if action == "remove_edge":
            removed.add((a_type, a_value, b_type, b_value))
        elif action == "block":
            blocked.add((a_type, a_value))
    return removed, blocked


def batch_graph(cur: duckdb.DuckDBPyConnection, ex: Extracted, known: Iterable[int]) -> BatchGraph:
    """Sightings, hubs, new nodes and edges of the batch (the edge steps of `tailor.identity.graph`)."""
    seen: dict[int, list[int]] = {}
    hub: dict[int, tuple[int, int]] = {}
    for seq, k, priority in ex.ids:
        s = seen.get(k)
        if s is None:
            seen[k] = [seq, seq, 1]
        else:
            s[0], s[1], s[2] = min(s[0], seq), max(s[1], seq), s[2] + 1
        h = hub.get(seq)
        if h is None or (priority, k) < h:
            hub[seq] = (priority, k)
    known_keys = set(known)
    new_nodes = [(k, ex.keys[k][0], ex.keys[k][1], s[0]) for k, s in seen.items() if k not in known_keys]

    spans: dict[tuple[int, int], list[int]] = {}
    named: dict[tuple[int, int], tuple[Any, ...]] = {}
    for seq, k, _ in ex.ids:
        h_k = hub[seq][1]
        if k == h_k:
            continue
        ordered = _ordered(k, h_k, ex.keys[k], ex.keys[h_k])
        pair = (ordered[0], ordered[1])
        span = spans.get(pair)
        if span is None:
            spans[pair] = [seq, seq, 1]
            named[pair] = ordered
        else:
            span[0], span[1], span[2] = min(span[0], seq), max(span[1], seq), span[2] + 1
    rows: list[tuple[Any, ...]] = []
    for pair, (first, last, count) in spans.items():
        message_id, kind = ex.events[first]
        rows.append((*named[pair], first, message_id, kind, last, count, None))
    ends = known_keys | ex.keys.keys()
    for a, b, a_value, b_value, seq, probability, weight, veto in ex.matches:
        if a in ends and b in ends and (a, b) not in spans:
            message = f"match: probability {probability:.4f}, weight {weight:.2f}"
            rows.append((a, b, "record", a_value, "record", b_value, seq, message, "match", seq, 1, veto))

    removed, blocked = _overrides(cur) if rows else (set(), set())
    cut, reason = [], []
    for row in rows:
        veto = row[11]
        overridden = (
            (row[2], row[3], row[4], row[5]) in removed
            or (row[2], row[3]) in blocked
            or (
                row[4],
                row[5],
            )
            in blocked
        )
        cut.append(veto is not None or overridden)
        reason.append(veto if veto is not None else "split: cut by a user override" if overridden else None)
    u64, i64, text = pa.uint64(), pa.int64(), pa.string()
    columns = list(zip(*rows, strict=True)) if rows else [()] * 12
    edges = pa.table(
        {
            "a": pa.array(columns[0], u64),
            "b": pa.array(columns[1], u64),
            "a_type": pa.array(columns[2], text),
            "a_value": pa.array(columns[3], text),
            "b_type": pa.array(columns[4], text),
            "b_value": pa.array(columns[5], text),
            "seq": pa.array(columns[6], i64),
            "message_id": pa.array(columns[7], text),
            "kind": pa.array(columns[8], text),
            "last_seq": pa.array(columns[9], i64),
            "events": pa.array(columns[10], i64),
            "cut": pa.array(cut, pa.bool_()),
            "reason": pa.array(reason, text),
        }
    )
    sightings = pa.table(
        {
            "k": pa.array(list(seen), u64),
            "last_seq": pa.array([s[1] for s in seen.values()], i64),
            "events": pa.array([s[2] for s in seen.values()], i64),
        }
    )
    hubs = pa.table({"seq": pa.array(list(hub), i64), "k": pa.array([h[1] for h in hub.values()], u64)})
    return BatchGraph(sightings, hubs, new_nodes, edges)


def write_evidence(cur: duckdb.DuckDBPyConnection, ex: Extracted, graph: BatchGraph) -> None:
    """Appends the batch's refusals, sightings, event hubs and edge sightings to their tables."""
    sightings, hubs, edges = graph.sightings, graph.hubs, graph.edges
    statements = []
    if ex.bad:
        columns = list(zip(*ex.bad, strict=True))
        bad = pa.table(  # noqa: F841 (read by the SQL)
            {
                name: pa.array(values, kind)
                for name, values, kind in zip(
                    ("type", "raw_value", "reason", "seq", "message_id", "last_seq", "events"),
                    columns,
                    (pa.string(), pa.string(), pa.string(), pa.int64(), pa.string(), pa.int64(), pa.int64()),
                    strict=True,
                )
            }
        )
        statements.append("INSERT INTO identity_refusals SELECT * FROM bad")
    if sightings.num_rows:
        statements.append("INSERT INTO identity_sightings SELECT * FROM sightings")
    if hubs.num_rows:
        statements.append("INSERT INTO identity_event_hubs SELECT * FROM hubs")
    if edges.num_rows:
        statements.append("INSERT INTO identity_edge_sightings SELECT a, b, last_seq, events FROM edges")
    for sql in statements:
        cur.execute(sql)
