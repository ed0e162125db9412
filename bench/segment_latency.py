"""Event to `segment entered` in the running server: how long after an event its segment entry is recorded.

    python bench/segment_latency.py [--people 2000] [--probes 200] [--background 500]
    python bench/segment_latency.py --generated 1000000

Starts `tailor serve` on a fresh data directory, loads the synthetic customer base (`--people`)
through `/v1/batch`, saves the demo's segments plus one probe segment (`Latency Probe` seen at
least once), and keeps a background load of other events (`--background` events/s, 100-event
batches). With `--generated N`, the base is instead N people's events (ten each) written straight
into the event log by bench/segments.py's generator, with that benchmark's 20 computed traits and
20 segments plus the probe saved, and every stage rebuilt from the log before the server starts:
the server then holds N profiles, as a store that has collected them would. Then every 100 ms it
sends one `/v1/track` `Latency Probe` event of a new user and watches `/api/v1/segment-changes`
(polled every 20 ms) for that person's entry. The latency is from just before the request to the
poll that first sees the entry (so it includes up to 20 ms of polling). The baseline, measured in the same run, is the `/v1/track` round trip itself: the
time to a durable acknowledgement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tailor.datadir import init_data_dir
from tailor.demo.segments import DEMO_SEGMENTS
from tailor.demo.synth import SynthConfig, generate
from tailor.runtime import Runtime

PROBE = {"name": "latency_probe", "condition": {"event": "Latency Probe"}}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))]


def _generate(data: Path, people: int) -> None:
    """Writes `people` people's events into the log, saves bench/segments.py's definitions and the
    probe, and rebuilds every stage (as `tailor rebuild` does)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from segments import _EVENTS, LIBRARY, SEGMENTS, _catalog

    # Events of the 180 days up to now: the server's windows and schedule see them as a live
    # store would (none of its people due for days of catching up).
    now, per, total = datetime.now(UTC), 10, people * 10
    started = time.perf_counter()
    with Runtime(data) as rt:
        for lo in range(0, total, 2_000_000):
            rt.db.execute(_EVENTS.format(per=per, lo=lo, hi=min(total, lo + 2_000_000), now=now.isoformat()))
    # Opened again: a runtime's log head is what its writer found committed when it started.
    with Runtime(data) as rt:
        needed = {t.name for t in _catalog().traits}
        traits = [d for d in LIBRARY if d["name"] in needed]
        rt.definitions.put_many([*traits, *SEGMENTS, PROBE])
        print(f"wrote {total:,} events of {people:,} people in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        rt.processor.rebuild()
        counts = rt.db.execute(
            "SELECT (SELECT count(*) FROM profile_computed), (SELECT count(*) FROM segment_members)"
        )[0]
        print(
            f"rebuilt every stage in {time.perf_counter() - started:.1f} s: {counts[0]:,} profiles,"
            f" {counts[1]:,} memberships"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--background", type=int, default=500, help="background events per second")
    parser.add_argument(
        "--generated", type=int, default=0, help="people written straight into the log (see above)"
    )
    parser.add_argument("--server-log", type=Path, default=None, help="keep the server's log in this file")
    parser.add_argument(
        "--load-delay-ms", type=int, default=0, help="[collect] load_delay_ms (default: the setting's)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        creds = init_data_dir(data)
        if args.generated:
            _generate(data, args.generated)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (args.server_log or Path(tmp) / "server.log").open("wb")
        env = (
            {**os.environ, "TAILOR_COLLECT__LOAD_DELAY_MS": str(args.load_delay_ms)}
            if args.load_delay_ms
            else None
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "tailor.cli", "serve", "--data", str(data), "--port", str(port)],
            stdout=log,
            stderr=log,
            env=env,
        )
        admin = {"Authorization": f"Bearer {creds.admin_token}"}
        write = {"X-Write-Key": creds.write_key}
        client = httpx.Client(timeout=60)
        try:
            for _ in range(300):
                try:
                    if client.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            events = list(generate(SynthConfig(people=args.people, seed=5)).events())
            if not args.generated:
                started = time.perf_counter()
                for i in range(0, len(events), 500):
                    client.post(
                        f"{url}/v1/batch", json={"batch": events[i : i + 500]}, headers=write
                    ).raise_for_status()
                print(
                    f"loaded {len(events):,} events of {args.people:,} people in {time.perf_counter() - started:.1f} s"
                )
                for body in [*DEMO_SEGMENTS, PROBE]:
                    client.post(f"{url}/api/v1/segments", json=body, headers=admin).raise_for_status()
            last = 0
            while page := client.get(
                f"{url}/api/v1/segment-changes?after={last}&limit=100000", headers=admin
            ).json()["changes"]:
                last = page[-1]["id"]  # the back-fill's entries: the probe watches what comes after

            stop = threading.Event()
            background = events[: 20 * 100]

            def load() -> None:
                c = httpx.Client(timeout=60)
                i = 0
                while not stop.is_set():
                    batch = [
                        {**e, "messageId": f"bg-{i}-{j}"}
                        for j, e in enumerate(background[(i % 20) * 100 : (i % 20 + 1) * 100])
                    ]
                    c.post(f"{url}/v1/batch", json={"batch": batch}, headers=write)
                    i += 1
                    stop.wait(100 / max(1, args.background))

            threads = [threading.Thread(target=load, daemon=True)] if args.background else []
            head0 = client.get(f"{url}/api/v1/stats", headers=admin).json()["head_seq"]
            for t in threads:
                t.start()
            # The probes start once the processor has applied events sent after the start and
            # caught up (after a restart at 1M people its first batch also loads the identity
            # index: ~4.5 s, measured apart from the steady state).
            deadline = time.perf_counter() + 300
            while threads and time.perf_counter() < deadline:
                time.sleep(0.5)
                proc = client.get(f"{url}/api/v1/stats", headers=admin).json()["processor"]
                if min(proc["offsets"].values()) > head0 and proc["lag"] < 500:
                    break
            sent: dict[str, float] = {}
            acks: list[float] = []
            seen: dict[str, float] = {}
            probe_client = httpx.Client(timeout=60)

            def poll() -> None:
                nonlocal last
                c = httpx.Client(timeout=60)
                while not stop.is_set() or len(seen) < len(sent):
                    r = c.get(
                        f"{url}/api/v1/segment-changes?segment=latency_probe&after={last}", headers=admin
                    )
                    now = time.perf_counter()
                    for change in r.json()["changes"]:
                        last = max(last, change["id"])
                        if change["change"] == "entered":
                            seen.setdefault(change["profile_id"], now)
                    if stop.is_set() and time.perf_counter() > deadline:
                        return
                    time.sleep(0.02)

            deadline = float("inf")
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            for i in range(args.probes):
                user = f"probe-{i}"
                t0 = time.perf_counter()
                probe_client.post(
                    f"{url}/v1/track", json={"userId": user, "event": "Latency Probe"}, headers=write
                ).raise_for_status()
                acks.append(time.perf_counter() - t0)
                sent[user] = t0
                time.sleep(0.1)
            deadline = time.perf_counter() + 30
            stop.set()
            poller.join(60)
            latencies = []
            for user, t0 in sent.items():
                r = client.get(f"{url}/api/v1/profiles?identifier=user_id:{user}", headers=admin)
                pid = r.json()["profile_id"]
                if pid in seen:
                    latencies.append(seen[pid] - t0)
            missing = len(sent) - len(latencies)
            p50, p95 = statistics.median(latencies), _percentile(latencies, 0.95)
            a50, a95 = statistics.median(acks), _percentile(acks, 0.95)
            print(
                f"event -> segment entered: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
                f" ({len(latencies)} probes, {missing} not seen)"
            )
            print(
                f"baseline /v1/track acknowledgement: p50 {a50 * 1000:.1f} ms, p95 {a95 * 1000:.1f} ms;"
                f" p95 ratio {p95 / a95:.0f}x"
            )
            # Where the time went, from the server's own clocks: arrival -> evaluation started
            # (the change's time is the evaluation time of its micro-batch).
            received = {
                e["user_id"]: datetime.fromisoformat(e["received_at"])
                for e in client.get(f"{url}/api/v1/events?type=track&limit=1000", headers=admin).json()[
                    "events"
                ]
                if e.get("event") == "Latency Probe"
            }
            evaluated = {}
            after = 0
            while page := client.get(
                f"{url}/api/v1/segment-changes?segment=latency_probe&after={after}&limit=1000", headers=admin
            ).json()["changes"]:
                after = page[-1]["id"]
                for change in page:
                    evaluated.setdefault(change["profile_id"], datetime.fromisoformat(change["at"]))
            waits = []
            for user in sent:
                pid = client.get(f"{url}/api/v1/profiles?identifier=user_id:{user}", headers=admin).json()[
                    "profile_id"
                ]
                if user in received and pid in evaluated:
                    waits.append((evaluated[pid] - received[user]).total_seconds())
            if waits:
                print(
                    f"server side, arrival -> start of the evaluating micro-batch: p50 {statistics.median(waits) * 1000:.0f} ms,"
                    f" p95 {_percentile(waits, 0.95) * 1000:.0f} ms"
                )
            stats: dict[str, Any] = client.get(f"{url}/api/v1/stats", headers=admin).json()
            print(f"events stored {stats['events_total']:,}; background {args.background} events/s")
        finally:
            server.terminate()
            server.wait(60)


if __name__ == "__main__":
    main()
