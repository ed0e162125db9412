"""An in-memory index of the dedupe hashes of every stored event."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


class DedupeIndex:
    """Answers "might this (source, messageId) hash already be stored?" for whole arrays at once.

    Two sorted uint64 arrays (8 bytes a hash, searched with binary search): most hashes in a large
    one, recent ones in a small one that each commit's hashes are merged into, and that is folded
    into the large one in one linear merge when it has enough. All of it is NumPy: the writer's
    group commit is the collector's one serial step and holds the GIL for this (a set of recent
    hashes, tested and filled one Python int at a time, cost it ~0.5 us an event). A hit is only a
    candidate: the writer confirms it against the stored message ids, so a 64-bit collision can
    never drop a real event.
    """

    def __init__(self, hashes: U64 | None = None, fold_at: int = 100_000) -> None:
        self._sorted: U64 = np.sort(hashes) if hashes is not None else np.empty(0, np.uint64)
        self._recent: U64 = np.empty(0, np.uint64)
        self._fold_at = fold_at

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def contains(self, hashes: U64) -> npt.NDArray[np.bool_]:
        """A mask of the hashes that are in the index."""
        found = np.zeros(len(hashes), dtype=bool)
        for held in (self._sorted, self._recent):
            if len(held):
                pos = np.searchsorted(held, hashes)
                pos[pos == len(held)] = 0
                found |= held[pos] == hashes
        return found

    def add(self, hashes: U64) -> None:
        """Adds hashes of newly stored events."""
        incoming = np.sort(np.asarray(hashes, dtype=np.uint64))
        self._recent = _merge(self._recent, incoming)
        if len(self._recent) >= self._fold_at:
            self._sorted = _merge(self._sorted, self._recent)
            self._recent = np.empty(0, np.uint64)


def _merge(into: U64, incoming: U64) -> U64:
    """The sorted union (duplicates kept) of two sorted arrays."""
    if not len(into):
        return incoming
    return np.insert(into, np.searchsorted(into, incoming), incoming)
