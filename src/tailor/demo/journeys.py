"""The demo's campaigns: a behaviour-targeted offer with a reminder before it expires, and cart abandonment.

Both run as journeys in the demo's server against its local SMTP server (`Mailbox`), with waits of
seconds instead of days so they finish. The synthetic people answer as people do: some open, fewer
click, some buy — more of those who got the offer than of the holdout and control group, so the
results table has a lift worth testing. Opens and clicks go through the real tracking links, and
orders through /v1/track, like everything else.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from rich.console import Console

from tailor.channels.templates import TemplateDefinition
from tailor.demo.mailbox import Mailbox
from tailor.runtime import Runtime

CAMPAIGN_IDS = "demo-campaign:"
"""The prefix of the messageIds of what the synthetic people do during the campaigns (stable, so a
second run of the demo in the same directory stores none of it twice)."""
HOME = "home_accessories_offer"
CART = "cart_abandonment"
OFFER_VALID_S = 12
REMINDER_BEFORE_S = 6
CART_TIMEOUT_S = 3
HUMAN_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"
_TRACKED = re.compile(r"https?://[^\"'\s]+?(/t/[co]/[A-Za-z0-9_.\-]+)")

TEMPLATES = [
    TemplateDefinition(
        name="home_offer",
        channel="email",
        subject="{{ profile.first_name or 'Hello' }}, {{ offer.discount_percent }}% off home accessories",
        html="<p>Hi {{ profile.first_name }},</p><p>You were looking at home accessories, so here is"
        " {{ offer.discount_percent }}% off them with code <b>{{ offer.code }}</b>"
        " until {{ offer.expires_at }}.</p>"
        '<p><a href="{{ offer.url }}">Shop home accessories</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        text="Hi {{ profile.first_name }}, {{ offer.discount_percent }}% off home accessories with code"
        " {{ offer.code }}: {{ offer.url }}\nUnsubscribe: {{ unsubscribe_url }}\n",
    ),
    TemplateDefinition(
        name="home_reminder",
        channel="email",
        subject="Last chance: your {{ offer.discount_percent }}% off ends soon",
        html="<p>Hi {{ profile.first_name }}, code <b>{{ offer.code }}</b> ends at"
        " {{ offer.expires_at }}.</p>"
        '<p><a href="{{ offer.url }}">Use it now</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        text="Code {{ offer.code }} ends at {{ offer.expires_at }}: {{ offer.url }}\n{{ unsubscribe_url }}\n",
    ),
    TemplateDefinition(
        name="cart_reminder",
        channel="email",
        subject="You left {{ event.properties.name }} in your basket",
        html="<p>Hi {{ profile.first_name }}, {{ event.properties.name }} (£{{ event.properties.price }})"
        ' is still in your basket.</p><p><a href="https://hhale.example/basket">Back to your basket</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        text="{{ event.properties.name }} is still in your basket: https://hhale.example/basket\n"
        "{{ unsubscribe_url }}\n",
    ),
]

REACHABLE = {
    "name": "home_accessories_reachable",
    "description": "Viewed home accessories in the last three months; an email address and consent to market",
    "condition": {
        "all": [
            {"segment": "home_accessories_browsers"},
            {"trait": "email", "op": "exists"},
            {"consent": "email_marketing", "channel": "email"},
        ]
    },
}

JOURNEYS: list[dict[str, Any]] = [
    {
        "name": HOME,
        "description": "10% off home accessories for people who viewed them in the last three months",
        "campaign": "home_accessories_10",
        "entry": {"schedule": {"segment": "home_accessories_reachable"}},
        "holdout_percent": 10,
        "exit_on": ["Order Completed"],
        "conversion": {"event": "Order Completed", "within": "7d", "revenue": "total"},
        "offers": {
            "home10": {
                "code": "HOME10",
                "title": "10% off home accessories",
                "discount_percent": 10,
                "valid_for": f"{OFFER_VALID_S}s",  # 3d in real life
                "url": "https://hhale.example/home-accessories?code=HOME10",
            }
        },
        "steps": [
            {"id": "offer", "send": {"channel": "email", "template": "home_offer", "offer": "home10"}},
            # 24 h before the offer ends in real life.
            {"id": "before_expiry", "wait": {"until_offer": "home10", "offset": f"-{REMINDER_BEFORE_S}s"}},
            {"id": "reminder", "send": {"channel": "email", "template": "home_reminder", "offer": "home10"}},
        ],
    },
    {
        "name": CART,
        "description": "A reminder to people who leave something in their basket",
        "entry": {"event": "Product Added"},
        "re_entry": "1d",
        "holdout_percent": 10,
        "conversion": {"event": "Order Completed", "within": "1d", "revenue": "total"},
        "steps": [
            {
                "id": "wait_order",
                # An hour in real life.
                "wait_for_event": {
                    "event": "Order Completed",
                    "timeout": f"{CART_TIMEOUT_S}s",
                    "on_timeout": "reminder",
                },
                "next": None,
            },
            {"id": "reminder", "send": {"channel": "email", "template": "cart_reminder"}},
        ],
    },
]


def configure_messaging(data_dir: Path, mailbox: Mailbox, port: int) -> None:
    """Points the demo's messaging at its mailbox, with a 5% global control group (in tailor.toml)."""
    import tomllib

    path = data_dir / "tailor.toml"
    tree = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
    tree["channels"] = {
        "base_url": f"http://127.0.0.1:{port}",
        "poll_ms": 50,
        "email": {"host": mailbox.host, "port": mailbox.port, "from_address": "news@hhale.example",
                  "from_name": "Hartley & Hale", "domain": "hhale.example"},
        # The demo runs at any hour: no quiet hours. Its synthetic readers open within seconds.
        "rules": {"quiet_hours": False},
        "machine": {"min_human_seconds": 0.5},
    }  # fmt: skip
    tree["journeys"] = {"control_percent": 5, "poll_ms": 100}
    path.write_text(tomli_w.dumps(tree), "utf-8")


class _Shop:
    """The demo's synthetic people acting on the running server."""

    def __init__(self, runtime: Runtime, url: str, write_key: str, seed: int) -> None:
        self.runtime = runtime
        self.http = httpx.Client(base_url=url, timeout=30)
        self.write_key = write_key
        self.rng = random.Random(seed)

    def send(self, batch: list[dict[str, Any]]) -> None:
        for start in range(0, len(batch), 100):
            r = self.http.post(
                "/v1/batch",
                json={"batch": batch[start : start + 100]},
                headers={"X-Write-Key": self.write_key},
            )
            r.raise_for_status()

    def settle(self) -> None:
        """Until every event sent is processed and the journeys have seen it."""
        rt = self.runtime
        rt.writer.flush()
        head = rt.processor.head()
        deadline = time.monotonic() + 60
        while min(rt.processor.offsets().values()) < head and time.monotonic() < deadline:
            time.sleep(0.05)
        rt.journeys.runner.run_once()

    def delivered(self, journey: str) -> None:
        """Until nothing of the journey waits in the outbox."""
        conn = self.runtime.messaging.connect()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                (n,) = conn.execute(
                    "SELECT count(*) FROM outbox WHERE journey_id = ? AND status IN ('queued', 'sending')",
                    (journey,),
                ).fetchone()
                if n == 0:
                    return
                time.sleep(0.1)
        finally:
            conn.close()

    def waiting(self) -> int:
        """How many people wait for a timer in any journey."""
        conn = self.runtime.messaging.connect()
        try:
            (n,) = conn.execute("SELECT count(*) FROM journey_instances WHERE state = 'waiting'").fetchone()
            return int(n)
        finally:
            conn.close()

    def react(
        self, mails: list[Any], p_open: float, p_click: float, p_buy: Callable[[bool, bool], float]
    ) -> list[str]:
        """Opens, clicks and orders of the people who got `mails`; returns the addresses that ordered.

        Who does what is drawn in order (the same seed, the same story); the hits go in parallel.
        """
        buyers, hits = [], []
        for mail in mails:
            opened = self.rng.random() < p_open
            clicked = opened and self.rng.random() < p_click
            links = _TRACKED.findall(mail.html())
            if opened:
                hits += [p for p in links if p.startswith("/t/o/")][:1]
            if clicked:
                hits += [p for p in links if p.startswith("/t/c/")][:1]
            if self.rng.random() < p_buy(opened, clicked):
                buyers.append(mail.to)
        headers = {"User-Agent": HUMAN_AGENT}
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda path: self.http.get(path, headers=headers, follow_redirects=False), hits))
        return buyers

    def orders(self, users: list[str], category: str) -> None:
        self.send(
            [
                {"type": "track", "userId": u, "event": "Order Completed",
                 "messageId": f"{CAMPAIGN_IDS}order:{category}:{u}",
                 "properties": {"order_id": f"demo-{category}-{u}",
                                "total": round(self.rng.uniform(18, 140), 2),
                                "currency": "GBP", "category": category}}
                for u in users
            ]
        )  # fmt: skip


def _users_by_email(runtime: Runtime) -> dict[str, str]:
    rows = runtime.db.execute(
        """SELECT e.value, min(u.value) FROM identity_nodes e
        JOIN identity_nodes u ON u.profile_id = e.profile_id
        WHERE e.type = 'email' AND u.type = 'user_id' GROUP BY e.value"""
    )
    return {str(e): str(u) for e, u in rows}


def run_campaigns(
    runtime: Runtime, url: str, write_key: str, mailbox: Mailbox, seed: int, console: Console
) -> None:
    """Runs the demo's two journeys to the end and prints their results with lift."""
    from tailor.journeys.cli import results_tables

    shop = _Shop(runtime, url, write_key, seed)
    m = runtime.messaging
    for t in TEMPLATES:
        m.templates.save(m.conn, t)
    everyone = [
        str(u)
        for (u,) in runtime.db.execute(
            "SELECT DISTINCT value FROM identity_nodes WHERE type = 'user_id' ORDER BY 1"
        )
    ]
    # Most people opted in to marketing email; those who did not are refused at send time.
    opted_in = [u for u in everyone if shop.rng.random() < 0.85]
    shop.send(
        [
            {
                "type": "identify",
                "userId": u,
                "messageId": f"{CAMPAIGN_IDS}consent:{u}",
                "traits": {"consent": {"email_marketing": "granted"}},
            }
            for u in opted_in
        ]
    )
    shop.settle()
    runtime.definitions.put_segment(REACHABLE)
    with console.status("journeys: the home accessories offer and cart abandonment are running"):
        started = time.monotonic()
        for body in JOURNEYS:
            runtime.journeys.put(body)
        shop.settle()
        shop.delivered(HOME)
        users = _users_by_email(runtime)
        offers = [mail for mail in mailbox.mails() if "% off home accessories" in mail.subject]
        buyers = shop.react(offers, 0.42, 0.30, lambda o, c: 0.45 if c else 0.12 if o else 0.04)
        # Holdout and control people buy too, at the rate anyone would without the offer.
        held = [p for p in _journey_users(runtime, HOME, treated=False) if shop.rng.random() < 0.04]
        shop.orders([users[b] for b in buyers if b in users] + held, "Home Accessories")
        shop.settle()  # the buyers leave the journey: no reminder for them
        # Baskets: some people add something, a few of them order within the hour.
        home = set(_journey_users(runtime, HOME, treated=True)) | set(
            _journey_users(runtime, HOME, treated=False)
        )
        others = [u for u in everyone if u not in home]
        carts = shop.rng.sample(others, min(len(others), 300))
        products = [
            {
                "product_id": "HAC-0101",
                "name": "Scented Candle",
                "price": 18.0,
                "category": "Home Accessories",
            },
            {"product_id": "FUR-0207", "name": "Oak Side Table", "price": 129.0, "category": "Furniture"},
            {"product_id": "BED-0033", "name": "Linen Duvet Cover", "price": 65.0, "category": "Bedroom"},
        ]
        shop.send(
            [{"type": "track", "userId": u, "event": "Product Added",
              "messageId": f"{CAMPAIGN_IDS}cart:{u}",
              "properties": {**shop.rng.choice(products), "quantity": 1}}
             for u in carts]
        )  # fmt: skip
        shop.settle()
        shop.orders([u for u in carts if shop.rng.random() < 0.12], "basket")
        shop.settle()
        # The reminders: the offer's before it expires, the basket's after the hour.
        while shop.waiting():
            time.sleep(0.2)
            shop.settle()
        shop.delivered(HOME)
        shop.delivered(CART)
        seen = {id(mail) for mail in offers}
        later = [mail for mail in mailbox.mails() if id(mail) not in seen]
        reminded = shop.react(later, 0.38, 0.3, lambda o, c: 0.6 if c else 0.25 if o else 0.06)
        shop.orders([users[b] for b in reminded if b in users], "reminded")
        shop.settle()
        m.dispatcher.wait_idle(30) if m.dispatcher is not None else None
        shop.settle()
    console.print(
        f"journeys delivered {len(mailbox.mails()):,} emails to the demo's local SMTP server"
        f" ({mailbox.host}:{mailbox.port}) in {time.monotonic() - started:.0f} s"
    )
    for name in (HOME, CART):
        for table in results_tables(runtime.journeys.results(name)):
            console.print(table)
    shop.http.close()


def _journey_users(runtime: Runtime, journey: str, treated: bool) -> list[str]:
    """The user ids of the people who entered a journey, treated or held out (holdout and control)."""
    conn = runtime.messaging.connect()
    try:
        pids = [str(p) for (p,) in conn.execute(
            "SELECT profile_id FROM journey_instances WHERE journey = ? AND (grp = 'treatment') = ?",
            (journey, treated),
        )]  # fmt: skip
    finally:
        conn.close()
    rows = runtime.db.execute(
        "SELECT min(value) FROM identity_nodes WHERE type = 'user_id'"
        " AND profile_id IN (SELECT unnest(?::VARCHAR[]))"
        " GROUP BY profile_id",
        [pids],
    )
    return [str(u) for (u,) in rows if u is not None]
