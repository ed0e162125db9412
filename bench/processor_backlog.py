"""The processor on a backlog: how fast every stage applies events that are already durable.

    python bench/processor_backlog.py [--people 3000] [--rounds 2]

Writes the synthetic customer base's events (`--rounds` times, new message ids each time) into a
fresh data directory through the collector's writer, with the processor stopped, after one small
batch so that the identity stage works from its in-memory index as in a running server. Then it
times the processor applying the backlog in live micro-batches of up to 200,000 events (what a
busy server's batches grow to): events/s and CPU per event. Collection is not running, so this
is processing alone, the part of the ingest benchmark's cost that decides whether a server keeps
up. The baseline, in the same run: one DuckDB pass over the same events that parses the JSON
columns every stage reads (the least any processing of them must do).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from tailor.collect.writer import Submission
from tailor.datadir import init_data_dir
from tailor.demo.synth import SynthConfig, generate
from tailor.process.heap import quiet_garbage_collector
from tailor.runtime import Runtime

_BASELINE = """SELECT
       count(json_extract_string(context, ['$.traits.email', '$.device.id', '$.userAgent'])[2]),
       count(json_extract_string(properties, ['$.category', '$.total'])[1]),
       count(json_extract_string(traits, ['$.email', '$.city'])[1])
FROM events"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    events = list(generate(SynthConfig(people=args.people, seed=7)).events())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        init_data_dir(data)
        rt = Runtime(data)
        quiet_garbage_collector()  # as `tailor serve` does
        rt.writer.start()
        now = datetime.now(UTC)

        def send(chunk: list[dict[str, Any]], salt: str) -> None:
            raws = [msgspec.json.encode({**e, "messageId": f"{salt}-{i}"}) for i, e in enumerate(chunk)]
            rows, rejections = rt.validator.validate("src", raws, now)
            rt.writer.write(Submission("src", "batch", now, rows, rejections))

        try:
            send(events[:1000], "warm")
            rt.processor.run_once()
            for r in range(args.rounds):
                for i in range(0, len(events), 5000):
                    send(events[i : i + 5000], f"r{r}-{i}")
            rt.writer.flush()
            rt.processor.max_batch_events = 200_000
            started, cpu, applied = time.perf_counter(), time.process_time(), 0
            while n := rt.processor.run_once():
                applied += n
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            rt.db.execute(_BASELINE)
            base = time.perf_counter() - started
            print(
                f"processor on a backlog: {applied:,} events in {wall:.1f} s"
                f" = {applied / wall:,.0f} events/s, CPU {cpu / applied * 1e6:.1f} us/event"
            )
            print(f"baseline, one DuckDB pass parsing the JSON: {base:.2f} s; ratio {wall / base:.1f}x")
        finally:
            rt.close()


if __name__ == "__main__":
    main()
