"""A realistic, deterministic synthetic customer base for the demo, the tests and the benchmarks.

The base is a UK retailer, Hartley & Hale, selling fashion and home goods online, in its app, on a
smart-TV app and in shops. People, households and devices are planned first (`population`); the
events are then simulated day by day and streamed in timestamp order (`timeline`), and the records
of other systems (CRM, call centre, guest checkouts) are written from the same plan (`records`).
The same `SynthConfig` always gives byte-identical output.

Phone numbers are British: parse them with the `phonenumbers` library using default region "GB".
They are random numbers in valid UK ranges, so never send real SMS to them. Email addresses use the
reserved `.example` top-level domain, so nothing can ever be delivered to them.

Timestamps in events are UTC ISO 8601 with milliseconds and "+00:00"; record timestamps are UTC
"YYYY-MM-DD HH:MM:SS". Money in events is in pounds (GBP, VAT included); an Order Completed's
`total` is the sum of its products' `price` x `quantity` (coupon discounts are already taken off
each `price`), `revenue` is `total` less `tax`, and delivery is free.

Ground truth (`truth()`): one row per (kind, value, person_id). Kinds: user_id, anonymous_id
(browser and app ids, email-platform subscriber ids "sub_...", tokenised payment cards "card_...",
call-centre caller ids "cti-..."), device_id, email, phone (E.164), household, group_id, crm_id and
record ("crm:<crm_id>", "call_centre:<call_id>", "guest_checkout:<order_id>"). A value listed for
several people is genuinely shared: a family device, a household landline, a family account. Junk
values ("null", "test@test.com", ...) are listed as junk_user_id / junk_email with an empty
person_id. `labelled_events()` also tells who really caused each event, in which visit and through
which channel, including events on a family device sent under someone else's userId.

Run `python -m tailor.demo.synth --people 10000` to print counts and the generation rate.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec

from tailor.demo.config import SynthConfig
from tailor.demo.model import Person, Population
from tailor.demo.population import build_population
from tailor.demo.records import CALL_COLUMNS, CRM_COLUMNS, GUEST_COLUMNS, RecordWriter
from tailor.demo.timeline import events, labelled_events
from tailor.demo.truth import identity_truth, record_truth
from tailor.demo.world import EventLabel

__all__ = ["CustomerBase", "EventLabel", "SynthConfig", "generate"]

RECORD_KINDS = {
    "crm": ("crm_id", CRM_COLUMNS),
    "call_centre": ("call_id", CALL_COLUMNS),
    "guest_checkout": ("order_id", GUEST_COLUMNS),
}


class CustomerBase:
    """A generated customer base: its event stream, its records in other systems and the ground truth."""

    def __init__(self, config: SynthConfig, population: Population) -> None:
        self.config = config
        self.population = population

    def labelled_events(self) -> Iterator[tuple[EventLabel, dict[str, Any]]]:
        """Every event with who really caused it, in which visit and through which channel."""
        return labelled_events(self.population, self.config)

    def events(self) -> Iterator[dict[str, Any]]:
        """Segment messages as SDKs would send them in /v1/batch, ordered by timestamp, generated lazily."""
        return events(self.population, self.config)

    @cached_property
    def _records(self) -> dict[str, list[tuple[dict[str, str], Person]]]:
        writer = RecordWriter(self.population, self.config)
        return {
            "crm": writer.crm(),
            "call_centre": writer.calls(),
            "guest_checkout": writer.guest_checkouts(),
        }

    def records(self) -> dict[str, list[dict[str, str]]]:
        """Rows of the CRM, the call-centre log and the guest-checkout export; "" marks a missing value."""
        return {kind: [dict(row) for row, _ in rows] for kind, rows in self._records.items()}

    def truth(self) -> list[tuple[str, str, str]]:
        """Ground truth rows (kind, value, person_id) for every identifier and every record row."""
        rows = identity_truth(self.population)
        for kind, (id_column, _) in RECORD_KINDS.items():
            rows += record_truth(kind, id_column, self._records[kind])
        return rows

    def write_records(self, out_dir: Path) -> dict[str, Path]:
        """Writes one UTF-8 CSV with a header row per record source; returns the paths by source."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind, rows in self.records().items():
            path = out_dir / f"{kind}.csv"
            with path.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=RECORD_KINDS[kind][1], lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
            paths[kind] = path
        return paths

    def write_truth(self, path: Path) -> Path:
        """Writes the ground truth as a CSV with columns kind, value, person_id."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(("kind", "value", "person_id"))
            writer.writerows(self.truth())
        return path

    def write_events(self, path: Path) -> Path:
        """Writes the events as JSON Lines."""
        path.parent.mkdir(parents=True, exist_ok=True)
        encode = msgspec.json.Encoder().encode
        with path.open("wb") as f:
            batch: list[bytes] = []
            for event in self.events():
                batch.append(encode(event))
                if len(batch) >= 4096:
                    f.write(b"\n".join(batch) + b"\n")
                    batch.clear()
            if batch:
                f.write(b"\n".join(batch) + b"\n")
        return path


def generate(config: SynthConfig) -> CustomerBase:
    """Plans the population of a config; events and records are produced when asked for."""
    return CustomerBase(config, build_population(config))


def main(argv: list[str] | None = None) -> None:
    """Generates a customer base and prints its size and how fast its events are generated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=SynthConfig.people)
    parser.add_argument("--seed", type=int, default=SynthConfig.seed)
    parser.add_argument("--days", type=int, default=SynthConfig.days)
    parser.add_argument(
        "--out", type=Path, help="also write events.jsonl, truth.csv and the record CSVs here"
    )
    args = parser.parse_args(argv)
    config = SynthConfig(people=args.people, seed=args.seed, days=args.days)
    started = time.perf_counter()
    base = generate(config)
    planned = time.perf_counter()
    types: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for event in base.events():
        types[event["type"]] += 1
        if event["type"] == "track":
            names[event["event"]] += 1
    done = time.perf_counter()
    total = sum(types.values())
    print(f"people {config.people}, days {config.days}, seed {config.seed}")
    print(f"population planned in {planned - started:.2f} s")
    print(f"events {total:,} in {done - planned:.2f} s: {total / (done - planned):,.0f} events/s")
    print("by type: " + ", ".join(f"{k} {v:,}" for k, v in types.most_common()))
    print("track events: " + ", ".join(f"{k} {v:,}" for k, v in names.most_common()))
    for kind, rows in base.records().items():
        print(f"records {kind}: {len(rows):,}")
    print(f"truth rows: {len(base.truth()):,}")
    if args.out is not None:
        base.write_events(args.out / "events.jsonl")
        base.write_records(args.out)
        base.write_truth(args.out / "truth.csv")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
