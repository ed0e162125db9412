"""Settings of the synthetic customer base."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime


@dataclass(frozen=True)
class SynthConfig:
    """What to generate: how many people, over which period, and how messy the data is."""

    people: int = 2_000
    """Number of distinct people (ground-truth individuals)."""
    seed: int = 42
    """Seed of every random draw; the same config always gives byte-identical output."""
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    """End of the history (exclusive); must be timezone-aware."""
    days: int = 180
    """Length of the history in days."""
    activity: float = 1.0
    """Multiplier on every person's visit rate, to scale event volume without changing the population."""
    products_per_category: int = 60
    """Size of the product catalogue per category."""
    registered_share: float = 0.62
    """Share of people with an online account (a userId); the others never log in."""
    signup_in_window_share: float = 0.3
    """Share of account holders who sign up during the history rather than before it."""
    anonymous_device_share: float = 0.3
    """Chance that an account holder never logs in on one of their (non-primary) devices."""
    shared_device_share: float = 0.45
    """Share of multi-person households with a shared family device (iPad, smart TV, desktop)."""
    crm_share: float = 0.55
    """Share of people with at least one CRM row."""
    crm_duplicate_rate: float = 0.06
    """Chance that a CRM customer has a second, duplicate CRM row."""
    call_share: float = 0.14
    """Share of people who call the call centre at least once."""
    guest_share: float = 0.12
    """Share of people who place guest (no-account) online orders."""
    untracked_guest_rate: float = 0.2
    """Share of guest orders that the web tracking never saw (ad blockers, consent refused)."""
    email_opt_in: float = 0.55
    """Share of people with an email address who receive marketing email."""
    sms_opt_in: float = 0.2
    """Share of people with a mobile number who receive marketing SMS."""
    junk_rate: float = 0.01
    """Chance per web session of a broken identify call carrying a junk userId or email."""
    typo_rate: float = 0.08
    """Chance that a name in a record carries a typing error."""
    swap_rate: float = 0.05
    """Chance that a record has first and last name swapped."""
    nickname_rate: float = 0.25
    """Chance that a record uses a person's nickname when they have one."""
    missing_rate: float = 0.08
    """Chance that an optional record field is left empty."""
    stale_address_rate: float = 0.5
    """Chance that a record of someone who moved still carries the old address."""

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError(f"people must be at least 1, got {self.people}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        if self.activity < 0 or self.products_per_category < 4:
            raise ValueError("activity must be >= 0 and products_per_category >= 4")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and f.name != "activity" and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be a share between 0 and 1, got {value}")
