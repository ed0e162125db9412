"""Journey broadcast benchmark: a scheduled journey to a 100,000-person segment into a local SMTP server.

    python bench/journey_broadcast.py [--people 100000] [--connections 8] [--chunk 2000]

An aiosmtpd server runs in a process of its own and counts what it accepts. A data directory is
filled with the people (identify calls through the event writer, then the processor: identity,
profiles, a `subscribers` segment). In the same run:

1. **Baseline**: the same number of personalised offer emails enqueued directly into the outbox
   (`Outbox.enqueue_many`, one transaction) and delivered by the dispatcher: what sending costs
   without a journey.
2. **Journey**: a journey saved with a schedule entry on the segment and one send step with an
   offer; the runner enters everyone (a transaction per chunk), reads each chunk's profiles from
   DuckDB, moves them through the step and enqueues their messages in the same transaction as
   the state change, and the dispatcher delivers. Timed from saving the journey to the last
   email accepted.

As in bench/broadcast.py the processor is not running meanwhile (the tracking events are stored
in the event log, not yet stitched to profiles), in both phases alike.

Prints emails/s for both and the ratio journey / baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from broadcast import _free_port, _smtp_server

OFFER = {
    "code": "HOME10",
    "title": "10% off",
    "discount_percent": 10,
    "valid_for": "3d",
    "url": "https://shop.example/h",
}


def _wait_count(count: Any, target: int, label: str, console: Any) -> float:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as p:
        task = p.add_task(label, total=target)
        while count.value < target:
            p.update(task, completed=count.value)
            time.sleep(0.25)
        p.update(task, completed=target)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=2000, help="people per journey transaction")
    args = parser.parse_args()

    import msgspec
    from rich.console import Console
    from rich.table import Table

    from tailor.channels.config import ChannelsConfig, EmailConfig, RulesConfig
    from tailor.channels.outbox import OutboxMessage, Recipient
    from tailor.channels.store import transaction
    from tailor.collect.writer import Submission
    from tailor.config import CollectConfig, TailorConfig
    from tailor.datadir import init_data_dir
    from tailor.journeys.config import JourneysConfig
    from tailor.privacy.config import PrivacyConfig
    from tailor.runtime import Runtime
    from tests.journeys.conftest import OFFER_EMAIL

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
        config = TailorConfig(
            channels=ChannelsConfig(
                base_url="https://t.shop.example", email=email, rules=RulesConfig(quiet_hours=False)
            ),
            privacy=PrivacyConfig(marketing_requires_grant=False),
            journeys=JourneysConfig(chunk_size=args.chunk, poll_ms=100),
            collect=CollectConfig(max_pending_events=1_000_000, max_unloaded_events=1_000_000),
        )
        rt = Runtime(data, config)
        source = rt.keyring.source_id("default")
        rt.writer.start()
        started = time.perf_counter()
        now = datetime.now(UTC)
        for start in range(0, args.people, 20_000):
            raws = [
                msgspec.json.encode(
                    {
                        "type": "identify",
                        "userId": f"u{i}",
                        "traits": {
                            "email": f"p{i}@example.org",
                            "first_name": f"Name{i}",
                            "newsletter": True,
                        },
                    }
                )
                for i in range(start, min(args.people, start + 20_000))
            ]
            rows, rejections = rt.validator.validate(source, raws, now)
            rt.writer.submit(Submission(source, "batch", now, rows, rejections)).result()
        rt.definitions.put_segment(
            {"name": "subscribers", "condition": {"trait": "newsletter", "op": "=", "value": True}}
        )
        with console.status(f"processing {args.people:,} people (identity, profiles, segment)"):
            rt.processor.run_once()
        ((members,),) = rt.db.execute("SELECT count(*) FROM segment_members WHERE segment = 'subscribers'")
        console.print(
            f"{members:,} people in the segment after {time.perf_counter() - started:.0f} s of setup"
        )
        m = rt.messaging
        m.templates.save(m.conn, OFFER_EMAIL)

        # 1. Baseline: the same messages enqueued directly, delivered by the dispatcher.
        people = rt.db.execute(
            """SELECT m.profile_id, min(n.value) FILTER (WHERE n.type = 'email'),
                      min(n.value) FILTER (WHERE n.type = 'user_id')
               FROM segment_members m JOIN identity_nodes n ON n.profile_id = m.profile_id
               WHERE m.segment = 'subscribers' GROUP BY 1"""
        )
        offer = {**OFFER, "expires_at": "2026-12-04T09:00:00Z"}
        messages = [
            OutboxMessage(
                f"direct:{pid}",
                "email",
                Recipient(address, profile_id=pid, user_id=uid),
                OFFER_EMAIL.name,
                {"profile": {"first_name": f"Name{uid[1:]}"}, "offer": offer, "campaign_name": "direct"},
                campaign_id="direct",
            )
            for pid, address, uid in people
        ]
        conn = m.connect()
        started = time.perf_counter()
        with transaction(conn):
            m.outbox.enqueue_many(conn, messages)
        m.start()
        _wait_count(count, len(messages), "baseline: direct enqueue", console)
        base_s = time.perf_counter() - started
        base_rate = len(messages) / base_s
        console.print(f"baseline: {len(messages):,} emails in {base_s:.1f} s = {base_rate:,.0f} emails/s")
        assert m.dispatcher is not None
        m.dispatcher.wait_idle(600)

        # 2. The journey.
        before = count.value
        rt.journeys.runner.start()
        started = time.perf_counter()
        rt.journeys.put(
            {
                "name": "home_broadcast",
                "entry": {"schedule": {"segment": "subscribers"}},
                "offers": {"home10": OFFER},
                "steps": [
                    {
                        "id": "offer",
                        "send": {"channel": "email", "template": OFFER_EMAIL.name, "offer": "home10"},
                    }
                ],
            }
        )
        target = before + members
        _wait_count(count, target, "journey: broadcast", console)
        journey_s = time.perf_counter() - started
        rate = members / journey_s
        m.dispatcher.wait_idle(600)
        ((entered,),) = conn.execute("SELECT count(*) FROM journey_instances").fetchall()
        ((txns,),) = conn.execute("SELECT count(*) FROM journey_runs").fetchall()
        conn.close()
        rt.close()
    server.kill()

    table = Table(title=f"journey broadcast to {members:,} people into a local SMTP server")
    for column in ("what", "emails", "seconds", "emails/s"):
        table.add_column(column, justify="right")
    table.add_row(
        "baseline: enqueued directly, dispatcher", f"{members:,}", f"{base_s:.1f}", f"{base_rate:,.0f}"
    )
    table.add_row(
        "journey: schedule entry, send step, dispatcher", f"{members:,}", f"{journey_s:.1f}", f"{rate:,.0f}"
    )
    console.print(table)
    console.print(f"instances: {entered:,}; runs: {txns}; chunk {args.chunk:,} people per transaction")
    verdict = "met" if rate >= 500 else "NOT met"
    console.print(f"ratio journey / baseline: {rate / base_rate:.2f}; target 500 emails/s: {verdict}")
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
