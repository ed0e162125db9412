"""An in-memory index of the dedupe hashes of every stored event."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


class DedupeIndex:
    """Answers "might this (source, messageId) hash already be stored?" for whole arrays at once.

    A sorted uint64 array holds most hashes (8 bytes each, searched with binary search); recent
    hashes sit in a set until there are enough of them to fold into the array in one linear merge.
    A hit is only a candidate: the writer confirms it against the stored message ids, so a 64-bit
    collision can never drop a real event.
    """

    def __init__(self, hashes: U64 | None = None, fold_at: int = 100_000) -> None:
        self._sorted: U64 = np.sort(hashes) if hashes is not None else np.empty(0, np.uint64)
        self._recent: set[int] = set()
        self._fold_at = fold_at

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def contains(self, hashes: U64) -> npt.NDArray[np.bool_]:
        """A mask of the hashes that are in the index."""
        found = np.zeros(len(hashes), dtype=bool)
        if len(self._sorted):
            pos = np.searchsorted(self._sorted, hashes)
            pos[pos == len(self._sorted)] = 0
            found = self._sorted[pos] == hashes
        if self._recent:
            recent = self._recent
            found |= np.fromiter((h in recent for h in hashes.tolist()), dtype=bool, count=len(hashes))
        return found

    def add(self, hashes: U64) -> None:
        """Adds hashes of newly stored events."""
        self._recent.update(hashes.tolist())
        if len(self._recent) >= self._fold_at:
            incoming = np.sort(np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent)))
            self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, incoming), incoming)
            self._recent.clear()
