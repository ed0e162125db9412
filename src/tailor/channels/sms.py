"""SMS through a provider's HTTP API, described by configuration rather than code per provider.

The default shape is Twilio's Messages API: a form POST of `To`, `From` and `Body` with HTTP
Basic auth, answering JSON with the message's `sid`. A JSON API (`format = "json"`), a bearer
token, other field names, fixed extra fields and a status callback URL are settings.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from tailor.channels import http
from tailor.channels.base import Delivery, HandOver
from tailor.channels.config import SmsConfig
from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered
from tailor.channels.tracking import TrackingLinks, track_text_links


@dataclass(frozen=True)
class PreparedSms:
    """An SMS request, encoded."""

    message_id: str
    body: bytes
    content_type: str
    text: str


def _dig(value: Any, path: str) -> str | None:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value is None else str(value)


class SmsChannel:
    """The SMS channel."""

    name = "sms"

    def __init__(self, provider: SmsConfig, links: TrackingLinks) -> None:
        if provider.url is None:
            raise ValueError("the SMS channel needs the provider's URL (channels.sms.url)")
        if provider.format not in ("form", "json"):
            raise ValueError(f"sms format must be 'form' or 'json', got {provider.format!r}")
        self.provider = provider
        self.links = links
        self.concurrency = provider.concurrency
        self._client: httpx.AsyncClient | None = None
        self._headers: dict[str, str] = {}
        if provider.bearer_token:
            self._headers["Authorization"] = f"Bearer {provider.bearer_token}"
        elif provider.username is not None:
            pair = f"{provider.username}:{provider.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    async def start(self) -> None:
        self._client = http.client(self.concurrency, self.provider.timeout_s)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def prepare(self, message: StoredMessage, rendered: Rendered) -> PreparedSms:
        p = self.provider
        text = rendered["body"].strip()
        if p.track_links:
            mid = message.message_id
            text = track_text_links(text, lambda url, link_id: self.links.click_url(mid, link_id, url))
        if p.status_callback_field:
            extra = {p.status_callback_field: self.links.status_url(message.message_id)}
        else:
            extra = {}
        fields = {
            **p.extra_fields,
            **extra,
            p.to_field: message.recipient.address,
            p.from_field: p.from_number,
            p.body_field: text,
        }
        if p.format == "json":
            return PreparedSms(message.message_id, msgspec.json.encode(fields), "application/json", text)
        body = urllib.parse.urlencode(fields).encode()
        return PreparedSms(message.message_id, body, "application/x-www-form-urlencoded", text)

    async def deliver(self, prepared: Any, handover: HandOver) -> Delivery:
        assert self._client is not None, "start() the channel first"
        sms: PreparedSms = prepared
        headers = {**self._headers, "Content-Type": sms.content_type, "Idempotency-Key": sms.message_id}
        response = await http.post(self._client, self.provider.url or "", sms.body, headers, handover)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        # Accepted all the same: the provider has the message even when its answer names no id.
        provider_id = _dig(answer, self.provider.id_field)
        props = {"provider_message_id": provider_id, "segments": _segments(sms.text)}
        return Delivery(f"{response.status_code} {response.reason_phrase}", provider_id, False, props)


def _segments(text: str) -> int:
    """How many SMS parts a text takes: 160/153 GSM-7 characters, else 70/67 UCS-2."""
    gsm = all(ord(c) < 128 for c in text)
    single, multi = (160, 153) if gsm else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)
