"""Email to a real local SMTP server: MIME, unsubscribe headers, tracked links, bounces and retries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tailor.channels.outbox import Outbox, Recipient
from tailor.channels.service import Messaging
from tailor.channels.templates import TemplateDefinition
from tests.channels.conftest import OFFER, ListSink, SmtpServer, enqueue, fast_config, offer_data, wait_for

pytestmark = pytest.mark.slow

Factory = Callable[..., tuple[Messaging, ListSink]]


def started(factory: Factory, smtp: SmtpServer, **config: Any) -> tuple[Messaging, ListSink]:
    m, sink = factory(fast_config(smtp, **config))
    m.templates.save(m.conn, OFFER)
    m.start()
    return m, sink


def finished(m: Messaging) -> None:
    assert m.dispatcher is not None
    assert m.dispatcher.wait_idle(20), "the dispatcher did not settle"


def test_delivers_real_mime_with_unsubscribe_headers_and_tracked_links(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    m, sink = started(messaging_factory, smtp_server)
    mid = enqueue(
        m, "ana@example.org", campaign_id="home_2026", journey_id="j1", step_id="s1", variant_id="A"
    )
    finished(m)
    (got,) = smtp_server.received
    assert got.rcpt_tos == ["ana@example.org"]
    assert got.mail_from == f"bounces+{mid}@shop.example"  # VERP
    msg = got.message
    assert msg["Subject"] == "Ana, 10% off home accessories"
    assert msg["Message-ID"] == f"<{mid}@shop.example>"
    assert msg["X-Tailor-Message-Id"] == mid
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    unsubscribe = re.fullmatch(r"<(https://t\.shop\.example/t/u/[^>]+)>", msg["List-Unsubscribe"])
    assert unsubscribe is not None
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert m.links.read_unsubscribe(unsubscribe.group(1).rsplit("/", 1)[1]) == mid

    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    hrefs = re.findall(r'href="([^"]+)"', html)
    clicks = [m.links.read_click(h.rsplit("/", 1)[1]) for h in hrefs if "/t/c/" in h]
    targets = {c.link_id: c.url for c in clicks}
    assert targets["hero"] == "https://shop.example/offer/home10"
    assert targets["link_2"] == "https://shop.example/lamps?utm_source=crm&utm_medium=email"
    assert targets["_hp"] == "https://t.shop.example/"  # the invisible honeypot link
    assert 'href="mailto:help@shop.example"' in html
    assert f'href="{unsubscribe.group(1)}"' in html  # the unsubscribe link itself is not redirected
    assert re.search(r'<img src="https://t\.shop\.example/t/o/[^"]+\.gif" width="1" height="1"', html)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://t.shop.example/t/c/" in text
    assert "Unsubscribe: https://t.shop.example/t/u/" in text

    stored = Outbox.get(m.conn, mid)
    assert stored is not None
    assert stored.status == "delivered"
    assert stored.reply == "250 2.0.0 Ok: queued"
    names = [e["event"] for e in sink.events()]
    assert names == ["Email Sent", "Email Delivered"]
    sent = sink.events()[0]
    assert sent["messageId"] == f"{mid}:sent"
    assert sent["anonymousId"] == "p_ana@example.org"
    assert sent["context"]["traits"] == {"email": "ana@example.org"}
    props = sent["properties"]
    assert props["message_id"] == props["email_id"] == mid
    assert (props["campaign_id"], props["journey_id"], props["step_id"], props["variant_id"]) == (
        "home_2026",
        "j1",
        "s1",
        "A",
    )
    assert props["campaign_name"] == "Home accessories"
    assert props["email_subject"] == msg["Subject"]


def test_the_same_key_twice_is_one_message(messaging_factory: Factory, smtp_server: SmtpServer) -> None:
    m, _ = started(messaging_factory, smtp_server)
    first = enqueue(m, "ana@example.org", key="journey:1:step:2")
    second = enqueue(m, "ana@example.org", key="journey:1:step:2")
    finished(m)
    assert first == second
    assert len(smtp_server.received) == 1
    assert Outbox.counts(m.conn) == {"delivered": 1}


def test_a_refused_recipient_bounces_and_is_suppressed_afterwards(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.refuse.add("gone@example.org")
    m, sink = started(messaging_factory, smtp_server)
    mid = enqueue(m, "gone@example.org", key="a")
    finished(m)
    stored = Outbox.get(m.conn, mid)
    assert stored is not None
    assert stored.status == "bounced"
    assert stored.reason is not None
    assert "550 5.1.1" in stored.reason
    assert "User unknown" in stored.reason
    (bounced,) = sink.events()
    assert bounced["event"] == "Email Bounced"
    assert bounced["properties"]["bounce_type"] == "hard"
    assert bounced["properties"]["smtp_code"] == 550
    later = enqueue(m, "gone@example.org", key="b")
    finished(m)
    again = Outbox.get(m.conn, later)
    assert again is not None
    assert again.status == "suppressed"
    assert again.reason is not None
    assert again.reason.startswith("suppression list: hard bounce: recipient refused: 550")
    assert smtp_server.received == []


def test_temporary_failures_are_retried_then_delivered(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.tempfail["slow@example.org"] = 2
    m, _ = started(messaging_factory, smtp_server)
    mid = enqueue(m, "slow@example.org")
    wait_for(lambda: (s := Outbox.get(m.conn, mid)) is not None and s.status == "delivered")
    assert len(smtp_server.received) == 1
    attempts = Outbox.attempts(m.conn, mid)
    assert [(a, outcome) for a, _, outcome, _ in attempts] == [(1, "retry"), (2, "retry")]
    assert all("451 4.3.0" in detail for *_, detail in attempts)
    assert attempts[1][1] > attempts[0][1]


def test_repeated_failure_ends_dead_with_the_reason(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.tempfail["never@example.org"] = 100
    m, sink = started(messaging_factory, smtp_server)
    mid = enqueue(m, "never@example.org")
    wait_for(lambda: (s := Outbox.get(m.conn, mid)) is not None and s.status == "dead")
    finished(m)
    stored = Outbox.get(m.conn, mid)
    assert stored is not None
    assert stored.attempts == 3
    assert stored.reason is not None
    assert stored.reason.endswith("gave up after 3 attempts")
    assert [e["event"] for e in sink.events()] == ["Email Failed"]


def test_a_template_error_at_send_time_fails_only_that_message(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    m, sink = started(messaging_factory, smtp_server)
    basket = TemplateDefinition(
        name="basket",
        channel="email",
        subject="Your basket",
        html="<p>{{ cart.total }}</p>",
        text="{{ cart.total }}",
        fields={"cart.total": "number"},
    )
    m.templates.save(m.conn, basket)
    bad = enqueue(m, "a@example.org", key="bad", template="basket", data={"cart": {}})
    good = enqueue(m, "b@example.org", key="good")
    finished(m)
    failed = Outbox.get(m.conn, bad)
    assert failed is not None
    assert failed.status == "failed"
    undefined = "undefined: 'dict object' has no attribute 'total'"
    assert failed.reason == f"template error: html:1: {undefined}; text:1: {undefined}"
    assert (Outbox.get(m.conn, good) or failed).status == "delivered"
    assert [r.rcpt_tos for r in smtp_server.received] == [["b@example.org"]]
    assert "Email Failed" in [e["event"] for e in sink.events()]


def test_an_unreachable_server_is_retried(messaging_factory: Factory) -> None:
    m, _ = messaging_factory(fast_config(None))
    m.templates.save(m.conn, OFFER)
    m.start()
    mid = enqueue(m, "ana@example.org")
    wait_for(lambda: (s := Outbox.get(m.conn, mid)) is not None and s.status == "dead")
    stored = Outbox.get(m.conn, mid)
    assert stored is not None
    assert stored.reason is not None
    assert "cannot connect to 127.0.0.1:1" in stored.reason


def test_invalid_messages_are_refused_at_enqueue_with_every_problem(messaging_factory: Factory) -> None:
    from tailor.channels.exceptions import OutboxError
    from tailor.channels.store import transaction

    m, _ = messaging_factory(fast_config(None))
    m.templates.save(m.conn, OFFER)
    conn = m.connect()
    with pytest.raises(OutboxError) as e, transaction(conn):
        m.outbox.enqueue(
            conn, "k", "email", Recipient("not-an-address", timezone="Mars/Olympus"), "nope", offer_data()
        )
    assert e.value.errors == [
        "[0] recipient.address: 'not-an-address' is not an email address",
        "[0] recipient.timezone: unknown time zone 'Mars/Olympus'",
        "[0] template: no template named 'nope' is saved",
    ]
    with pytest.raises(OutboxError, match="inside the caller's transaction"):
        m.outbox.enqueue(conn, "k", "email", Recipient("a@example.org"), "offer", offer_data())
    assert Outbox.counts(conn) == {}


def test_a_message_is_marked_handed_over_before_the_server_has_it(
    messaging_factory: Factory, smtp_server: SmtpServer
) -> None:
    """The exactly-once rule: by the time the server can act on a message, the mark is committed."""
    m, _ = started(messaging_factory, smtp_server)
    seen: dict[str, float | None] = {}
    reader = m.connect()

    def check(data: bytes) -> None:
        mid = re.search(rb"X-Tailor-Message-Id: (\S+)", data)
        assert mid is not None
        row = reader.execute(
            "SELECT handed_over_at FROM outbox WHERE message_id = ?", (mid.group(1).decode(),)
        )
        seen[mid.group(1).decode()] = row.fetchone()[0]

    smtp_server.handler.on_data = check
    ids = [enqueue(m, f"p{i}@example.org") for i in range(20)]
    finished(m)
    assert set(seen) == set(ids)
    assert all(at is not None for at in seen.values()), seen
