"""Reading consent back: a profile's current consent, its history, and the decision at send time.

`ConsentReader.consent_for(profile_id, purpose, channel)` is what the journeys runtime asks before
every send: the latest statement that applies to the channel (one made for that channel or for
all channels) decides; with none, marketing purposes count as refused (GDPR needs an opt-in) and
analytics and personalisation as allowed, unless `[privacy]` says otherwise.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from tailor.collect.messages import FieldError
from tailor.privacy.config import BUILTIN_PURPOSES, PrivacyConfig
from tailor.privacy.consent import ALL_CHANNELS
from tailor.privacy.exceptions import ConsentPayloadError
from tailor.store.database import Database

OPT_OUT_PURPOSES = ("analytics", "personalisation")
"""Purposes allowed until refused; every other purpose needs a grant (when marketing_requires_grant)."""


class ConsentRecord(msgspec.Struct):
    """One consent statement as stored, with its proof: the event (seq, message id) that carried it."""

    purpose: str
    channel: str
    status: str
    legal_basis: str
    origin: str
    detail: str | None
    source_id: str
    seq: int
    message_id: str
    recorded_at: datetime


class ConsentDecision(msgspec.Struct):
    """Whether a purpose on a channel is allowed for a profile now, and why."""

    profile_id: str
    purpose: str
    channel: str
    allowed: bool
    status: str
    """granted, denied, unknown (nothing recorded) or erased."""
    reason: str
    record: ConsentRecord | None = None


_COLUMNS = "purpose, channel, status, legal_basis, origin, detail, source_id, seq, message_id, recorded_at"


class ConsentReader:
    """Current consent, history and send-time decisions over the consent stage's tables."""

    def __init__(self, db: Database, config: PrivacyConfig | None = None) -> None:
        self._db = db
        self.config = config or PrivacyConfig()

    def check(self, purpose: str, channel: str) -> None:
        """Raises a ConsentPayloadError naming the bad field when a purpose or channel is unknown."""
        errors = []
        if purpose not in self.config.all_purposes():
            known = ", ".join(self.config.all_purposes())
            errors.append(FieldError("purpose", f"unknown purpose {purpose!r:.60}; known purposes: {known}"))
        if (
            not channel
            or len(channel) > 32
            or not (channel == ALL_CHANNELS or channel.replace("_", "").isalnum())
        ):
            errors.append(FieldError("channel", f"not a channel name: {channel!r:.40}"))
        if errors:
            raise ConsentPayloadError(errors)

    def current(self, profile_id: str) -> list[ConsentRecord]:
        """The profile's current consent per purpose and channel."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM consent_current WHERE profile_id = ? ORDER BY purpose, channel",
            [profile_id],
        )
        return [ConsentRecord(*r) for r in rows]

    def history(self, profile_id: str) -> list[ConsentRecord]:
        """Every consent statement recorded for any identifier of the profile, oldest first."""
        rows = self._db.execute(
            f"""SELECT {", ".join("r." + c for c in _COLUMNS.split(", "))}
            FROM consent_records r JOIN identity_nodes n ON n.k = r.k
            WHERE n.profile_id = ? ORDER BY r.recorded_at, r.seq, r.purpose, r.channel""",
            [profile_id],
        )
        return [ConsentRecord(*r) for r in rows]

    def consent_for(self, profile_id: str, purpose: str, channel: str) -> ConsentDecision:
        """The decision for one purpose on one channel; `profile_id` must be a current id."""
        self.check(purpose, channel)
        rows = self._db.execute(
            f"""SELECT {_COLUMNS} FROM consent_current
            WHERE profile_id = ? AND purpose = ? AND channel IN (?, '*')
            ORDER BY recorded_at DESC, seq DESC LIMIT 1""",
            [profile_id, purpose, channel],
        )
        if rows:
            record = ConsentRecord(*rows[0])
            allowed = record.status == "granted"
            where = "all channels" if record.channel == ALL_CHANNELS else record.channel
            reason = (
                f"{purpose} {record.status} for {where} by {record.origin}"
                f"{f' ({record.detail})' if record.detail else ''} at {record.recorded_at.isoformat()}"
                f" (event seq {record.seq}, legal basis {record.legal_basis})"
            )
            return ConsentDecision(profile_id, purpose, channel, allowed, record.status, reason, record)
        needs_grant = purpose not in OPT_OUT_PURPOSES and (
            self.config.marketing_requires_grant or purpose not in BUILTIN_PURPOSES
        )
        if needs_grant:
            reason = f"no consent recorded for {purpose} on {channel}; {purpose} needs an explicit grant"
        else:
            reason = f"no consent recorded for {purpose} on {channel}; {purpose} is allowed until refused"
        return ConsentDecision(profile_id, purpose, channel, not needs_grant, "unknown", reason)
