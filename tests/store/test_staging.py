"""The staging log's records: torn and corrupted tails are recognised, segments rotate and are released."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tailor.store.staging import StagingLog, encode_record, read_records


def table(first: int, n: int) -> pa.Table:
    return pa.table({"seq": pa.array(range(first, first + n), pa.int64()), "v": [f"x{i}" for i in range(n)]})


def test_every_cut_of_a_segment_keeps_exactly_the_complete_records() -> None:
    one, two = encode_record(table(1, 3), 1), encode_record(table(4, 2), 4)
    data = one + two
    for cut in range(len(data) + 1):
        records, good = read_records(data[:cut])
        expected = [1, 4] if cut == len(data) else [1] if cut >= len(one) else []
        assert [r.first_seq for r in records] == expected, cut
        assert good == {0: 0, 1: len(one), 2: len(data)}[len(expected)]
    assert read_records(data)[0][1].table.equals(table(4, 2))


def test_a_corrupted_record_ends_the_segment() -> None:
    one, two = encode_record(table(1, 3), 1), bytearray(encode_record(table(4, 2), 4))
    two[-5] ^= 0xFF
    records, good = read_records(one + bytes(two))
    assert [r.first_seq for r in records] == [1]
    assert good == len(one)


def test_recovery_truncates_a_torn_tail_and_reads_every_segment(tmp_path: Path) -> None:
    log = StagingLog(tmp_path, segment_bytes=1)  # every append starts a new segment
    log.append(table(1, 3), 1)
    log.append(table(4, 2), 4)
    log.close()
    last = log.segments()[-1]
    intact = last.stat().st_size
    with last.open("ab") as f:
        f.write(encode_record(table(6, 5), 6)[:40])  # a crash in the middle of the next write
    again = StagingLog(tmp_path)
    records = again.recover()
    assert [(r.first_seq, r.table.num_rows) for r in records] == [(1, 3), (4, 2)]
    assert last.stat().st_size == intact
    assert again.releasable(3)
    assert again.release(3) == 1  # only the segment whose events are all loaded
    assert len(again.segments()) == 1
    assert again.release(5) == 1
    assert again.segments() == []
