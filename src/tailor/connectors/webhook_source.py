"""Inbound webhooks: JSON payloads POSTed to `/v1/webhooks/NAME`, mapped to events by JSON paths.

Each connector has its own secret: the sender signs the raw body with HMAC-SHA256 and sends the
signature in a header (`X-Tailor-Signature: sha256=<hex>` by default; base64 for senders that
sign that way). A payload holds one item or a list of them (`items` names where); each item
becomes one Segment message through the declared paths and then passes the collector's own
validation, so an item that fails is quarantined with the reason, and the others are stored.
An item's `id_path` value (or, without one, the hash of the item) is its messageId: a sender's
retry of a delivery it did not see acknowledged stores nothing twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

import jsonpath
import msgspec
import xxhash

from tailor.collect.messages import FieldError, Rejection
from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.sqldb import resolve_secret

SEGMENT_FIELDS = {"user_id": "userId", "anonymous_id": "anonymousId"}


class WebhookMapping(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Where each part of an event is found in a webhook item, as JSON paths (`$.customer.email`)."""

    kind: Literal["track", "identify"] = "track"
    """What each item is: something that happened (track) or who someone is (identify)."""
    items: str | None = None
    """Path of the list of items in a payload; without it a payload is one item (or a list of items)."""
    event: str | None = None
    """The event name of every item (track), when `event_path` does not give it per item."""
    event_path: str | None = None
    """Path of the event name in an item."""
    id_path: str | None = None
    """Path of the item's unique id, its messageId (deliveries retried by the sender are stored once)."""
    timestamp_path: str | None = None
    """Path of when the item happened (ISO 8601); the time of receipt without it."""
    identifiers: dict[str, str] = msgspec.field(default_factory=dict)
    """Identifier type -> path (user_id and anonymous_id become userId / anonymousId)."""
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    """Property name -> path (track)."""
    traits: dict[str, str] = msgspec.field(default_factory=dict)
    """Trait name -> path (identify)."""

    def paths(self) -> dict[str, str]:
        """Every path of the mapping by where it goes, such as `properties.total`."""
        out = {
            k: v
            for k, v in (
                ("items", self.items),
                ("event_path", self.event_path),
                ("id_path", self.id_path),
                ("timestamp_path", self.timestamp_path),
            )
            if v
        }
        for group in ("identifiers", "properties", "traits"):
            out |= {f"{group}.{k}": v for k, v in getattr(self, group).items()}
        return out

    def problems(self) -> list[str]:
        """Paths that do not parse, and parts a kind of event needs."""
        out = []
        for where, path in self.paths().items():
            try:
                jsonpath.compile(path)
            except jsonpath.JSONPathError as e:
                out.append(f"{where}: {path!r} is not a JSON path ({str(e).splitlines()[0]})")
        if self.kind == "track" and not (self.event or self.event_path):
            out.append("event: a track mapping needs `event` or `event_path`")
        if not self.identifiers:
            out.append("identifiers: name at least one path to who the item is about")
        return out


class WebhookSourceSpec(msgspec.Struct, forbid_unknown_fields=True, tag="webhook_source", tag_field="type"):
    """A route of its own, `/v1/webhooks/NAME`, that turns signed JSON payloads into events."""

    secret: str
    """The shared HMAC-SHA256 secret (or `env:VAR`)."""
    mapping: WebhookMapping
    """Where each part of an event is in an item."""
    signature_header: str = "X-Tailor-Signature"
    """The header holding the signature of the raw body."""
    signature_encoding: Literal["hex", "base64"] = "hex"
    """hex (`sha256=<hex>` or bare hex) or base64 (as Shopify signs)."""

    def problems(self) -> list[str]:
        """What is wrong with the declaration."""
        return [f"mapping.{p}" for p in self.mapping.problems()]


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class InboundWebhook:
    """One declared webhook source: checks signatures and maps payloads to Segment messages."""

    def __init__(self, name: str, spec: WebhookSourceSpec) -> None:
        self.name = name
        self.spec = spec
        self.source_id = f"webhook:{name}"

    @cached_property
    def _paths(self) -> dict[str, Any]:
        return {where: jsonpath.compile(path) for where, path in self.spec.mapping.paths().items()}

    def verify(self, body: bytes, signature: str | None) -> bool:
        """Whether the signature header matches the body under this connector's secret."""
        if not signature:
            return False
        try:
            secret = resolve_secret(self.spec.secret).encode()
        except ConnectorError:
            return False
        digest = hmac.new(secret, body, hashlib.sha256).digest()
        given = signature.strip()
        if self.spec.signature_encoding == "base64":
            expected = base64.b64encode(digest).decode()
        else:
            given = given.removeprefix("sha256=")
            expected = digest.hex()
        return hmac.compare_digest(given.encode(), expected.encode())

    def _find(self, where: str, item: Any) -> Any:
        path = self._paths.get(where)
        if path is None:
            return None
        match = path.match(item)
        return None if match is None else match.obj

    def items(self, payload: Any) -> list[Any]:
        """The items of a payload."""
        if "items" in self._paths:
            found = self._find("items", payload)
            if found is None:
                return []
            return found if isinstance(found, list) else [found]
        return payload if isinstance(payload, list) else [payload]

    def message(self, item: Any) -> tuple[bytes | None, list[FieldError]]:
        """An item as the JSON of a Segment message, or the errors that keep it from being one."""
        m = self.spec.mapping
        errors: list[FieldError] = []
        if not isinstance(item, dict):
            return None, [FieldError("$", f"an item must be a JSON object, not {type(item).__name__}")]
        message: dict[str, Any] = {"type": m.kind}
        external = []
        for id_type, path in m.identifiers.items():
            value = self._find(f"identifiers.{id_type}", item)
            if value is None or value == "":
                continue
            if not isinstance(value, str | int):
                errors.append(FieldError(path, f"identifier {id_type} must be text or a number"))
            elif id_type in SEGMENT_FIELDS:
                message[SEGMENT_FIELDS[id_type]] = str(value)
            else:
                external.append(
                    {"type": id_type, "id": str(value), "collection": self.name, "encoding": "none"}
                )
        if not external and not any(f in message for f in SEGMENT_FIELDS.values()):
            paths = ", ".join(m.identifiers.values())
            errors.append(FieldError("$", f"no identifier found at {paths}"))
        if external:
            message["context"] = {"externalIds": external}
        if m.kind == "track":
            event = self._find("event_path", item) if m.event_path else m.event
            if not isinstance(event, str) or not event:
                errors.append(FieldError(m.event_path or "$", "no event name"))
            message["event"] = event
        group = "properties" if m.kind == "track" else "traits"
        values = {k: self._find(f"{group}.{k}", item) for k in getattr(m, group)}
        message[group] = {k: v for k, v in values.items() if v is not None}
        if m.timestamp_path:
            stamp = self._find("timestamp_path", item)
            if stamp is not None:
                if not isinstance(stamp, str) or not _is_time(stamp):
                    errors.append(FieldError(m.timestamp_path, f"{stamp!r} is not an ISO 8601 timestamp"))
                else:
                    message["timestamp"] = stamp
        item_id = self._find("id_path", item) if m.id_path else None
        if m.id_path and item_id is None:
            errors.append(FieldError(m.id_path, "no item id"))
        encoded = msgspec.json.encode(item)
        message["messageId"] = (
            f"{self.name}:{item_id}"
            if item_id is not None
            else (f"{self.name}:h:{xxhash.xxh3_64_hexdigest(encoded)}")
        )
        if errors:
            return None, errors
        return msgspec.json.encode(message), []

    def messages(self, body: bytes) -> tuple[list[bytes], list[Rejection]]:
        """The Segment messages of a payload, and a rejection for every item (or payload) that fails."""
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError as e:
            return [], [Rejection(None, [FieldError("$", f"the payload is not JSON: {e}")], body)]
        items = self.items(payload)
        if not items:
            where = self.spec.mapping.items or "$"
            return [], [Rejection(None, [FieldError(where, "the payload holds no items")], body)]
        good: list[bytes] = []
        bad: list[Rejection] = []
        for index, item in enumerate(items):
            message, errors = self.message(item)
            if message is None:
                bad.append(Rejection(index, errors, msgspec.json.encode(item)))
            else:
                good.append(message)
        return good, bad


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
