"""Broadcast benchmark: 100,000 personalised emails through the outbox into a local SMTP server.

    python bench/broadcast.py [--emails 100000] [--baseline 20000] [--connections 8]

An aiosmtpd server runs in a process of its own and only counts what it accepts. In the same run:

1. **Baseline**: a minimal aiosmtplib loop — the same number of kept-open connections, each
   sending pre-rendered message bytes with `sendmail` as fast as the server answers. This is
   what the SMTP client and server cost on their own.
2. **Enqueue**: the broadcast enqueued the way a journey runtime would, into messaging.sqlite
   with `Outbox.enqueue_many` in one transaction; and, separately, 2,000 messages in 2,000
   transactions (one per triggered send).
3. **Tailor**: a data directory with the event writer running and the dispatcher delivering the
   outbox: send-time checks (suppression list, consent from the privacy part's records with
   `marketing_requires_grant` off, quiet hours off), Jinja2 rendering per recipient,
   MIME with tracked links, pixel and unsubscribe headers, the hand-over commit before each
   final dot, outcomes and two tracking events per email (Email Sent, Email Delivered) through
   the collector's writer into the event log. Timed from the dispatcher's start until the last
   outcome and event are stored. The processor (identity resolution of the tracking events) is
   not running meanwhile.

Prints emails/s for both and the ratio Tailor / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by a process: this one when `pid` is None."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _smtp_server(port: int, count: Any, ready: Any) -> None:
    """The receiving server: accepts every message and counts it."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 2.0.0 Ok: queued"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


async def _baseline(port: int, connections: int, emails: int, message: bytes) -> float:
    import aiosmtplib

    per = emails // connections

    async def one() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for i in range(per):
            await client.sendmail("news@shop.example", [f"p{i}@example.org"], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return per * connections / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=20_000, help="emails sent by the baseline loop")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tailor.channels.config import ChannelsConfig, EmailConfig, RulesConfig
    from tailor.channels.outbox import Outbox, OutboxMessage, Recipient
    from tailor.channels.store import transaction
    from tailor.config import TailorConfig
    from tailor.datadir import init_data_dir
    from tailor.privacy.config import PrivacyConfig
    from tailor.runtime import Runtime
    from tests.channels.conftest import OFFER, offer_data

    console = Console(width=150)
    console.print(f"load average before: {os.getloadavg()}")
    port = _free_port()
    count = mp.Value("q", 0)
    ready = mp.Event()
    server = mp.Process(target=_smtp_server, args=(port, count, ready), daemon=True)
    server.start()
    ready.wait(30)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        init_data_dir(data)
        email = EmailConfig(host="127.0.0.1", port=port, connections=args.connections, domain="shop.example")
        channels = ChannelsConfig(
            base_url="https://t.shop.example", email=email, rules=RulesConfig(quiet_hours=False)
        )
        # Consent is asked about every message, as in `tailor serve`; nobody here refused marketing.
        privacy = PrivacyConfig(marketing_requires_grant=False)
        rt = Runtime(data, TailorConfig(channels=channels, privacy=privacy))
        messaging = rt.messaging
        messaging.templates.save(messaging.conn, OFFER)

        # A pre-rendered message of the same shape and size as Tailor's, for the baseline.
        from tailor.channels.mail import build_email
        from tailor.channels.outbox import message_id_for
        from tailor.channels.templates import CompiledTemplate

        conn = messaging.connect()
        with transaction(conn):
            messaging.outbox.enqueue(
                conn, "sample", "email", Recipient("p0@example.org"), "offer", offer_data()
            )
        sample = Outbox.get(conn, message_id_for("sample"))
        assert sample is not None
        conn.execute("DELETE FROM outbox")
        rendered = CompiledTemplate(OFFER, 1).render(
            {
                **offer_data(),
                "message_id": sample.message_id,
                "unsubscribe_url": messaging.links.unsubscribe_url("x"),
            }
        )
        message = build_email(sample, rendered, messaging.links, email).data
        console.print(f"message size {len(message):,} bytes; {args.connections} connections")

        cpu = (_cpu_s(), _cpu_s(server.pid))
        base_rate = asyncio.run(_baseline(port, args.connections, args.baseline, message))
        base_cpu = [(_cpu_s() - cpu[0]) / args.baseline, (_cpu_s(server.pid) - cpu[1]) / args.baseline]
        console.print(f"baseline: {base_rate:,.0f} emails/s ({args.baseline:,} pre-rendered emails)")

        people = [
            OutboxMessage(
                f"broadcast:home:{i}",
                "email",
                Recipient(f"p{i}@example.org", profile_id=f"p{i}", user_id=f"u{i}"),
                "offer",
                offer_data(f"Name{i}"),
                campaign_id="home_2026",
            )
            for i in range(args.emails)
        ]
        started = time.perf_counter()
        with transaction(conn):
            messaging.outbox.enqueue_many(conn, people)
        bulk = args.emails / (time.perf_counter() - started)
        singles = [
            OutboxMessage(f"trigger:{i}", "email", Recipient(f"t{i}@example.org"), "offer", offer_data())
            for i in range(2_000)
        ]
        started = time.perf_counter()
        for m in singles:
            with transaction(conn):
                messaging.outbox.enqueue_many(conn, [m])
        single = len(singles) / (time.perf_counter() - started)
        conn.execute("DELETE FROM outbox WHERE idempotency_key LIKE 'trigger:%'")
        console.print(
            f"enqueue: {bulk:,.0f} messages/s in one transaction; {single:,.0f} transactions/s one by one"
        )

        before = count.value
        rt.writer.start()
        cpu = (_cpu_s(), _cpu_s(server.pid))
        started = time.perf_counter()
        messaging.start()
        assert messaging.dispatcher is not None
        with Progress(
            TextColumn("broadcast"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("sending", total=args.emails)
            while count.value - before < args.emails:
                progress.update(task, completed=count.value - before)
                time.sleep(0.25)
            progress.update(task, completed=args.emails)
        handed = time.perf_counter() - started
        messaging.dispatcher.wait_idle(600)
        elapsed = time.perf_counter() - started
        our_cpu = [(_cpu_s() - cpu[0]) / args.emails, (_cpu_s(server.pid) - cpu[1]) / args.emails]
        counts = Outbox.counts(conn)
        rt.writer.flush()
        events = rt.db.execute("SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 1")
        rt.close()
        conn.close()
    server.kill()

    rate = args.emails / elapsed
    table = Table(title="broadcast into a local SMTP server")
    for column in ("what", "emails", "seconds", "emails/s", "sender CPU µs/email", "server CPU µs/email"):
        table.add_column(column, justify="right")
    base_row = [f"{args.baseline:,}", f"{args.baseline / base_rate:.1f}", f"{base_rate:,.0f}"]
    table.add_row("baseline: raw aiosmtplib loop", *base_row, *(f"{c * 1e6:,.0f}" for c in base_cpu))
    table.add_row(
        "Tailor: last email accepted", f"{args.emails:,}", f"{handed:.1f}", f"{args.emails / handed:,.0f}"
    )
    ours = [f"{args.emails:,}", f"{elapsed:.1f}", f"{rate:,.0f}", *(f"{c * 1e6:,.0f}" for c in our_cpu)]
    table.add_row("Tailor: every outcome and event stored", *ours)
    console.print(table)
    verdict = "met" if rate >= 500 else "NOT met"
    console.print(f"ratio Tailor / baseline: {rate / base_rate:.2f}; target 500 emails/s: {verdict}")
    console.print(f"outbox: {counts}; events: {dict(events)}")
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
