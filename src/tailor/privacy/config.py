"""Typed settings of consent enforcement, retention and erasure (the `[privacy]` section)."""

from __future__ import annotations

from typing import Literal

import msgspec

BUILTIN_PURPOSES = ("analytics", "personalisation", "email_marketing", "sms_marketing", "advertising")
"""Purposes every data directory knows; more are declared in `[privacy] purposes`."""

# Segment's consent categories (named by each site's consent manager) as Tailor purposes; the
# keys are compared case-insensitively, with spaces and dashes as underscores.
DEFAULT_CATEGORIES = {
    "analytics": "analytics",
    "performance": "analytics",
    "statistics": "analytics",
    "measurement": "analytics",
    "advertising": "advertising",
    "marketing": "advertising",
    "targeting": "advertising",
    "ads": "advertising",
    "personalisation": "personalisation",
    "personalization": "personalisation",
    "functional": "personalisation",
    "email": "email_marketing",
    "email_marketing": "email_marketing",
    "sms": "sms_marketing",
    "sms_marketing": "sms_marketing",
}


class SourcePolicy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the collector does with events of people who have not given analytics consent."""

    analytics: Literal["keep", "anonymise", "refuse"] = "anonymise"
    """keep: store as sent; anonymise: store without identifiers; refuse: do not store (counted)."""
    model: Literal["opt_out", "opt_in"] = "opt_out"
    """opt_out: act only on an explicit denial; opt_in: act unless analytics was granted."""
    drop_properties: list[str] = msgspec.field(
        default_factory=lambda: ["email", "phone", "name", "first_name", "last_name", "address"]
    )
    """Properties removed from anonymised events (top-level keys of `properties`)."""
    truncate_ip: bool = True
    """Anonymised events keep only the network part of `context.ip` (IPv4 /24, IPv6 /48)."""


class RetentionRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Events older than `days`, of one source and/or one event type or name, are deleted."""

    days: int
    """Age in days (by the event's corrected timestamp) after which events are deleted."""
    source: str | None = None
    """A source name or id (`import:crm` for imports); None matches every source."""
    event: str | None = None
    """A message type (`page`) or track event name (`Product Viewed`); None matches every event."""

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"privacy.retention: days must be at least 1, got {self.days}")


class PrivacyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Consent purposes and defaults, collection policies per source, retention and compaction."""

    purposes: list[str] = msgspec.field(default_factory=list)
    """User-defined purposes, in addition to the built-in ones (lower-case words with underscores)."""
    categories: dict[str, str] = msgspec.field(default_factory=dict)
    """Extra consent-manager categories mapped to purposes (`{"Newsletter" = "email_marketing"}`)."""
    marketing_requires_grant: bool = True
    """Whether a marketing purpose with no recorded consent counts as refused (GDPR) or allowed."""
    default_source_policy: SourcePolicy = msgspec.field(default_factory=SourcePolicy)
    """The policy of sources not listed in `sources`."""
    sources: dict[str, SourcePolicy] = msgspec.field(default_factory=dict)
    """Policies by source name (or id)."""
    retention: list[RetentionRule] = msgspec.field(default_factory=list)
    """Retention rules; the shortest matching rule applies to an event."""
    retention_interval_s: int = 3600
    """How often `tailor serve` applies the retention rules."""
    compact_after_erasure: bool = True
    """Rewrite storage right after each erasure so the bytes are gone (else only at `privacy compact`)."""

    def __post_init__(self) -> None:
        bad = [p for p in self.purposes if not p.replace("_", "").isalnum() or p != p.lower()]
        if bad:
            raise ValueError(f"privacy.purposes must be lower-case words with underscores: {bad}")

    def all_purposes(self) -> tuple[str, ...]:
        """The built-in purposes followed by the user-defined ones."""
        return BUILTIN_PURPOSES + tuple(p for p in self.purposes if p not in BUILTIN_PURPOSES)

    def category_map(self) -> dict[str, str]:
        """Consent-manager category (normalised key) to purpose."""
        extra = {_key(k): v for k, v in self.categories.items()}
        return {**DEFAULT_CATEGORIES, **{p: p for p in self.purposes}, **extra}

    def policy(self, source_name: str | None, source_id: str) -> SourcePolicy:
        """The collection policy of a source, by name first, then by id."""
        if source_name is not None and source_name in self.sources:
            return self.sources[source_name]
        return self.sources.get(source_id, self.default_source_policy)


def _key(category: str) -> str:
    return category.strip().lower().replace(" ", "_").replace("-", "_")


def category_key(category: str) -> str:
    """A consent-manager category name as the key it is looked up by."""
    return _key(category)
