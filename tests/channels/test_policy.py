"""Send-time checks: quiet hours in the recipient's zone, frequency caps across channels, consent, backoff."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tailor.channels import lifecycle
from tailor.channels.lifecycle import RetryPolicy
from tailor.channels.outbox import Outbox, OutboxMessage, Recipient
from tailor.channels.policy import (
    ConsentGate,
    ConsentRequest,
    ConsentVerdict,
    Defer,
    FrequencyCap,
    QuietHours,
    Suppress,
    SuppressionList,
    decide,
)
from tailor.channels.store import MESSAGING_FILE, connect, create_schema, transaction
from tailor.channels.templates import TemplateDefinition, TemplateStore


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    c = connect(tmp_path / MESSAGING_FILE)
    create_schema(c)
    TemplateStore().save(c, TemplateDefinition(name="t", channel="sms", body="hi"))
    TemplateStore().save(c, TemplateDefinition(name="e", channel="email", subject="s", html="h", text="t"))
    return c


def put(conn: sqlite3.Connection, messages: list[OutboxMessage], now: float) -> None:
    with transaction(conn):
        Outbox(clock=lambda: now).enqueue_many(conn, messages)


def sms(
    key: str, phone: str, profile: str | None = None, tz: str | None = None, category: str = "marketing"
) -> OutboxMessage:
    return OutboxMessage(
        key, "sms", Recipient(phone, profile_id=profile, timezone=tz), "t", category=category
    )


def test_quiet_hours_defer_to_the_local_morning() -> None:
    quiet = QuietHours(time(21, 0), time(8, 0), "Europe/London")
    # 23:30 in London is quiet until 08:00 London the next morning.
    assert quiet.quiet_until(at("2026-07-01T23:30", "Europe/London"), None) == at(
        "2026-07-02T08:00", "Europe/London"
    )
    # 05:00 UTC is 01:00 in New York (quiet) but 06:00 in London... also quiet; 10:00 in Singapore is not.
    now = at("2026-07-01T05:00")
    assert quiet.quiet_until(now, "America/New_York") == at("2026-07-01T08:00", "America/New_York")
    assert quiet.quiet_until(now, "Asia/Singapore") is None
    # The night the clocks go forward in London (29 March 2026): 08:00 local is still 08:00 local.
    assert quiet.quiet_until(at("2026-03-28T22:00", "Europe/London"), None) == at(
        "2026-03-29T08:00", "Europe/London"
    )
    daytime = QuietHours(time(12, 0), time(14, 0), "UTC")
    assert daytime.quiet_until(at("2026-07-01T13:00"), None) == at("2026-07-01T14:00")
    assert daytime.quiet_until(at("2026-07-01T14:00"), None) is None


def test_quiet_hours_spare_transactional_messages(conn: sqlite3.Connection) -> None:
    now = at("2026-07-01T23:30", "Europe/London")
    put(conn, [sms("m", "+447700900001"), sms("t", "+447700900002", category="transactional")], now)
    batch = lifecycle.due(conn, now, 10, "sms")
    verdicts = decide([QuietHours(time(21, 0), time(8, 0), "Europe/London")], conn, batch, now)
    by_key = {m.key: v for m, v in zip(batch, verdicts, strict=True)}
    assert by_key["t"] is None
    assert by_key["m"] == Defer(at("2026-07-02T08:00", "Europe/London"), "quiet hours in Europe/London")
    with transaction(conn):
        lifecycle.settle_verdicts(conn, "run", batch, verdicts, now)
    assert [m.key for m in lifecycle.due(conn, now, 10, "sms")] == []
    assert [m.key for m in lifecycle.due(conn, at("2026-07-02T08:00", "Europe/London"), 10, "sms")] == ["m"]


def test_frequency_cap_counts_across_channels_and_within_the_batch(conn: sqlite3.Connection) -> None:
    now = at("2026-07-01T12:00")
    # Earlier today p1 got an email.
    put(conn, [OutboxMessage("old", "email", Recipient("a@example.org", profile_id="p1"), "e")], now - 3600)
    conn.execute(
        "UPDATE outbox SET status = 'delivered', sent_at = ? WHERE idempotency_key = 'old'", (now - 3600,)
    )
    put(
        conn,
        [sms("a", "+447700900001", "p1"), sms("b", "+447700900001", "p2"), sms("c", "+447700900002", "p2")],
        now,
    )
    put(
        conn,
        [sms("d", "+447700900003", "p3", category="transactional"), sms("e", "+447700900003", "p3")],
        now,
    )
    batch = lifecycle.due(conn, now, 10, "sms")
    verdicts = decide([FrequencyCap(1, 86_400)], conn, batch, now)
    by_key = {m.key: v for m, v in zip(batch, verdicts, strict=True)}
    cap = Suppress("frequency cap: 1 marketing messages in 86400 s")
    assert by_key == {"a": cap, "b": None, "c": cap, "d": None, "e": None}


class Refuses:
    """A consent check that refuses one profile, as the privacy part would answer."""

    def __init__(self) -> None:
        self.asked: list[ConsentRequest] = []

    def check(self, requests: Sequence[ConsentRequest]) -> list[ConsentVerdict]:
        self.asked.extend(requests)
        return [
            ConsentVerdict(False, "no sms_marketing consent")
            if r.profile_id == "p2"
            else ConsentVerdict(True)
            for r in requests
        ]


def test_consent_and_the_suppression_list_come_first(conn: sqlite3.Connection) -> None:
    now = at("2026-07-01T12:00")
    put(
        conn,
        [sms("a", "+447700900001", "p1"), sms("b", "+447700900002", "p2"), sms("c", "+447700900003", "p3")],
        now,
    )
    conn.execute(
        "INSERT INTO suppressions VALUES"
        " ('sms', '+447700900003', 'unsubscribed with the one-click link', NULL, 0)"
    )
    consent = Refuses()
    batch = lifecycle.due(conn, now, 10, "sms")
    verdicts = decide([SuppressionList(), ConsentGate(consent), FrequencyCap(5, 60)], conn, batch, now)
    assert verdicts == [
        None,
        Suppress("consent: no sms_marketing consent"),
        Suppress("suppression list: unsubscribed with the one-click link"),
    ]
    # The suppressed address was not even asked about.
    assert [(r.profile_id, r.purpose) for r in consent.asked] == [
        ("p1", "sms_marketing"),
        ("p2", "sms_marketing"),
    ]
    with transaction(conn):
        claimed = lifecycle.settle_verdicts(conn, "run", batch, verdicts, now)
    assert [m.key for m in claimed] == ["a"]
    stored = {m.key: (m.status, m.reason) for m in Outbox.recent(conn)}
    assert stored["b"] == ("suppressed", "consent: no sms_marketing consent")
    assert stored["a"] == ("sending", None)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_s=10, max_s=100)
    rng = random.Random(7)
    for attempt, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        waits = [policy.delay(attempt, rng) for _ in range(200)]
        assert full / 2 <= min(waits)
        assert max(waits) <= full
        assert max(waits) - min(waits) > full / 4  # jittered, not constant


def test_recovery_requeues_what_was_not_handed_over_and_counts_the_rest(conn: sqlite3.Connection) -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    put(conn, [sms("a", "+447700900001"), sms("b", "+447700900002")], now)
    with transaction(conn):
        batch = lifecycle.due(conn, now, 10, "sms")
        lifecycle.settle_verdicts(conn, "run", batch, [None, None], now)
    lifecycle.handed_over(conn, batch[1].message_id, now + 1)
    # The process dies here: one message was never handed over, one was.
    assert lifecycle.recover(conn, now + 5) == (1, 1)
    stored = {m.key: m for m in Outbox.recent(conn)}
    assert stored["a"].status == "queued"
    assert (stored["b"].status, stored["b"].reason) == ("sent", lifecycle.UNCONFIRMED)
    (event,) = conn.execute("SELECT body FROM tracking_events").fetchall()
    assert b'"SMS Sent"' in event[0]
    assert b'"confirmed":false' in event[0]


def test_forget_deletes_a_persons_messages_and_their_traces(conn: sqlite3.Connection) -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    put(
        conn,
        [sms("a", "+447700900001", "p1"), sms("b", "+447700900002", "p2"), sms("c", "+447700900003")],
        now,
    )
    with transaction(conn):
        batch = lifecycle.due(conn, now, 10, "sms")
        lifecycle.settle_verdicts(conn, "run", batch, [None] * 3, now)
    for m in batch:
        lifecycle.handed_over(conn, m.message_id, now)
    lifecycle.recover(conn, now)  # queues a Sent event per message
    with transaction(conn):
        assert Outbox.forget(conn, ["p1"], ["+447700900003"]) == 2
    assert [m.key for m in Outbox.recent(conn)] == ["b"]
    (body,) = conn.execute("SELECT body FROM tracking_events").fetchone()
    assert b"+447700900002" in body


def test_state_offset_and_outbox_commit_together_or_not_at_all(conn: sqlite3.Connection) -> None:
    """The journey runtime's contract: its state, its event-log offset and its messages in one transaction."""
    from tailor.channels import advance_offset, consumer_offset

    conn.execute("CREATE TABLE IF NOT EXISTS journey_state (instance TEXT PRIMARY KEY, step TEXT)")
    now = datetime(2026, 7, 1, tzinfo=UTC).timestamp()

    def apply_batch(hi: int, fail: bool = False) -> None:
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO journey_state VALUES ('i1', 'sent_reminder')")
            Outbox(clock=lambda: now).enqueue_many(conn, [sms("journey:cart:i1:reminder", "+447700900001")])
            advance_offset(conn, "journeys", hi)
            if fail:
                raise RuntimeError("the process dies before COMMIT")

    with pytest.raises(RuntimeError):
        apply_batch(120, fail=True)
    assert consumer_offset(conn, "journeys") == 0
    assert Outbox.counts(conn) == {}
    assert conn.execute("SELECT count(*) FROM journey_state").fetchone()[0] == 0
    apply_batch(120)
    apply_batch(120)  # the same events replayed: the same key, still one message
    assert consumer_offset(conn, "journeys") == 120
    assert Outbox.counts(conn) == {"queued": 1}
    with pytest.raises(ValueError, match="cannot go back"), transaction(conn):
        advance_offset(conn, "journeys", 100)
