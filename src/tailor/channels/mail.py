"""Email messages as real MIME: text and HTML alternatives, unsubscribe headers, tracked links, a pixel."""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

from tailor.channels.config import EmailConfig
from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered
from tailor.channels.tracking import HONEYPOT_LINK, TrackingLinks, add_pixel, rewrite_links, track_text_links

_POLICY = email.policy.SMTP.clone(linesep="\r\n")


@dataclass(frozen=True)
class PreparedEmail:
    """An email ready for SMTP: envelope and bytes."""

    message_id: str
    envelope_from: str
    recipient: str
    data: bytes
    subject: str


def envelope_sender(settings: EmailConfig, message_id: str) -> str:
    """The MAIL FROM address: VERP-encoded with the message id when a bounce address is set."""
    if settings.bounce_address is None:
        return settings.from_address
    local, _, domain = settings.bounce_address.rpartition("@")
    return f"{local}+{message_id}@{domain}"


def build_email(
    m: StoredMessage, rendered: Rendered, links: TrackingLinks, settings: EmailConfig
) -> PreparedEmail:
    """The MIME message for one outbox message."""
    mid = m.message_id
    unsubscribe = links.unsubscribe_url(mid)
    html, text = rendered["html"], rendered["text"]
    if settings.track_clicks:

        def track(url: str, link_id: str) -> str:
            return links.click_url(mid, link_id, url)

        html, _ = rewrite_links(html, track, skip=(unsubscribe,))
        text = track_text_links(text, track, skip=(unsubscribe,))
    if settings.track_opens:
        honeypot = (
            links.click_url(mid, HONEYPOT_LINK, links.base_url + "/") if settings.honeypot_link else None
        )
        html = add_pixel(html, links.open_url(mid), honeypot)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    msg["To"] = m.recipient.address
    msg["Subject"] = rendered["subject"]
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<{mid}@{settings.domain}>"
    msg["X-Tailor-Message-Id"] = mid
    if m.category == "marketing":
        targets = f"<{unsubscribe}>"
        if settings.unsubscribe_mailto:
            targets += f", <mailto:{settings.unsubscribe_mailto}?subject=unsubscribe%20{mid}>"
        msg["List-Unsubscribe"] = targets
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        campaign = m.campaign_id or m.journey_id or "none"
        msg["Feedback-ID"] = f"{campaign}:{m.category}:tailor"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return PreparedEmail(
        mid, envelope_sender(settings, mid), m.recipient.address, msg.as_bytes(), rendered["subject"]
    )
