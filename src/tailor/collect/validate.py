"""Validation of Segment messages into event rows; every message passes or fails on its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import xxhash

from tailor.collect.messages import (
    EMPTY,
    MESSAGE_DECODER,
    MESSAGE_TYPES,
    FieldError,
    Message,
    Rejection,
)

MAX_ID_CHARS = 1024
MAX_NAME_CHARS = 1024
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_PLAIN_TYPES = frozenset({"identify", "page", "screen"})
_ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId")
_STR_FIELDS = ("type", "messageId", "event", "name", "writeKey")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")


@dataclass
class EventRows:
    """Accepted events as columns (no sequence numbers yet), with the raw bytes of each.

    The corrected `timestamp` is not here: the writer derives it, for whole columns at once, from
    the original timestamp, sentAt and the request's receivedAt.
    """

    message_id: list[str] = field(default_factory=list)
    dedupe_hash: list[int] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    event: list[str | None] = field(default_factory=list)
    name: list[str | None] = field(default_factory=list)
    user_id: list[str | None] = field(default_factory=list)
    anonymous_id: list[str | None] = field(default_factory=list)
    group_id: list[str | None] = field(default_factory=list)
    previous_id: list[str | None] = field(default_factory=list)
    original_timestamp: list[datetime | None] = field(default_factory=list)
    sent_at: list[datetime | None] = field(default_factory=list)
    properties: list[str | None] = field(default_factory=list)
    traits: list[str | None] = field(default_factory=list)
    context: list[str | None] = field(default_factory=list)
    integrations: list[str | None] = field(default_factory=list)
    raw: list[bytes | msgspec.Raw] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.message_id)


_xxh3 = xxhash.xxh3_64_intdigest


def dedupe_hash(source_id: str, message_id: str) -> int:
    """A stable 64-bit hash of (source, messageId), the dedupe key of the event log."""
    return int(_xxh3(f"{source_id}\0{message_id}".encode("utf-8", "surrogatepass")))


def _id(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _json(raw: msgspec.Raw) -> str | None:
    text = str(raw, "utf-8") if len(raw) else ""
    return None if not text or text == "null" else text


def _semantic_errors(
    m: Message, user_id: str | None, anonymous_id: str | None, objects: tuple[str | None, ...]
) -> list[FieldError]:
    """Every error of a message that decoded; an empty list when it is valid."""
    errors: list[FieldError] = []
    if m.type not in MESSAGE_TYPES:
        errors.append(FieldError("$.type", f"must be one of {sorted(MESSAGE_TYPES)}, got {m.type!r}"))
    if user_id is None and anonymous_id is None:
        errors.append(FieldError("$.userId", "a message needs a userId or an anonymousId; both are missing"))
    for path, value in (("$.userId", user_id), ("$.anonymousId", anonymous_id), ("$.messageId", m.messageId)):
        if value is not None and len(value) > MAX_ID_CHARS:
            errors.append(FieldError(path, f"longer than {MAX_ID_CHARS} characters"))
    if m.type == "track" and not (m.event and m.event.strip()):
        errors.append(FieldError("$.event", "a track message needs a non-empty event name"))
    for path, text in (("$.event", m.event), ("$.name", m.name)):
        if text is not None and len(text) > MAX_NAME_CHARS:
            errors.append(FieldError(path, f"longer than {MAX_NAME_CHARS} characters"))
    if m.type == "group" and _id(m.groupId) is None:
        errors.append(FieldError("$.groupId", "a group message needs a groupId"))
    if m.type == "alias" and (_id(m.previousId) is None or user_id is None):
        errors.append(FieldError("$.previousId", "an alias message needs both previousId and userId"))
    for name, text in zip(_OBJECT_FIELDS, objects, strict=True):
        if text is not None and not text.startswith("{"):
            errors.append(FieldError(f"$.{name}", "must be a JSON object"))
    return errors


def _encoding_errors(m: Message) -> list[FieldError]:
    """The objects of a message whose bytes are not UTF-8."""
    errors = []
    for name in _OBJECT_FIELDS:
        try:
            bytes(getattr(m, name)).decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append(FieldError(f"$.{name}", f"not valid UTF-8 ({e.reason} at byte {e.start})"))
    return errors


def explain(payload: bytes) -> list[FieldError]:
    """Every structural error of a message that failed typed decoding, each with its path."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as e:
        return [FieldError("$", f"not valid UTF-8 ({e.reason} at byte {e.start})")]
    try:
        obj: Any = msgspec.json.decode(payload)
    except msgspec.DecodeError as e:
        return [FieldError("$", f"not valid JSON: {e}")]
    if not isinstance(obj, dict):
        return [FieldError("$", f"a message must be a JSON object, got {type(obj).__name__}")]
    errors = []
    for name in _STR_FIELDS:
        if obj.get(name) is not None and not isinstance(obj[name], str):
            errors.append(FieldError(f"$.{name}", f"must be a string, got {type(obj[name]).__name__}"))
    for name in _ID_FIELDS:
        value = obj.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            errors.append(FieldError(f"$.{name}", f"must be a string or integer, got {type(value).__name__}"))
    for name in _TIME_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        try:
            msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            errors.append(FieldError(f"$.{name}", f"not an ISO-8601 date-time: {value!r:.60}"))
    for name in _OBJECT_FIELDS:
        if obj.get(name) is not None and not isinstance(obj[name], dict):
            errors.append(FieldError(f"$.{name}", f"must be a JSON object, got {type(obj[name]).__name__}"))
    return errors or [FieldError("$", "message could not be decoded")]


class MessageValidator:
    """Turns raw messages of one request into event rows and rejections."""

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes

    def validate(
        self,
        source_id: str,
        raws: list[msgspec.Raw] | list[bytes],
        received_at: datetime,
        implied_type: str | None = None,
        batch_sent_at: datetime | None = None,
        batch_context: msgspec.Raw = EMPTY,
        batch_integrations: msgspec.Raw = EMPTY,
        indexed: bool = True,
    ) -> tuple[EventRows, list[Rejection]]:
        """Validates each message; `implied_type` is the type a single-message endpoint gives.

        Written column by column, with the checks of a valid message inlined, because this runs
        for every collected event.
        """
        rows = EventRows()
        rejections: list[Rejection] = []
        decode = MESSAGE_DECODER.decode
        limit = self.max_event_bytes
        default_context, default_integrations = _json(batch_context), _json(batch_integrations)
        valid: list[Message] = []
        for index, raw in enumerate(raws):
            position = index if indexed else None
            if len(raw) > limit:
                error = FieldError("$", f"message is {len(raw)} bytes; the limit is {limit}")
                rejections.append(Rejection(position, [error], bytes(raw)))
                continue
            try:
                m = decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError):
                rejections.append(Rejection(position, explain(bytes(raw)), bytes(raw)))
                continue
            if implied_type is not None:
                if m.type is not None and m.type != implied_type:
                    error = FieldError("$.type", f"is {m.type!r} but this endpoint takes {implied_type!r}")
                    rejections.append(Rejection(position, [error], bytes(raw)))
                    continue
                m.type = implied_type
            u, a = m.userId, m.anonymousId
            user_id = (u.strip() or None) if u.__class__ is str else _id(u)
            anonymous_id = (a.strip() or None) if a.__class__ is str else _id(a)
            # Absent objects are the shared EMPTY: an identity test skips decoding them.
            try:
                p, tr, c, i = m.properties, m.traits, m.context, m.integrations
                properties = None if p is EMPTY else _json(p)
                traits = None if tr is EMPTY else _json(tr)
                context = None if c is EMPTY else _json(c)
                integrations = None if i is EMPTY else _json(i)
            except UnicodeDecodeError:  # msgspec leaves the bytes inside objects unchecked
                rejections.append(Rejection(position, _encoding_errors(m), bytes(raw)))
                continue
            t = m.type
            if not (
                (user_id is not None or anonymous_id is not None)
                and (t in _PLAIN_TYPES or (t == "track" and m.event and not m.event.isspace()))
                and len(user_id or "") <= MAX_ID_CHARS
                and len(anonymous_id or "") <= MAX_ID_CHARS
                and len(m.messageId or "") <= MAX_ID_CHARS
                and len(m.event or "") <= MAX_NAME_CHARS
                and len(m.name or "") <= MAX_NAME_CHARS
                and (properties is None or properties[0] == "{")
                and (traits is None or traits[0] == "{")
                and (context is None or context[0] == "{")
                and (integrations is None or integrations[0] == "{")
            ):
                objects = (properties, traits, context, integrations)
                errors = _semantic_errors(m, user_id, anonymous_id, objects)
                if errors:
                    rejections.append(Rejection(position, errors, bytes(raw)))
                    continue
            # The columns are filled below, from the valid messages, a column at a time.
            valid.append(m)
            rows.user_id.append(user_id)
            rows.anonymous_id.append(anonymous_id)
            rows.properties.append(properties)
            rows.traits.append(traits)
            rows.context.append(context or default_context)
            rows.integrations.append(integrations or default_integrations)
            rows.raw.append(raw)
        rows.message_id = [m.messageId or f"tailor-{uuid.uuid4()}" for m in valid]
        prefix = f"{source_id}\0"
        rows.dedupe_hash = [
            _xxh3(f"{prefix}{message_id}".encode("utf-8", "surrogatepass")) for message_id in rows.message_id
        ]
        rows.type = [m.type or "" for m in valid]
        rows.event = [m.event for m in valid]
        rows.name = [m.name for m in valid]
        rows.group_id = [None if m.groupId is None else _id(m.groupId) for m in valid]
        rows.previous_id = [None if m.previousId is None else _id(m.previousId) for m in valid]
        rows.original_timestamp = [m.originalTimestamp or m.timestamp for m in valid]
        rows.sent_at = [m.sentAt or batch_sent_at for m in valid]
        return rows, rejections
