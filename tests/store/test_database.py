"""The store across restarts in one process: every close checkpoints, nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from tailor.collect.writer import Submission
from tailor.runtime import Runtime
from tailor.store.database import Database, open_database
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


def _compressions(db: Database, table: str) -> dict[str, set[str]]:
    rows = db.execute(
        f"""SELECT column_name, compression FROM pragma_storage_info('{table}')
        WHERE segment_type <> 'VALIDITY'"""
    )
    out: dict[str, set[str]] = {}
    for column, compression in rows:
        out.setdefault(column, set()).add(compression.upper())
    return out


def _fill(db: Database) -> None:
    db.execute(
        """INSERT INTO events
            (seq, source_id, message_id, dedupe_hash, type, timestamp, received_at, properties)
        SELECT i, 'src', 'm' || i, i, 'track', now(), now(), '{"n": ' || (i % 7) || '}'
        FROM range(100000) r(i)"""
    )
    db.execute("CREATE TABLE people AS SELECT 'prof_' || (i % 977) AS profile_id FROM range(100000) r(i)")
    db.execute("CHECKPOINT")


def test_the_event_logs_text_is_zstd_and_other_tables_get_duckdbs_choice(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        _fill(db)
        events = _compressions(db, "events")
        assert events["properties"] - {"CONSTANT"} == {"ZSTD"}
        assert events["message_id"] - {"CONSTANT"} == {"ZSTD"}
        assert "ZSTD" not in _compressions(db, "people")["profile_id"]
    finally:
        db.close()


def test_zstd_in_the_config_still_forces_it_on_every_table(tmp_path: Path) -> None:
    db = open_database(tmp_path, compression="zstd")
    try:
        _fill(db)
        assert _compressions(db, "people")["profile_id"] - {"CONSTANT"} == {"ZSTD"}
    finally:
        db.close()
