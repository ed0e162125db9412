"""A live micro-batch's identifiers, refusals, hubs and edges, computed outside SQL from one read.

A rebuild extracts identifiers and forms edges in SQL (`tailor.identity.extract` and the edge
steps of `tailor.identity.graph`): for millions of events that is what DuckDB is for. A live
batch of a thousand events ran the same seventeen statements, each with DuckDB's fixed cost of
planning and scheduling, about 60 ms in all at 1M people; here one query reads the batch's
identifier values (the rebuild's own reading of the JSON) and the rest is NumPy over its rows, with
Python touching each distinct value once (to normalise and key it) and each distinct edge once: a
few milliseconds for a small batch, and no per-row interpreter work in the 100,000s-event batches
a busy collector makes. It is the same function of the same input, column for column and message for
message: tests hold live batches through it equal to batches through the SQL
(tests/identity/test_index.py) and to a rebuild (tests/identity/test_graph.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tailor.identity.extract import PRIORITY, SOURCE_PASS, identifier_values, normalise_lists
from tailor.identity.normalise import IdentifierNormaliser
from tailor.process.stage import BATCH_VIEW

_EVENTS = f"SELECT seq, message_id, type FROM {BATCH_VIEW} ORDER BY seq"

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

    events: BatchEvents
    """The message id and event type of each of the batch's events."""
    keys: dict[int, tuple[str, str, int]]
    """k → (type, value, priority) of each distinct identifier (`_idg_keys`), in order of appearance."""
    ids: Ids
    """Which event carries which identifier (`_idg_ids`)."""
    bad: list[tuple[str, str, str, int, str, int, int]] = field(default_factory=list)
    """Values that cannot be used, shaped like `identity_refusals` (`_idg_bad`)."""
    matches: list[tuple[int, int, str, str, int, float, float, str | None]] = field(default_factory=list)
    """Probabilistic matches found at this batch (`_idg_m`)."""


@dataclass
class BatchEvents:
    """The batch's events by seq: what an edge or a refusal names as its first sighting."""

    seqs: np.ndarray[Any, np.dtype[np.int64]]
    """Ascending."""
    message_ids: pa.Array
    kinds: pa.Array

    def of(self, seqs: np.ndarray[Any, Any]) -> tuple[list[str], list[str]]:
        """The message ids and event types of `seqs` (each one of the batch's)."""
        at = pa.array(np.searchsorted(self.seqs, seqs))
        return self.message_ids.take(at).to_pylist(), self.kinds.take(at).to_pylist()


@dataclass
class Ids:
    """(seq, k, priority) rows, one per identifier an event carries, in the order events give them."""

    seq: np.ndarray[Any, np.dtype[np.int64]]
    """Ascending (an event's rows are together)."""
    k: np.ndarray[Any, np.dtype[np.uint64]]
    priority: np.ndarray[Any, np.dtype[np.int64]]

    def __len__(self) -> int:
        return len(self.seq)

    def where(self, mask: np.ndarray[Any, Any]) -> Ids:
        """The rows where `mask` holds."""
        return Ids(self.seq[mask], self.k[mask], self.priority[mask])


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


def _first_last_count(
    groups: np.ndarray[Any, Any], seqs: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Each distinct value of `groups`, in order of first appearance, with its first seq, last seq and
    number of rows; `seqs` is ascending, so the first row of a group has its least seq."""
    values, first, counts = np.unique(groups, return_index=True, return_counts=True)
    _, last_from_end = np.unique(groups[::-1], return_index=True)
    last = seqs[len(seqs) - 1 - last_from_end]
    order = np.argsort(first, kind="stable")
    return values[order], seqs[first[order]], last[order], counts[order]


def _run_starts(*keys: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """For rows sorted by `keys`, whether each row starts a run of rows with equal keys."""
    starts = np.ones(len(keys[0]), bool)
    if len(starts) > 1:
        starts[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    return starts


def extract(cur: duckdb.DuckDBPyConnection, normalised: Normalised, hi: int) -> Extracted:
    """Reads the batch once and extracts its identifiers (what `extraction_steps` builds in SQL).

    Per identifier value this is array work (the batches of a busy collector hold 100,000s of
    events); Python sees each distinct (type, raw value) once, to normalise it and key it.
    """
    batch = cur.sql(_EVENTS).to_arrow_table()
    events = BatchEvents(
        batch.column("seq").to_numpy(),
        batch.column("message_id").combine_chunks(),
        batch.column("type").combine_chunks(),
    )
    raws = cur.sql(_RAWS).to_arrow_table()  # seq, id_type, raw, in the order of the SQL's sources
    seq = raws.column("seq").to_numpy()
    types = raws.column("id_type").combine_chunks().dictionary_encode()
    values = raws.column("raw").combine_chunks().dictionary_encode()
    # Each row's (type, raw value) as one number, then the distinct ones in order of appearance.
    n_types = max(len(types.dictionary), 1)
    code = values.indices.to_numpy().astype(np.int64) * n_types + types.indices.to_numpy()
    codes, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    pair = rank[inverse.reshape(-1)]
    codes = codes[order]
    type_names = types.dictionary.to_pylist()
    distinct = list(
        zip(
            [type_names[t] for t in (codes % n_types).tolist()],
            values.dictionary.take(pa.array(codes // n_types)).to_pylist(),
            strict=True,
        )
    )

    keys: dict[int, tuple[str, str, int]] = {}
    pair_k = np.zeros(len(distinct), np.uint64)
    pair_priority = np.zeros(len(distinct), np.int64)
    usable = np.zeros(len(distinct), bool)
    reasons: list[str] = [""] * len(distinct)
    for d, (value, reason, kept) in enumerate(normalised.outcomes(distinct)):
        if value is None or kept is None:  # kept as a type whenever there is a value
            reasons[d] = reason or ""
            continue
        k = node_key(kept, value)
        priority = _RANK.get(kept, len(PRIORITY))
        pair_k[d], pair_priority[d], usable[d] = k, priority, True
        keys.setdefault(k, (kept, value, priority))

    ok = usable[pair]
    ids = Ids(seq[ok], pair_k[pair[ok]], pair_priority[pair[ok]])
    # An event naming the same identifier twice (a userId and its traits) carries it once.
    by_event = np.lexsort((ids.k, ids.seq))
    repeated = np.zeros(len(ids), bool)
    repeated[by_event] = ~_run_starts(ids.seq[by_event], ids.k[by_event])
    ids = ids.where(~repeated)

    refused, first_seq, last_seq, count = _first_last_count(pair[~ok], seq[~ok])
    message_ids, _ = events.of(first_seq)
    bad = [
        (*distinct[d], reasons[d], f, m, last, c)
        for d, f, m, last, c in zip(
            refused.tolist(), first_seq.tolist(), message_ids, last_seq.tolist(), count.tolist(), strict=True
        )
    ]
    matches = [
        (node_key("record", a), node_key("record", b), a, b, found, p, w, veto)
        for a, b, found, p, w, veto in cur.execute(_MATCHES, [int(hi)]).fetchall()
    ]
    return Extracted(events, keys, ids, bad, matches)


def drop_collisions(ex: Extracted, collided: set[int], known: dict[int, tuple[str, str]]) -> None:
    """Reports and removes the batch's keys that name another value than their stored node's."""
    if not collided:
        return
    hit = np.isin(ex.ids.k, np.array(sorted(collided), np.uint64))
    ks, first, last, count = _first_last_count(ex.ids.k[hit], ex.ids.seq[hit])
    message_ids, _ = ex.events.of(first)
    spans = zip(ks.tolist(), first.tolist(), message_ids, last.tolist(), count.tolist(), strict=True)
    for k, f, m, lst, c in spans:
        type_name, value, _ = ex.keys[k]
        other_type, other_value = known[k]
        reason = f"invalid: its key collides with {other_type} {other_value}; it is kept apart"
        ex.bad.append((type_name, value, reason, f, m, lst, c))
    ex.ids = ex.ids.where(~hit)
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
    ids = ex.ids
    u64, i64, text = pa.uint64(), pa.int64(), pa.string()
    seen, seen_first, seen_last, seen_count = _first_last_count(ids.k, ids.seq)
    known_keys = set(known)
    new_nodes = [
        (k, ex.keys[k][0], ex.keys[k][1], f)
        for k, f in zip(seen.tolist(), seen_first.tolist(), strict=True)
        if k not in known_keys
    ]
    # Each event's hub: its identifier of the strongest type, the least key among equals.
    by_strength = np.lexsort((ids.k, ids.priority, ids.seq))
    leads = _run_starts(ids.seq[by_strength])
    hub_seq, hub_k = ids.seq[by_strength[leads]], ids.k[by_strength[leads]]
    row_hub = hub_k[np.searchsorted(hub_seq, ids.seq)]

    # An edge joins each other identifier of an event to its hub, its ends ordered by (type, value).
    spoke = ids.k != row_hub
    ordered_keys = sorted(ex.keys, key=lambda k: ex.keys[k][:2])
    by_key = np.array(ordered_keys, np.uint64)
    sorter = np.argsort(by_key)
    sorted_keys = by_key[sorter]

    def rank(ks: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Each key's place in the order of (type, value)."""
        return sorter[np.searchsorted(sorted_keys, ks)]

    k, h, s = ids.k[spoke], row_hub[spoke], ids.seq[spoke]
    k_first = rank(k) < rank(h)
    a, b = np.where(k_first, k, h), np.where(k_first, h, k)
    by_pair = np.lexsort((b, a))
    group_start = np.flatnonzero(_run_starts(a[by_pair], b[by_pair]))
    group_end = np.append(group_start[1:], len(by_pair))[: len(group_start)] - 1
    # The sort is stable, so each pair's first and last rows are its first and last sightings.
    first_row, last_row = by_pair[group_start], by_pair[group_end]
    in_order = np.argsort(first_row, kind="stable")
    first_row, last_row = first_row[in_order], last_row[in_order]
    counts = (group_end - group_start + 1)[in_order]
    end_a, end_b = a[first_row], b[first_row]
    first_seq = s[first_row]
    message_ids, kinds = ex.events.of(first_seq)
    keys = ex.keys
    a_list, b_list = end_a.tolist(), end_b.tolist()
    columns: dict[str, list[Any]] = {
        "a": a_list,
        "b": b_list,
        "a_type": [keys[x][0] for x in a_list],
        "a_value": [keys[x][1] for x in a_list],
        "b_type": [keys[x][0] for x in b_list],
        "b_value": [keys[x][1] for x in b_list],
        "seq": first_seq.tolist(),
        "message_id": message_ids,
        "kind": kinds,
        "last_seq": s[last_row].tolist(),
        "events": counts.tolist(),
        "veto": [None] * len(a_list),
    }
    spans = set(zip(a_list, b_list, strict=True))
    ends = known_keys | keys.keys()
    for ma, mb, a_value, b_value, seq, probability, weight, veto in ex.matches:
        if ma in ends and mb in ends and (ma, mb) not in spans:
            message = f"match: probability {probability:.4f}, weight {weight:.2f}"
            row = (ma, mb, "record", a_value, "record", b_value, seq, message, "match", seq, 1, veto)
            for name, value in zip(columns, row, strict=True):
                columns[name].append(value)

    removed, blocked = _overrides(cur) if columns["a"] else (set(), set())
    cut, reason = [], []
    for at, av, bt, bv, veto in zip(
        columns["a_type"], columns["a_value"], columns["b_type"], columns["b_value"], columns.pop("veto"),
        strict=True,
    ):  # fmt: skip
        overridden = bool(removed or blocked) and (
            (at, av, bt, bv) in removed or (at, av) in blocked or (bt, bv) in blocked
        )
        cut.append(veto is not None or overridden)
        reason.append(veto if veto is not None else "split: cut by a user override" if overridden else None)
    kinds_of = {"a": u64, "b": u64, "seq": i64, "last_seq": i64, "events": i64}
    edges = pa.table(
        {name: pa.array(values, kinds_of.get(name, text)) for name, values in columns.items()}
        | {"cut": pa.array(cut, pa.bool_()), "reason": pa.array(reason, text)}
    )
    sightings = pa.table(
        {"k": pa.array(seen, u64), "last_seq": pa.array(seen_last, i64), "events": pa.array(seen_count, i64)}
    )
    hubs = pa.table({"seq": pa.array(hub_seq, i64), "k": pa.array(hub_k, u64)})
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
