"""Validation of Segment messages: what passes, what is quarantined, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tailor.collect.validate import MessageValidator

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def check(*messages: object, implied: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    raws = [m if isinstance(m, bytes) else msgspec.json.encode(m) for m in messages]
    return MessageValidator(32 * 1024).validate("src", raws, NOW, implied_type=implied, **kw)  # type: ignore[arg-type]


def reasons(messages: list[object], implied: str | None = None) -> list[str]:
    _, rejections = check(*messages, implied=implied)
    return [r.reason for r in rejections]


def test_valid_messages_of_every_type_pass() -> None:
    rows, rejections = check(
        {"type": "track", "event": "Order Completed", "userId": "u1", "properties": {"total": 10}},
        {"type": "identify", "anonymousId": "a1", "traits": {"email": "ana@example.com"}},
        {"type": "page", "anonymousId": "a1", "name": "Home"},
        {"type": "screen", "userId": "u1", "name": "Cart"},
        {"type": "group", "userId": "u1", "groupId": "g1"},
        {"type": "alias", "userId": "u1", "previousId": "a1"},
    )
    assert rejections == []
    assert rows.type == ["track", "identify", "page", "screen", "group", "alias"]
    assert rows.properties[0] == '{"total":10}'
    assert rows.previous_id[5] == "a1"


@pytest.mark.parametrize(
    ("message", "path"),
    [
        ({"type": "track", "event": "x"}, "$.userId"),
        ({"type": "track", "userId": "u"}, "$.event"),
        ({"type": "track", "userId": "u", "event": "  "}, "$.event"),
        ({"type": "track", "userId": None, "anonymousId": "", "event": "x"}, "$.userId"),
        ({"type": "shout", "userId": "u"}, "$.type"),
        ({"type": "group", "userId": "u"}, "$.groupId"),
        ({"type": "alias", "userId": "u"}, "$.previousId"),
        ({"type": "track", "userId": "u", "event": "x", "properties": [1, 2]}, "$.properties"),
        ({"type": "identify", "userId": "u", "traits": "ana"}, "$.traits"),
        ({"type": "track", "userId": "u", "event": "x", "timestamp": "yesterday"}, "$.timestamp"),
        ({"type": "track", "userId": "u", "event": "x", "timestamp": 1700000000}, "$.timestamp"),
        ({"type": "track", "userId": {"id": 1}, "event": "x"}, "$.userId"),
        ({"type": "track", "userId": True, "event": "x"}, "$.userId"),
        ({"type": "track", "userId": "u" * 2000, "event": "x"}, "$.userId"),
        ({"type": "track", "userId": "u", "event": 5}, "$.event"),
    ],
)
def test_invalid_messages_name_the_field(message: dict[str, object], path: str) -> None:
    rows, rejections = check(message)
    assert len(rows) == 0
    assert [e.path for e in rejections[0].errors].count(path) == 1, rejections[0].reason


def test_all_errors_of_a_message_are_reported_together() -> None:
    (reason,) = reasons([{"type": "track", "userId": True, "event": 7, "timestamp": "soon", "context": []}])
    for path in ("$.userId", "$.event", "$.timestamp", "$.context"):
        assert path in reason


def test_each_message_passes_or_fails_alone() -> None:
    rows, rejections = check(
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u"},
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        {"type": "page", "anonymousId": "a"},
    )
    assert len(rows) == 2
    assert [r.index for r in rejections] == [1, 2, 3, 4]
    assert "not valid JSON" in rejections[1].reason
    assert "UTF-8" in rejections[2].reason
    assert "JSON object" in rejections[3].reason
    assert rejections[2].payload == b"\xff\xfe"


def test_integer_ids_become_strings_and_ids_are_trimmed() -> None:
    rows, _ = check({"type": "track", "userId": 42, "anonymousId": " a1 ", "event": "x"})
    assert rows.user_id == ["42"]
    assert rows.anonymous_id == ["a1"]


def test_missing_message_id_gets_one_and_hash_depends_on_source() -> None:
    rows, _ = check(
        {"type": "track", "userId": "u", "event": "x"}, {"type": "track", "userId": "u", "event": "x"}
    )
    assert rows.message_id[0] != rows.message_id[1]
    assert all(m.startswith("tailor-") for m in rows.message_id)
    other = MessageValidator(1024).validate(
        "other", [b'{"type":"track","userId":"u","event":"x","messageId":"m"}'], NOW
    )
    same = MessageValidator(1024).validate(
        "src", [b'{"type":"track","userId":"u","event":"x","messageId":"m"}'], NOW
    )
    assert other[0].dedupe_hash != same[0].dedupe_hash


def test_oversized_message_is_rejected_with_its_size() -> None:
    big = {"type": "track", "userId": "u", "event": "x", "properties": {"blob": "x" * 40_000}}
    (reason,) = reasons([big])
    assert "limit is 32768" in reason


def test_endpoint_type_is_implied_and_conflicts_are_rejected() -> None:
    rows, _ = check({"userId": "u", "event": "x"}, implied="track")
    assert rows.type == ["track"]
    (reason,) = reasons([{"type": "page", "userId": "u"}], implied="track")
    assert "this endpoint takes 'track'" in reason


def test_timestamps_with_offsets_microseconds_and_no_offset() -> None:
    rows, rejections = check(
        {"type": "track", "userId": "u", "event": "x", "timestamp": "2026-10-31T23:30:00.123456+02:00"},
        {"type": "track", "userId": "u", "event": "x", "timestamp": "2026-10-31T21:30:00"},
        {"type": "track", "userId": "u", "event": "x", "originalTimestamp": "2026-10-31T21:30:00Z"},
    )
    assert rejections == []
    first = rows.original_timestamp[0]
    assert first is not None
    assert first.astimezone(UTC) == datetime(2026, 10, 31, 21, 30, 0, 123456, tzinfo=UTC)
    assert rows.original_timestamp[1] == datetime(2026, 10, 31, 21, 30)  # naive: the writer reads it as UTC
    assert rows.original_timestamp[2] == datetime(2026, 10, 31, 21, 30, tzinfo=UTC)


def test_batch_level_sent_at_and_context_apply_to_messages_without_their_own() -> None:
    sent = NOW - timedelta(seconds=5)
    rows, _ = check(
        {"type": "track", "userId": "u", "event": "x"},
        {"type": "track", "userId": "u", "event": "x", "context": {"ip": "1.2.3.4"}},
        batch_sent_at=sent,
        batch_context=msgspec.Raw(b'{"library":{"name":"x"}}'),
    )
    assert rows.sent_at == [sent, sent]
    assert rows.context == ['{"library":{"name":"x"}}', '{"ip":"1.2.3.4"}']


def test_an_object_that_is_not_utf8_is_rejected_with_its_path() -> None:
    rows, rejections = check(
        b'{"type": "track", "userId": "u", "event": "x", "properties": {"bad": "\xff"}}',
        {"type": "track", "userId": "u", "event": "x", "properties": {"good": "\u00e9"}},
    )
    assert [(r.index, [e.path for e in r.errors]) for r in rejections] == [(0, ["$.properties"])]
    assert "not valid UTF-8" in rejections[0].reason
    assert rows.properties == ['{"good":"\u00e9"}']
