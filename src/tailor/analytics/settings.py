"""Settings of the analytics: windows, half-lives and the report currency (the `[analytics]` section)."""

from __future__ import annotations

import msgspec


class AnalyticsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How journeys are cut into paths and how credit is shared."""

    lookback_days: float = 30.0
    """Touches older than this before a conversion get no credit for it."""
    half_life_days: float = 7.0
    """Time-decay model: a touch this many days before the conversion gets half the weight of one at it."""
    position_ends: float = 0.4
    """Position-based (U-shaped) model: the share of the first and of the last touch each."""
    session_gap_minutes: float = 30.0
    """Inactivity that ends a session (paths and funnels by session)."""
    repeat_gap_minutes: float = 30.0
    """The same touch again within this time is one touch (a click and the visit it opens)."""
    conversion_event: str = "Order Completed"
    """The event that is a conversion; its value is `properties.total`, else `revenue`, else `value`."""
    currency: str = "GBP"
    """Currency of order values and of spend; spend rows in another currency are rejected."""
    markov_order: int = 1
    """Order of the Markov chain (1: a state is the last channel; k: the last k channels)."""
