"""Outbox storage: SQLite against DuckDB for the outbox's many small transactions.

    python bench/outbox_store.py [--messages 20000] [--singles 2000]

The same table and the same statements on both engines, each in a file of its own:

- enqueue in one transaction (a broadcast), `--messages` rows;
- enqueue one row per transaction (a triggered send committed with the journey's state), `--singles`;
- the sender's cycle per message: claim a batch of 100 due rows (select + update in one
  transaction), then one committed hand-over update per message, then one transaction that
  records the outcomes of the batch.

SQLite runs in WAL mode with synchronous=NORMAL (a killed process loses nothing) and FULL (a
power cut loses nothing); DuckDB with its defaults, once with the same row-at-a-time statements
and once set-based (the bulk insert from an Arrow table, batch updates with `IN (list)`); the
hand-over mark is one committed single-row update per message on every engine. Prints rows/s
and the ratio SQLite (NORMAL) / the better DuckDB.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

DDL = [
    """CREATE TABLE outbox (
        id BIGINT PRIMARY KEY, message_id VARCHAR NOT NULL UNIQUE, idempotency_key VARCHAR NOT NULL UNIQUE,
        channel VARCHAR NOT NULL, address VARCHAR NOT NULL, data VARCHAR NOT NULL, status VARCHAR NOT NULL,
        next_attempt_at DOUBLE NOT NULL, handed_over_at DOUBLE, finished_at DOUBLE, reply VARCHAR
    )""",
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
]
INSERT = (
    "INSERT INTO outbox (id, message_id, idempotency_key, channel, address, data, status, next_attempt_at)"
    " VALUES (?, ?, ?, 'email', ?, ?, 'queued', ?) ON CONFLICT DO NOTHING"
)
DATA = '{"profile": {"first_name": "Ana"}, "offer": {"code": "HOME10", "discount_percent": 10}}'


def rows(start: int, n: int) -> list[tuple[Any, ...]]:
    return [(i, f"msg_{i}", f"key:{i}", f"p{i}@example.org", DATA, float(i)) for i in range(start, start + n)]


class Engine:
    """One engine's connection and transaction statements."""

    def __init__(self, name: str, execute: Callable[..., Any], many: Callable[..., Any], begin: str) -> None:
        self.name, self.execute, self.many, self.begin = name, execute, many, begin
        self.bulk_insert: Callable[[list[tuple[Any, ...]]], None] = lambda r: self.many(INSERT, r)
        self.update_set: Callable[[str, list[Any]], None] = lambda sql, ids: self.many(sql, ids)


def sqlite_engine(path: Path, synchronous: str) -> Engine:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    for ddl in DDL:
        conn.execute(ddl.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY"))
    return Engine(f"SQLite WAL synchronous={synchronous}", conn.execute, conn.executemany, "BEGIN IMMEDIATE")


def duckdb_engine(path: Path, set_based: bool) -> Engine:
    conn = duckdb.connect(str(path))
    for ddl in DDL:
        conn.execute(ddl)
    engine = Engine("DuckDB set-based" if set_based else "DuckDB", conn.execute, conn.executemany, "BEGIN")
    if set_based:
        import pyarrow as pa

        names = ["id", "message_id", "idempotency_key", "address", "data", "next_attempt_at"]

        def bulk(batch: list[tuple[Any, ...]]) -> None:
            fresh = pa.table(dict(zip(names, zip(*batch, strict=True), strict=True)))  # noqa: F841
            conn.execute(
                "INSERT INTO outbox (id, message_id, idempotency_key, channel, address, data, status,"
                " next_attempt_at) SELECT id, message_id, idempotency_key, 'email', address, data, 'queued',"
                " next_attempt_at FROM fresh ON CONFLICT DO NOTHING"
            )

        def update(sql: str, ids: list[Any]) -> None:
            conn.execute(sql.replace("= ?", "IN (SELECT unnest(?))"), [[i for (i,) in ids]])

        engine.bulk_insert, engine.update_set = bulk, update
    return engine


def measure(engine: Engine, messages: int, singles: int) -> dict[str, float]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    engine.execute(engine.begin)
    engine.bulk_insert(rows(0, messages))
    engine.execute("COMMIT")
    out["enqueue, one transaction"] = messages / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(messages, messages + singles):
        engine.execute(engine.begin)
        engine.many(INSERT, rows(i, 1))
        engine.execute("COMMIT")
    out["enqueue, a transaction each"] = singles / (time.perf_counter() - started)
    cycled = 0
    started = time.perf_counter()
    while cycled < singles:
        engine.execute(engine.begin)
        due = engine.execute(
            "SELECT message_id FROM outbox WHERE status = 'queued' ORDER BY next_attempt_at LIMIT 100"
        ).fetchall()
        engine.update_set("UPDATE outbox SET status = 'sending' WHERE message_id = ?", due)
        engine.execute("COMMIT")
        for (mid,) in due:  # the hand-over mark: its own committed transaction
            engine.execute("UPDATE outbox SET handed_over_at = 1 WHERE message_id = ?", [mid])
        engine.execute(engine.begin)
        engine.many(
            "UPDATE outbox SET status = 'delivered', finished_at = 2, reply = '250 OK' WHERE message_id = ?",
            due,
        )
        engine.execute("COMMIT")
        cycled += len(due)
    out["send cycle (claim, hand-over, outcome)"] = cycled / (time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=2_000)
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    console.print(f"load average before: {os.getloadavg()}")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for make in (
            lambda: sqlite_engine(Path(tmp) / "normal.sqlite", "NORMAL"),
            lambda: sqlite_engine(Path(tmp) / "full.sqlite", "FULL"),
            lambda: duckdb_engine(Path(tmp) / "outbox.duckdb", False),
            lambda: duckdb_engine(Path(tmp) / "set.duckdb", True),
        ):
            engine = make()
            console.print(f"measuring {engine.name} ...")
            results[engine.name] = measure(engine, args.messages, args.singles)
    table = Table(title="outbox storage, rows per second")
    names = list(results)
    table.add_column("operation")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("SQLite NORMAL / best DuckDB", justify="right")
    for op in results[names[0]]:
        cells = [f"{results[n][op]:,.0f}" for n in names]
        best = max(results["DuckDB"][op], results["DuckDB set-based"][op])
        table.add_row(op, *cells, f"{results[names[0]][op] / best:.1f}x")
    console.print(table)
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
