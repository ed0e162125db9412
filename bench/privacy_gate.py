"""What consent enforcement, tombstones and rate limits add to collection, per event.

    python bench/privacy_gate.py [--batches 300]

Validates 100-event batches of realistic events (the synthetic customer base, ~970 bytes each, as
bench/ingest.py sends) and times, in the same run: validation alone (the baseline, the collector's
own per-event work), then validation followed by the collection gate and the write-key rate limit,
(a) with no tombstone and no recorded denial (the usual case), (b) with 1,000 tombstones and
10,000 recorded analytics denials, (c) with half the events carrying Segment consent preferences.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime

import msgspec

from tailor.access.ratelimit import RateLimiter
from tailor.collect.validate import MessageValidator
from tailor.demo.synth import SynthConfig, generate
from tailor.privacy.config import PrivacyConfig
from tailor.privacy.gate import CollectionGate
from tailor.privacy.secret import KeyedHash


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    events = []
    for e in generate(SynthConfig(people=600, seed=7)).events():
        events.append(e)
        if len(events) >= args.batches * 100:
            break
    messages = [msgspec.json.encode(e) for e in events]
    with_consent = []
    for i, e in enumerate(events):
        if i % 2 == 0:
            e = {
                **e,
                "context": {
                    **(e.get("context") or {}),
                    "consent": {"categoryPreferences": {"Analytics": True}},
                },
            }
        with_consent.append(msgspec.json.encode(e))
    validator = MessageValidator(32 * 1024)
    secret = b"k" * 32
    now = datetime.now(UTC)

    def run(raws: list[bytes], gate: CollectionGate | None, limiter: RateLimiter | None) -> float:
        times = []
        for b in range(0, len(raws), 100):
            chunk = raws[b : b + 100]
            started = time.perf_counter()
            rows, rejections = validator.validate("src", chunk, now)
            if limiter is not None:
                limiter.take("wk_bench")
            if gate is not None:
                gate.apply("src", rows, rejections, len(chunk), True)
            times.append((time.perf_counter() - started) / len(chunk))
        return statistics.median(times) * 1e6

    plain = CollectionGate(PrivacyConfig(), KeyedHash(secret), secret)
    loaded = CollectionGate(PrivacyConfig(), KeyedHash(secret), secret)
    hasher = KeyedHash(secret)
    loaded.forbid({hasher.of("user_id", f"erased-{i}"): f"er_{i}" for i in range(1000)})
    loaded._analytics = {f"denied-{i}": "denied" for i in range(10_000)}
    limiter = RateLimiter(1e9, 1e9)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {len(messages):,} events")
    for label, raws, gate in (
        ("usual", messages, plain),
        ("1,000 tombstones, 10,000 denials", messages, loaded),
        ("half the events carry consent", with_consent, plain),
    ):
        rounds = [(run(raws, None, None), run(raws, gate, limiter)) for _ in range(3)]
        baseline = statistics.median(r[0] for r in rounds)
        gated = statistics.median(r[1] for r in rounds)
        print(
            f"{label}: validation {baseline:.2f} us/event, with gate and rate limit {gated:.2f} us/event"
            f" (+{gated - baseline:.2f} us, {gated / baseline:.2f}x)"
        )


if __name__ == "__main__":
    main()
