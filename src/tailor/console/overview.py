"""The numbers of the console's overview: volumes per minute, profiles, merges, quarantine, lag.

Everything here is read every few seconds by every open overview, so nothing scans a large table
per request: per-minute series read only the last hour of the event log (its rows are in seq order
and so in arrival order, and DuckDB skips every row group whose `received_at` range is older), and
counts over the identity graph are kept until the identity stage's offset moves.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from tailor.runtime import Runtime

LAG_SAMPLES = 600
"""Processor lag samples kept in memory for the overview's chart (one per second at most)."""


class Series(msgspec.Struct):
    """Per-minute counts over the last `minutes` minutes, oldest first (a minute with nothing is 0)."""

    minutes: list[datetime]
    events: list[int]
    quarantined: list[int]
    merges: list[int]
    splits: list[int]
    sends: list[int]
    """Messages handed to their channel (email, SMS, webhooks) per minute."""


class Overview(msgspec.Struct):
    """The overview's numbers at one moment."""

    at: datetime
    events_total: int
    quarantined_total: int
    quarantine_open: int
    profiles: int
    identifiers: int
    merges: int
    splits: int
    segments: int
    processor_lag: int
    processor_error: str | None
    unloaded_events: int
    sends: int
    """Messages handed to their channel (email, SMS, webhooks), ever."""
    series: Series
    lag: list[tuple[float, int]]
    """(unix time, events not yet processed) samples, oldest first."""


@dataclass
class _Counts:
    key: tuple[int, int, int] = (-1, -1, -1)
    profiles: int = 0
    identifiers: int = 0
    merges: int = 0
    splits: int = 0


@dataclass
class OverviewService:
    """Answers the overview; keeps the lag samples and the identity counts between requests."""

    runtime: Runtime
    _lag: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))
    _counts: _Counts = field(default_factory=_Counts)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample_lag(self) -> int:
        """The processor's lag now, recorded for the chart (at most one sample a second)."""
        processor = self.runtime.processor
        lag = processor.lag(processor.offsets())
        now = time.time()
        with self._lock:
            if not self._lag or now - self._lag[-1][0] >= 1.0:
                self._lag.append((now, lag))
        return lag

    def _identity_counts(self) -> _Counts:
        offsets = self.runtime.processor.offsets()
        # A split runs outside micro-batches (offsets stay), so the number of splits is in the key.
        ((overrides,),) = self.runtime.db.execute("SELECT count(*) FROM identity_overrides")
        key = (int(offsets.get("identity_graph", -1)), int(offsets.get("profiles", -1)), int(overrides))
        with self._lock:
            if key == self._counts.key and min(key) >= 0:
                return self._counts
        db = self.runtime.db
        # profile_computed has one row per profile (the profiles stage evaluates everyone), so it is
        # counted without a DISTINCT over every identifier. Both change only when a stage's offset moves.
        ((profiles,),) = db.execute("SELECT count(*) FROM profile_computed")
        ((identifiers,),) = db.execute("SELECT count(*) FROM identity_nodes")
        changes = dict(db.execute("SELECT change, count(*) FROM profile_changes GROUP BY change"))
        counts = _Counts(
            key, int(profiles), int(identifiers), int(changes.get("merged", 0)), int(changes.get("split", 0))
        )
        with self._lock:
            self._counts = counts
        return counts

    def overview(self, minutes: int = 60) -> Overview:
        """The current numbers and the last `minutes` minutes per minute."""
        runtime = self.runtime
        db = runtime.db
        lag = self.sample_lag()
        counts = self._identity_counts()
        ((open_q,),) = db.execute("SELECT count(*) FROM quarantine WHERE status = 'open'")
        ((segments,),) = db.execute("SELECT count(*) FROM definitions WHERE kind = 'segment'")
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(minutes=minutes - 1)
        sends_total, sends = self._sends(start, minutes)
        series = self._series(start, minutes, sends)
        with self._lock:
            samples = [(t, n) for t, n in self._lag if t >= time.time() - minutes * 60]
        return Overview(
            at=datetime.now(UTC),
            events_total=runtime.writer.events_total,
            quarantined_total=runtime.writer.quarantined_total,
            quarantine_open=int(open_q),
            profiles=counts.profiles,
            identifiers=counts.identifiers,
            merges=counts.merges,
            splits=counts.splits,
            segments=int(segments),
            processor_lag=lag,
            processor_error=runtime.processor.last_error,
            unloaded_events=runtime.writer.unloaded_events,
            sends=sends_total,
            series=series,
            lag=samples,
        )

    def _series(self, start: datetime, minutes: int, sends: list[int]) -> Series:
        db = self.runtime.db
        # A literal bound (not a parameter), so that DuckDB prunes row groups by their zone maps.
        since = f"TIMESTAMPTZ '{start.isoformat()}'"
        per_minute = "date_trunc('minute', {col})"
        events = _by_minute(
            db.execute(
                f"SELECT {per_minute.format(col='received_at')} m, count(*) FROM events"
                f" WHERE received_at >= {since} GROUP BY m"
            )
        )
        quarantined = _by_minute(
            db.execute(
                f"SELECT {per_minute.format(col='received_at')} m, count(*) FROM quarantine"
                f" WHERE received_at >= {since} GROUP BY m"
            )
        )
        changes = db.execute(
            f"SELECT change, {per_minute.format(col='changed_at')} m, count(*) FROM profile_changes"
            f" WHERE changed_at >= {since} GROUP BY ALL"
        )
        merges = _by_minute([(m, n) for c, m, n in changes if c == "merged"])
        splits = _by_minute([(m, n) for c, m, n in changes if c == "split"])
        axis = [start + timedelta(minutes=i) for i in range(minutes)]
        return Series(
            axis,
            [events.get(m, 0) for m in axis],
            [quarantined.get(m, 0) for m in axis],
            [merges.get(m, 0) for m in axis],
            [splits.get(m, 0) for m in axis],
            sends,
        )

    def _sends(self, start: datetime, minutes: int) -> tuple[int, list[int]]:
        """Messages handed over ever, and per minute since `start` (from the outbox's sent times)."""
        conn = self.runtime.messaging.connect()
        try:
            ((total,),) = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").fetchall()
            rows = conn.execute(
                "SELECT CAST((sent_at - ?) / 60 AS INTEGER) AS i, count(*) FROM outbox"
                " WHERE sent_at >= ? GROUP BY i",
                (start.timestamp(), start.timestamp()),
            ).fetchall()
        finally:
            conn.close()
        per = [0] * minutes
        for i, n in rows:
            if 0 <= int(i) < minutes:
                per[int(i)] = int(n)
        return int(total), per


def _by_minute(rows: list[tuple[Any, ...]]) -> dict[datetime, int]:
    return {m.astimezone(UTC): int(n) for m, n in rows}
