"""The shapes the messaging API answers and takes (msgspec Structs, also its OpenAPI schemas)."""

from __future__ import annotations

from typing import Any

import msgspec

from tailor.channels.outbox import StoredMessage
from tailor.channels.templates import TemplateDefinition


class Attempt(msgspec.Struct):
    """A failed attempt to send a message."""

    attempt: int
    at: float
    outcome: str
    detail: str


class MessageDetail(msgspec.Struct):
    """A message with its failed attempts."""

    message: StoredMessage
    attempts: list[Attempt]


class MessageList(msgspec.Struct):
    """Messages, newest first."""

    messages: list[StoredMessage]


class Enqueued(msgspec.Struct):
    """The message id; `created` is false when the idempotency key was already used."""

    message_id: str
    created: bool


class TemplateSaved(msgspec.Struct):
    """A saved template version."""

    name: str
    version: int


class Problem(msgspec.Struct):
    """One error of a template."""

    part: str
    line: int | None
    message: str


class TemplateRejected(msgspec.Struct):
    """A template that cannot be saved or rendered, with every problem."""

    code: str
    message: str
    problems: list[Problem]


class PreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A template to render with sample data: given inline, or a saved one by name."""

    data: dict[str, Any] = msgspec.field(default_factory=dict)
    template: TemplateDefinition | None = None
    name: str | None = None
    version: int | None = None


class Preview(msgspec.Struct):
    """The rendered parts of a template."""

    parts: dict[str, str]


class BounceOutcome(msgspec.Struct):
    """What a DSN said about one recipient, and what was done."""

    message_id: str | None
    address: str
    action: str
    status: str | None
    outcome: str


class BounceResult(msgspec.Struct):
    """Every recipient status found in a posted bounce."""

    bounces: list[BounceOutcome]


class MessagingStats(msgspec.Struct):
    """Messages per status, tracking events waiting for the event log, and the dispatcher's state."""

    counts: dict[str, int]
    events_pending: int
    dispatcher_running: bool
    dispatcher_error: str | None
