"""The identity graph held in memory, so that a micro-batch reads its slice of the graph without a scan.

DuckDB has no index joins: finding a batch's known identifiers, the nodes of their components and
those nodes' edges in `identity_nodes` and `identity_edges` is a scan of each table, which at
millions of identifiers costs far more than the batch's own work. `GraphIndex` keeps what a batch
reads of the graph in NumPy arrays and Arrow strings (about 120 bytes per identifier, see
`nbytes`) and answers those three questions with binary searches and pointer walks:

- key -> node row: a sorted array of keys (searched in one `searchsorted` for the whole batch),
  with the keys added since it was sorted in a dict until there are enough to merge them in;
- component -> node rows: every component's nodes form a ring (`ring[row]` is the next node of
  the same component), so the nodes of a known node's component are one walk around its ring;
- node -> edge rows: each node heads a linked list of its half-edges (edge `e` is half-edges `2e`
  from its `a` end and `2e + 1` from its `b` end).

The tables stay the durable record: the index is loaded from them (`load`) and follows each batch's
outcome (`apply_nodes`, `apply_edges`), read back from the batch's own result tables before it
commits. Whoever uses it must drop it when a transaction that changed the graph did not commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tailor.identity.components import PROFILE_HEX, profile_id_text

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
BOOL = npt.NDArray[np.bool_]

# Keys added since the sorted array was built are kept in a dict until there are this many: merging
# re-sorts every key (tens of ms at millions), so it should happen once per many batches.
_MERGE_AT = 65_536
# Strings of new nodes arrive as one small Arrow array per batch; past this many chunks the small
# ones are concatenated, so that gathering a slice touches few chunks.
_MAX_CHUNKS = 64


class _Column:
    """A growable NumPy column: appends amortised by doubling, `view` the filled part."""

    def __init__(self, dtype: npt.DTypeLike, data: npt.NDArray[Any] | None = None) -> None:
        self.n = 0 if data is None else len(data)
        self.data = np.empty(max(1024, self.n + self.n // 4), dtype)
        if data is not None:
            self.data[: self.n] = data

    def append(self, values: npt.ArrayLike) -> None:
        values = np.asarray(values, self.data.dtype)
        end = self.n + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : end] = values
        self.n = end

    @property
    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.n]


class _Strings:
    """An append-only column of strings in Arrow chunks, gathered by global row number.

    The chunks and their first rows are one attribute, replaced whole on each append, so that a
    reader in another thread (`GraphIndex.committed_rows` and `node_table`) sees a consistent pair.
    """

    def __init__(self, first: pa.Array) -> None:
        self._parts: tuple[list[pa.Array], list[int]] = ([first], [0])
        self.n = len(first)

    def append(self, values: pa.Array) -> None:
        if not len(values):
            return
        chunks, starts = self._parts
        chunks, starts = [*chunks, values], [*starts, self.n]
        if len(chunks) > _MAX_CHUNKS:
            chunks, starts = [chunks[0], pa.concat_arrays(chunks[1:])], [0, starts[1]]
        self._parts = (chunks, starts)
        self.n += len(values)

    @property
    def chunks(self) -> list[pa.Array]:
        return self._parts[0]

    def take(self, rows: I64) -> pa.Array:
        if not len(rows):
            return pa.array([], pa.string())
        chunks, starts = self._parts
        which = np.searchsorted(np.asarray(starts), rows, side="right") - 1
        parts: list[pa.Array] = []
        order: list[I64] = []
        for c in np.unique(which):
            at = np.flatnonzero(which == c)
            parts.append(chunks[c].take(pa.array(rows[at] - starts[c])))
            order.append(at)
        gathered = pa.concat_arrays(parts)
        return gathered.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))


@dataclass(frozen=True)
class Slice:
    """The part of the graph a batch reads: node rows (known ones first) and edge rows."""

    known: I64
    """Rows of the batch's keys that are already nodes (-1 where a key is new)."""
    nodes: I64
    """Rows of every node in the components of the known nodes."""
    edges: I64
    """Rows of every edge touching one of those nodes."""


class GraphIndex:
    """The nodes and edges of the identity graph in memory, with the three lookups a batch needs."""

    def __init__(self, nodes: pa.Table, edges: pa.Table) -> None:
        """Builds the index from `identity_nodes` and `identity_edges` rows (see `load`)."""
        n = nodes.num_rows
        self.types: list[str] = []
        self._type_code: dict[str, int] = {}
        self.k = _Column(np.uint64, nodes.column("k").to_numpy())
        self.type = _Column(np.uint8, self._codes(nodes.column("type")))
        self.value = _Strings(nodes.column("value").combine_chunks())
        self.first_seq = _Column(np.int64, nodes.column("first_seq").to_numpy())
        self.shared = _Column(np.bool_, nodes.column("shared").to_numpy(zero_copy_only=False))
        self.component = _Column(np.uint64, nodes.column("component").to_numpy())
        self.profile = _Column(np.uint64, nodes.column("profile").to_numpy())
        # Each node's row id in `identity_nodes` as loaded, -1 where not known (added since, or
        # forgotten): an UPDATE of a few nodes fetches them by row id instead of scanning every key.
        table_row = nodes.column("table_row").to_numpy() if "table_row" in nodes.column_names else None
        self.table_row = _Column(np.int64, np.full(n, -1, np.int64) if table_row is None else table_row)
        keys = self.k.view
        order = np.argsort(keys, kind="stable")
        self._sorted_k: U64 = keys[order]
        self._sorted_row: I64 = order.astype(np.int64)
        self._recent: dict[int, int] = {}
        self._unsettled: list[tuple[I64, U64]] = []
        self._committed = n
        self.ring = _Column(np.int64, np.arange(n, dtype=np.int64))
        self._link_rings(np.arange(n, dtype=np.int64), self.component.view)

        m = edges.num_rows
        self.edge_a = _Column(np.int64, self.rows_of(edges.column("a").to_numpy()))
        self.edge_b = _Column(np.int64, self.rows_of(edges.column("b").to_numpy()))
        if m and (self.edge_a.view.min() < 0 or self.edge_b.view.min() < 0):
            raise ValueError("identity_edges has an edge whose end is not in identity_nodes")
        self.edge_seq = _Column(np.int64, edges.column("seq").to_numpy())
        self.linking = _Column(np.bool_, edges.column("linking").to_numpy(zero_copy_only=False))
        self.edge_shared = _Column(np.bool_, edges.column("shared").to_numpy(zero_copy_only=False))
        self.cut = _Column(np.bool_, edges.column("cut").to_numpy(zero_copy_only=False))
        edge_row = edges.column("table_row").to_numpy() if "table_row" in edges.column_names else None
        self.edge_table_row = _Column(np.int64, np.full(m, -1, np.int64) if edge_row is None else edge_row)
        reasons = edges.column("reason")
        present = np.flatnonzero(pc.is_valid(reasons).to_numpy(zero_copy_only=False))
        texts = reasons.take(pa.array(present)).to_pylist()
        self.reason: dict[int, str] = dict(zip(present.tolist(), texts, strict=True))
        self.first_half = _Column(np.int64, np.full(n, -1, np.int64))
        self.next_half = _Column(np.int64, np.full(2 * m, -1, np.int64))
        self._link_halves(0, self.edge_a.view, self.edge_b.view)

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, cur: duckdb.DuckDBPyConnection) -> GraphIndex:
        """The index of the graph as the cursor's transaction sees it."""
        profile = PROFILE_HEX.format("profile_id")
        nodes = cur.sql(
            f"""SELECT k, type, value, first_seq, shared, component, {profile} AS profile, rowid AS table_row
            FROM identity_nodes"""
        ).to_arrow_table()
        edges = cur.sql(
            "SELECT a, b, seq, linking, reason, shared, cut, rowid AS table_row FROM identity_edges"
        ).to_arrow_table()
        return cls(nodes, edges)

    def _codes(self, types: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.uint8]:
        encoded = types.dictionary_encode()
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
        names = encoded.dictionary.to_pylist()
        remap = np.array([self._code(t) for t in names], np.uint8)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return remap[indices] if len(names) else np.empty(0, np.uint8)

    def _code(self, type_name: str) -> int:
        code = self._type_code.get(type_name)
        if code is None:
            if len(self.types) >= 255:
                raise ValueError("more than 255 identifier types")
            code = self._type_code[type_name] = len(self.types)
            self.types.append(type_name)
        return code

    @property
    def nodes(self) -> int:
        """How many nodes the index holds."""
        return self.k.n

    @property
    def edges(self) -> int:
        """How many edges the index holds."""
        return self.edge_a.n

    def nbytes(self) -> int:
        """The memory the index holds, in bytes (capacity included)."""
        columns = [
            self.k, self.type, self.first_seq, self.shared, self.component, self.profile, self.table_row,
            self.ring,
            self.first_half, self.edge_a, self.edge_b, self.edge_seq, self.linking, self.edge_shared,
            self.cut, self.next_half, self.edge_table_row,
        ]  # fmt: skip
        total = sum(c.data.nbytes for c in columns) + self._sorted_k.nbytes + self._sorted_row.nbytes
        total += sum(c.nbytes for c in self.value.chunks)
        # A dict entry with its int key and str value: ~100 bytes of objects plus the text.
        total += sum(100 + len(r) for r in self.reason.values()) + 100 * len(self._recent)
        return int(total)

    # -- lookups -----------------------------------------------------------------------------------

    def rows_of(self, keys: U64) -> I64:
        """The node row of each key, -1 where the key is not a node."""
        keys = np.asarray(keys, np.uint64)
        rows = np.full(len(keys), -1, np.int64)
        if len(self._sorted_k):
            at = np.searchsorted(self._sorted_k, keys)
            at_ok = np.minimum(at, len(self._sorted_k) - 1)
            hit = self._sorted_k[at_ok] == keys
            rows[hit] = self._sorted_row[at_ok[hit]]
        if self._recent:
            recent = self._recent
            for i in np.flatnonzero(rows < 0).tolist():
                rows[i] = recent.get(int(keys[i]), -1)
        return rows

    def slice(self, keys: U64) -> Slice:
        """The known rows of `keys`, the nodes of their components and the edges touching those."""
        known = self.rows_of(keys)
        seeds = np.unique(known[known >= 0])
        ring = self.ring.data
        members = [seeds]
        start, at = seeds, ring[seeds]
        while len(at):
            going = at != start
            start, at = start[going], at[going]
            members.append(at)
            at = ring[at]
        nodes = np.unique(np.concatenate(members))
        halves = []
        at = self.first_half.data[nodes]
        at = at[at >= 0]
        nxt = self.next_half.data
        while len(at):
            halves.append(at)
            at = nxt[at]
            at = at[at >= 0]
        edges = np.unique(np.concatenate(halves) >> 1) if halves else np.empty(0, np.int64)
        return Slice(known, nodes, edges)

    def committed_rows(self, profile: int) -> I64:
        """The rows of the nodes the committed tables have in a profile (by its id's number).

        Safe to call from another thread while a batch is applied: the batch records the rows it
        changes with their profiles before changing them, and they are read here after the
        profiles, so every changed row read here is among them; rows the batch added are past the
        committed ones.
        """
        committed = self._committed
        number = np.uint64(profile)
        rows = np.flatnonzero(self.profile.data[:committed] == number)
        # The earliest record of a row holds its committed profile: applied last.
        for changed, before in reversed(list(self._unsettled)):
            rows = np.union1d(np.setdiff1d(rows, changed), changed[before == number])
        return rows.astype(np.int64)

    def forget_table_rows(self) -> None:
        """When a row id was found not to hold its node or edge any more (rows deleted and the table
        compacted): nodes and edges are updated by key from now on, until the next load."""
        self.table_row.data[:] = -1
        self.edge_table_row.data[:] = -1

    def settle(self) -> None:
        """After the batch whose outcome the index took has committed."""
        self._committed = self.k.n
        self._unsettled = []

    # -- the slice as Arrow tables -----------------------------------------------------------------

    def type_names(self, rows: I64) -> pa.Array:
        """The type name of each node row."""
        names = pa.array(self.types, pa.string())
        return names.take(pa.array(self.type.data[rows])) if len(rows) else pa.array([], pa.string())

    def node_table(self, rows: I64) -> pa.Table:
        """Node rows shaped like `identity_nodes`."""
        return pa.table(
            {
                "k": pa.array(self.k.data[rows], pa.uint64()),
                "type": self.type_names(rows),
                "value": self.value.take(rows),
                "first_seq": pa.array(self.first_seq.data[rows], pa.int64()),
                "shared": pa.array(self.shared.data[rows], pa.bool_()),
                "component": pa.array(self.component.data[rows], pa.uint64()),
                "profile_id": pa.array(profile_id_text(self.profile.data[rows]), pa.string()),
            }
        )

    def edge_table(self, rows: I64) -> pa.Table:
        """Edge rows shaped like the columns of `identity_edges` a batch reads."""
        a, b = self.edge_a.data[rows], self.edge_b.data[rows]
        reason = self.reason
        return pa.table(
            {
                "a": pa.array(self.k.data[a], pa.uint64()),
                "b": pa.array(self.k.data[b], pa.uint64()),
                "a_type": self.type_names(a),
                "a_value": self.value.take(a),
                "b_type": self.type_names(b),
                "b_value": self.value.take(b),
                "seq": pa.array(self.edge_seq.data[rows], pa.int64()),
                "linking": pa.array(self.linking.data[rows], pa.bool_()),
                "reason": pa.array([reason.get(e) for e in rows.tolist()], pa.string()),
                "shared": pa.array(self.edge_shared.data[rows], pa.bool_()),
                "cut": pa.array(self.cut.data[rows], pa.bool_()),
            }
        )

    def snapshot(self) -> tuple[pa.Table, pa.Table]:
        """Every node and every edge, ordered by key: what `load` would build from the tables now."""
        nodes = self.node_table(np.arange(self.nodes, dtype=np.int64)).sort_by("k")
        edges = self.edge_table(np.arange(self.edges, dtype=np.int64)).sort_by(
            [("a", "ascending"), ("b", "ascending")]
        )
        return nodes, edges

    # -- following a batch -------------------------------------------------------------------------

    def apply_nodes(self, slice_rows: I64, nodes: pa.Table) -> None:
        """Takes a batch's outcome for every node of its slice, old (`slice_rows`) and new.

        `nodes` has k, type, value, first_seq, shared, component and profile (the profile id's
        number) of each; rows whose key is not yet a node are appended.
        """
        # Their committed profiles, kept before they change for readers in other threads
        # (`committed_rows`) until the batch commits (`settle`).
        rows_before = np.asarray(slice_rows, np.int64)
        self._unsettled.append((rows_before, self.profile.data[rows_before].copy()))
        keys = nodes.column("k").to_numpy()
        rows = self.rows_of(keys)
        new = np.flatnonzero(rows < 0)
        if len(new):
            start = self.k.n
            taken = nodes.take(pa.array(new))
            self.k.append(keys[new])
            self.type.append(self._codes(taken.column("type")))
            self.value.append(taken.column("value").combine_chunks())
            self.first_seq.append(taken.column("first_seq").to_numpy())
            self.shared.append(np.zeros(len(new), np.bool_))
            self.component.append(np.zeros(len(new), np.uint64))
            self.profile.append(np.zeros(len(new), np.uint64))
            self.table_row.append(np.full(len(new), -1, np.int64))  # known once committed, not kept
            self.ring.append(np.arange(start, start + len(new), dtype=np.int64))
            self.first_half.append(np.full(len(new), -1, np.int64))
            rows[new] = np.arange(start, start + len(new), dtype=np.int64)
            self._recent.update(zip(keys[new].tolist(), rows[new].tolist(), strict=True))
            if len(self._recent) >= _MERGE_AT:
                self._merge_recent()
        self.shared.data[rows] = nodes.column("shared").to_numpy(zero_copy_only=False)
        component = nodes.column("component").to_numpy()
        self.component.data[rows] = component
        self.profile.data[rows] = nodes.column("profile").to_numpy()
        if len(np.setdiff1d(slice_rows, rows)):
            raise ValueError("a batch's outcome lacks nodes of its slice")
        self._link_rings(rows, component)

    def apply_edges(self, edges: pa.Table, slice_edges: I64) -> None:
        """Takes a batch's verdicts: for each edge of `slice_edges` (in the order of `edges` rows
        whose `new` is false) linking, reason and shared; rows whose `new` is true are appended."""
        new = edges.column("new").to_numpy(zero_copy_only=False)
        old = np.flatnonzero(~new)
        fresh = np.flatnonzero(new)
        ends = self.rows_of(edges.column("a").to_numpy()), self.rows_of(edges.column("b").to_numpy())
        if len(old):
            lookup = {(int(a), int(b)): e for e, a, b in self._edge_ends(slice_edges)}
            rows = np.array(
                [lookup[int(a), int(b)] for a, b in zip(ends[0][old], ends[1][old], strict=True)], np.int64
            )
            self._set_verdicts(rows, edges.take(pa.array(old)))
        if len(fresh):
            if ends[0][fresh].min() < 0 or ends[1][fresh].min() < 0:
                raise ValueError("a new edge's end is not a node")
            start = self.edge_a.n
            taken = edges.take(pa.array(fresh))
            self.edge_a.append(ends[0][fresh])
            self.edge_b.append(ends[1][fresh])
            self.edge_seq.append(taken.column("seq").to_numpy())
            self.cut.append(taken.column("cut").to_numpy(zero_copy_only=False))
            self.edge_table_row.append(np.full(len(fresh), -1, np.int64))
            self.linking.append(np.zeros(len(fresh), np.bool_))
            self.edge_shared.append(np.zeros(len(fresh), np.bool_))
            self.next_half.append(np.full(2 * len(fresh), -1, np.int64))
            rows = np.arange(start, start + len(fresh), dtype=np.int64)
            self._set_verdicts(rows, taken)
            self._link_halves(start, ends[0][fresh], ends[1][fresh])

    def _edge_ends(self, rows: I64) -> zip[tuple[int, int, int]]:
        return zip(
            rows.tolist(), self.edge_a.data[rows].tolist(), self.edge_b.data[rows].tolist(), strict=True
        )

    def _set_verdicts(self, rows: I64, verdicts: pa.Table) -> None:
        self.linking.data[rows] = verdicts.column("linking").to_numpy(zero_copy_only=False)
        self.edge_shared.data[rows] = verdicts.column("shared").to_numpy(zero_copy_only=False)
        for e, r in zip(rows.tolist(), verdicts.column("reason").to_pylist(), strict=True):
            if r is None:
                self.reason.pop(e, None)
            else:
                self.reason[e] = r

    def _merge_recent(self) -> None:
        keys = np.concatenate([self._sorted_k, np.fromiter(self._recent.keys(), np.uint64)])
        rows = np.concatenate([self._sorted_row, np.fromiter(self._recent.values(), np.int64)])
        order = np.argsort(keys, kind="stable")
        self._sorted_k, self._sorted_row = keys[order], rows[order]
        self._recent = {}

    def _link_rings(self, rows: I64, component: U64) -> None:
        """Links `rows` into one ring per component label."""
        if not len(rows):
            return
        order = np.lexsort((rows, component))
        rows, component = rows[order], component[order]
        nxt = np.empty_like(rows)
        nxt[:-1] = rows[1:]
        # The last member of each group points back at the group's first.
        last = np.flatnonzero(np.append(component[1:] != component[:-1], True))
        first = np.concatenate(([0], last[:-1] + 1))
        nxt[last] = rows[first]
        self.ring.data[rows] = nxt

    def _link_halves(self, first_edge: int, a: I64, b: I64) -> None:
        """Puts the half-edges of edges `first_edge ...` at the heads of their nodes' lists."""
        if not len(a):
            return
        halves = np.empty(2 * len(a), np.int64)
        halves[0::2] = 2 * (first_edge + np.arange(len(a)))
        halves[1::2] = halves[0::2] + 1
        ends = np.empty(2 * len(a), np.int64)
        ends[0::2], ends[1::2] = a, b
        order = np.argsort(ends, kind="stable")
        halves, ends = halves[order], ends[order]
        # Within each node's group: each half-edge points at the next, the last at the old head.
        starts = np.flatnonzero(np.concatenate(([True], ends[1:] != ends[:-1])))
        group_last = np.concatenate((starts[1:] - 1, [len(ends) - 1]))
        nxt = np.empty_like(halves)
        nxt[:-1] = halves[1:]
        nxt[group_last] = self.first_half.data[ends[group_last]]
        self.next_half.data[halves] = nxt
        self.first_half.data[ends[starts]] = halves[starts]
