"""The messaging part of a data directory: outbox, templates, tracking and the dispatcher, wired from config.

The contract for a journey runtime (or any other sender):

    conn = messaging.connect()                 # its own connection to messaging.sqlite
    with transaction(conn):                    # BEGIN IMMEDIATE ... COMMIT
        conn.execute("UPDATE journey_instances SET ...")        # its state, in the same file
        messaging.outbox.enqueue(conn, key, "email", Recipient(...), "welcome", data, journey_id=...)
        advance_offset(conn, "journeys", batch_hi)                # the event-log offset it consumed
    messaging.notify()                         # optional: deliver now rather than at the next poll

The runtime creates its own tables in messaging.sqlite (CREATE TABLE IF NOT EXISTS) and keeps its
offset in the event log there too, not in DuckDB's stage_offsets: then state, offset and outbox
rows commit atomically, and a replay after a crash resumes from the committed offset. Keys must
be deterministic (e.g. `journey:<id>:instance:<id>:step:<id>`), so replaying the same events
enqueues nothing twice even if the offset were behind.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import time as clock_time
from pathlib import Path

from tailor.channels.base import Channel
from tailor.channels.config import ChannelsConfig
from tailor.channels.dispatcher import Dispatcher
from tailor.channels.lifecycle import RetryPolicy
from tailor.channels.machine import MachineDetector
from tailor.channels.outbox import Outbox
from tailor.channels.personal import MessagingRecords
from tailor.channels.policy import (
    ConsentCheck,
    ConsentGate,
    FrequencyCap,
    QuietHours,
    SendCheck,
    SuppressionList,
)
from tailor.channels.relay import EventSink
from tailor.channels.sms import SmsChannel
from tailor.channels.smtp import SmtpChannel
from tailor.channels.store import MESSAGING_FILE, connect, create_schema
from tailor.channels.templates import TemplateStore
from tailor.channels.tracker import Tracker
from tailor.channels.tracking import TrackingLinks
from tailor.channels.webhook import WebhookChannel, new_secret

SECRETS_FILE = "messaging.secrets.json"


def _register_personal_data() -> None:
    """Puts messages into the privacy part's export and erasure (once per process)."""
    from tailor.privacy.registry import register, registered

    if not any(p.name == MessagingRecords.name for p in registered()):
        register(MessagingRecords())


_register_personal_data()


def load_secrets(data_dir: Path) -> dict[str, list[str] | str]:
    """The tracking-link keys (newest last) and the webhook signing secret; created on first use."""
    path = data_dir / SECRETS_FILE
    if not path.exists():
        values = {"tracking_keys": [secrets.token_urlsafe(32)], "webhook_secret": new_secret()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f, indent=2)
    loaded: dict[str, list[str] | str] = json.loads(path.read_text("utf-8"))
    return loaded


def _hhmm(text: str) -> clock_time:
    hours, minutes = text.split(":")
    return clock_time(int(hours), int(minutes))


class Messaging:
    """Everything that sends and tracks messages for one data directory."""

    def __init__(
        self,
        data_dir: Path,
        config: ChannelsConfig,
        sink: EventSink | None = None,
        consent: ConsentCheck | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.path = data_dir / MESSAGING_FILE
        self.clock = clock
        self.consent = consent
        """The privacy part's consent check; every send is asked (set it before `start`)."""
        self.sink = sink
        self.conn = connect(self.path)
        create_schema(self.conn)
        self.lock = threading.Lock()
        """Guards `conn`, which the API's threads share."""
        keys = load_secrets(data_dir)
        tracking_keys = keys["tracking_keys"]
        assert isinstance(tracking_keys, list)
        self.webhook_secret = str(keys["webhook_secret"])
        self.links = TrackingLinks(tracking_keys, config.base_url)
        self.outbox = Outbox(
            {
                "email": config.email.max_attempts,
                "sms": config.sms.max_attempts,
                "webhook": config.webhook.max_attempts,
            },
            clock,
        )
        self.templates = TemplateStore()
        m = config.machine
        detector = MachineDetector(m.proxy_networks, m.min_human_seconds, m.burst_seconds, m.burst_links)
        self.tracker = Tracker(connect(self.path), self.links, detector, self.notify, clock)
        self.dispatcher: Dispatcher | None = None

    def connect(self) -> sqlite3.Connection:
        """A new connection to the messaging database, for one thread of a caller."""
        return connect(self.path)

    def checks(self) -> list[SendCheck]:
        """The send-time checks, in order: suppression list, consent, quiet hours, frequency cap."""
        rules = self.config.rules
        checks: list[SendCheck] = [SuppressionList()]
        if self.consent is not None:
            checks.append(ConsentGate(self.consent))
        if rules.quiet_hours:
            checks.append(
                QuietHours(_hhmm(rules.quiet_start), _hhmm(rules.quiet_end), rules.default_timezone)
            )
        if rules.frequency_cap > 0:
            checks.append(FrequencyCap(rules.frequency_cap, rules.frequency_window_hours * 3600))
        return checks

    def channels(self) -> list[Channel]:
        """The configured channels: email and webhooks always, SMS when a provider URL is set."""
        c = self.config
        found: list[Channel] = [
            SmtpChannel(c.email, self.links),
            WebhookChannel(self.webhook_secret, c.webhook.concurrency, c.webhook.timeout_s, self.clock),
        ]
        if c.sms.url is not None:
            found.append(SmsChannel(c.sms, self.links))
        return found

    def retry_policies(self) -> dict[str, RetryPolicy]:
        """Backoff per channel."""
        c = self.config
        return {
            "email": RetryPolicy(c.email.retry_base_s, c.email.retry_max_s),
            "sms": RetryPolicy(c.sms.retry_base_s, c.sms.retry_max_s),
            "webhook": RetryPolicy(c.webhook.retry_base_s, c.webhook.retry_max_s),
        }

    def make_dispatcher(self) -> Dispatcher:
        """A dispatcher over this configuration (not started)."""
        return Dispatcher(
            self.path,
            self.channels(),
            self.links,
            self.checks(),
            self.retry_policies(),
            self.sink,
            self.config.batch_size,
            self.config.poll_ms / 1000,
            self.clock,
        )

    def start(self) -> None:
        """Starts the dispatcher thread (when enabled)."""
        if self.config.enabled and self.dispatcher is None:
            self.dispatcher = self.make_dispatcher()
            self.dispatcher.start()

    def notify(self) -> None:
        """Wakes the dispatcher: something was enqueued or an event is waiting to be relayed."""
        if self.dispatcher is not None:
            self.dispatcher.notify()

    def close(self) -> None:
        """Stops the dispatcher (relaying every queued event first) and closes the connections."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
        self.tracker.conn.close()
        self.conn.close()
