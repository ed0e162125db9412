"""A micro-batch's evaluation SQL comes from a plan compiled once per catalog, not per batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tailor.process.stage import Batch
from tailor.profiles.plan import time_text
from tests.profiles.store import T0, Store


@pytest.fixture
def library_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data", library=True)
    s.send({"type": "track", "event": "Order Completed", "userId": "u1", "properties": {"revenue": 30}})
    yield s
    s.close()


@pytest.mark.parametrize("batch", [Batch(0, 10), Batch(10, 20)], ids=["full", "micro-batch"])
def test_steps_equal_those_compiled_at_the_evaluation_time(
    library_store: Store, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = library_store.rt.profiles
    library_store.now = T0 + timedelta(days=3, microseconds=123)
    cached = [s.sql for s in profiles.steps(batch)]
    assert profiles._templates
    assert all(plan is not None for _, plan in profiles._templates.values())
    # The same steps with the catalog compiled afresh at `now`, as every batch did before.
    monkeypatch.setattr(profiles, "_template", lambda full, build: None)
    profiles._templates.clear()
    fresh = [s.sql for s in profiles.steps(batch)]
    assert cached == fresh
    assert any(time_text(library_store.now) in sql for sql in fresh)


def test_a_new_catalog_is_compiled_again(library_store: Store) -> None:
    profiles = library_store.rt.profiles
    profiles.steps(Batch(10, 20))
    before = next(iter(profiles._templates.values()))
    library_store.define_many([], drop_library=True)
    profiles.steps(Batch(10, 20))
    assert all(v is not before for v in profiles._templates.values())
    assert all(v[0] is profiles.catalog for v in profiles._templates.values())
