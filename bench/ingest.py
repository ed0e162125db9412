"""Ingest benchmark: sustained durable events/s and latency of Tailor's collector, against a no-op
server on the same HTTP stack measured in the same run.

    python bench/ingest.py [--duration 10] [--people 3000] [--concurrency 16]

Prints the figures and the ratios. The load comes from separate processes (bench/loadgen.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

HERE = Path(__file__).resolve().parent
TOKEN = "@@RUN@@"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up")


def make_bodies(out: Path, people: int, batch_size: int) -> tuple[Path, Path, int]:
    """Writes realistic batch bodies and single-track bodies from the synthetic customer base."""
    from tailor.demo.synth import SynthConfig, generate

    base = generate(SynthConfig(people=people, seed=7))
    batches, singles = out / "batches.jsonl", out / "singles.jsonl"
    n = 0
    encode = msgspec.json.encode
    with batches.open("wb") as fb, singles.open("wb") as fs:
        chunk: list[dict[str, object]] = []
        for event in base.events():
            event = dict(event, messageId=f"{event['messageId']}-{TOKEN}")
            n += 1
            chunk.append(event)
            if event["type"] == "track" and n % 3 == 0:
                fs.write(b"1 " + encode(event) + b"\n")
            if len(chunk) == batch_size:
                body = encode({"batch": chunk, "sentAt": chunk[-1]["timestamp"]})
                fb.write(b"%d %s\n" % (len(chunk), body))
                chunk = []
        # The ~200 MB of bodies must reach the disk now: left to the kernel's writeback (about 30 s
        # later), they were written in the middle of a measured run and held the collector's
        # O_DSYNC writes in the disk's queue for ~0.5 s (every request of that moment waited).
        for f in (fb, fs):
            f.flush()
            os.fsync(f.fileno())
    return batches, singles, n


def loadgen(
    port: int,
    path: str,
    bodies: Path,
    key: str,
    duration: float,
    concurrency: int,
    rate: float = 0.0,
    gz: bool = False,
) -> dict[str, float]:
    cmd = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--port",
        str(port),
        "--path",
        path,
        "--bodies",
        str(bodies),
        "--write-key",
        key,
        "--duration",
        str(duration),
        "--concurrency",
        str(concurrency),
        "--rate",
        str(rate),
    ]
    if gz:
        cmd.append("--gzip")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--track-rate", type=float, default=1000.0)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as tmp:
        work = Path(tmp)
        with console.status("generating realistic batches from the synthetic customer base"):
            batches, singles, n = make_bodies(work, args.people, 100)
        console.print(f"{n:,} synthetic events in 100-event batches")
        data = work / "data"
        creds = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tailor.cli", "init", str(data), "--json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        key = creds["write_key"]
        results: dict[str, dict[str, float]] = {}
        noop_port, tailor_port = free_port(), free_port()
        noop = subprocess.Popen([sys.executable, str(HERE / "noop_server.py"), str(noop_port)])
        tailor = subprocess.Popen(
            [sys.executable, "-m", "tailor.cli", "serve", "--data", str(data), "--port", str(tailor_port)],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(noop_port, "/v1/batch")
            wait_ready(tailor_port)
            admin = {"Authorization": f"Bearer {creds['admin_token']}"}

            def stored() -> int:
                r = httpx.get(f"http://127.0.0.1:{tailor_port}/api/v1/stats", headers=admin, timeout=30)
                return int(r.json()["events_total"])

            def settle() -> float:
                """Waits until everything acknowledged is loaded and processed; returns how long that took."""
                started = time.monotonic()
                while time.monotonic() - started < 300:
                    body = httpx.get(
                        f"http://127.0.0.1:{tailor_port}/api/v1/stats", headers=admin, timeout=30
                    ).json()
                    if body["writer"]["unloaded_events"] == 0 and body["processor"]["lag"] == 0:
                        break
                    time.sleep(0.2)
                return time.monotonic() - started

            before = 0
            for name, port in (("no-op", noop_port), ("tailor", tailor_port)):
                loadgen(port, "/v1/batch", batches, key, 2.0, args.concurrency)  # warm-up
                before = stored()
                with console.status(f"{name}: /v1/batch, 100-event batches, {args.duration:.0f} s"):
                    results[f"{name} batch"] = loadgen(
                        port, "/v1/batch", batches, key, args.duration, args.concurrency
                    )
                if name == "tailor":
                    # Each load is measured on its own: the single-event run starts once the batch
                    # run's backlog is loaded into DuckDB and through the processing stages.
                    now = httpx.get(
                        f"http://127.0.0.1:{tailor_port}/api/v1/stats", headers=admin, timeout=30
                    ).json()
                    lag = now["processor"]["lag"] + now["writer"]["unloaded_events"]
                    with console.status("tailor: loading and processing the batch run's backlog"):
                        drained = settle()
                    accepted = results["tailor batch"]["events"]
                    through = accepted / (results["tailor batch"]["seconds"] + drained)
                    console.print(
                        f"processing: {lag:,} events behind when the batch run ended, through every"
                        f" stage {drained:.1f} s later; the run's {accepted:,.0f} events processed"
                        f" at {through:,.0f} events/s end to end"
                    )
                with console.status(f"{name}: /v1/track at {args.track_rate:.0f} requests/s"):
                    results[f"{name} track"] = loadgen(
                        port, "/v1/track", singles, key, args.duration, 64, rate=args.track_rate
                    )
            acknowledged = int(results["tailor batch"]["events"] + results["tailor track"]["events"])
        finally:
            for proc in (noop, tailor):
                proc.terminate()
                proc.wait(30)
        # Count what is in the event log itself once the server has stopped, not its counter of
        # acknowledged events (reopening also loads anything still staged, as a restart would).
        from tailor.runtime import Runtime

        with Runtime(data) as rt:
            stored_in_runs = int(rt.db.execute("SELECT count(*) FROM events")[0][0]) - before

    table = Table("run", "events/s", "requests/s", "p50 ms", "p99 ms", "errors")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['events_per_s']:,.0f}",
            f"{r['requests_per_s']:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            str(r["errors"]),
        )
    console.print(table)
    ratio = results["tailor batch"]["events_per_s"] / results["no-op batch"]["events_per_s"]
    console.print(
        f"durable batch ingest: {results['tailor batch']['events_per_s']:,.0f} events/s "
        f"= {ratio:.0%} of the no-op server (target: >= 60,000 events/s and >= 25%)"
    )
    console.print(
        f"/v1/track at {args.track_rate:.0f}/s: p99 {results['tailor track']['p99_ms']:.1f} ms "
        f"(no-op: {results['no-op track']['p99_ms']:.1f} ms; target < 25 ms)"
    )
    verdict = "equal" if stored_in_runs == acknowledged else "DIFFERENT"
    console.print(
        f"acknowledged in the measured runs: {acknowledged:,}; stored by them: {stored_in_runs:,} ({verdict})"
    )


if __name__ == "__main__":
    main()
