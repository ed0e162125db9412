"""Tracking events: what happened to a message, as Segment track calls on Tailor's own source.

Names follow Segment's Email and SMS specs and what the synthetic customer base already sends
(`Email Delivered`, `Email Opened`, `Email Link Clicked`, `Unsubscribed`, `SMS Delivered`, ...).
Each event carries the message, journey, campaign, step and variant ids and the recipient's
profile id, and identifies the person by userId (else anonymousId) with the address in
`context.traits`, so identity resolution stitches it to the person who got the message.
Event messageIds are derived from the message id, so an event emitted twice after a crash is
stored once (the collector dedupes on source + messageId).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from tailor import __version__
from tailor.channels.outbox import StoredMessage

MESSAGING_SOURCE = "tailor-messaging"
"""The name of the source that tracking events are collected under."""

EVENT_NAMES: dict[tuple[str, str], str] = {
    ("email", "sent"): "Email Sent",
    ("email", "delivered"): "Email Delivered",
    ("email", "bounced"): "Email Bounced",
    ("email", "failed"): "Email Failed",
    ("email", "opened"): "Email Opened",
    ("email", "clicked"): "Email Link Clicked",
    ("email", "unsubscribed"): "Unsubscribed",
    ("sms", "sent"): "SMS Sent",
    ("sms", "delivered"): "SMS Delivered",
    ("sms", "failed"): "SMS Failed",
    ("sms", "clicked"): "SMS Link Clicked",
    ("sms", "unsubscribed"): "Unsubscribed",
    ("webhook", "sent"): "Webhook Delivered",
    ("webhook", "failed"): "Webhook Failed",
}
_IDENTIFIER = {"email": "email", "sms": "phone"}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tracking_event(
    kind: str, m: StoredMessage, at: float, properties: dict[str, Any] | None = None, suffix: str = ""
) -> bytes | None:
    """The track message for `kind` ("sent", "opened", ...) of a message; None if its channel has none.

    `suffix` tells repeated events of one kind apart (each open and click has its own).
    """
    name = EVENT_NAMES.get((m.channel, kind))
    if name is None:
        return None
    r = m.recipient
    props: dict[str, Any] = {
        "message_id": m.message_id,
        "channel": m.channel,
        "category": m.category,
        "template": m.template,
        "template_version": m.template_version,
    }
    for field, value in (
        ("journey_id", m.journey_id),
        ("campaign_id", m.campaign_id),
        ("step_id", m.step_id),
        ("variant_id", m.variant_id),
        ("profile_id", r.profile_id),
    ):
        if value is not None:
            props[field] = value
    if m.channel == "email":
        props["email_id"] = m.message_id  # the property name of Segment's Email spec
    if "campaign_name" in m.data and isinstance(m.data["campaign_name"], str):
        props["campaign_name"] = m.data["campaign_name"]
    props.update(properties or {})
    message: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": f"{m.message_id}:{kind}{suffix}",
        "timestamp": _iso(at),
        "properties": props,
        "context": {"library": {"name": MESSAGING_SOURCE, "version": __version__}},
    }
    if r.user_id is not None:
        message["userId"] = r.user_id
    if r.anonymous_id is not None or r.user_id is None:
        # Without either id a message still needs one: the profile (or address) it went to.
        message["anonymousId"] = r.anonymous_id or r.profile_id or f"{m.channel}:{r.address}"
    identifier = _IDENTIFIER.get(m.channel)
    if identifier is not None:
        message["context"]["traits"] = {identifier: r.address}
    return msgspec.json.encode(message)
