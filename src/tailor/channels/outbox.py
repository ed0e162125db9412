"""The outbox: a decision to send, recorded with an idempotency key in the caller's transaction.

A journey runtime (or anything else that sends) writes its state change and the message in one
SQLite transaction on the messaging database; the dispatcher delivers from here. The same key
twice is one message: the second enqueue changes nothing and reports the first one's id.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from tailor.channels.exceptions import OutboxError

CHANNELS = ("email", "sms", "webhook")
CATEGORIES = ("marketing", "transactional")
STATUSES = ("queued", "sending", "sent", "delivered", "bounced", "failed", "dead", "suppressed")
"""queued: waiting for its time; sending: claimed by the running dispatcher; sent: handed to the
server (accepted, or the process stopped before its reply); delivered: confirmed delivered;
bounced: the recipient was refused; failed: could not be sent at all (a template error, a
permanent refusal of the message); dead: retries exhausted; suppressed: a send-time check said no."""
MAX_KEY_CHARS = 512

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ADDRESS_CHECKS = {
    "email": (_EMAIL, "an email address"),
    "sms": (_E164, "a phone number in E.164 form (+447700900123)"),
    "webhook": (_URL, "an http(s) URL"),
}


class Recipient(msgspec.Struct, forbid_unknown_fields=True):
    """Who a message goes to, and the identifiers that stitch its tracking events to the person."""

    address: str
    """The channel address: an email address, an E.164 phone number or a webhook URL."""
    profile_id: str | None = None
    """The person's Tailor profile id; frequency caps count per profile (else per address)."""
    user_id: str | None = None
    """The person's userId, when known: tracking events carry it."""
    anonymous_id: str | None = None
    """An anonymousId the person is known by, used by tracking events without a userId."""
    timezone: str | None = None
    """The person's IANA time zone (quiet hours); the configured default when missing."""


class OutboxMessage(msgspec.Struct, forbid_unknown_fields=True):
    """A message to enqueue (the shape of `Outbox.enqueue_many`)."""

    key: str
    """The idempotency key: the same key twice is one message."""
    channel: str
    recipient: Recipient
    template: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """Template data: profile, event, offer and anything the template declares."""
    category: str = "marketing"
    """marketing messages obey frequency caps and quiet hours; transactional ones do not."""
    journey_id: str | None = None
    campaign_id: str | None = None
    step_id: str | None = None
    variant_id: str | None = None
    not_before: float | None = None
    """Earliest send time (epoch seconds); now when missing."""
    max_attempts: int | None = None
    """Most delivery attempts before the message is dead; the channel's default when missing."""


class Enqueued(msgspec.Struct, frozen=True):
    """The outcome of an enqueue: the message's id and whether this call created it."""

    message_id: str
    created: bool


class StoredMessage(msgspec.Struct):
    """A message as kept in the outbox, with its delivery state."""

    message_id: str
    key: str
    channel: str
    category: str
    recipient: Recipient
    template: str
    template_version: int
    data: dict[str, Any]
    journey_id: str | None
    campaign_id: str | None
    step_id: str | None
    variant_id: str | None
    status: str
    attempts: int
    max_attempts: int
    created_at: float
    next_attempt_at: float
    handed_over_at: float | None
    sent_at: float | None
    finished_at: float | None
    reason: str | None
    reply: str | None
    provider_id: str | None


MESSAGE_COLUMNS = (
    "message_id, idempotency_key, channel, category, recipient, template, template_version, data,"
    " journey_id, campaign_id, step_id, variant_id, status, attempts, max_attempts, created_at,"
    " next_attempt_at, handed_over_at, sent_at, finished_at, reason, reply, provider_id"
)
_RECIPIENT = msgspec.json.Decoder(Recipient)
_DATA = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.encode


def message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    """A StoredMessage from a row of MESSAGE_COLUMNS."""
    (mid, key, channel, category, recipient, template, version, data, *rest) = row
    return StoredMessage(
        mid,
        key,
        channel,
        category,
        _RECIPIENT.decode(recipient),
        template,
        version,
        _DATA.decode(data),
        *rest,
    )


def message_id_for(key: str) -> str:
    """The message id of an idempotency key: stable, so a re-enqueue names the same message."""
    return "msg_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _problems(m: OutboxMessage, versions: dict[str, tuple[int, str] | None]) -> list[str]:
    errors = []
    if not m.key or len(m.key) > MAX_KEY_CHARS:
        errors.append(f"key: must be 1 to {MAX_KEY_CHARS} characters")
    if m.channel not in CHANNELS:
        errors.append(f"channel: must be one of {list(CHANNELS)}, got {m.channel!r}")
    else:
        pattern, wanted = _ADDRESS_CHECKS[m.channel]
        if not pattern.match(m.recipient.address):
            errors.append(f"recipient.address: {m.recipient.address!r} is not {wanted}")
    if m.category not in CATEGORIES:
        errors.append(f"category: must be one of {list(CATEGORIES)}, got {m.category!r}")
    if m.max_attempts is not None and m.max_attempts < 1:
        errors.append("max_attempts: must be at least 1")
    if m.recipient.timezone is not None:
        from tailor.channels.policy import known_timezone

        if not known_timezone(m.recipient.timezone):
            errors.append(f"recipient.timezone: unknown time zone {m.recipient.timezone!r}")
    found = versions.get(m.template)
    if found is None:
        errors.append(f"template: no template named {m.template!r} is saved")
    elif m.channel in CHANNELS and found[1] != m.channel:
        errors.append(f"template: {m.template!r} is a {found[1]} template, not {m.channel}")
    return errors


class Outbox:
    """Enqueues messages inside a caller's SQLite transaction on the messaging database."""

    def __init__(
        self,
        default_attempts: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.default_attempts = {"email": 5, "sms": 5, "webhook": 8, **(default_attempts or {})}
        self.clock = clock

    def enqueue(
        self,
        conn: sqlite3.Connection,
        key: str,
        channel: str,
        recipient: Recipient,
        template: str,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Enqueued:
        """Records one message in the caller's open transaction on `conn`; see OutboxMessage for `fields`."""
        message = OutboxMessage(key, channel, recipient, template, data or {}, **fields)
        created = self.enqueue_many(conn, [message])
        return Enqueued(message_id_for(key), created == 1)

    def enqueue_many(self, conn: sqlite3.Connection, messages: Iterable[OutboxMessage]) -> int:
        """Records messages in the caller's open transaction; returns how many were new.

        Every message is checked first and nothing is written when any is invalid: OutboxError
        lists each problem as `[index] field: reason`.
        """
        if not conn.in_transaction:
            raise OutboxError(["enqueue must run inside the caller's transaction (BEGIN IMMEDIATE)"])
        batch = list(messages)
        versions = self._template_versions(conn, {m.template for m in batch})
        errors = [f"[{i}] {p}" for i, m in enumerate(batch) for p in _problems(m, versions)]
        if errors:
            raise OutboxError(errors)
        now = self.clock()
        rows = []
        for m in batch:
            r = m.recipient
            due = now if m.not_before is None else m.not_before
            found = versions[m.template]
            assert found is not None
            rows.append(
                (
                    message_id_for(m.key),
                    m.key,
                    m.channel,
                    m.category,
                    r.profile_id or f"{m.channel}:{r.address}",
                    r.profile_id,
                    r.address,
                    _encode(r).decode(),
                    m.template,
                    found[0],
                    _encode(m.data).decode(),
                    m.journey_id,
                    m.campaign_id,
                    m.step_id,
                    m.variant_id,
                    m.max_attempts or self.default_attempts[m.channel],
                    now,
                    due,
                    due,
                )
            )
        before = conn.total_changes
        conn.executemany(
            "INSERT INTO outbox (message_id, idempotency_key, channel, category, person_key, profile_id,"
            " address, recipient, template, template_version, data, journey_id, campaign_id, step_id,"
            " variant_id, max_attempts, created_at, not_before, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            rows,
        )
        return conn.total_changes - before

    def _template_versions(
        self, conn: sqlite3.Connection, names: set[str]
    ) -> dict[str, tuple[int, str] | None]:
        """The latest saved version and channel of each template (the version a message is pinned to)."""
        found: dict[str, tuple[int, str] | None] = dict.fromkeys(names)
        for name in names:
            row = conn.execute(
                "SELECT version, channel FROM templates WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
            if row is not None:
                found[name] = (int(row[0]), str(row[1]))
        return found

    @staticmethod
    def forget(conn: sqlite3.Connection, profile_ids: Iterable[str], addresses: Iterable[str]) -> int:
        """Deletes every message to these profiles or addresses, with its attempts, hits and queued events.

        For erasure, in the caller's transaction; returns how many messages were deleted. The
        suppression list is left alone: it is what keeps an unsubscribed or bounced address
        from being mailed again.
        """
        ids = [
            mid
            for (mid,) in conn.execute(
                "SELECT message_id FROM outbox WHERE profile_id IN (SELECT value FROM json_each(?))"
                " OR address IN (SELECT value FROM json_each(?))",
                (_encode(list(profile_ids)).decode(), _encode(list(addresses)).decode()),
            )
        ]
        listed = _encode(ids).decode()
        for table in ("outbox_attempts", "message_hits", "outbox"):
            conn.execute(
                f"DELETE FROM {table} WHERE message_id IN (SELECT value FROM json_each(?))", (listed,)
            )
        # Queued events name the message in their messageId ("<message id>:<kind>").
        for mid in ids:
            conn.execute(
                "DELETE FROM tracking_events WHERE instr(body, ?) > 0", (f'"messageId":"{mid}:'.encode(),)
            )
        return len(ids)

    # -- reading --------------------------------------------------------------------------------

    @staticmethod
    def get(conn: sqlite3.Connection, message_id: str) -> StoredMessage | None:
        """One message by id."""
        row = conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM outbox WHERE message_id = ?", (message_id,)
        ).fetchone()
        return None if row is None else message_from_row(row)

    @staticmethod
    def recent(
        conn: sqlite3.Connection,
        status: str | None = None,
        campaign_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredMessage]:
        """Messages, newest first, optionally of one status or campaign."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if campaign_id is not None:
            where.append("campaign_id = ?")
            params.append(campaign_id)
        sql = f"SELECT {MESSAGE_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = conn.execute(f"{sql} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [message_from_row(r) for r in rows]

    @staticmethod
    def counts(conn: sqlite3.Connection) -> dict[str, int]:
        """How many messages are in each status."""
        return {s: int(n) for s, n in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")}

    @staticmethod
    def attempts(conn: sqlite3.Connection, message_id: str) -> list[tuple[int, float, str, str]]:
        """A message's failed attempts: (attempt, at, outcome, detail)."""
        return [
            (int(a), float(t), str(o), str(d))
            for a, t, o, d in conn.execute(
                "SELECT attempt, at, outcome, detail FROM outbox_attempts WHERE message_id = ?"
                " ORDER BY attempt",
                (message_id,),
            )
        ]
