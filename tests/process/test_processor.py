"""The processing loop: offsets, crash recovery, and live state equal to a rebuild."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.collect.writer import Submission
from tailor.config import load_config
from tailor.process import Batch, Processor, SqlStep
from tailor.process.volume import EventVolume
from tailor.runtime import Runtime
from tailor.store.database import Database
from tests.conftest import DataDir, submission

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def write(rt: Runtime, messages: list[dict[str, object]]) -> None:
    if rt.writer._thread is None:
        rt.writer.start()
    raws = [msgspec.json.encode(m) for m in messages]
    rows, rejections = rt.validator.validate(rt.data_dir.name, raws, NOW)
    rt.writer.write(Submission("src", "batch", NOW, rows, rejections))


def volume(db: Database) -> list[tuple[object, ...]]:
    return sorted(db.execute("SELECT day, type, event, events FROM event_volume"))


messages = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["track", "page", "identify"]),
            "event": st.sampled_from(["Viewed", "Ordered", "Searched"]),
            "anonymousId": st.sampled_from(["a1", "a2"]),
            "messageId": st.integers(0, 40).map(str),
            "timestamp": st.sampled_from(
                ["2026-10-01T10:00:00Z", "2026-10-02T23:59:59+01:00", "2026-10-03T00:00:00Z"]
            ),
        }
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(messages, min_size=1, max_size=6), st.integers(1, 30))
def test_live_state_equals_a_rebuild(
    data_dir: DataDir, chunks: list[list[dict[str, object]]], batch: int
) -> None:
    rt = Runtime(data_dir.path)
    try:
        rt.processor.rebuild()  # hypothesis reuses the directory: start each example from its log
        before = rt.writer.events_total
        rt.processor.max_batch_events = batch
        for chunk in chunks:
            write(rt, chunk)
            rt.processor.run_once()
        live = volume(rt.db)
        assert sum(int(str(r[3])) for r in live) == rt.writer.events_total >= before
        rt.processor.rebuild()
        assert volume(rt.db) == live
    finally:
        rt.close()


class Exploding:
    """A stage that fails on its first call past a given sequence number."""

    name = "exploding"

    def __init__(self, fail_above: int) -> None:
        self.fail_above = fail_above
        self.applied: list[tuple[int, int]] = []

    def setup(self, db: Database) -> None:
        db.ddl("CREATE TABLE IF NOT EXISTS exploding_seen (seq BIGINT)")

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute("DELETE FROM exploding_seen")

    def steps(self, batch: Batch) -> list[SqlStep]:
        if batch.hi > self.fail_above:
            self.fail_above = 1 << 62
            return [
                SqlStep("INSERT INTO exploding_seen SELECT seq FROM batch_events", "x"),
                SqlStep("SELECT 1/0::INT + 'x'", "boom"),
            ]
        self.applied.append((batch.lo, batch.hi))
        return [SqlStep("INSERT INTO exploding_seen SELECT seq FROM batch_events", "exploding_seen")]


def test_a_failed_batch_leaves_no_trace_and_resumes_at_its_offset(data_dir: DataDir) -> None:
    rt = Runtime(data_dir.path)
    try:
        write(rt, [{"type": "page", "anonymousId": "a", "messageId": str(i)} for i in range(10)])
        stage = Exploding(fail_above=6)
        proc = Processor(rt.db, [EventVolume(), stage], max_batch_events=4)
        with pytest.raises(Exception, match="failing SQL"):
            proc.run_once()
        # The stages share each batch's transaction: the failed batch (4, 8] left no stage past 4.
        assert proc.offsets() == {"event_volume": 4, "exploding": 4}
        proc.run_once()
        assert proc.offsets() == {"event_volume": 10, "exploding": 10}
        seen = [s for (s,) in rt.db.execute("SELECT seq FROM exploding_seen ORDER BY seq")]
        assert seen == list(range(1, 11))  # each event applied exactly once despite the failure
        assert sum(int(str(r[3])) for r in volume(rt.db)) == 10  # and counted once
        proc.close()
    finally:
        rt.close()


def test_offsets_survive_a_restart(data_dir: DataDir) -> None:
    rt = Runtime(data_dir.path)
    write(rt, [{"type": "page", "anonymousId": "a", "messageId": str(i)} for i in range(5)])
    rt.processor.run_once()
    rt.close()
    rt = Runtime(data_dir.path)
    try:
        assert rt.processor.offsets() == {
            "erasure_guard": 5,
            "event_volume": 5,
            "records": 5,
            "record_matching": 5,
            "identity_graph": 5,
            "consent": 5,
            "profiles": 5,
        }
        assert rt.processor.run_once() == 0
    finally:
        rt.close()


def test_stage_names_must_be_unique(data_dir: DataDir) -> None:
    rt = Runtime(data_dir.path)
    try:
        with pytest.raises(ValueError, match="unique"):
            Processor(rt.db, [EventVolume(), EventVolume()])
    finally:
        rt.close()


def test_the_running_loop_loads_acknowledged_events_itself_instead_of_waiting_for_the_load_delay(
    data_dir: DataDir,
) -> None:
    # With a load delay of ten minutes, only the processor asking for what is staged brings these
    # events into the log (and through the stages) within the test's wait.
    config = load_config(data_dir.path, {"TAILOR_COLLECT__LOAD_DELAY_MS": "600000"})
    rt = Runtime(data_dir.path, config)
    try:
        rt.start()
        # As the collector does: acknowledged once durable in the staging log, not loaded.
        rt.writer.submit(submission(rt, [str(i) for i in range(5)])).result(10)
        head = rt.writer.head_seq
        deadline = time.monotonic() + 30
        while min(rt.processor.offsets().values()) < head and time.monotonic() < deadline:
            time.sleep(0.05)
        assert min(rt.processor.offsets().values()) == head == 5
        assert sum(int(str(r[3])) for r in volume(rt.db)) == 5
    finally:
        rt.close()


def test_the_stages_of_one_batch_commit_together(data_dir: DataDir) -> None:
    rt = Runtime(data_dir.path)
    try:
        write(rt, [{"type": "page", "anonymousId": "a", "messageId": str(i)} for i in range(9)])
        commits: list[str] = []
        proc = Processor(rt.db, [EventVolume(), Exploding(fail_above=1 << 62)], max_batch_events=3)
        proc.run_once(3)  # from the start of the log: a transaction per stage (a rebuild's shape)
        proc._cur = _Recording(proc._cur, commits)  # type: ignore[assignment]
        proc.run_once()
        assert commits == ["BEGIN", "COMMIT", "BEGIN", "COMMIT"]  # batches (3, 6] and (6, 9]
        assert proc.offsets() == {"event_volume": 9, "exploding": 9}
        proc.close()
    finally:
        rt.close()


class _Recording:
    """A cursor that notes its transaction statements."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, log: list[str]) -> None:
        self._cur = cur
        self._log = log

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if sql in ("BEGIN", "COMMIT", "ROLLBACK"):
            self._log.append(sql)
        return self._cur.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._cur, name)
