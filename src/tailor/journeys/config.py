"""Settings of the journey runner (`[journeys]` in tailor.toml)."""

from __future__ import annotations

import msgspec


class JourneysConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The journey runner in `tailor serve`."""

    enabled: bool = True
    """Run journeys in `tailor serve`."""
    poll_ms: int = 200
    """Longest pause between two looks for due timers, new events and segment changes."""
    chunk_size: int = 2000
    """People entered or moved on per SQLite transaction (a broadcast is many such chunks)."""
    event_batch: int = 20_000
    """Events of the log read per pass."""
    control_percent: float = 0.0
    """The global control group: this share of everyone (by a stable hash) receives no campaigns."""
    control_salt: str = "tailor"
    """Changes who is in the control group; keep it fixed, or lift compares different people."""

    def __post_init__(self) -> None:
        if not 0 <= self.control_percent < 100:
            raise ValueError(
                f"journeys.control_percent must be from 0 to below 100, got {self.control_percent}"
            )
        if self.chunk_size < 1 or self.event_batch < 1 or self.poll_ms < 1:
            raise ValueError("journeys.chunk_size, event_batch and poll_ms must be at least 1")
