"""Send-time checks: suppression list, consent, quiet hours and frequency caps, as ordered hooks.

The dispatcher asks every check about a whole claimed batch at once, inside the transaction that
claims it, so that a cap counts the messages of the same batch too. The first check that does not
answer "send" decides: a suppression is recorded on the message with its reason; a deferral moves
its next attempt to the given time.
"""

from __future__ import annotations

import sqlite3
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Protocol

from tailor.channels.outbox import StoredMessage

SEND = None
"""The verdict of a check that lets a message go."""


@dataclass(frozen=True)
class Suppress:
    """Do not send this message; `reason` is kept on it."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Send this message no earlier than `until` (epoch seconds)."""

    until: float
    reason: str


Verdict = Suppress | Defer | None


class SendCheck(Protocol):
    """A hook asked before messages are sent; answers one verdict per message, in order."""

    name: str

    def check(self, conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float) -> list[Verdict]:
        """The verdict for each message of the batch (`SEND` lets it go)."""
        ...


@dataclass(frozen=True)
class ConsentRequest:
    """What a consent check is asked: may this person be sent this kind of message on this channel?"""

    profile_id: str | None
    channel: str
    address: str
    purpose: str
    """`email_marketing`, `sms_marketing`, `webhook_marketing`, or `<channel>_transactional`."""
    message_id: str


@dataclass(frozen=True)
class ConsentVerdict:
    """A consent answer: allowed, or suppressed with the reason (e.g. "no email_marketing consent")."""

    allowed: bool
    reason: str | None = None


class ConsentCheck(Protocol):
    """Consent and subscriptions, answered by the privacy part of Tailor for a batch of requests."""

    def check(self, requests: Sequence[ConsentRequest]) -> Sequence[ConsentVerdict]:
        """One verdict per request, in order."""
        ...


class ConsentGate:
    """Adapts a ConsentCheck to a SendCheck: a refusal suppresses the message with its reason."""

    name = "consent"

    def __init__(self, consent: ConsentCheck) -> None:
        self.consent = consent

    def check(self, conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float) -> list[Verdict]:
        requests = [
            ConsentRequest(
                m.recipient.profile_id,
                m.channel,
                m.recipient.address,
                f"{m.channel}_{m.category}",
                m.message_id,
            )
            for m in batch
        ]
        answers = list(self.consent.check(requests))
        if len(answers) != len(requests):
            raise ValueError(f"the consent check answered {len(answers)} of {len(requests)} requests")
        return [SEND if a.allowed else Suppress(f"consent: {a.reason or 'not allowed'}") for a in answers]


class SuppressionList:
    """The channel's own list of addresses never to send to: hard bounces and unsubscribes."""

    name = "suppression_list"

    def check(self, conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float) -> list[Verdict]:
        from tailor.channels.suppression import hashed_address, suppression_key

        found: dict[tuple[str, str], str] = {}
        by_channel: dict[str, set[str]] = {}
        for m in batch:
            by_channel.setdefault(m.channel, set()).add(m.recipient.address)
        secret = suppression_key(conn)
        # An erased person's entries are kept as keyed hashes: look for those too.
        hashed = {hashed_address(conn, a, secret): a for addresses in by_channel.values() for a in addresses}
        for channel, addresses in by_channel.items():
            listed = [*addresses, *(h for h, a in hashed.items() if a in addresses)]
            for start in range(0, len(listed), 500):
                part = listed[start : start + 500]
                marks = ", ".join("?" * len(part))
                for address, reason in conn.execute(
                    f"SELECT address, reason FROM suppressions WHERE channel = ? AND address IN ({marks})",
                    (channel, *part),
                ):
                    found[(channel, hashed.get(address, address))] = reason
        return [
            Suppress(f"suppression list: {found[key]}")
            if (key := (m.channel, m.recipient.address)) in found
            else SEND
            for m in batch
        ]


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def known_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows."""
    return _zone(name) is not None


class QuietHours:
    """Defers marketing messages that would arrive at night in the recipient's time zone."""

    name = "quiet_hours"

    def __init__(self, start: time, end: time, default_timezone: str = "UTC") -> None:
        if _zone(default_timezone) is None:
            raise ValueError(f"unknown time zone {default_timezone!r}")
        self.start, self.end, self.default_timezone = start, end, default_timezone

    def quiet_until(self, now: float, timezone: str | None) -> float | None:
        """The end of the quiet period `now` falls in, for that zone, or None outside it."""
        zone = _zone(timezone or self.default_timezone) or _zone(self.default_timezone)
        local = datetime.fromtimestamp(now, zone)
        t = local.time()
        wraps = self.start > self.end  # 21:00-08:00 spans midnight
        inside = (t >= self.start or t < self.end) if wraps else (self.start <= t < self.end)
        if not inside:
            return None
        end_day = local.date() + timedelta(days=1) if wraps and t >= self.start else local.date()
        # Built as a local wall time, so a daylight-saving change in the night is respected.
        return datetime.combine(end_day, self.end, zone).timestamp()

    def check(self, conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for m in batch:
            until = None if m.category != "marketing" else self.quiet_until(now, m.recipient.timezone)
            zone = m.recipient.timezone or self.default_timezone
            verdicts.append(SEND if until is None else Defer(until, f"quiet hours in {zone}"))
        return verdicts


class FrequencyCap:
    """At most `limit` marketing messages per person in `window_s`, across every channel and journey."""

    name = "frequency_cap"

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a frequency cap needs limit >= 1 and a positive window")
        self.limit, self.window_s = limit, window_s

    def check(self, conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float) -> list[Verdict]:
        people = list({_person(m) for m in batch if m.category == "marketing"})
        counts: Counter[str] = Counter()
        for start in range(0, len(people), 500):
            part = people[start : start + 500]
            marks = ", ".join("?" * len(part))
            # Two queries, so each uses its partial index: those sent in the window, and those in
            # flight but not yet handed over (they count as sent: they will be within moments).
            for sql, extra in (
                ("sent_at >= ?", (now - self.window_s,)),
                ("status = 'sending' AND sent_at IS NULL", ()),
            ):
                counts.update(
                    dict(
                        conn.execute(
                            f"SELECT person_key, count(*) FROM outbox WHERE {sql} AND person_key IN ({marks})"
                            " AND category = 'marketing' GROUP BY person_key",
                            (*extra, *part),
                        ).fetchall()
                    )
                )
        verdicts: list[Verdict] = []
        for m in batch:
            if m.category != "marketing":
                verdicts.append(SEND)
                continue
            person = _person(m)
            if counts[person] >= self.limit:
                verdicts.append(
                    Suppress(f"frequency cap: {self.limit} marketing messages in {self.window_s:g} s")
                )
            else:
                counts[person] += 1  # later messages of this batch see this one
                verdicts.append(SEND)
        return verdicts


def _person(m: StoredMessage) -> str:
    return m.recipient.profile_id or f"{m.channel}:{m.recipient.address}"


def decide(
    checks: Sequence[SendCheck], conn: sqlite3.Connection, batch: Sequence[StoredMessage], now: float
) -> list[Verdict]:
    """Each message's verdict: the first check that does not answer SEND decides."""
    verdicts: list[Verdict] = [SEND] * len(batch)
    open_ = list(range(len(batch)))
    for check in checks:
        if not open_:
            break
        answers = check.check(conn, [batch[i] for i in open_], now)
        if len(answers) != len(open_):
            raise ValueError(f"send check {check.name!r} answered {len(answers)} of {len(open_)} messages")
        still = []
        for i, verdict in zip(open_, answers, strict=True):
            if verdict is SEND:
                still.append(i)
            else:
                verdicts[i] = verdict
        open_ = still
    return verdicts
