"""The dedupe index against a plain set, including across folds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.collect.dedupe import DedupeIndex

u64 = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(u64, max_size=30), max_size=20), st.lists(u64, max_size=50), st.integers(1, 40))
def test_index_agrees_with_a_set(batches: list[list[int]], probes: list[int], fold_at: int) -> None:
    index = DedupeIndex(np.array([], dtype=np.uint64), fold_at=fold_at)
    seen: set[int] = set()
    for batch in batches:
        index.add(np.array(batch, dtype=np.uint64))
        seen.update(batch)
    queries = np.array(probes + list(seen)[:20], dtype=np.uint64)
    assert index.contains(queries).tolist() == [int(q) in seen for q in queries.tolist()]


def test_index_loads_existing_hashes_unsorted() -> None:
    index = DedupeIndex(np.array([9, 3, 7], dtype=np.uint64))
    assert index.contains(np.array([3, 4, 9], dtype=np.uint64)).tolist() == [True, False, True]
