"""Real servers for the channel tests: an aiosmtpd SMTP server and an HTTP receiver, on free ports."""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tailor.channels.config import ChannelsConfig, EmailConfig, RulesConfig
from tailor.channels.outbox import Recipient
from tailor.channels.service import Messaging
from tailor.channels.store import transaction
from tailor.channels.templates import TemplateDefinition
from tests.conftest import free_port


@dataclass
class Received:
    """One message an SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpHandler:
    """Accepts mail; recipients in `refuse` get 550, and `tempfail` holds 451 answers per recipient."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    tempfail: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_data: Callable[[bytes], None] | None = None
    """Called with each message's bytes before it is accepted."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.tempfail.get(address, 0) > 0:
            self.tempfail[address] -= 1
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_data is not None:
            self.on_data(bytes(envelope.content))
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpHandler

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpServer("127.0.0.1", port, handler)
    controller.stop()


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """A real HTTP server that records requests and answers what `respond(n, request)` says."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.respond: Callable[[int, HttpRequest], tuple[int, bytes]] = lambda n, r: (200, b'{"ok": true}')
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = HttpRequest(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                receiver.requests.append(request)
                status, body = receiver.respond(len(receiver.requests), request)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


class ListSink:
    """Collects tracking events in memory (the tests of the event path use the real writer)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def write(self, bodies: list[bytes]) -> None:
        await asyncio.sleep(0)
        self.bodies.extend(bodies)

    def events(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(b) for b in self.bodies]


def fast_config(smtp: SmtpServer | None = None, **channels: Any) -> ChannelsConfig:
    """Channels settings for tests: a local SMTP server, quick retries, no quiet hours."""
    email_settings = EmailConfig(
        host=smtp.host if smtp else "127.0.0.1",
        port=smtp.port if smtp else 1,
        from_address="news@shop.example",
        domain="shop.example",
        bounce_address="bounces@shop.example",
        retry_base_s=0.05,
        retry_max_s=0.2,
        max_attempts=3,
        connections=4,
        timeout_s=5.0,
    )
    defaults: dict[str, Any] = {
        "base_url": "https://t.shop.example",
        "email": email_settings,
        "rules": RulesConfig(quiet_hours=False),
        "poll_ms": 20,
    }
    return ChannelsConfig(**{**defaults, **channels})


OFFER = TemplateDefinition(
    name="offer",
    channel="email",
    subject="{{ profile.first_name }}, {{ offer.discount_percent }}% off home accessories",
    html=(
        "<html><body><p>Hi {{ profile.first_name }},</p>"
        '<p><a href="{{ offer.url }}" data-link-id="hero">Shop the offer</a> with code {{ offer.code }}.</p>'
        "<p><a href='https://shop.example/lamps?utm_source=crm&amp;utm_medium=email'>Lamps</a>"
        ' <a href="mailto:help@shop.example">Help</a>'
        ' <a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
    ),
    text="Hi {{ profile.first_name }}, shop the offer: {{ offer.url }} (code {{ offer.code }})\n"
    "Unsubscribe: {{ unsubscribe_url }}\n",
)


def offer_data(name: str = "Ana") -> dict[str, Any]:
    return {
        "profile": {"first_name": name},
        "offer": {"discount_percent": 10, "code": "HOME10", "url": "https://shop.example/offer/home10"},
        "campaign_name": "Home accessories",
    }


def enqueue(messaging: Messaging, address: str, key: str | None = None, **fields: Any) -> str:
    """Enqueues one offer email in its own transaction; returns its message id."""
    conn = messaging.connect()
    try:
        with transaction(conn):
            template = fields.pop("template", "offer")
            data = fields.pop("data", offer_data())
            recipient = fields.pop("recipient", Recipient(address, profile_id=f"p_{address}"))
            done = messaging.outbox.enqueue(
                conn, key or f"k:{address}", "email", recipient, template, data, **fields
            )
    finally:
        conn.close()
    messaging.notify()
    return done.message_id


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def statuses(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT message_id, status FROM outbox"))


@pytest.fixture
def messaging_factory(tmp_path: Path) -> Iterator[Callable[..., tuple[Messaging, ListSink]]]:
    made: list[Messaging] = []

    def make(config: ChannelsConfig, **kwargs: Any) -> tuple[Messaging, ListSink]:
        sink = ListSink()
        data_dir = tmp_path / f"data{len(made)}"
        data_dir.mkdir()
        m = Messaging(data_dir, config, sink, **kwargs)
        made.append(m)
        return m, sink

    yield make
    for m in made:
        m.close()
