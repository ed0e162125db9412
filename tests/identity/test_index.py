"""The in-memory graph index: batches read through it give exactly what scanning the tables gives."""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.identity import IdentityGraph
from tailor.identity import index as index_module
from tailor.identity.index import GraphIndex
from tailor.identity.live_extract import node_key
from tailor.identity.service import IdentityService
from tailor.process import Processor
from tailor.process.stage import Batch
from tailor.runtime import Runtime
from tests.conftest import DataDir
from tests.identity.test_graph import Graph, Message, _messages, identify, page

_COMPARED = {
    t: f"SELECT * FROM {t}"
    for t in ("identity_nodes", "identity_edges", "identity_refused_values", "identity_event_hubs")
}
# Sightings are appended a row per batch: compared summed, as batches may be cut differently.
_COMPARED["identity_sightings"] = "SELECT k, max(last_seq), sum(events) FROM identity_sightings GROUP BY k"
_COMPARED["identity_edge_sightings"] = (
    "SELECT a, b, max(last_seq), sum(events) FROM identity_edge_sightings GROUP BY a, b"
)


def _state(rt: Runtime) -> dict[str, list[tuple[object, ...]]]:
    return {t: sorted(rt.db.execute(sql)) for t, sql in _COMPARED.items()}


def _replay_by_scanning(rt: Runtime, heads: list[int], batch: int) -> dict[str, list[tuple[object, ...]]]:
    """The same log, in the same batches, through a stage that scans the tables instead."""
    proc = Processor(rt.db, [IdentityGraph(limits={"email": 2, "anonymous_id": 3}, in_memory_index=False)])
    proc.max_batch_events = batch
    cur = rt.db.cursor()
    cur.execute("BEGIN")
    proc.stages[0].reset(cur)
    cur.execute("DELETE FROM stage_offsets")
    cur.execute("COMMIT")
    cur.close()
    for head in heads:
        proc.run_once(head=head)
    state = _state(rt)
    proc.close()
    return state


def _index_agrees_with_tables(rt: Runtime, stage: IdentityGraph) -> None:
    live = stage._index
    assert live is not None
    cur = rt.db.cursor()
    nodes, edges = GraphIndex.load(cur).snapshot()
    cur.close()
    live_nodes, live_edges = live.snapshot()
    assert live_nodes.equals(nodes)
    assert live_edges.equals(edges)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_messages, min_size=1, max_size=30), st.integers(1, 8))
def test_batches_through_the_index_equal_batches_scanning_the_tables(
    tight: Graph, messages: list[Message], batch: int
) -> None:
    graph = tight
    graph.proc.rebuild()  # hypothesis reuses the directory: start each example from its log
    graph.proc.max_batch_events = batch
    stage = graph.proc.stages[0]
    assert isinstance(stage, IdentityGraph)
    # Small thresholds, so that the sorted keys and the string chunks are merged within a test.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index_module, "_MERGE_AT", 3)
        mp.setattr(index_module, "_MAX_CHUNKS", 2)
        heads = []
        for i in range(0, len(messages), 3):
            graph.send(*messages[i : i + 3])
            heads.append(graph.proc.offsets()[stage.name])
        if stage._index is not None:
            _index_agrees_with_tables(graph.rt, stage)
    live = _state(graph.rt)
    assert _replay_by_scanning(graph.rt, heads, batch) == live


class _FailingOnce(IdentityGraph):
    """An identity stage whose next batch fails after its work is done, before it commits."""

    fail = False

    def apply(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        super().apply(cur, batch)
        if self.fail:
            self.fail = False
            raise RuntimeError("the batch fails after the index followed it")


def test_a_batch_that_fails_leaves_the_index_in_step_with_the_tables(data_dir: DataDir) -> None:
    rt = Runtime(data_dir.path)
    stage = _FailingOnce()
    graph = Graph(rt, stage=stage)
    graph.send(identify("u1", "a1", email="one@example.org"))
    graph.send(page("a2", "u1"))  # the index is loaded here
    stage.fail = True
    with pytest.raises(RuntimeError, match="fails after"):
        graph.send(identify("u2", "a2"), page("a3", "u2"), identify(None, "a3", email="one@example.org"))
    graph.proc.run_once()  # the retry sees the tables as they were before the failed batch
    graph.send(page("a4", "u2"))
    _index_agrees_with_tables(rt, stage)
    assert graph.same(("user_id", "u2"), ("anonymous_id", "a4"))
    assert not graph.same(("user_id", "u1"), ("user_id", "u2"))
    live = _state(rt)
    heads = [1, 2, 5, 6]
    assert _replay_by_scanning(rt, heads, 1000)["identity_nodes"] == [
        tuple(r) for r in live["identity_nodes"]
    ]
    graph.proc.close()
    rt.close()


def test_after_a_split_the_index_is_loaded_again_and_follows_the_tables(graph: Graph) -> None:
    graph.send(
        identify(None, "a1", email="family@example.org"), identify(None, "b1", email="family@example.org")
    )
    graph.send(page("a1"))  # a live batch: the index is loaded
    stage = graph.proc.stages[0]
    assert isinstance(stage, IdentityGraph)
    service = IdentityService(graph.rt.db, graph.proc, stage)
    pid = service.resolve("anonymous_id:a1")
    service.split(pid, block="email:family@example.org", remove_edge=None, note="shared mailbox")
    graph.send(identify(None, "c1", email="family@example.org"), page("b1"))
    _index_agrees_with_tables(graph.rt, stage)
    assert not graph.same(("anonymous_id", "a1"), ("anonymous_id", "b1"))
    assert not graph.same(("anonymous_id", "c1"), ("anonymous_id", "b1"))


def test_identifier_fields_that_are_not_strings_are_read_as_a_rebuild_reads_them(graph: Graph) -> None:
    # A live batch reads the JSON in Python; numbers, objects and odd externalIds entries must give
    # the text and the refusals the SQL of a rebuild gives them, and never wedge the stage.
    odd = [
        identify("u1", "a1", email="Ann@Example.org"),
        page("a1"),
        {"type": "identify", "userId": "u2", "traits": {"email": 5, "phone": {"a": [1, 2.50, True]}}},
        {"type": "identify", "anonymousId": "a2", "traits": {"email": ["x@example.org"], "phone": 1.5e30}},
        {"type": "identify", "anonymousId": "a3", "traits": "not an object"},
        {
            "type": "track",
            "event": "E",
            "anonymousId": "a3",
            "context": {
                "externalIds": [{"type": "crm_id"}, 7, {"id": 9, "type": "crm_id"}, {"type": 3, "id": "x"}],
                "traits": ["not", "an", "object"],
                "device": {"id": 12345},
            },
        },
        {"type": "track", "event": "E", "anonymousId": "a4", "context": {"externalIds": {"type": "crm_id"}}},
    ]
    graph.send(*odd[:2])
    heads = [graph.proc.offsets()["identity_graph"]]
    for message in odd[2:]:
        graph.send(message)  # each a live batch through the index
        heads.append(graph.proc.offsets()["identity_graph"])
    stage = graph.proc.stages[0]
    assert isinstance(stage, IdentityGraph)
    assert stage._index is not None
    live = _state(graph.rt)
    assert ("crm_id", "9") in {(t, v) for _, t, v, *_ in live["identity_nodes"]}
    assert ("device_id", "12345") in {(t, v) for _, t, v, *_ in live["identity_nodes"]}
    refused = {(t, v) for t, v, *_ in live["identity_refused_values"]}
    assert {("email", "5"), ("phone", '{"a":[1,2.5,true]}'), ("email", '["x@example.org"]')} <= refused
    assert _replay_by_scanning(graph.rt, heads, 1000) == live


def test_a_profiles_identifiers_through_the_index_are_those_of_the_tables(tight: Graph) -> None:
    graph = tight
    graph.send(identify("u1", "a1", email="one@example.org"), identify("u2", "b1", email="two@example.org"))
    graph.send(page("a2", "u1"), page("b2", "u2"))  # the index is loaded here
    graph.send(identify(None, "a3", email="one@example.org"), page("c1"))
    stage = graph.proc.stages[0]
    assert isinstance(stage, IdentityGraph)
    assert stage._index is not None
    service = IdentityService(graph.rt.db, graph.proc, stage)
    scanned = {
        p: sorted((int(k), t, v, int(f)) for k, t, v, f in rows)
        for p, rows in graph.rt.db.execute(
            "SELECT profile_id, list((k, type, value, first_seq)) FROM identity_nodes GROUP BY 1"
        )
    }
    assert {p: service.nodes(p) for p in scanned} == scanned
    assert service.nodes("prof_0123456789abcdef") == []
    assert service.nodes("not-a-profile-id") == []
    # While a batch's outcome is in the index but not committed, the committed profile is read:
    # here the rows of one profile as if an uncommitted batch had moved them to another, and a
    # node of another profile as if it had moved in.
    index = stage._index
    one, two = service.resolve("user_id:u1"), service.resolve("user_id:u2")
    rows = index.rows_of(np.array([n[0] for n in scanned[one]] + [scanned[two][0][0]], np.uint64))
    before = index.profile.data[rows].copy()
    index._unsettled.append((rows, before))
    index.profile.data[rows[:-1]] = np.uint64(1)
    index.profile.data[rows[-1]] = np.uint64(int(one[5:], 16))
    assert service.nodes(one) == scanned[one]
    assert service.nodes(two) == scanned[two]
    index.profile.data[rows] = before
    index.settle()
    stage._index = None  # not loaded: the identifiers come from a scan
    assert {p: service.nodes(p) for p in scanned} == scanned


def _loaded(graph: Graph, message: Message) -> tuple[IdentityGraph, GraphIndex]:
    """Sends `message` as a live batch, which loads the index (with every row id)."""
    graph.send(message)
    stage = graph.proc.stages[0]
    assert isinstance(stage, IdentityGraph)
    assert stage._index is not None
    return stage, stage._index


def test_nodes_a_batch_changes_are_updated_by_row_id_and_by_key_once_a_row_id_is_stale(
    graph: Graph, caplog: pytest.LogCaptureFixture
) -> None:
    graph.send(identify(None, "c1", email="c@example.org"), page("c2"), page("d2"), page("e2"))
    stage, index = _loaded(graph, page("c1"))
    assert (index.table_row.view >= 0).all()
    with caplog.at_level(logging.DEBUG, logger="tailor.process"):
        graph.send(identify(None, "c2", email="c@example.org"))  # c2's node joins c1's profile
    assert "identity_nodes (changed) by row id" in caplog.text
    assert graph.same(("anonymous_id", "c1"), ("anonymous_id", "c2"))
    _index_agrees_with_tables(graph.rt, stage)

    # Row ids that no longer hold their nodes (as after rows deleted and the table compacted):
    # the count shows it, the update goes by key, and the index stops trusting its row ids.
    keys = [node_key("anonymous_id", "d2"), node_key("anonymous_id", "e2")]
    rows = index.rows_of(np.array(keys, np.uint64))
    index.table_row.data[rows] = index.table_row.data[rows[::-1]]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tailor.identity"):
        graph.send(identify(None, "d2", email="c@example.org"))
    assert "updating by key" in caplog.text
    assert (index.table_row.view == -1).all()
    assert graph.same(("anonymous_id", "c1"), ("anonymous_id", "d2"))
    assert not graph.same(("anonymous_id", "c1"), ("anonymous_id", "e2"))
    _index_agrees_with_tables(graph.rt, stage)


def test_edges_whose_verdict_a_batch_changes_are_updated_by_row_id(
    graph: Graph, caplog: pytest.LogCaptureFixture
) -> None:
    graph.send(identify("mum", "ipad"), identify("dad", "laptop"))
    stage, index = _loaded(graph, page("ipad"))
    assert (index.edge_table_row.view >= 0).all()
    with caplog.at_level(logging.DEBUG, logger="tailor.process"):
        graph.send(identify("son", "ipad"))  # the iPad is shared: its edge to mum stops linking
    assert "identity_edges (verdicts) by row id" in caplog.text
    assert not graph.same(("anonymous_id", "ipad"), ("user_id", "mum"))
    _index_agrees_with_tables(graph.rt, stage)

    graph.send(identify("dad", "laptop2"))
    known = index.edge_table_row.view >= 0
    index.edge_table_row.data[: len(known)][known] += 1  # none holds its edge any more
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tailor.identity"):
        graph.send(identify("grandma", "laptop"))  # the laptop is shared now
    assert "updating by key" in caplog.text
    assert not graph.same(("anonymous_id", "laptop"), ("user_id", "dad"))
    assert graph.same(("anonymous_id", "laptop2"), ("user_id", "dad"))
    _index_agrees_with_tables(graph.rt, stage)
