"""Batch rebuild benchmark: the synthetic customer base on DuckDB and on local-mode Spark, side by side.

    python bench/batch_rebuild.py [--sizes 1000000,10000000] [--engines duckdb,spark] [--keep DIR]

For each size, generates the synthetic base (`tailor.demo.synth`, ~65 events a person) through
the collector's write path into a fresh store (nothing processed), exports it with
`tailor export-events`, then times `tailor rebuild --engine E --events ...` (identity, golden
records, the trait library, the demo's ten segments, touchpoints and conversions) on each engine,
in the same process. It prints each engine's time, the Spark/DuckDB ratio at each size and each
engine's growth from the smallest size to the largest (ratio of times, against the ratio of
events), with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tailor.batch.definitions import read_definitions
from tailor.batch.export import EVENTS_FILE, export_store
from tailor.batch.pipeline import rebuild
from tailor.collect.writer import Submission
from tailor.datadir import init_data_dir
from tailor.demo.segments import DEMO_SEGMENTS
from tailor.demo.synth import SynthConfig, generate
from tailor.engines import make_engine
from tailor.runtime import Runtime

NOW = datetime.fromisoformat("2026-11-02T09:00:00+00:00")
EVENTS_PER_PERSON = 65


def build_store(path: Path, events: int, console: Console) -> Path:
    """A store with about `events` synthetic events, the library and the demo's segments, exported."""
    init_data_dir(path / "data")
    rt = Runtime(path / "data")
    rt.writer.start()  # the processor does not run: the batch rebuild is what is measured
    rt.definitions.put_many(DEMO_SEGMENTS)
    people = max(10, events // EVENTS_PER_PERSON)
    encode = msgspec.json.encode

    def send(batch: list[dict[str, object]]) -> None:
        rows, rejections = rt.validator.validate("bench", [encode(m) for m in batch], NOW)
        rt.writer.write(Submission("bench", "batch", NOW, rows, rejections))

    batch: list[dict[str, object]] = []
    with Progress(console=console) as progress:
        task = progress.add_task(f"generating {events:,} events", total=events)
        for event in generate(SynthConfig(people=people, seed=3)).events():
            batch.append(event)
            if len(batch) == 5000:
                send(batch)
                progress.advance(task, len(batch))
                batch.clear()
        if batch:
            send(batch)
    rt.writer.flush()
    rt.writer.stop()
    rt.writer.close()
    rt.db.checkpoint()
    rt.db.close()
    return export_store(path / "data", path / "export").events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--keep", type=Path, help="keep the stores and outputs here")
    parser.add_argument(
        "--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)"
    )
    parser.add_argument("--reuse", action="store_true", help="use the stores already exported under --keep")
    args = parser.parse_args()
    console = Console()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    root = args.keep or Path(tempfile.mkdtemp(prefix="tailor-batch-"))
    load_before = os.getloadavg()
    times: dict[tuple[str, int], float] = {}
    counts: dict[int, int] = {}
    conf = dict(kv.split("=", 1) for kv in args.spark_conf)
    for size in sizes:
        exported = root / str(size) / "export" / EVENTS_FILE
        if args.reuse and exported.exists():
            events = exported
        else:
            events = build_store(root / str(size), size, console)
        definitions = read_definitions(events.parent / "definitions.json")
        for name in engines:
            out = root / str(size) / f"out_{name}"
            with make_engine(name, spill=out / ".spill", conf=conf or None) as engine:
                started = time.perf_counter()
                result = rebuild(engine, str(events), str(out), definitions, NOW)
                times[(name, size)] = time.perf_counter() - started
            counts[size] = result.rows["profiles"]
            console.print(
                f"{size:,} events, {name}: {times[(name, size)]:.1f} s "
                + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
            )
    table = Table("events", "profiles", *(f"{e} (s)" for e in engines), "spark / duckdb")
    for size in sizes:
        ratio = (
            f"{times[('spark', size)] / times[('duckdb', size)]:.2f}"
            if {"spark", "duckdb"} <= set(engines)
            else "-"
        )
        table.add_row(f"{size:,}", f"{counts[size]:,}", *(f"{times[(e, size)]:.1f}" for e in engines), ratio)
    console.print(table)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for e in engines:
            console.print(
                f"{e}: {hi / lo:.0f}x the events took {times[(e, hi)] / times[(e, lo)]:.2f}x the time"
            )
    console.print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} (2 cores)")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
