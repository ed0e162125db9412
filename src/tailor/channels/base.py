"""The channel interface the dispatcher drives: prepare a rendered message, then deliver it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import Rendered

HandOver = Callable[[], None]
"""Commits that a message is handed over; a channel calls it just before the last bytes go out."""


@dataclass
class Delivery:
    """What a channel reports for a message the server accepted."""

    reply: str
    provider_id: str | None = None
    delivered: bool = False
    """Whether acceptance counts as delivery (the server is the last hop, or a webhook's 2xx)."""
    properties: dict[str, Any] = field(default_factory=dict)
    """Extra properties of the sent event (e.g. the email subject)."""


class Channel(Protocol):
    """One way of sending: email over SMTP, SMS over a provider's HTTP API, webhooks."""

    name: str
    """The channel name messages are enqueued with: "email", "sms" or "webhook"."""
    concurrency: int
    """How many messages may be in delivery at once (connections in the pool)."""

    async def start(self) -> None:
        """Opens what the channel needs (connections are made lazily)."""

    async def close(self) -> None:
        """Closes the channel's connections."""

    def prepare(self, message: StoredMessage, rendered: Rendered) -> Any:
        """Turns a rendered message into what goes on the wire (CPU work, no I/O)."""

    async def deliver(self, prepared: Any, handover: HandOver) -> Delivery:
        """Sends one prepared message; raises PermanentDeliveryError or TransientDeliveryError."""
        ...
