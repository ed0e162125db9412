"""Staged events on their way into DuckDB: readers see loaded ones, dedupe sees all, nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pyarrow as pa
import pytest

from tailor.collect.loader import coalesce
from tailor.collect.writer import Receipt, Submission
from tailor.config import load_config
from tailor.exceptions import OverloadedError
from tailor.runtime import Runtime
from tailor.store.staging import STAGING_DIR, encode_record
from tests.conftest import DataDir, stored_ids, submission

NOW = datetime(2026, 11, 1, tzinfo=UTC)
# Nothing is loaded until someone asks for it.
NEVER_LOAD = {
    "TAILOR_COLLECT__LOAD_DELAY_MS": "3600000",
    "TAILOR_COLLECT__LOAD_EVENTS": "1000000000",
    "TAILOR_PROCESSOR__LOAD_ACKNOWLEDGED": "false",
}


def open_runtime(data_dir: DataDir, **env: str) -> Runtime:
    rt = Runtime(data_dir.path, load_config(data_dir.path, {**NEVER_LOAD, **env}))
    rt.start()
    return rt


@pytest.fixture
def rt(data_dir: DataDir) -> Iterator[Runtime]:
    runtime = open_runtime(data_dir)
    yield runtime
    runtime.close()


def acknowledge(rt: Runtime, ids: list[str], bad: int = 0) -> Receipt:
    """What the HTTP path waits for: durable in the staging log, not necessarily loaded."""
    return rt.writer.submit(submission(rt, ids, bad)).result(10)


def segments(data_dir: DataDir) -> list[str]:
    return sorted(p.name for p in (data_dir.path / STAGING_DIR).glob("*.seg"))


def test_acknowledged_events_are_staged_before_they_are_loaded(rt: Runtime, data_dir: DataDir) -> None:
    receipt = acknowledge(rt, ["a", "b"], bad=1)
    assert receipt.seqs == [1, 2]
    assert stored_ids(rt) == []
    assert segments(data_dir)  # on disk, fdatasynced, before the answer
    assert (rt.writer.head_seq, rt.writer.loader.loaded_head, rt.writer.unloaded_events) == (2, 0, 2)
    assert rt.writer.events_total == 2
    assert rt.writer.quarantined_total == 1  # the quarantine is committed directly
    assert len(rt.events.quarantine()) == 1
    assert [e.message_id for e in rt.events.recent()] == ["b", "a"]  # the admin read waits for loading
    assert stored_ids(rt) == ["a", "b"]


def test_the_processor_reads_only_loaded_events(rt: Runtime) -> None:
    acknowledge(rt, ["a", "b", "c"])
    proc = rt.processor
    assert proc.head() == 0
    assert proc.run_once(proc.head()) == 0  # what the background loop does: no forced load
    assert set(proc.offsets().values()) == {0}
    # An explicit pass loads everything acknowledged first (the load wakes the background loop,
    # which may be the one to apply it).
    proc.run_once()
    assert set(proc.offsets().values()) == {3}
    assert rt.db.execute("SELECT sum(events)::INT FROM event_volume")[0][0] == 3


def test_dedupe_covers_staged_and_loaded_events(rt: Runtime) -> None:
    assert acknowledge(rt, ["a", "b"]).stored == 2
    staged_again = acknowledge(rt, ["a", "c", "c"])  # "a" is staged, not loaded
    assert (staged_again.stored, staged_again.duplicates, staged_again.seqs) == (1, 2, [3])
    rt.writer.flush()
    loaded_again = acknowledge(rt, ["b", "c", "d"])  # now "b" and "c" are loaded
    assert (loaded_again.stored, loaded_again.duplicates, loaded_again.seqs) == (1, 2, [4])
    rt.writer.flush()
    assert stored_ids(rt) == ["a", "b", "c", "d"]


def test_a_replay_is_ordered_after_staged_events(rt: Runtime) -> None:
    acknowledge(rt, ["a"])
    (qid,) = acknowledge(rt, [], bad=1).quarantine_ids
    raw = msgspec.json.encode({"type": "track", "event": "Fixed", "userId": "u", "messageId": "r"})
    rows, _ = rt.validator.validate("src", [raw], NOW)
    receipt = rt.writer.write(Submission("src", "replay", NOW, rows, [], replay_of=qid))
    assert receipt.seqs == [2]
    assert stored_ids(rt) == ["a", "r"]
    assert rt.writer.loader.loaded_head == rt.writer.head_seq == 2
    entry = rt.events.quarantine_entry(qid)
    assert entry is not None
    assert (entry.status, entry.replayed_seq) == ("replayed", 2)
    assert acknowledge(rt, ["b"]).seqs == [3]


def test_shutdown_loads_everything_staged_and_deletes_the_segments(data_dir: DataDir) -> None:
    rt = open_runtime(data_dir)
    acknowledge(rt, ["a", "b"])
    acknowledge(rt, ["c"])
    assert stored_ids(rt) == []
    rt.close()
    assert segments(data_dir) == []
    rt = Runtime(data_dir.path)
    try:
        assert stored_ids(rt) == ["a", "b", "c"]
        assert rt.writer.head_seq == rt.writer.events_total == 3
    finally:
        rt.close()


def test_too_many_unloaded_events_answer_overloaded(data_dir: DataDir) -> None:
    rt = open_runtime(data_dir, TAILOR_COLLECT__MAX_UNLOADED_EVENTS="2")
    try:
        acknowledge(rt, ["a", "b", "c"])  # let in: fewer than the bound were waiting
        with pytest.raises(OverloadedError):
            rt.writer.submit(submission(rt, ["d"]))
        rt.writer.flush()
        assert acknowledge(rt, ["d"]).seqs == [4]
    finally:
        rt.close()


def test_recovery_loads_staged_events_once_and_cuts_a_torn_tail(data_dir: DataDir) -> None:
    rt = open_runtime(data_dir)
    acknowledge(rt, ["a", "b"])
    (ab,) = rt.writer.loader.unloaded_tables()
    rt.writer.flush()
    cd, _ = rt.writer._events_table([submission(rt, ["c", "d"])])  # seqs 3 and 4, never committed
    rt.close()
    # What a kill -9 leaves: a segment whose first record is loaded already, the second not yet,
    # and the start of a third whose write was interrupted (so it was never acknowledged).
    torn = encode_record(cd, 5)[:60]
    (data_dir.path / STAGING_DIR / f"{1:020d}.seg").write_bytes(
        encode_record(ab, 1) + encode_record(cd, 3) + torn
    )
    rt = open_runtime(data_dir)
    try:
        assert stored_ids(rt) == ["a", "b", "c", "d"]
        assert segments(data_dir) == []  # loaded, checkpointed, deleted before serving
        assert (rt.writer.head_seq, rt.writer.events_total) == (4, 4)
        again = acknowledge(rt, ["d", "e"])
        assert (again.seqs, again.duplicates) == ([5], 1)
    finally:
        rt.close()


def test_a_few_events_are_loaded_after_the_delay_without_being_asked(data_dir: DataDir) -> None:
    rt = open_runtime(data_dir, TAILOR_COLLECT__LOAD_DELAY_MS="20")
    try:
        acknowledge(rt, ["a"])
        deadline = time.monotonic() + 30
        while rt.writer.loader.loaded_head < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rt.writer.loader.loaded_head == 1
        assert stored_ids(rt) == ["a"]
    finally:
        rt.close()


def test_small_staged_tables_are_combined_into_few_chunks_in_order() -> None:
    tables = [pa.table({"seq": [i]}) for i in range(1, 11)] + [pa.table({"seq": list(range(11, 31))})]
    combined = coalesce(tables, rows=4)
    assert combined.column("seq").to_pylist() == list(range(1, 31))
    assert [len(c) for c in combined.column("seq").chunks] == [4, 4, 22]
