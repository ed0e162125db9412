"""A running Tailor with a real local SMTP server, for journey tests: people, templates, journeys, events."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import tomli_w
from starlette.testclient import TestClient

from tailor.api import create_app
from tailor.channels.templates import TemplateDefinition
from tailor.runtime import Runtime
from tests.channels.conftest import HttpReceiver, SmtpServer, receiver, smtp_server, wait_for
from tests.conftest import DataDir

__all__ = ["receiver", "smtp_server"]

OFFER_EMAIL = TemplateDefinition(
    name="offer_email",
    channel="email",
    subject="{{ profile.first_name }}, {{ offer.discount_percent }}% off until {{ offer.expires_at }}",
    html='<p>Hi {{ profile.first_name }}, use <b>{{ offer.code }}</b>: <a href="{{ offer.url }}">shop</a></p>'
    '<a href="{{ unsubscribe_url }}">unsubscribe</a>',
    text="Hi {{ profile.first_name }}, code {{ offer.code }}\n{{ unsubscribe_url }}\n",
)
PLAIN_EMAIL = TemplateDefinition(
    name="plain_email",
    channel="email",
    subject="Hello {{ profile.first_name }}",
    html='<p>Hello {{ profile.first_name }} <a href="https://shop.example/new">new in</a></p>',
    text="Hello {{ profile.first_name }}\n",
)
EVENT_EMAIL = TemplateDefinition(
    name="event_email",
    channel="email",
    subject="You left {{ event.properties.product }} in your basket",
    html="<p>{{ profile.first_name }}, {{ event.properties.product }} is waiting</p>",
    text="{{ event.properties.product }} is waiting\n",
)
OFFER_SMS = TemplateDefinition(name="offer_sms", channel="sms", body="Code {{ offer.code }}: {{ offer.url }}")
HOOK = TemplateDefinition(
    name="crm_hook",
    channel="webhook",
    payload='{"profile": "{{ profile.email }}", "journey": "{{ journey_name }}"}',
    fields={"journey_name": "the journey's name"},
)
TEMPLATES = (OFFER_EMAIL, PLAIN_EMAIL, EVENT_EMAIL, OFFER_SMS, HOOK)
OFFERS = {
    "home10": {
        "code": "HOME10",
        "title": "10% off home accessories",
        "discount_percent": 10,
        "valid_for": "3d",
        "url": "https://shop.example/home",
    }
}


def configure(data_dir: Path, smtp: SmtpServer, sms_url: str | None = None, **journeys: Any) -> None:
    """Fast loops, a local SMTP server, no quiet hours, consent not required."""
    path = data_dir / "tailor.toml"
    tree = tomllib.loads(path.read_text())
    tree["channels"] = {
        "base_url": "https://t.shop.example",
        "poll_ms": 20,
        "email": {"host": smtp.host, "port": smtp.port, "connections": 4, "domain": "shop.example"},
        "rules": {"quiet_hours": False, "frequency_cap": journeys.pop("frequency_cap", 0)},
        # Opens and clicks in tests come moments after the send; only agents mark machines here.
        "machine": {"min_human_seconds": 0.0},
    }
    if sms_url is not None:
        tree["channels"]["sms"] = {"url": sms_url, "from_number": "+447700900000"}
    tree.setdefault("privacy", {})["marketing_requires_grant"] = False
    tree.setdefault("collect", {})["load_delay_ms"] = 20
    tree.setdefault("processor", {})["interval_ms"] = 50
    tree["journeys"] = {"poll_ms": 50, **journeys}
    path.write_text(tomli_w.dumps(tree))


@dataclass
class Shop:
    """A running Tailor (in this process) with templates saved, and helpers to act as the shop's site."""

    client: TestClient
    runtime: Runtime
    smtp: SmtpServer
    admin: dict[str, str]
    open: bool = True

    def close(self) -> None:
        """Stops the server (its lifespan closes the runtime); once."""
        if self.open:
            self.open = False
            self.client.__exit__(None, None, None)

    def track(self, user: str, event: str, **properties: Any) -> None:
        r = self.client.post("/v1/track", json={"userId": user, "event": event, "properties": properties})
        assert r.status_code == 200, r.text

    def people(self, n: int, prefix: str = "u", **traits: Any) -> list[str]:
        """Identifies n people with an email and a first name; returns their user ids."""
        ids = [f"{prefix}{i}" for i in range(n)]
        batch = [
            {
                "type": "identify",
                "userId": u,
                "traits": {"email": f"{u}@example.org", "first_name": u.title(), **traits},
            }
            for u in ids
        ]
        for start in range(0, len(batch), 500):
            r = self.client.post("/v1/batch", json={"batch": batch[start : start + 500]})
            assert r.status_code == 200, r.text
        self.settle()
        return ids

    def settle(self) -> None:
        """Waits until every acknowledged event is processed and the runner has had a pass."""
        self.runtime.writer.flush()
        head = self.runtime.processor.head()
        wait_for(lambda: min(self.runtime.processor.offsets().values()) >= head, timeout=30)
        self.runtime.journeys.runner.run_once()

    def put_segment(self, body: dict[str, Any]) -> None:
        r = self.client.put(f"/api/v1/segments/{body['name']}", json=body, headers=self.admin)
        assert r.status_code == 200, r.text

    def put_journey(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.put(f"/api/v1/journeys/{body['name']}", json=body, headers=self.admin)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def profile_id(self, user: str) -> str:
        r = self.client.get("/api/v1/profiles", params={"identifier": f"user_id:{user}"}, headers=self.admin)
        assert r.status_code == 200, r.text
        return str(r.json()["profile_id"])

    def received(self) -> Counter[tuple[str, str]]:
        """(recipient, subject) -> how many times the SMTP server got it."""
        return Counter((r.rcpt_tos[0], str(r.message["Subject"])) for r in self.smtp.received)

    def mail_to(self, address: str) -> list[str]:
        """The subjects of the emails one address got, in order."""
        return [str(r.message["Subject"]) for r in self.smtp.received if r.rcpt_tos == [address]]

    def delivered(self, n: int, timeout: float = 20.0) -> None:
        wait_for(lambda: len(self.smtp.received) >= n, timeout=timeout)

    def outbox(self) -> list[tuple[str, str, str | None]]:
        conn = self.runtime.messaging.connect()
        try:
            return [
                (str(k), str(s), r)
                for k, s, r in conn.execute("SELECT idempotency_key, status, reason FROM outbox ORDER BY id")
            ]
        finally:
            conn.close()

    def instances(self, journey: str) -> list[dict[str, Any]]:
        conn = self.runtime.messaging.connect()
        try:
            cur = conn.execute("SELECT * FROM journey_instances WHERE journey = ? ORDER BY id", (journey,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()


@pytest.fixture
def shop_factory(
    data_dir: DataDir, smtp_server: SmtpServer, receiver: HttpReceiver
) -> Iterator[Callable[..., Shop]]:
    shops: list[Shop] = []

    def make(**settings: Any) -> Shop:
        sms = settings.pop("sms", False)
        configure(data_dir.path, smtp_server, receiver.url + "/sms" if sms else None, **settings)
        runtime = Runtime(data_dir.path)
        client = TestClient(create_app(runtime))
        client.__enter__()
        client.headers["X-Write-Key"] = data_dir.creds.write_key
        admin = data_dir.admin
        for t in TEMPLATES:
            r = client.post("/api/v1/templates", json=msgspec.to_builtins(t), headers=admin)
            assert r.status_code in (200, 201), r.text
        shops.append(Shop(client, runtime, smtp_server, admin))
        return shops[-1]

    yield make
    for s in shops:
        s.close()


@pytest.fixture
def shop(shop_factory: Callable[..., Shop]) -> Shop:
    return shop_factory()


HEADER = re.compile(rb"^X-Tailor-Message-Id: (msg_[0-9a-f]+)\r?$", re.MULTILINE)
