"""The writer when the store refuses part of a group: the rest is stored, nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from tailor.collect.writer import EventWriter, Submission, _Pending
from tailor.runtime import Runtime
from tests.conftest import DataDir, stored_ids, submission

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def rt(data_dir: DataDir) -> Iterator[Runtime]:
    runtime = Runtime(data_dir.path)
    yield runtime
    runtime.close()


def test_a_refused_submission_is_quarantined_and_the_rest_of_its_group_stored(
    rt: Runtime, monkeypatch: Any
) -> None:
    commit = EventWriter._commit

    def refuse_poison(self: EventWriter, subs: list[Submission]) -> Any:
        if any("poison" in s.rows.message_id for s in subs):
            raise RuntimeError("disk says no")
        return commit(self, subs)

    monkeypatch.setattr(EventWriter, "_commit", refuse_poison)
    w: EventWriter = rt.writer
    subs = [
        submission(rt, ["a1", "a2"], bad=1),
        submission(rt, ["poison", "p2"], bad=1),
        submission(rt, ["c1"]),
    ]
    pendings = [_Pending(s, Future()) for s in subs]
    w._pending_events += sum(len(s) for s in subs)
    w._commit_group(pendings)  # as the writer thread does with one group of three requests
    a, poisoned, c = (p.future.result(0) for p in pendings)
    w.flush()  # staged and acknowledged; now loaded into DuckDB too
    assert (a.seqs, c.seqs) == ([1, 2], [3])
    assert poisoned.stored == 0
    assert len(poisoned.quarantine_ids) == 3  # its own rejection and both refused events
    assert stored_ids(rt) == ["a1", "a2", "c1"]
    refused = [e for e in rt.events.quarantine(limit=20) if "disk says no" in e.reason]
    assert sorted(msgspec.json.decode(e.payload)["messageId"] for e in refused) == ["p2", "poison"]
    assert w.quarantined_total == 4  # a's bad message, and poison's three
    assert w.events_total == 3
    assert w.head_seq == 3
    assert w.pending_events == 0
    rt.processor.run_once()
    assert rt.processor.lag() == 0
    assert rt.db.execute("SELECT sum(events)::INT FROM event_volume")[0][0] == 3
