"""The fixed points of `tailor.identity.components` computed over NumPy arrays, for slices of any size.

The component steps need three label propagations: candidate components (each node takes the least
key in reach), the nearest user id (fewest hops, then the earliest evidence on the last hop, then
the least user id) and the components of the nodes no user id reaches. As recursive SQL each round
is a join and a grouping over the whole slice, and a rebuild at 5M identifiers spent 11-22 s in
them (4 s here). Here the components come from scipy's connected components (union-find in C) and the
nearest user id from a breadth-first search, one vectorised step per hop. The outcome is the
same, as both fixed points are unique (`tailor.identity.stitch` computes them for live batches,
and the tests hold the two paths equal); user ids are ordered by DuckDB, as the SQL ordered them.

Node ids are those of `_idg_cn`: its row numbers from 1, in no particular order. A group is named
by a number here (its user id's node, or minus its least node); the SQL names a profile after its
first node.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tailor.process.stage import PyStep
from tailor.store.database import registered

Ints = npt.NDArray[np.int64]


def _column(table: pa.Table, name: str) -> Ints:
    return np.asarray(table.column(name).to_numpy(), dtype=np.int64)


def component_labels(n: int, src: Ints, dst: Ints) -> Ints:
    """For nodes 0..n-1 joined by the edges (src, dst): a number per component, from 0."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def least_in_component(labels: Ints, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """For each node, the least of `values` over the nodes of its component (`labels`)."""
    if len(labels) == 0:
        return values[:0]
    least = np.full(int(labels.max()) + 1, np.iinfo(values.dtype).max, dtype=values.dtype)
    np.minimum.at(least, labels, values)
    return least[labels]


def nearest_user(n: int, src: Ints, dst: Ints, seq: Ints, seeds: Ints, rank: Ints) -> Ints:
    """For nodes 0..n-1: the seed (a user id's node) nearest to each, or -1 where none is in reach.

    Nearest means fewest hops over the undirected edges, then the least `seq` on the last hop, then
    the seed of least `rank` (the order of the user ids' values); a node takes its choice from the
    nodes one hop nearer, each of which already holds its own.
    """
    near = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(seeds) == 0:
        return near
    ends = np.concatenate([src, dst])
    order = np.argsort(ends, kind="stable")
    other = np.concatenate([dst, src])[order]
    hop_seq = np.concatenate([seq, seq])[order]
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ends, minlength=n), out=start[1:])
    near[seeds] = seeds
    frontier = np.asarray(seeds, dtype=np.int64)
    while len(frontier):
        counts = start[frontier + 1] - start[frontier]
        total = int(counts.sum())
        if total == 0:
            break
        offsets = np.repeat(start[frontier] - np.cumsum(counts) + counts, counts)
        at = offsets + np.arange(total, dtype=np.int64)
        to, via = other[at], np.repeat(near[frontier], counts)
        fresh = near[to] < 0
        to, via, when = to[fresh], via[fresh], hop_seq[at][fresh]
        if len(to) == 0:
            break
        pick = np.lexsort((rank[via], when, to))
        to, via = to[pick], via[pick]
        first = np.ones(len(to), dtype=bool)
        first[1:] = to[1:] != to[:-1]
        frontier = to[first]
        near[frontier] = via[first]
    return near


def _size(cur: duckdb.DuckDBPyConnection) -> int:
    """How long an array indexed by the ids of `_idg_cn` is."""
    ((top,),) = cur.execute("SELECT coalesce(max(id), 0) FROM _idg_cn").fetchall()
    return int(top) + 1


def create_from_arrow(cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table, sql: str) -> None:
    """Creates temp table `name` from `sql`, which reads `table` as `_idg_arrays`."""
    with registered(cur, _idg_arrays=table):
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")


def components_step() -> PyStep:
    """`_idg_comp(id, component)`: each node's candidate component over `_idg_adj`, labelled by its
    least key."""

    def run(cur: duckdb.DuckDBPyConnection) -> None:
        nodes = cur.sql("SELECT id, k FROM _idg_cn").to_arrow_table()
        ids = _column(nodes, "id")
        keys = np.zeros(_size(cur), dtype=np.uint64)
        keys[ids] = nodes.column("k").to_numpy()
        adj = cur.sql("SELECT src, dst FROM _idg_adj").to_arrow_table()
        labels = component_labels(len(keys), _column(adj, "src"), _column(adj, "dst"))
        component = least_in_component(labels, keys)[ids]
        table = pa.table({"id": ids.astype(np.int32), "component": component})
        create_from_arrow(cur, "_idg_comp", table, "SELECT id, component FROM _idg_arrays")

    return PyStep(run, "_idg_comp")


def grouping_step(adj: str, nodes: str, out: str) -> PyStep:
    """A step that groups `nodes` (ids of `_idg_cn`) over `adj`: by nearest user id, else by component.

    `out(id, grp)`: the id of the node's nearest user id, or minus the least id of its component
    among the nodes no user id reaches.
    """

    def run(cur: duckdb.DuckDBPyConnection) -> None:
        size = _size(cur)
        members = np.zeros(size, dtype=bool)
        members[_column(cur.sql(f"SELECT id FROM {nodes}").to_arrow_table(), "id")] = True
        # The seeds, ranked by their user ids' order among themselves (all a choice compares).
        users = cur.sql(
            f"""SELECT id, row_number() OVER (ORDER BY value) AS rank FROM _idg_cn
            WHERE type = 'user_id' AND id IN (SELECT id FROM {nodes})"""
        ).to_arrow_table()
        seeds = _column(users, "id")
        rank = np.zeros(size, dtype=np.int64)
        rank[seeds] = _column(users, "rank")
        edges = cur.sql(f"SELECT src, dst, seq FROM {adj}").to_arrow_table()
        src, dst = _column(edges, "src"), _column(edges, "dst")
        near = nearest_user(size, src, dst, _column(edges, "seq"), seeds, rank)
        free = members & (near < 0)
        both = free[src] & free[dst]
        labels = component_labels(size, src[both], dst[both])
        grp = np.where(free, -least_in_component(labels, np.arange(size, dtype=np.int64)), near)
        ids = np.flatnonzero(members)
        table = pa.table({"id": ids.astype(np.int32), "grp": grp[ids]})
        create_from_arrow(cur, out, table, "SELECT id, grp FROM _idg_arrays")

    return PyStep(run, out)


def groups_step() -> PyStep:
    """`_idg_groups(id, grp, component)`: each node's group after the second pass (`_idg_grp2`,
    where it regrouped the node, else `_idg_grp1`) and its candidate component (`_idg_comp`)."""

    def run(cur: duckdb.DuckDBPyConnection) -> None:
        size = _size(cur)
        grp = np.zeros(size, dtype=np.int64)
        for table in ("_idg_grp1", "_idg_grp2"):  # the second pass's groups win
            rows = cur.sql(f"SELECT id, grp FROM {table}").to_arrow_table()
            grp[_column(rows, "id")] = _column(rows, "grp")
        comp = cur.sql("SELECT id, component FROM _idg_comp").to_arrow_table()
        ids = _column(comp, "id")
        table = pa.table({"id": ids.astype(np.int32), "grp": grp[ids], "component": comp.column("component")})
        create_from_arrow(cur, "_idg_groups", table, "SELECT id, grp, component FROM _idg_arrays")

    return PyStep(run, "_idg_groups")
