"""Webhooks and SMS to a real local HTTP receiver: signatures, retries after 500s, dead letters."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook

from tailor.channels.config import SmsConfig, WebhookConfig
from tailor.channels.outbox import Outbox, Recipient
from tailor.channels.service import Messaging
from tailor.channels.store import transaction
from tailor.channels.templates import TemplateDefinition
from tests.channels.conftest import HttpReceiver, HttpRequest, ListSink, fast_config, wait_for

pytestmark = pytest.mark.slow

Factory = Callable[..., tuple[Messaging, ListSink]]
HOOK = TemplateDefinition(
    name="order_hook",
    channel="webhook",
    payload='{"type": "order.completed", "order_id": {{ event.properties.order_id|tojson }},'
    ' "email": {{ profile.email|tojson }}}',
)
TEXT = TemplateDefinition(
    name="cart_sms",
    channel="sms",
    body="Hi {{ profile.first_name }}, your basket is waiting: https://shop.example/cart",
)
DATA = {
    "event": {"properties": {"order_id": "o-1"}},
    "profile": {"email": "ana@example.org", "first_name": "Ana"},
}


def webhook_config(**hook: float) -> WebhookConfig:
    return WebhookConfig(retry_base_s=0.05, retry_max_s=0.2, max_attempts=4, **hook)  # type: ignore[arg-type]


def send(m: Messaging, channel: str, address: str, template: str, key: str = "k") -> str:
    conn = m.connect()
    with transaction(conn):
        mid = m.outbox.enqueue(
            conn, key, channel, Recipient(address, user_id="u1"), template, DATA
        ).message_id
    conn.close()
    m.notify()
    return mid


def status(m: Messaging, mid: str) -> str:
    found = Outbox.get(m.conn, mid)
    assert found is not None
    return found.status


def test_webhooks_are_signed_per_standard_webhooks(
    messaging_factory: Factory, receiver: HttpReceiver
) -> None:
    m, sink = messaging_factory(fast_config(webhook=webhook_config()))
    m.templates.save(m.conn, HOOK)
    m.start()
    mid = send(m, "webhook", f"{receiver.url}/hooks/orders", "order_hook")
    wait_for(lambda: status(m, mid) == "delivered")
    (req,) = receiver.requests
    assert req.path == "/hooks/orders"
    assert json.loads(req.body) == {"type": "order.completed", "order_id": "o-1", "email": "ana@example.org"}
    assert req.headers["webhook-id"] == mid
    # An independent implementation of the specification verifies the signature.
    assert Webhook(m.webhook_secret).verify(req.body, req.headers) == json.loads(req.body)
    tampered = req.body.replace(b"o-1", b"o-2")
    with pytest.raises(Exception, match="No matching signature found"):
        Webhook(m.webhook_secret).verify(tampered, req.headers)
    assert m.dispatcher is not None
    assert m.dispatcher.wait_idle()
    assert [e["event"] for e in sink.events()] == ["Webhook Delivered"]
    assert sink.events()[0]["userId"] == "u1"


def test_webhooks_retry_after_500s_with_fresh_signatures(
    messaging_factory: Factory, receiver: HttpReceiver
) -> None:
    receiver.respond = lambda n, r: (500, b"{}") if n <= 2 else (200, b"{}")
    m, _ = messaging_factory(fast_config(webhook=webhook_config()))
    m.templates.save(m.conn, HOOK)
    m.start()
    mid = send(m, "webhook", f"{receiver.url}/h", "order_hook")
    wait_for(lambda: status(m, mid) == "delivered")
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {mid}  # receivers dedupe on it
    for r in receiver.requests:
        Webhook(m.webhook_secret).verify(r.body, r.headers)
    attempts = Outbox.attempts(m.conn, mid)
    assert [(a, o) for a, _, o, _ in attempts] == [(1, "retry"), (2, "retry")]
    assert "answered 500" in attempts[0][3]


def test_webhooks_end_dead_after_repeated_failure(messaging_factory: Factory, receiver: HttpReceiver) -> None:
    receiver.respond = lambda n, r: (503, b'{"error": "down"}')
    m, sink = messaging_factory(fast_config(webhook=webhook_config()))
    m.templates.save(m.conn, HOOK)
    m.start()
    mid = send(m, "webhook", f"{receiver.url}/h", "order_hook")
    wait_for(lambda: status(m, mid) == "dead")
    assert len(receiver.requests) == 4
    found = Outbox.get(m.conn, mid)
    assert found is not None
    assert found.reason is not None
    assert found.reason.endswith('answered 503: {"error": "down"}; gave up after 4 attempts')
    assert m.dispatcher is not None
    assert m.dispatcher.wait_idle()
    assert [e["event"] for e in sink.events()] == ["Webhook Failed"]


def test_a_client_error_is_not_retried(messaging_factory: Factory, receiver: HttpReceiver) -> None:
    receiver.respond = lambda n, r: (400, b'{"error": "bad"}')
    m, _ = messaging_factory(fast_config(webhook=webhook_config()))
    m.templates.save(m.conn, HOOK)
    m.start()
    mid = send(m, "webhook", f"{receiver.url}/h", "order_hook")
    wait_for(lambda: status(m, mid) == "failed")
    assert len(receiver.requests) == 1


def sms_config(receiver: HttpReceiver, **fields: object) -> SmsConfig:
    base: dict[str, object] = {
        "url": f"{receiver.url}/2010-04-01/Accounts/AC1/Messages.json",
        "from_number": "+447700900999",
        "username": "AC1",
        "password": "secret",
        "retry_base_s": 0.05,
        "retry_max_s": 0.2,
        "max_attempts": 3,
    }
    return SmsConfig(**{**base, **fields})  # type: ignore[arg-type]


def test_sms_through_a_twilio_shaped_provider(messaging_factory: Factory, receiver: HttpReceiver) -> None:
    answers = iter([(500, b"{}"), (201, b'{"sid": "SM123", "status": "queued"}')])
    receiver.respond = lambda n, r: next(answers)
    m, sink = messaging_factory(fast_config(sms=sms_config(receiver)))
    m.templates.save(m.conn, TEXT)
    m.start()
    mid = send(m, "sms", "+447700900123", "cart_sms")
    wait_for(lambda: status(m, mid) == "sent")
    req: HttpRequest = receiver.requests[-1]
    assert req.path == "/2010-04-01/Accounts/AC1/Messages.json"
    assert req.headers["authorization"] == "Basic QUMxOnNlY3JldA=="
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(req.body.decode()))
    assert (form["To"], form["From"]) == ("+447700900123", "+447700900999")
    assert form["Body"].startswith("Hi Ana, your basket is waiting: https://t.shop.example/t/c/")
    token = form["Body"].rsplit("/", 1)[1]
    assert m.links.read_click(token).url == "https://shop.example/cart"
    found = Outbox.get(m.conn, mid)
    assert found is not None
    assert found.provider_id == "SM123"
    assert m.dispatcher is not None
    assert m.dispatcher.wait_idle()
    (sent,) = sink.events()
    assert sent["event"] == "SMS Sent"
    assert sent["context"]["traits"] == {"phone": "+447700900123"}
    assert sent["properties"]["provider_message_id"] == "SM123"
    # The provider's delivery receipt comes back to the status callback it was given.
    callback = form["StatusCallback"]
    assert callback.startswith("https://t.shop.example/t/s/")
    assert m.tracker.sms_receipt(callback.rsplit("/", 1)[1], "delivered", None, True, False) == "delivered"
    assert status(m, mid) == "delivered"
    assert m.dispatcher.wait_idle()
    assert [e["event"] for e in sink.events()] == ["SMS Sent", "SMS Delivered"]


def test_sms_json_provider_with_a_bearer_token(messaging_factory: Factory, receiver: HttpReceiver) -> None:
    receiver.respond = lambda n, r: (200, b'{"data": {"id": "abc"}}')
    config = sms_config(
        receiver, format="json", username=None, bearer_token="tok", to_field="to", from_field="from",
        body_field="text", id_field="data.id", extra_fields={"channel": "sms"}, track_links=False,
        status_callback_field=None,
    )  # fmt: skip
    m, _ = messaging_factory(fast_config(sms=config))
    m.templates.save(m.conn, TEXT)
    m.start()
    mid = send(m, "sms", "+447700900123", "cart_sms")
    wait_for(lambda: status(m, mid) == "sent")
    (req,) = receiver.requests
    assert req.headers["authorization"] == "Bearer tok"
    assert json.loads(req.body) == {
        "channel": "sms",
        "to": "+447700900123",
        "from": "+447700900999",
        "text": "Hi Ana, your basket is waiting: https://shop.example/cart",
    }
    found = Outbox.get(m.conn, mid)
    assert found is not None
    assert found.provider_id == "abc"


def test_a_webhook_is_marked_handed_over_before_the_receiver_has_its_body(
    messaging_factory: Factory, receiver: HttpReceiver
) -> None:
    m, _ = messaging_factory(fast_config(webhook=webhook_config()))
    m.templates.save(m.conn, HOOK)
    seen: dict[str, float | None] = {}

    def check(n: int, r: HttpRequest) -> tuple[int, bytes]:
        # A connection per request: the receiver answers requests on several threads, and a
        # shared connection's open read would show them all the snapshot of whichever came first.
        reader = m.connect()
        try:
            row = reader.execute(
                "SELECT handed_over_at FROM outbox WHERE message_id = ?", (r.headers["webhook-id"],)
            ).fetchone()
        finally:
            reader.close()
        seen[r.headers["webhook-id"]] = row[0]
        return 200, b"{}"

    receiver.respond = check
    m.start()
    ids = [send(m, "webhook", f"{receiver.url}/h", "order_hook", key=f"k{i}") for i in range(10)]
    wait_for(lambda: all(status(m, mid) == "delivered" for mid in ids))
    assert set(seen) == set(ids)
    assert all(at is not None for at in seen.values()), seen
