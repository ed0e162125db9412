"""Messaging: the outbox, send-time checks, email/SMS/webhook channels, templates and tracking.

Heavy parts (the dispatcher, SMTP and HTTP clients) are imported from their modules; this
package's surface is what a journey runtime needs to enqueue messages and plug in consent.
"""

from tailor.channels.outbox import Enqueued, Outbox, OutboxMessage, Recipient, StoredMessage
from tailor.channels.policy import ConsentCheck, ConsentRequest, ConsentVerdict, Defer, SendCheck, Suppress
from tailor.channels.store import MESSAGING_FILE, advance_offset, connect, consumer_offset, transaction

__all__ = [
    "MESSAGING_FILE",
    "ConsentCheck",
    "ConsentRequest",
    "ConsentVerdict",
    "Defer",
    "Enqueued",
    "Outbox",
    "OutboxMessage",
    "Recipient",
    "SendCheck",
    "StoredMessage",
    "Suppress",
    "advance_offset",
    "connect",
    "consumer_offset",
    "transaction",
]
