"""Durations as people write them in definitions: `90d`, `24h`, `30m`, `2w`, `45s`."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SECONDS = 100 * 366 * 86400


def parse_duration(text: str) -> timedelta:
    """A duration such as `90d`; raises ValueError naming the accepted forms."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit: 45s, 30m, 24h, 90d, 2w"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0 or seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} must be more than 0 and at most 100 years")
    return timedelta(seconds=seconds)


def interval_sql(duration: timedelta) -> str:
    """A DuckDB interval literal for a duration, in whole seconds."""
    return f"INTERVAL {int(duration.total_seconds())} SECOND"
