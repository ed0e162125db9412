"""Email messages as real MIME: text and HTML alternatives, unsubscribe headers, tracked links, a pixel."""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import io
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.utils import formataddr

from tailor.channels.config import EmailConfig
from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered
from tailor.channels.tracking import HONEYPOT_LINK, TrackingLinks, add_pixel, rewrite_links, track_text_links


class _Headers(email.policy.Compat32):
    """compat32, writing the ASCII header values made here as they are.

    Every value is already ASCII (non-ASCII text is RFC 2047-encoded first), and folding each
    through the email package's Header class was a third of the time of building a message.
    Lines fold only past RFC 5322's hard limit, so tracked URLs in List-Unsubscribe stay whole.
    """

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        if isinstance(value, str) and value.isascii() and "\n" not in value and len(name) + len(value) < 990:
            return f"{name}: {value}{self.linesep}"
        folded: str = super()._fold(name, value, sanitize)  # type: ignore[misc]
        return folded


_POLICY = _Headers(linesep="\r\n", max_line_length=998)


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


def _text_part(body: str, subtype: str) -> Message:
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    # binascii's quoted-printable is C; the email package's own encoder is a Python loop.
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def build_email(
    m: StoredMessage,
    rendered: Rendered,
    links: TrackingLinks,
    settings: EmailConfig,
    unsubscribe: str | None = None,
) -> PreparedEmail:
    """The MIME message for one outbox message (`unsubscribe`: its unsubscribe URL, if already made)."""
    mid = m.message_id
    unsubscribe = unsubscribe or links.unsubscribe_url(mid)
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
    # The email package's compat32 classes: the default policy's header objects cost ~10x more
    # per message (measured 3.4 ms against 0.35 ms), which a broadcast of 100,000 cannot afford.
    # "=_" cannot occur in quoted-printable text, so a boundary starting with it needs no search.
    msg = MIMEMultipart("alternative", boundary=f"=_{mid}")
    msg["From"] = formataddr((settings.from_name, settings.from_address), "utf-8")
    msg["To"] = m.recipient.address
    msg["Subject"] = _header(rendered["subject"])
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
    msg.attach(_text_part(text, "plain"))
    msg.attach(_text_part(html, "html"))
    out = io.BytesIO()
    BytesGenerator(out, policy=_POLICY).flatten(msg)
    return PreparedEmail(
        mid, envelope_sender(settings, mid), m.recipient.address, out.getvalue(), rendered["subject"]
    )
