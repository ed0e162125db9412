"""Journey trigger latency: an event posted to /v1/track until its email is handed to a local SMTP server.

    python bench/journey_trigger.py [--triggers 200] [--gap-ms 100]

`tailor serve` runs in a subprocess with its default collector and processor settings (loads
every 500 ms at the latest, micro-batches woken by each load); an aiosmtpd server in this process
notes when each email arrives. A journey enters people on a `Trigger Test` event and sends them
an email. Each trigger is one POST of one event, `--gap-ms` apart. In the same run, the baseline:
the same number of emails enqueued directly through `POST /api/v1/messages` (the outbox and
dispatcher, no event log, processor or journey runner), timed the same way.

Prints p50/p95/max of both and the ratio of their p95s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import msgspec
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Arrivals:
    """An aiosmtpd handler noting when each recipient's email arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        with self.lock:
            for to in envelope.rcpt_tos:
                self.at.setdefault(to, now)
        return "250 2.0.0 Ok: queued"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--gap-ms", type=int, default=100)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from tailor.datadir import init_data_dir
    from tests.journeys.conftest import PLAIN_EMAIL

    console = Console(width=150)
    console.print(f"load average before: {os.getloadavg()}")
    arrivals = _Arrivals()
    smtp_port = _free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        creds = init_data_dir(data)
        path = data / "tailor.toml"
        tree = tomllib.loads(path.read_text())
        tree["channels"] = {
            "email": {"host": "127.0.0.1", "port": smtp_port},
            "rules": {"quiet_hours": False},
        }
        tree["privacy"] = {"marketing_requires_grant": False}
        path.write_text(tomli_w.dumps(tree))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "tailor.cli", "serve", "--data", str(data), "--port", str(port)],
            stdout=log,
            stderr=log,
        )
        admin = {"Authorization": f"Bearer {creds.admin_token}"}
        key = {"X-Write-Key": creds.write_key}
        try:
            http = httpx.Client(base_url=url, timeout=30)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            http.post(
                "/api/v1/templates", json=msgspec.to_builtins(PLAIN_EMAIL), headers=admin
            ).raise_for_status()
            people = [
                {
                    "type": "identify",
                    "userId": f"t{i}",
                    "traits": {"email": f"t{i}@example.org", "first_name": f"T{i}"},
                }
                for i in range(args.triggers)
            ]
            http.post("/v1/batch", json={"batch": people}, headers=key).raise_for_status()
            journey = {
                "name": "trigger_test",
                "entry": {"event": "Trigger Test"},
                "steps": [{"id": "mail", "send": {"channel": "email", "template": PLAIN_EMAIL.name}}],
            }
            http.put("/api/v1/journeys/trigger_test", json=journey, headers=admin).raise_for_status()
            time.sleep(2)  # the identifies processed
            gap = args.gap_ms / 1000
            sent: dict[str, float] = {}
            for i in track(range(args.triggers), description="journey triggers", console=console):
                sent[f"t{i}@example.org"] = time.time()
                http.post(
                    "/v1/track", json={"userId": f"t{i}", "event": "Trigger Test"}, headers=key
                ).raise_for_status()
                time.sleep(gap)
            direct: dict[str, float] = {}
            for i in track(range(args.triggers), description="baseline: direct enqueue", console=console):
                address = f"d{i}@example.org"
                body = {
                    "key": f"direct:{i}",
                    "channel": "email",
                    "recipient": {"address": address},
                    "template": PLAIN_EMAIL.name,
                    "data": {"profile": {"first_name": f"D{i}"}},
                }
                direct[address] = time.time()
                http.post("/api/v1/messages", json=body, headers=admin).raise_for_status()
                time.sleep(gap)
            deadline = time.monotonic() + 30
            while len(arrivals.at) < 2 * args.triggers and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(30)
            log.close()
    controller.stop()
    lost = [a for a in (*sent, *direct) if a not in arrivals.at]
    journey_s = [arrivals.at[a] - t for a, t in sent.items() if a in arrivals.at]
    direct_s = [arrivals.at[a] - t for a, t in direct.items() if a in arrivals.at]
    table = Table(title="event or enqueue -> email handed to SMTP (seconds)")
    for column in ("path", "emails", "p50", "p95", "max", "mean"):
        table.add_column(column, justify="right")
    for label, values in (
        ("journey: POST /v1/track -> runner -> outbox", journey_s),
        ("baseline: POST /api/v1/messages -> outbox", direct_s),
    ):
        table.add_row(
            label,
            str(len(values)),
            f"{_pct(values, 0.5):.3f}",
            f"{_pct(values, 0.95):.3f}",
            f"{max(values):.3f}",
            f"{statistics.mean(values):.3f}",
        )
    console.print(table)
    p95 = _pct(journey_s, 0.95)
    console.print(f"ratio of p95s journey / baseline: {p95 / _pct(direct_s, 0.95):.1f}")
    console.print(f"target p95 < 2 s: {'met' if p95 < 2 else 'NOT met'}; never arrived: {len(lost)}")
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
