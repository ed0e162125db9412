"""Connector benchmarks: a 1M-row CSV import and an incremental sync of 100,000 changed PostgreSQL rows.

    python bench/connectors.py [--rows 1000000] [--changed 100000] [--pg postgresql://postgres@127.0.0.1/postgres]

- CSV import: writes a CSV of customer records (customer_id, email, phone, first/last name, city,
  postcode, birth date, signup time, lifetime value, vip) and imports it with `import_file` through a
  typed record mapping into a fresh data directory, until every row is durable and loaded in the event
  log. Baseline in the same run: reading the same file with pyarrow's CSV reader alone (all columns).
  Target: under 30 s.
- Incremental sync: a PostgreSQL table of the same customers (in a database the benchmark creates and
  drops) is synced once, then 100,000 rows are updated (new `updated_at`) and the second, incremental
  sync is timed. Baseline in the same run: `COPY (SELECT ... WHERE updated_at > cursor) TO STDOUT` of
  the same rows through psycopg. Target: under 10 s.

Prints each figure, its ratio to the baseline, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pyarrow.csv as pcsv

from tailor.connectors.declarations import save_declaration
from tailor.connectors.file_import import import_file
from tailor.connectors.mapping import parse_mapping
from tailor.datadir import init_data_dir
from tailor.runtime import Runtime

MAPPING = {
    "record": "crm",
    "id": "customer_id",
    "identifiers": {"customer_id": "crm_id", "email": "email", "phone": "phone"},
    "traits": {
        "first_name": "string",
        "last_name": "string",
        "city": "string",
        "postcode": "string",
        "birth_date": "date",
        "signed_up_at": "timestamp",
        "lifetime_value": "number",
        "vip": "boolean",
    },
}
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Isla", "Jack", "Kai", "Lena"]
LAST = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Patel", "Khan", "Murphy"]
CITY = ["London", "Leeds", "Bristol", "Glasgow", "Cardiff", "York", "Belfast", "Norwich"]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as f:
        f.write(
            "customer_id,email,phone,first_name,last_name,city,postcode,birth_date,signed_up_at,"
            "lifetime_value,vip\n"
        )
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            f.write(
                f"C{i:07d},{first.lower()}.{last.lower()}{i}@example.org,07{rng.randrange(10**9):09d},"
                f"{first},{last},{rng.choice(CITY)},AB{i % 90 + 10} {i % 9}CD,"
                f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d},"
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z,"
                f"{(i % 5000) / 7:.2f},{'yes' if i % 10 == 0 else 'no'}\n"
            )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_csv(rows: int, work: Path) -> None:
    path = work / "customers.csv"
    t = time.perf_counter()
    write_csv(path, rows)
    print(f"wrote {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    table = pcsv.read_csv(path)
    baseline = time.perf_counter() - t
    assert table.num_rows == rows
    del table
    data = work / "data"
    init_data_dir(data)
    rt = Runtime(data)
    rt.writer.start()
    try:
        t, cpu = time.perf_counter(), time.process_time()
        counts = import_file(rt.db, rt.writer, path, parse_mapping(MAPPING, "bench"), "crm")
        took, cpu = time.perf_counter() - t, time.process_time() - cpu
        (stored,) = rt.db.execute("SELECT count(*) FROM events")[0]
    finally:
        rt.writer.stop()
        rt.writer.close()
        rt.connectors.close()
        rt.db.close()
    assert counts.rows_written == rows == stored, (counts, stored)
    print(f"pyarrow read_csv alone: {baseline:.2f} s")
    print(
        f"CSV import, {rows:,} rows durable and loaded: {took:.2f} s ({rows / took:,.0f} rows/s),"
        f" {took / baseline:.1f}x the pyarrow read; target < 30 s: {'met' if took < 30 else 'NOT met'}"
    )
    # On a shared machine the wall time follows the load; the CPU time of all threads much less so.
    print(f"CPU time of the import (all threads): {cpu:.2f} s; load average now: {load()}")


def bench_pg(rows: int, changed: int, admin: str, work: Path) -> None:
    name = f"tailor_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(
                "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT, phone TEXT,"
                " first_name TEXT,"
                " last_name TEXT, city TEXT, postcode TEXT, birth_date DATE, signed_up_at TIMESTAMPTZ,"
                " lifetime_value NUMERIC(10,2), vip BOOLEAN, updated_at TIMESTAMPTZ NOT NULL)"
            )
            con.execute(
                "INSERT INTO customers SELECT 'C' || lpad(i::text, 7, '0'), 'p' || i || '@example.org',"
                " '07' || lpad((i::bigint * 7919 %% 1000000000)::text, 9, '0'),"
                " 'First' || (i %% 97), 'Last' || (i %% 89),"
                " 'City' || (i %% 13), 'AB' || (i %% 90 + 10), date '1950-01-01' + (i %% 18000),"
                " timestamptz '2024-01-01' + i * interval '1 minute', (i %% 5000) / 7.0, i %% 10 = 0,"
                " timestamptz '2024-06-01' + i * interval '1 millisecond' FROM generate_series(1, %s) i",
                (rows,),
            )
            con.execute("CREATE INDEX ON customers (updated_at, customer_id)")
            con.execute("ANALYZE customers")
        data = work / "pgdata"
        init_data_dir(data)
        rt = Runtime(data)
        rt.writer.start()
        try:
            spec = {
                "type": "sql_source",
                "url": url,
                "table": "customers",
                "cursor": "updated_at",
                "key": "customer_id",
                "mapping": MAPPING,
            }
            save_declaration(data, "crm", spec)
            t = time.perf_counter()
            first = rt.connectors.run("crm")
            print(f"initial PostgreSQL sync: {first.rows_written:,} rows in {time.perf_counter() - t:.2f} s")
            with psycopg.connect(url, autocommit=True) as con:
                (cursor,) = con.execute("SELECT max(updated_at) FROM customers").fetchone() or (None,)
                con.execute(
                    "UPDATE customers SET lifetime_value = lifetime_value + 1, updated_at = now()"
                    " WHERE customer_id IN"
                    " (SELECT customer_id FROM customers ORDER BY md5(customer_id) LIMIT %s)",
                    (changed,),
                )
                t = time.perf_counter()
                copied = 0
                with con.cursor().copy(
                    "COPY (SELECT * FROM customers WHERE updated_at > %s ORDER BY updated_at, customer_id)"
                    " TO STDOUT",
                    (cursor,),
                ) as copy:
                    for block in copy:
                        copied += len(block)
                baseline = time.perf_counter() - t
            t = time.perf_counter()
            second = rt.connectors.run("crm")
            took = time.perf_counter() - t
        finally:
            rt.writer.stop()
            rt.writer.close()
            rt.connectors.close()
            rt.db.close()
        assert second.rows_read == changed, second
        assert second.rows_written == changed, second
        print(f"COPY of the {changed:,} changed rows alone: {baseline:.2f} s ({copied / 1e6:.1f} MB)")
        print(
            f"incremental sync of {changed:,} changed rows: {took:.2f} s ({changed / took:,.0f} rows/s),"
            f" {took / baseline:.1f}x the COPY; target < 10 s: {'met' if took < 10 else 'NOT met'}"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=100_000)
    parser.add_argument("--pg-rows", type=int, default=300_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_csv:
            bench_csv(args.rows, Path(tmp))
        if not args.skip_pg:
            bench_pg(args.pg_rows, args.changed, args.pg, Path(tmp))
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
