"""The Segment message shapes the collection API accepts, decoded without touching nested objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
EMPTY = msgspec.Raw(b"")

Id = str | int | None


class Message(msgspec.Struct, gc=False):
    """One Segment message; nested objects stay raw JSON so they are stored without re-encoding.

    Not tracked by the garbage collector (it holds no containers, so it can be in no cycle):
    one is made per collected event, and each tracked allocation brings a collection nearer.
    """

    type: str | None = None
    messageId: str | None = None
    userId: Id = None
    anonymousId: Id = None
    event: str | None = None
    name: str | None = None
    groupId: Id = None
    previousId: Id = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: msgspec.Raw = EMPTY
    traits: msgspec.Raw = EMPTY
    context: msgspec.Raw = EMPTY
    integrations: msgspec.Raw = EMPTY
    writeKey: str | None = None


class BatchEnvelope(msgspec.Struct):
    """The body of `POST /v1/batch`: messages kept raw so each one passes or fails alone."""

    batch: list[msgspec.Raw]
    sentAt: datetime | None = None
    writeKey: str | None = None
    context: msgspec.Raw = EMPTY
    integrations: msgspec.Raw = EMPTY


class MessageDoc(msgspec.Struct):
    """A Segment message as the OpenAPI document describes it (Message keeps nested objects raw)."""

    type: Literal["track", "identify", "page", "screen", "group", "alias"] | None = None
    messageId: str | None = None
    userId: Id = None
    anonymousId: Id = None
    event: str | None = None
    name: str | None = None
    groupId: Id = None
    previousId: Id = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    writeKey: str | None = None


class BatchDoc(msgspec.Struct):
    """The body of `POST /v1/batch` as the OpenAPI document describes it."""

    batch: list[MessageDoc]
    sentAt: datetime | None = None
    writeKey: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None


class FieldError(msgspec.Struct):
    """What is wrong with one field of one message, by its JSON path."""

    path: str
    message: str


class Rejection(msgspec.Struct):
    """A message that failed validation: its position in the request, errors and raw bytes."""

    index: int | None
    errors: list[FieldError]
    payload: bytes

    @property
    def reason(self) -> str:
        """All errors in one line."""
        return "; ".join(f"{e.path}: {e.message}" for e in self.errors)


MESSAGE_DECODER = msgspec.json.Decoder(Message)
BATCH_DECODER = msgspec.json.Decoder(BatchEnvelope)
