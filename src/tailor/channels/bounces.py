"""Asynchronous bounces: delivery status notifications (RFC 3464) read back to the message they report.

Tailor takes DSNs posted to `POST /api/v1/messages/bounces` as raw RFC 5322 bytes — the shape an
MTA's pipe transport or an inbound-mail webhook forwards — rather than polling a mailbox. The
message is found by its `X-Tailor-Message-Id` in the returned headers, else by the VERP envelope
sender (`bounces+<message id>@...`) the bounce was addressed to. Per-recipient status comes from
the `message/delivery-status` part; bounces in older, non-standard formats are read with
flufl.bounce (GNU Mailman's detectors).
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

import flufl.bounce

log = logging.getLogger(__name__)

_MID = re.compile(r"\bmsg_[0-9a-f]{24}\b")
_VERP_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


@dataclass(frozen=True)
class Bounce:
    """One recipient's status, as a DSN reports it."""

    message_id: str | None
    address: str
    action: str
    """failed, delayed, delivered, relayed or expanded (RFC 3464 2.3.3)."""
    status: str | None
    diagnostic: str | None

    @property
    def permanent(self) -> bool:
        """A failure that will not go away (status 5.x.x)."""
        return self.action == "failed" and (self.status is None or self.status.startswith("5"))


def _returned_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            text = str(inner) if isinstance(inner, Message) else str(part.get_payload(decode=False))
            header = re.search(r"(?im)^X-Tailor-Message-Id:\s*(\S+)", text)
            if header and _MID.fullmatch(header.group(1)):
                return header.group(1)
    for name in _VERP_HEADERS:
        for value in msg.get_all(name) or []:
            found = re.search(r"\+(msg_[0-9a-f]{24})@", str(value))
            if found:
                return found.group(1)
    return None


def _address(field: str | None) -> str | None:
    if not field:
        return None
    _, _, value = str(field).partition(";")
    return (value or str(field)).strip().strip("<>").lower() or None


def parse_dsn(raw: bytes) -> list[Bounce]:
    """Every recipient status a bounce message reports (empty when it is not a bounce)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    message_id = _returned_message_id(msg)
    found: list[Bounce] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block describes the whole message
            if not isinstance(block, Message):
                continue
            address = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
            if address is None:
                continue
            diagnostic = block.get("Diagnostic-Code")
            found.append(
                Bounce(
                    message_id,
                    address,
                    str(block.get("Action", "failed")).strip().lower(),
                    (str(block.get("Status")).strip() or None) if block.get("Status") else None,
                    " ".join(str(diagnostic).split()) if diagnostic else None,
                )
            )
    if found:
        return found
    if not msg.get("From"):
        return []  # every bounce comes from someone (MAILER-DAEMON); the detectors need it
    # Not a standard DSN: ask Mailman's detectors which addresses failed.
    try:
        temporary, permanent = flufl.bounce.all_failures(email.message_from_bytes(raw, _class=EmailMessage))
    except Exception as e:  # a detector that trips over a malformed message: then it is no bounce we can read
        log.warning("the bounce detectors could not read a message: %s: %s", type(e).__name__, e)
        return []
    for addresses, status in ((permanent, "5.0.0"), (temporary, "4.0.0")):
        for a in sorted(addresses):
            found.append(Bounce(message_id, a.decode("utf-8", "replace").lower(), "failed", status, None))
    return found
