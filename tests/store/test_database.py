"""The store across restarts in one process: every close checkpoints, nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from tailor.collect.writer import Submission
from tailor.runtime import Runtime
from tests.conftest import DataDir


def test_reopening_in_one_process_still_checkpoints_on_close(data_dir: DataDir) -> None:
    # DuckDB 2.0 left a phantom write transaction after DDL on a cursor of a reopened database,
    # which made every later checkpoint fail; stage DDL now runs on the main connection.
    now = datetime.now(UTC)
    for round in range(3):
        rt = Runtime(data_dir.path)
        rt.start()
        raws = [msgspec.json.encode({"type": "page", "anonymousId": "a", "messageId": f"m{round}"})]
        rows, rejections = rt.validator.validate("src", [*raws, b"{}"], now)
        receipt = rt.writer.write(Submission("src", "batch", now, rows, rejections))
        assert receipt.seqs == [round + 1]
        rt.close()  # checkpoints: raises if DuckDB thinks a write transaction is still open
        assert not (data_dir.path / "tailor.duckdb.wal").exists()
    rt = Runtime(data_dir.path)
    try:
        assert rt.writer.events_total == 3
        assert rt.writer.quarantined_total == 3
        assert rt.processor.offsets() == {
            "erasure_guard": 3,
            "event_volume": 3,
            "records": 3,
            "record_matching": 3,
            "identity_graph": 3,
            "consent": 3,
            "profiles": 3,
        }
    finally:
        rt.close()
