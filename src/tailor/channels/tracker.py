"""What comes back from a message: clicks, opens, unsubscribes and bounces, recorded as events.

Each hit is checked (signed token), classified (machine or person), recorded in `message_hits`
and queued as a tracking event in one transaction; the event relay moves it into the event log.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tailor.channels.bounces import Bounce
from tailor.channels.events import tracking_event
from tailor.channels.lifecycle import queue_events
from tailor.channels.machine import Hit, MachineDetector, Verdict, client_key
from tailor.channels.outbox import Outbox, StoredMessage
from tailor.channels.store import transaction
from tailor.channels.tracking import HONEYPOT_LINK, TrackingLinks


@dataclass(frozen=True)
class HitResult:
    """What a tracking hit found: the message (if still kept) and the machine verdict."""

    message: StoredMessage | None
    verdict: Verdict


class Tracker:
    """Records tracking hits against the outbox."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        links: TrackingLinks,
        detector: MachineDetector,
        on_event: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.links = links
        self.detector = detector
        self.on_event = on_event
        """Called after events were queued (wakes the relay)."""
        self.clock = clock
        self._lock = threading.Lock()

    def _hit(self, hit: Hit, extra: dict[str, object]) -> HitResult:
        with self._lock, transaction(self.conn) as conn:
            m = Outbox.get(conn, hit.message_id)
            recent = conn.execute(
                "SELECT client, link_id, at, machine_reason FROM message_hits"
                " WHERE message_id = ? AND at >= ?",
                (hit.message_id, hit.at - 60),
            ).fetchall()
            verdict = self.detector.classify(hit, None if m is None else m.sent_at, recent)
            conn.execute(
                "INSERT INTO message_hits (message_id, kind, link_id, at, client, machine_reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    hit.message_id,
                    hit.kind,
                    hit.link_id,
                    hit.at,
                    client_key(hit.ip, hit.user_agent),
                    verdict.reason,
                ),
            )
            number = conn.execute("SELECT count(*) FROM message_hits WHERE message_id = ?", (hit.message_id,))
            n = int(number.fetchone()[0])
            if m is not None and hit.link_id != HONEYPOT_LINK:
                props: dict[str, object] = {**extra, "machine": verdict.machine}
                if verdict.reason is not None:
                    props["machine_reason"] = verdict.reason
                if verdict.proxy is not None:
                    props["proxy"] = verdict.proxy
                kind = "opened" if hit.kind == "open" else "clicked"
                queue_events(conn, [tracking_event(kind, m, hit.at, props, suffix=f":{n}")])
        self.on_event()
        return HitResult(m, verdict)

    def click(
        self, token: str, ip: str | None, user_agent: str, method: str = "GET"
    ) -> tuple[str, HitResult]:
        """Records a click; returns the URL to redirect to. TokenError for a bad token."""
        click = self.links.read_click(token)
        hit = Hit("click", click.message_id, self.clock(), ip, user_agent, method, click.link_id)
        return click.url, self._hit(hit, {"link_id": click.link_id, "link_url": click.url})

    def open(self, token: str, ip: str | None, user_agent: str, method: str = "GET") -> HitResult:
        """Records an open of the pixel. TokenError for a bad token."""
        message_id = self.links.read_open(token)
        return self._hit(Hit("open", message_id, self.clock(), ip, user_agent, method), {})

    def unsubscribe(self, token: str) -> StoredMessage | None:
        """Unsubscribes the recipient of a token's message: its address goes on the suppression list."""
        message_id = self.links.read_unsubscribe(token)
        now = self.clock()
        with self._lock, transaction(self.conn) as conn:
            m = Outbox.get(conn, message_id)
            if m is None:
                return None
            conn.execute(
                "INSERT INTO suppressions (channel, address, reason, message_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET reason = excluded.reason, message_id = excluded.message_id",
                (m.channel, m.recipient.address, "unsubscribed with the one-click link", m.message_id, now),
            )
            props = {"list": m.category, "method": "one_click"}
            queue_events(conn, [tracking_event("unsubscribed", m, now, props)])
        self.on_event()
        return m

    def sms_receipt(self, token: str, status: str, error: str | None, delivered: bool, failed: bool) -> str:
        """Applies an SMS provider's delivery receipt; returns what was done. TokenError for a bad token."""
        message_id = self.links.read_status(token)
        now = self.clock()
        with self._lock, transaction(self.conn) as conn:
            m = Outbox.get(conn, message_id)
            if m is None:
                return "no such message"
            detail = f"receipt: {status}" + (f" (error {error})" if error else "")
            if delivered:
                conn.execute(
                    "UPDATE outbox SET status = 'delivered', reply = ?"
                    " WHERE message_id = ? AND status = 'sent'",
                    (detail, message_id),
                )
                queue_events(
                    conn, [tracking_event("delivered", m, now, {"provider_status": status}, ":receipt")]
                )
            elif failed:
                conn.execute(
                    "UPDATE outbox SET status = 'failed', reason = ?, finished_at = ? WHERE message_id = ?",
                    (detail, now, message_id),
                )
                props = {"provider_status": status, "error_code": error, "reason": detail}
                queue_events(conn, [tracking_event("failed", m, now, props, ":receipt")])
            else:
                return f"noted: {status}"
        self.on_event()
        return "delivered" if delivered else "failed"

    def bounces(self, bounces: list[Bounce]) -> list[tuple[Bounce, str]]:
        """Applies DSN statuses to their messages; returns each with what was done."""
        done: list[tuple[Bounce, str]] = []
        now = self.clock()
        with self._lock, transaction(self.conn) as conn:
            for b in bounces:
                m = Outbox.get(conn, b.message_id) if b.message_id else None
                if m is None:
                    done.append((b, "no such message"))
                    continue
                if m.recipient.address.lower() != b.address:
                    done.append((b, f"the message went to another address, not {b.address}"))
                    continue
                detail = f"{b.action} {b.status or ''} {b.diagnostic or ''}".strip()
                if b.action == "delivered":
                    conn.execute(
                        "UPDATE outbox SET status = 'delivered', reply = ?"
                        " WHERE message_id = ? AND status = 'sent'",
                        (detail, m.message_id),
                    )
                    queue_events(conn, [tracking_event("delivered", m, now, {"dsn": True}, suffix=":dsn")])
                    done.append((b, "delivered"))
                elif b.action == "failed":
                    hard = b.permanent
                    conn.execute(
                        "UPDATE outbox SET status = 'bounced', reason = ?, finished_at = ?"
                        " WHERE message_id = ?",
                        (f"bounced: {detail}", now, m.message_id),
                    )
                    if hard:
                        conn.execute(
                            "INSERT INTO suppressions (channel, address, reason, message_id, created_at)"
                            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            (m.channel, m.recipient.address, f"hard bounce: {detail}", m.message_id, now),
                        )
                    props = {
                        "bounce_type": "hard" if hard else "soft",
                        "status": b.status,
                        "reason": b.diagnostic,
                        "synchronous": False,
                    }
                    queue_events(conn, [tracking_event("bounced", m, now, props, suffix=":dsn")])
                    done.append((b, "bounced (hard)" if hard else "bounced (soft)"))
                else:
                    done.append((b, f"noted: {b.action}"))
        self.on_event()
        return done
