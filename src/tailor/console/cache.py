"""Analytics results kept for the console: answered at once, computed again in the background.

Every analysis reads the whole event log (touches, journeys, cohorts), which at 10M events takes
seconds, too long for a dashboard. The console therefore shows the last result of each analysis
(with the time it was computed and how many events arrived since) and, when the log has grown,
computes it again in a background thread; the next poll gets the new result. The first request of
an analysis waits for it. Results are JSON bytes, so serving one costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

MAX_ENTRIES = 64


@dataclass
class CachedResult:
    """One analysis's last result."""

    body: bytes
    head: int
    """The event log's head when it was computed."""
    computed_at: float
    seconds: float
    """How long computing it took."""
    refreshing: bool = False


class Envelope(msgspec.Struct):
    """An analysis result with its freshness."""

    result: msgspec.Raw
    computed_at: float
    seconds: float
    head: int
    events_since: int
    refreshing: bool


class ResultCache:
    """Results by key; stale ones are recomputed once, in the background, while the old one is served."""

    def __init__(self, head: Callable[[], int], max_entries: int = MAX_ENTRIES) -> None:
        self._head = head
        self._entries: OrderedDict[str, CachedResult] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}
        self._max = max_entries

    def get(self, key: str, compute: Callable[[], object]) -> Envelope:
        """The cached result of `key` (computed now if there is none); exceptions of `compute` propagate."""
        head = self._head()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if entry.head != head and not entry.refreshing:
                    entry.refreshing = True
                    threading.Thread(
                        target=self._refresh, args=(key, compute), name="console-analytics", daemon=True
                    ).start()
        if entry is None:
            entry = self._compute(key, compute)
        return Envelope(
            msgspec.Raw(entry.body),
            entry.computed_at,
            entry.seconds,
            entry.head,
            max(0, head - entry.head),
            entry.refreshing,
        )

    def _compute(self, key: str, compute: Callable[[], object]) -> CachedResult:
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:  # one computation per key at a time; a second caller gets the first's result
            with self._lock:
                done = self._entries.get(key)
            if done is not None and not done.refreshing:
                return done
            head = self._head()
            started = time.perf_counter()
            body = msgspec.json.encode(compute())
            entry = CachedResult(body, head, time.time(), time.perf_counter() - started)
            with self._lock:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
            return entry

    def _refresh(self, key: str, compute: Callable[[], object]) -> None:
        try:
            self._compute(key, compute)
        except Exception:
            # The old result stays; the next request after the log grows tries again.
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.refreshing = False
                    entry.head = self._head()
