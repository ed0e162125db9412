"""Consent statements: the shapes that carry them, validated into one typed form.

A statement says that a person granted or denied one purpose, on one channel or on all (`*`),
under a legal basis. They arrive as:

- Segment's consent shape, on any event: `context.consent.categoryPreferences`, a map of the
  site's consent-manager categories to true/false (`{"Analytics": true, "Advertising": false}`);
  categories are mapped to purposes by `[privacy] categories` (see `DEFAULT_CATEGORIES`);
- Tailor's traits shape, on identify: `traits.consent`, a map of purposes to true/false,
  "granted"/"denied"/"withdrawn", or an object `{"status", "channels" | "channel",
  "legal_basis", "source"}`;
- a `Consent Updated` track event whose properties are one statement (`purpose`, `status`,
  optional `channel`, `legal_basis`, `source`): what the consent API and consent imports write;
- an `Unsubscribed` (or `Subscribed`) track event with `properties.channel` (default email) and
  optional `properties.purpose` (default the channel's marketing purpose): what one-click
  unsubscribe links emit.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tailor.collect.messages import FieldError
from tailor.privacy.config import PrivacyConfig, category_key
from tailor.privacy.exceptions import ConsentPayloadError

STATUSES = {"granted": "granted", "denied": "denied", "withdrawn": "denied"}
LEGAL_BASES = (
    "consent",
    "legitimate_interest",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
)
ALL_CHANNELS = "*"
CONSENT_EVENT = "Consent Updated"
UNSUBSCRIBED = "Unsubscribed"
SUBSCRIBED = "Subscribed"
_CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DETAIL_CHARS = 200


class Statement(msgspec.Struct, frozen=True):
    """One consent statement: a purpose granted or denied on a channel, under a legal basis."""

    purpose: str
    channel: str
    status: str
    legal_basis: str
    origin: str
    """Which shape carried it: segment, traits, event, unsubscribe, api or import."""
    detail: str | None = None
    """Where the person gave it, as the sender says (`cookie_banner`, `signup_form`, a list id)."""


def marketing_purpose(channel: str) -> str:
    """The marketing purpose an unsubscribe from a channel withdraws."""
    return {"email": "email_marketing", "sms": "sms_marketing"}.get(channel, "email_marketing")


class ConsentParser:
    """Validates consent payloads into statements, gathering every error with its path."""

    def __init__(self, config: PrivacyConfig) -> None:
        self.purposes = config.all_purposes()
        self.categories = config.category_map()

    # -- the shapes --------------------------------------------------------------------------------

    def segment(self, prefs: Any, path: str = "$.context.consent.categoryPreferences") -> list[Statement]:
        """Segment's category preferences; categories no purpose is mapped to are skipped."""
        errors: list[FieldError] = []
        out: list[Statement] = []
        if not isinstance(prefs, dict):
            raise ConsentPayloadError([FieldError(path, "must be an object of category: true/false")])
        for category, value in prefs.items():
            purpose = self.categories.get(category_key(str(category)))
            if not isinstance(value, bool):
                errors.append(FieldError(f"{path}.{category}", f"must be true or false, got {value!r:.40}"))
            elif purpose is not None:
                status = "granted" if value else "denied"
                out.append(Statement(purpose, ALL_CHANNELS, status, "consent", "segment", "consent_manager"))
        if errors:
            raise ConsentPayloadError(errors)
        return out

    def traits(self, consent: Any, path: str = "$.traits.consent") -> list[Statement]:
        """Tailor's traits shape: purpose -> bool, status word, or statement object."""
        if not isinstance(consent, dict):
            raise ConsentPayloadError([FieldError(path, "must be an object of purpose: consent")])
        errors: list[FieldError] = []
        out: list[Statement] = []
        for purpose, value in consent.items():
            here = f"{path}.{purpose}"
            if isinstance(value, bool):
                value = {"status": "granted" if value else "denied"}
            elif isinstance(value, str):
                value = {"status": value}
            if not isinstance(value, dict):
                errors.append(FieldError(here, "must be true/false, a status or an object with a status"))
                continue
            out.extend(self._statement({"purpose": purpose, **value}, here, "traits", errors, keyed=True))
        if errors:
            raise ConsentPayloadError(errors)
        return out

    def event(self, properties: Any, origin: str, path: str = "$.properties") -> list[Statement]:
        """A `Consent Updated` event's properties (also the body of the consent API)."""
        errors: list[FieldError] = []
        if not isinstance(properties, dict):
            raise ConsentPayloadError([FieldError(path, "must be an object with purpose and status")])
        out = self._statement(properties, path, origin, errors, keyed=False)
        if errors:
            raise ConsentPayloadError(errors)
        return out

    def unsubscribe(self, event: str, properties: Any) -> list[Statement]:
        """An Unsubscribed/Subscribed event: the channel's marketing purpose denied or granted."""
        props = properties if isinstance(properties, dict) else {}
        channel = str(props.get("channel") or "email").lower()
        if not _CHANNEL.fullmatch(channel):
            raise ConsentPayloadError(
                [FieldError("$.properties.channel", f"not a channel name: {channel!r:.40}")]
            )
        purpose = str(props.get("purpose") or marketing_purpose(channel))
        if purpose not in self.purposes:
            raise ConsentPayloadError([FieldError("$.properties.purpose", self._unknown(purpose))])
        status = "denied" if event == UNSUBSCRIBED else "granted"
        detail = props.get("list") or props.get("source") or "unsubscribe_link"
        return [Statement(purpose, channel, status, "consent", "unsubscribe", str(detail)[:_DETAIL_CHARS])]

    # -- one statement -----------------------------------------------------------------------------

    def _unknown(self, purpose: str) -> str:
        return (
            f"unknown purpose {purpose!r:.60}; known purposes: {', '.join(self.purposes)}"
            " (declare more under [privacy] purposes)"
        )

    def _statement(
        self, body: dict[str, Any], path: str, origin: str, errors: list[FieldError], keyed: bool
    ) -> list[Statement]:
        def at(field: str) -> str:
            return path if keyed else f"{path}.{field}"

        before = len(errors)
        purpose = body.get("purpose")
        if not isinstance(purpose, str) or purpose not in self.purposes:
            errors.append(FieldError(at("purpose"), self._unknown(str(purpose))))
        raw_status = body.get("status")
        status = STATUSES.get(raw_status) if isinstance(raw_status, str) else None
        if status is None:
            errors.append(
                FieldError(f"{path}.status", f"must be granted, denied or withdrawn, got {raw_status!r:.40}")
            )
        basis = body.get("legal_basis", "consent")
        if basis not in LEGAL_BASES:
            errors.append(FieldError(f"{path}.legal_basis", f"must be one of {', '.join(LEGAL_BASES)}"))
        channels = body.get("channels", [body["channel"]] if "channel" in body else [ALL_CHANNELS])
        if not isinstance(channels, list) or not channels:
            errors.append(FieldError(f"{path}.channels", "must be a non-empty list of channel names"))
            channels = []
        for i, channel in enumerate(channels):
            if not isinstance(channel, str) or not (channel == ALL_CHANNELS or _CHANNEL.fullmatch(channel)):
                errors.append(
                    FieldError(f"{path}.channels[{i}]", f"not a channel name (or '*'): {channel!r:.40}")
                )
        detail = body.get("source")
        if detail is not None and (not isinstance(detail, str) or len(detail) > _DETAIL_CHARS):
            errors.append(FieldError(f"{path}.source", f"must be text of at most {_DETAIL_CHARS} characters"))
        if len(errors) > before:
            return []
        assert isinstance(purpose, str)
        assert status is not None
        return [Statement(purpose, str(c), status, str(basis), origin, detail) for c in channels]

    # -- a whole collected message -------------------------------------------------------------------

    def message(
        self, type: str, event: str | None, properties: str | None, traits: str | None, context: str | None
    ) -> list[Statement]:
        """Every statement a stored message carries (raises with all errors when one is malformed)."""
        out: list[Statement] = []
        errors: list[FieldError] = []
        parts: list[tuple[str, Any]] = []
        if context is not None and '"consent"' in context:
            consent = msgspec.json.decode(context).get("consent")
            if isinstance(consent, dict) and "categoryPreferences" in consent:
                parts.append(("segment", consent["categoryPreferences"]))
        if type == "identify" and traits is not None and '"consent"' in traits:
            decoded = msgspec.json.decode(traits)
            if "consent" in decoded:
                parts.append(("traits", decoded["consent"]))
        if type == "track" and event in (CONSENT_EVENT, UNSUBSCRIBED, SUBSCRIBED):
            parts.append((event, None if properties is None else msgspec.json.decode(properties)))
        for kind, value in parts:
            try:
                if kind == "segment":
                    out += self.segment(value)
                elif kind == "traits":
                    out += self.traits(value)
                elif kind == CONSENT_EVENT:
                    out += self.event(value, "event")
                else:
                    out += self.unsubscribe(kind, value)
            except ConsentPayloadError as e:
                errors += e.errors
        if errors:
            raise ConsentPayloadError(errors)
        return out


def carries_consent(type: str, event: str | None, traits: str | None, context: str | None) -> bool:
    """A cheap test (substring checks) of whether a message may carry a consent statement."""
    return (
        (context is not None and '"consent"' in context)
        or (type == "identify" and traits is not None and '"consent"' in traits)
        or (type == "track" and event in (CONSENT_EVENT, UNSUBSCRIBED, SUBSCRIBED))
    )
