"""Settings of the golden record and of the evaluation of computed traits and segments."""

from __future__ import annotations

import msgspec

from tailor.profiles.golden import POLICIES, TraitPolicy


class ProfilesConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How profiles are assembled and how often population statistics are refreshed."""

    default_policy: str = "most_recent"
    """Survivorship policy of traits not listed under `traits`: most_recent, first, most_frequent."""
    traits: dict[str, TraitPolicy] = msgspec.field(default_factory=dict)
    """Survivorship per trait: `[profiles.traits.email]`, `policy = "source_priority"`, `sources = [...]`."""
    ignore_traits: list[str] = msgspec.field(default_factory=list)
    """Trait names (after folding to snake case) never kept in the golden record."""
    quantile_refresh_hours: float = 24.0
    """How often the thresholds of quantile traits (RFM scores) are taken again from everyone's values."""
    tick_seconds: float = 1.0
    """The longest a person whose window expired waits to be evaluated again. Each micro-batch
    evaluates the people due at its time too, so between batches a refresh for them alone waits
    until this long after the last evaluation: such a refresh costs its fixed part (~0.3-0.4 s at
    1M people, scans of tables of everyone) however few are due, and events arriving meanwhile
    wait behind it. Merges and splits are evaluated at once."""

    def __post_init__(self) -> None:
        if self.default_policy not in POLICIES or self.default_policy == "source_priority":
            raise ValueError(
                "profiles.default_policy must be most_recent, first or most_frequent, "
                f"not {self.default_policy!r}"
            )
        if self.quantile_refresh_hours <= 0:
            raise ValueError("profiles.quantile_refresh_hours must be more than 0")
        if self.tick_seconds < 0:
            raise ValueError("profiles.tick_seconds must not be negative")
