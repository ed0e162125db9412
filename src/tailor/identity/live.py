"""A live micro-batch of the identity graph: identifiers and edges extracted in Python
(`tailor.identity.live_extract`), its slice read from the in-memory index, its merge rules
computed in Python (`tailor.identity.stitch`), its outcome written by the same SQL as a rebuild's.

A rebuild extracts identifiers, forms edges and recomputes components in SQL. A live batch reads
the batch once and extracts the same identifiers, refusals and edges in Python; instead of
scanning the node and edge tables for the graph around the batch and recomputing it in some
thirty SQL statements, the slice comes from `GraphIndex` and `stitch` recomputes it; the outcome
goes back as Arrow tables shaped like the temporary tables the SQL would have made, so that
`write_steps` writes the tables exactly as after SQL, and the index follows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tailor.identity.components import SHARED_TYPES, write_steps
from tailor.identity.index import I64, GraphIndex, Slice
from tailor.identity.live_extract import Normalised, batch_graph, drop_collisions, extract, write_evidence
from tailor.identity.stitch import Edge, Node, Outcome, stitch
from tailor.process.stage import PyStep, SqlStep, run_steps
from tailor.store.database import registered

log = logging.getLogger(__name__)

_LIVE = "_idg_live"
"""The prefix of the names a live batch's outcome is registered under for `write_steps`."""

_BATCH_EDGE_COLUMNS = "a, b, a_type, a_value, b_type, b_value, seq, reason, cut"


def _nodes(index: GraphIndex, rows: I64) -> list[Node]:
    t = index.node_table(rows).to_pydict()
    return [
        Node(k, ty, v, f, c, p, s, s)
        for k, ty, v, f, c, p, s in zip(
            t["k"], t["type"], t["value"], t["first_seq"], t["component"], t["profile_id"], t["shared"],
            strict=True,
        )
    ]  # fmt: skip


def _edges(rows: dict[str, list[Any]], stored: bool) -> list[Edge]:
    linking = rows["linking"] if stored else [False] * len(rows["a"])
    shared = rows["shared"] if stored else [False] * len(rows["a"])
    return [
        Edge(a, b, at, av, bt, bv, q, lk, r, sh, c, not stored)
        for a, b, at, av, bt, bv, q, lk, r, sh, c in zip(
            rows["a"], rows["b"], rows["a_type"], rows["a_value"], rows["b_type"], rows["b_value"],
            rows["seq"], linking, rows["reason"], shared, rows["cut"],
            strict=True,
        )
    ]  # fmt: skip


def apply_live(
    cur: duckdb.DuckDBPyConnection,
    stage: str,
    hi: int,
    index: GraphIndex,
    limits: Mapping[str, int],
    normalised: Normalised,
) -> None:
    """Folds the batch (the view `batch_events`) into the graph and the index."""
    started = time.perf_counter()
    ex = extract(cur, normalised, hi)
    keys = [*ex.keys, *(m[0] for m in ex.matches), *(m[1] for m in ex.matches)]
    part = index.slice(np.array(keys, np.uint64))
    # A key that names another value than its node's collides: reported and kept apart.
    found = np.flatnonzero(part.known >= 0)
    known = {
        keys[i]: (t, v)
        for i, t, v in zip(
            found.tolist(),
            index.type_names(part.known[found]).to_pylist(),
            index.value.take(part.known[found]).to_pylist(),
            strict=True,
        )
    }
    drop_collisions(ex, {k for k, tv in known.items() if k in ex.keys and ex.keys[k][:2] != tv}, known)
    batch = batch_graph(cur, ex, known)
    write_evidence(cur, ex, batch)
    extract_ms = 1000 * (time.perf_counter() - started)

    started = time.perf_counter()
    batch_edges = batch.edges
    touched = {k for k, (t, _, _) in ex.keys.items() if t in SHARED_TYPES}
    nodes = _nodes(index, part.nodes)
    nodes += [Node(k, t, v, f, None, None, False) for k, t, v, f in batch.new_nodes]
    stored_edges = _edges(index.edge_table(part.edges).to_pydict(), stored=True)
    outcome = stitch(
        nodes,
        stored_edges,
        _edges(batch_edges.select(_BATCH_EDGE_COLUMNS.split(", ")).to_pydict(), stored=False),
        touched,
        limits,
    )
    stored_pairs = {(e.a, e.b) for e in stored_edges}
    fresh = [
        (a, b) not in stored_pairs
        for a, b in zip(batch_edges["a"].to_pylist(), batch_edges["b"].to_pylist(), strict=True)
    ]
    new, absorbed, verdict = _tables(outcome)
    benew = batch_edges.filter(pa.array(fresh, pa.bool_()))
    log.debug(
        "%s: identifiers, evidence and slice (%d nodes, %d edges) in %.1f ms; merge rules in %.1f ms",
        stage,
        len(part.nodes),
        len(part.edges),
        extract_ms,
        1000 * (time.perf_counter() - started),
    )
    changed = dict(zip((_NODES_CHANGED, _VERDICTS), _changed(outcome, index, part), strict=True))
    idle = _idle_writes(outcome, fresh) | {output for output, rows in changed.items() if not rows.num_rows}
    steps: list[SqlStep | PyStep] = [
        _by_table_row(step, index, changed[step.output]) if step.output in changed else step
        for step in write_steps(hi, _LIVE)
        if step.output not in idle
    ]
    # Read by the write steps where they are (registered, not copied into temporary tables).
    outcome_tables = {"new": new, "absorbed": absorbed, "verdict": verdict, "benew": benew}
    outcome_tables |= {"changed": changed[_NODES_CHANGED], "verdicts": changed[_VERDICTS]}
    with registered(cur, **{f"{_LIVE}_{name}": table for name, table in outcome_tables.items()}):
        run_steps(cur, stage, steps)

    started = time.perf_counter()
    index.apply_nodes(
        part.nodes,
        new.select(["k", "type", "value", "first_seq", "shared", "component"]).append_column(
            "profile", pa.array([int(p[5:], 16) for p in outcome.profile_id], pa.uint64())
        ),
    )
    index.apply_edges(
        verdict.select(["a", "b", "new", "linking", "reason", "shared", "cut", "seq"]), part.edges
    )
    log.debug("%s: index follows the batch in %.1f ms", stage, 1000 * (time.perf_counter() - started))


_NODES_CHANGED = "identity_nodes (changed)"
_VERDICTS = "identity_edges (verdicts)"

# Rows by their row ids in the table, checked against their keys. The row ids are a literal list:
# DuckDB then fetches those rows instead of scanning every key (1M people, ~10 rows changed: nodes
# 6 against 13 ms, edges 7 against 13 ms; a subquery of row ids is fetched for nodes, not edges).
_BY_TABLE_ROW = {
    _NODES_CHANGED: f"""UPDATE identity_nodes
    SET component = n.component, profile_id = n.profile_id, shared = n.shared
    FROM {_LIVE}_changed n
    WHERE identity_nodes.rowid IN ({{rows}}) AND identity_nodes.k = n.k""",
    _VERDICTS: f"""UPDATE identity_edges SET linking = v.linking, reason = v.reason, shared = v.shared
    FROM {_LIVE}_verdicts v
    WHERE identity_edges.rowid IN ({{rows}}) AND identity_edges.a = v.a AND identity_edges.b = v.b""",
}


def _changed(outcome: Outcome, index: GraphIndex, part: Slice) -> tuple[pa.Table, pa.Table]:
    """The stored nodes whose component, profile or shared flag the batch changes, and the stored
    edges whose verdict it changes, each with its row id in its table where the index knows it
    (-1 where not)."""
    node_row = dict(
        zip(index.k.data[part.nodes].tolist(), index.table_row.data[part.nodes].tolist(), strict=True)
    )
    nodes = [
        (node_row.get(n.k, -1), n.k, c, p, n.shared)
        for n, c, p in zip(outcome.nodes, outcome.component, outcome.profile_id, strict=True)
        if n.old_component is not None
        and (c != n.old_component or p != n.old_profile or n.shared != n.old_shared)
    ]
    ends = zip(
        index.k.data[index.edge_a.data[part.edges]].tolist(),
        index.k.data[index.edge_b.data[part.edges]].tolist(),
        index.edge_table_row.data[part.edges].tolist(),
        strict=True,
    )
    edge_row = {(a, b): r for a, b, r in ends}
    edges = [
        (edge_row.get((e.a, e.b), -1), e.a, e.b, linking, reason, shared)
        for e, (shared, linking, reason) in zip(outcome.edges, outcome.verdicts, strict=True)
        if not e.new and (linking != e.linking or reason != e.reason or shared != e.shared)
    ]
    u64, text, flag = pa.uint64(), pa.string(), pa.bool_()
    return (
        _table(nodes, ("table_row", "k", "component", "profile_id", "shared"), (u64, text, flag)),
        _table(edges, ("table_row", "a", "b", "linking", "reason", "shared"), (u64, flag, text, flag)),
    )


def _table(rows: list[tuple[Any, ...]], names: tuple[str, ...], kinds: tuple[pa.DataType, ...]) -> pa.Table:
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    types = (pa.int64(), pa.uint64(), *kinds)
    return pa.table({n: pa.array(c, t) for n, c, t in zip(names, columns, types, strict=True)})


def _by_table_row(by_key: SqlStep, index: GraphIndex, changed: pa.Table) -> SqlStep | PyStep:
    """The update of `changed` rows by their row ids when the index knows them all. A row id that
    no longer holds its row (rows deleted, the table compacted) shows in the count: then the update
    by key runs, and the index forgets its row ids."""
    rows = changed["table_row"].to_pylist()
    if not rows or min(rows) < 0:
        return by_key
    sql = _BY_TABLE_ROW[by_key.output].format(rows=", ".join(str(int(r)) for r in rows))

    def update(cur: duckdb.DuckDBPyConnection) -> None:
        result = cur.execute(sql).fetchone()
        if result is None or result[0] != len(rows):
            log.warning("identity index: row ids of %s changed; updating by key", by_key.output)
            index.forget_table_rows()
            cur.execute(by_key.sql)

    return PyStep(update, f"{by_key.output} by row id")


def _idle_writes(outcome: Outcome, fresh: list[bool]) -> set[str]:
    """The write steps (by output) that would change nothing for this outcome: each costs DuckDB a
    few milliseconds even when its rows are none, and a batch usually has several such. (The
    updates of changed nodes and verdicts are idle when `_changed` finds none.)"""
    nodes = outcome.nodes
    stored = [(n, c, p) for n, c, p in zip(nodes, outcome.component, outcome.profile_id, strict=True)
              if n.old_component is not None]  # fmt: skip
    idle = set()
    if not outcome.absorbed:
        idle |= {"profile_aliases (repointed)", "profile_aliases"}
        if all(p == n.old_profile for n, _, p in stored):
            idle.add("profile_changes")  # nothing absorbed, nothing split off
    if len(stored) == len(nodes):
        idle.add("identity_nodes (new)")
    if not any(fresh):
        idle.add("identity_edges (new)")
    return idle


def _tables(outcome: Outcome) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The outcome as `_idg_new`, `_idg_absorbed` and `_idg_verdict` (the columns `write_steps` reads)."""
    nodes, edges = outcome.nodes, outcome.edges
    u64, text, flag = pa.uint64(), pa.string(), pa.bool_()
    new = pa.table(
        {
            "k": pa.array([n.k for n in nodes], u64),
            "type": pa.array([n.type for n in nodes], text),
            "value": pa.array([n.value for n in nodes], text),
            "first_seq": pa.array([n.first_seq for n in nodes], pa.int64()),
            "old_component": pa.array([n.old_component for n in nodes], u64),
            "old_profile": pa.array([n.old_profile for n in nodes], text),
            "old_shared": pa.array([n.old_shared for n in nodes], flag),
            "shared": pa.array([n.shared for n in nodes], flag),
            "component": pa.array(outcome.component, u64),
            "profile_id": pa.array(outcome.profile_id, text),
        }
    )
    absorbed = pa.table(
        {
            "old_id": pa.array([o for o, _ in outcome.absorbed], text),
            "target": pa.array([t for _, t in outcome.absorbed], text),
        }
    )
    verdict = pa.table(
        {
            "a": pa.array([e.a for e in edges], u64),
            "b": pa.array([e.b for e in edges], u64),
            "a_type": pa.array([e.a_type for e in edges], text),
            "a_value": pa.array([e.a_value for e in edges], text),
            "b_type": pa.array([e.b_type for e in edges], text),
            "b_value": pa.array([e.b_value for e in edges], text),
            "new": pa.array([e.new for e in edges], flag),
            "shared": pa.array([v[0] for v in outcome.verdicts], flag),
            "cut": pa.array([e.cut for e in edges], flag),
            "linking": pa.array([v[1] for v in outcome.verdicts], flag),
            "reason": pa.array([v[2] for v in outcome.verdicts], text),
            "old_linking": pa.array([e.linking for e in edges], flag),
            "old_reason": pa.array([e.reason for e in edges], text),
            "old_shared": pa.array([e.shared for e in edges], flag),
            "seq": pa.array([e.seq for e in edges], pa.int64()),
        }
    )
    return new, absorbed, verdict
