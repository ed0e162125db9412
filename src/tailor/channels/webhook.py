"""Webhooks, signed as the Standard Webhooks specification describes (HMAC-SHA256 with a timestamp).

Every request carries `webhook-id` (the message id, the same on every retry: receivers dedupe on
it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` keyed with the secret's bytes (the
base64 after `whsec_`). A receiver recomputes the HMAC, compares in constant time, and rejects
timestamps more than five minutes from its clock (replays). Any Standard Webhooks library
verifies it (the tests use the `standardwebhooks` package).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tailor.channels import http
from tailor.channels.base import Delivery, HandOver
from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A new signing secret in the Standard Webhooks form: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one request."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class PreparedWebhook:
    """A webhook ready to go: where, what, and under which id."""

    message_id: str
    url: str
    body: bytes


class WebhookChannel:
    """Delivers rendered JSON payloads to webhook URLs, signed per attempt."""

    name = "webhook"

    def __init__(
        self,
        secret: str,
        concurrency: int = 16,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.clock = clock
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = http.client(self.concurrency, self.timeout_s)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def prepare(self, message: StoredMessage, rendered: Rendered) -> PreparedWebhook:
        return PreparedWebhook(message.message_id, message.recipient.address, rendered["payload"].encode())

    def headers(self, hook: PreparedWebhook) -> dict[str, Any]:
        """The headers of one attempt: a fresh timestamp and signature."""
        ts = int(self.clock())
        return {
            "Content-Type": "application/json",
            "User-Agent": "Tailor-Webhooks/1",
            "webhook-id": hook.message_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.secret, hook.message_id, ts, hook.body),
        }

    async def deliver(self, prepared: Any, handover: HandOver) -> Delivery:
        assert self._client is not None, "start() the channel first"
        hook: PreparedWebhook = prepared
        response = await http.post(self._client, hook.url, hook.body, self.headers(hook), handover)
        return Delivery(
            f"{response.status_code} {response.reason_phrase}",
            None,
            True,
            {"http_status": response.status_code},
        )
