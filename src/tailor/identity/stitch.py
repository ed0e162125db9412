"""The merge rules of `tailor.identity.components`, computed in Python for one live batch's slice.

A live micro-batch touches a few hundred nodes and edges. The SQL of `components` recomputes them
in about thirty statements, each with DuckDB's fixed cost of planning and scheduling; for a slice
this small plain Python does the same work in a few milliseconds. It is the same function of the
same inputs, rule for rule and message for message: the rebuild and the override path still run
the SQL, and tests check that live batches through this module leave exactly the tables that
batches through the SQL leave (tests/identity/test_index.py, test_graph.py).

Inputs are the slice (stored nodes of the affected components with the batch's new nodes, the
stored edges touching them), the batch's edges with their override cuts, and the batch's keys of
shared types; the outcome is shaped like the SQL's `_idg_new`, `_idg_absorbed`, `_idg_verdict`
and `_idg_benew`, which the same SQL then writes to the tables.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tailor.identity.components import ANCHOR_TYPES, NON_LINKING_TYPES, SHARED_TYPES

First = tuple[int, str, str]
"""When and as what a node was first seen: (first seq, type, value); profiles are named by the least."""


@dataclass(slots=True)
class Node:
    """A node of the slice, as `_idg_cn` has it."""

    k: int
    type: str
    value: str
    first_seq: int
    old_component: int | None
    old_profile: str | None
    old_shared: bool
    shared: bool = False
    users: int | None = None
    anchor_type: str | None = None

    @property
    def first(self) -> First:
        return (self.first_seq, self.type, self.value)


@dataclass(slots=True)
class Edge:
    """An edge of the slice (stored, or new in this batch), as `_idg_ce` has it."""

    a: int
    b: int
    a_type: str
    a_value: str
    b_type: str
    b_value: str
    seq: int
    linking: bool
    reason: str | None
    shared: bool
    cut: bool
    new: bool
    src: int = -1
    dst: int = -1
    shared_end: int = -1
    outside: bool = False
    non_linking: bool = False
    excluded: bool = False


@dataclass
class Outcome:
    """Every node's component, profile and shared flag; absorbed profile ids; every edge's verdict."""

    nodes: list[Node]
    component: list[int]
    profile_id: list[str]
    absorbed: list[tuple[str, str]]
    edges: list[Edge]
    verdicts: list[tuple[bool, bool, str | None]] = field(default_factory=list)
    """(shared, linking, reason) of each edge."""


def _profile_id(first: First) -> str:
    return "prof_" + hashlib.md5(f"{first[1]}:{first[2]}".encode()).hexdigest()[:16]


def _components(n: int, adj: Iterable[tuple[int, int, int]]) -> list[int]:
    """Union-find: each node's representative over `adj`."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s, d, _ in adj:
        rs, rd = find(s), find(d)
        if rs != rd:
            parent[max(rs, rd)] = min(rs, rd)
    return [find(x) for x in range(n)]


def _grouping(nodes: list[Node], adj: list[tuple[int, int, int]], members: list[int]) -> dict[int, str]:
    """Each member's group: 'u:' and its nearest user id, else 'c:' and its free component's first node."""
    neighbours: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, d, seq in adj:
        neighbours[s].append((d, seq))
        neighbours[d].append((s, seq))
    # Nearest user id: fewest hops, then the earliest evidence on the last hop, then the least id.
    user: dict[int, str] = {i: nodes[i].value for i in members if nodes[i].type == "user_id"}
    frontier = list(user)
    while frontier:
        best: dict[int, tuple[int, str]] = {}
        for w in frontier:
            u = user[w]
            for v, seq in neighbours.get(w, ()):
                if v in user:
                    continue
                candidate = (seq, u)
                if v not in best or candidate < best[v]:
                    best[v] = candidate
        for v, (_, u) in best.items():
            user[v] = u
        frontier = list(best)
    groups = {i: "u:" + user[i] for i in members if i in user}
    free = [i for i in members if i not in user]
    if free:
        free_set = set(free)
        at = {i: j for j, i in enumerate(free)}
        rep = _components(len(free), ((at[s], at[d], 0) for s, d, _ in adj if s in free_set))
        label: dict[int, First] = {}
        for j, i in enumerate(free):
            r = rep[j]
            if r not in label or nodes[i].first < label[r]:
                label[r] = nodes[i].first
        for j, i in enumerate(free):
            _, label_type, label_value = label[rep[j]]
            groups[i] = f"c:{label_type}:{label_value}"
    return groups


def stitch(
    stored_nodes: list[Node],
    stored_edges: list[Edge],
    batch_edges: list[Edge],
    touched: set[int],
    limits: Mapping[str, int],
) -> Outcome:
    """Components, profiles and verdicts of a slice; `touched` holds the batch's keys of shared types."""
    nodes = sorted(stored_nodes, key=lambda n: n.k)
    id_of = {n.k: i for i, n in enumerate(nodes)}
    stored_pairs = {(e.a, e.b) for e in stored_edges}
    edges = stored_edges + [e for e in batch_edges if (e.a, e.b) not in stored_pairs]

    # Shared identifiers: the most values of one anchor type each touched one was seen with.
    links = set()
    for e in (*stored_edges, *batch_edges):
        if e.b_type in ANCHOR_TYPES and e.a_type in SHARED_TYPES and e.a in touched:
            links.add((e.a, e.b, e.b_type))
        if e.a_type in ANCHOR_TYPES and e.b_type in SHARED_TYPES and e.b in touched:
            links.add((e.b, e.a, e.a_type))
    for (k, anchor_type), count in Counter((k, t) for k, _, t in links).items():
        node = nodes[id_of[k]]
        if node.users is None or (count, anchor_type) > (node.users, node.anchor_type or ""):
            node.users, node.anchor_type = count, anchor_type
    for node in nodes:
        node.shared = node.old_shared or (node.users or 0) >= 2

    for e in edges:
        e.src, e.dst = id_of.get(e.a, -1), id_of.get(e.b, -1)
        if e.b_type in ANCHOR_TYPES and e.a_type in SHARED_TYPES and e.src >= 0 and nodes[e.src].shared:
            e.shared_end = e.src
        elif e.a_type in ANCHOR_TYPES and e.b_type in SHARED_TYPES and e.dst >= 0 and nodes[e.dst].shared:
            e.shared_end = e.dst
        e.outside = e.src < 0 or e.dst < 0
        e.non_linking = e.a_type in NON_LINKING_TYPES or e.b_type in NON_LINKING_TYPES
        e.excluded = e.cut or e.shared_end >= 0 or e.outside or e.non_linking
    adj = [(e.src, e.dst, e.seq) for e in edges if not e.excluded]
    rep = _components(len(nodes), adj)
    component = [nodes[r].k for r in rep]  # a component's label is its least key

    everyone = list(range(len(nodes)))
    groups = _grouping(nodes, adj, everyone)
    # Values over their type's limit: those seen last in each first-pass profile.
    by_group: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in everyone:
        by_group[groups[i], nodes[i].type].append(i)
    over: dict[int, int] = {}
    for (_, t), ids in by_group.items():
        cap = limits.get(t)
        if cap is not None and len(ids) > cap:
            ids.sort(key=lambda i: nodes[i].first)
            over.update((i, cap) for i in ids[cap:])
    if over:
        again = {component[i] for i in over}
        redo = [i for i in everyone if component[i] in again]
        redo_set = set(redo)
        adj2 = [(s, d, q) for s, d, q in adj if s in redo_set and s not in over and d not in over]
        groups.update(_grouping(nodes, adj2, redo))

    earliest: dict[str, First] = {}
    for i, n in enumerate(nodes):
        g = groups[i]
        if g not in earliest or n.first < earliest[g]:
            earliest[g] = n.first
    names = {g: _profile_id(f) for g, f in earliest.items()}
    profile_id = [names[groups[i]] for i in everyone]

    # An old id that no longer names a profile was absorbed by the profile of its earliest node.
    heir: dict[str, tuple[First, str]] = {}
    for i, n in enumerate(nodes):
        if n.old_profile is not None and (n.old_profile not in heir or n.first < heir[n.old_profile][0]):
            heir[n.old_profile] = (n.first, profile_id[i])
    current = set(profile_id)
    absorbed = [(old, target) for old, (_, target) in heir.items() if old not in current]

    outcome = Outcome(nodes, component, profile_id, absorbed, edges)
    for e in edges:
        outcome.verdicts.append(_verdict(e, nodes, groups, over))
    return outcome


def _verdict(
    e: Edge, nodes: list[Node], groups: dict[int, str], over: dict[int, int]
) -> tuple[bool, bool, str | None]:
    if e.cut:
        shared = False
    elif e.shared_end >= 0 or e.non_linking:
        shared = True
    else:
        shared = e.outside and e.shared
    same = not e.outside and groups[e.src] == groups[e.dst]
    linking = False if e.excluded else same
    reason: str | None
    end = nodes[e.shared_end] if e.shared_end >= 0 else None
    if e.cut:
        reason = e.reason
    elif e.non_linking:
        fixed = f"{e.a_type} {e.a_value}" if e.a_type in NON_LINKING_TYPES else f"{e.b_type} {e.b_value}"
        reason = f"{fixed} is a fixed-line number, shared by a household or an office, so it links no one"
    elif end is not None and end.users is not None:
        kind = "shared device: " if end.type in ("anonymous_id", "device_id") else "shared identifier: "
        anchor = (end.anchor_type or "").replace("_id", "")
        reason = (
            f"{kind}{end.type} {end.value} was seen with {end.users} {anchor} ids, so it links none of them"
        )
    elif e.excluded:
        reason = e.reason
    elif same:
        reason = None
    else:
        capped = [i for i in (e.src, e.dst) if i in over]
        if capped:
            o = nodes[min(capped)]
            cap = over[min(capped)]
            reason = (
                f"limit: refused, as the profile already holds {cap} {o.type} values and "
                f"{o.type} {o.value} was seen after them"
            )
        else:
            reason = (
                f"one user_id per profile: refused, as it would join user_id {groups[e.src][2:]}"
                f" and user_id {groups[e.dst][2:]}"
            )
    return shared, linking, reason
