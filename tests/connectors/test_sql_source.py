"""Database sources against live PostgreSQL and MariaDB: incremental cursors, bad rows, outages."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tailor.connectors.declarations import save_declaration
from tailor.runtime import Runtime
from tests.connectors.conftest import PG_ADMIN, my, pg

MAPPING = {
    "record": "shop",
    "id": "id",
    "identifiers": {"email": "email"},
    "traits": {"name": "string", "age": "integer", "updated_at": "timestamp"},
}


def _declare(rt: Runtime, name: str, url: str, **extra: object) -> None:
    spec = {"type": "sql_source", "url": url, "table": "customers", "cursor": "updated_at", "key": "id"}
    save_declaration(rt.data_dir, name, {**spec, "mapping": MAPPING, **extra})


def _stored(rt: Runtime, source: str) -> list[str]:
    rows = rt.db.execute(
        "SELECT json_extract_string(context, '$.record.id') FROM events WHERE source_id = ? ORDER BY seq",
        [source],
    )
    return [r for (r,) in rows]


def _fill_pg(url: str, n: int, start: int = 1) -> None:
    pg(
        url,
        "INSERT INTO customers SELECT i, 'c' || i || '@example.org', 'name ' || i, (20 + i %% 50)::TEXT,"
        " timestamptz '2024-01-01' + i * interval '1 second' FROM generate_series(%s::INT, %s::INT) AS i",
        (start, start + n - 1),
    )


@pytest.fixture
def pg_customers(pg_url: str) -> str:
    pg(
        pg_url,
        "CREATE TABLE customers"
        " (id INT PRIMARY KEY, email TEXT, name TEXT, age TEXT, updated_at TIMESTAMPTZ)",
    )
    return pg_url


def test_postgres_incremental_reads_only_new_and_changed_rows(runtime: Runtime, pg_customers: str) -> None:
    _fill_pg(pg_customers, 250)
    # Many rows share one updated_at: the key orders them, so a page boundary inside them loses none.
    pg(pg_customers, "UPDATE customers SET updated_at = timestamptz '2024-06-01' WHERE id BETWEEN 90 AND 160")
    pg(pg_customers, "UPDATE customers SET age = 'old' WHERE id = 7")  # not an integer: quarantined
    _declare(runtime, "shop", pg_customers, batch_rows=100)
    first = runtime.connectors.run("shop")
    assert (first.status, first.rows_read, first.rows_written, first.rows_failed) == ("partial", 250, 249, 1)
    assert "row 7: column 'age': 'old' is not an integer" in first.details  # type: ignore[operator]
    again = runtime.connectors.run("shop")
    assert (again.status, again.rows_read, again.rows_written) == ("ok", 0, 0)
    pg(pg_customers, "UPDATE customers SET name = 'changed', updated_at = now() WHERE id IN (3, 200)")
    _fill_pg(pg_customers, 5, start=251)
    pg(pg_customers, "UPDATE customers SET updated_at = now() WHERE id > 250")
    third = runtime.connectors.run("shop")
    assert (third.rows_read, third.rows_written, third.rows_skipped) == (7, 7, 0)
    stored = _stored(runtime, "postgres:shop")
    assert len(stored) == 249 + 7
    assert len(set(stored)) == 254  # two changed, five new, one bad
    runtime.processor.run_once()
    (fields,) = runtime.db.execute("SELECT fields FROM records WHERE kind = 'shop' AND record_id = '3'")[0]
    assert json.loads(fields)["name"] == "changed"
    assert json.loads(third.cursor_after or "null")[1] == 255


def test_postgres_terminated_mid_sync_resumes_without_loss_or_duplicates(
    runtime: Runtime, pg_customers: str
) -> None:
    _fill_pg(pg_customers, 1000)
    _declare(runtime, "shop", pg_customers, batch_rows=100)
    database = pg_customers.rsplit("/", 1)[1]

    def terminate(page: int) -> None:
        if page == 3:  # three pages are stored: the database goes away under the fourth
            pg(
                PG_ADMIN,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )

    runtime.connectors.page_hook = terminate
    broken = runtime.connectors.run("shop")
    assert broken.status == "failed"
    assert "terminat" in (broken.error or "").lower() or "connection" in (broken.error or "").lower()
    assert broken.rows_written == 300
    assert json.loads(broken.cursor_after or "null")[1] == 300
    runtime.connectors.page_hook = None
    resumed = runtime.connectors.run("shop")
    assert (resumed.status, resumed.rows_read, resumed.rows_written, resumed.rows_skipped) == (
        "ok",
        700,
        700,
        0,
    )
    stored = _stored(runtime, "postgres:shop")
    assert sorted(stored, key=int) == [str(i) for i in range(1, 1001)]


def test_unreachable_database_and_missing_column_are_clear(runtime: Runtime, pg_customers: str) -> None:
    _declare(runtime, "down", "postgresql://postgres@127.0.0.1:1/nothing")
    down = runtime.connectors.run("down")
    assert down.status == "failed"
    assert "cannot connect" in (down.error or "")
    pg(pg_customers, "ALTER TABLE customers DROP COLUMN age")
    _fill_pg_no_age = "INSERT INTO customers VALUES (1, 'a@example.org', 'A', now())"
    pg(pg_customers, _fill_pg_no_age)
    _declare(runtime, "shop", pg_customers)
    missing = runtime.connectors.run("shop")
    assert missing.status == "failed"
    assert "no column 'age'" in (missing.error or "")
    assert "the source has: id, email, name, updated_at" in (missing.error or "")


def test_mariadb_query_source_full_and_incremental(runtime: Runtime, mysql_url: str) -> None:
    my(
        mysql_url,
        "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100), score DECIMAL(5,1), seen DATETIME)",
    )
    for i in range(1, 31):
        my(
            mysql_url,
            "INSERT INTO people VALUES (%s, %s, %s, %s)",
            (i, f"p{i}@example.org", i / 2, "2024-03-01"),
        )
    mapping = {"identifiers": {"email": "email"}, "traits": {"score": "number", "seen": "timestamp"}}
    query = "SELECT id, email, score, seen FROM people WHERE email IS NOT NULL"
    base = {"type": "sql_source", "url": mysql_url, "query": query, "mapping": mapping}
    save_declaration(runtime.data_dir, "ids", {**base, "cursor": "id", "batch_rows": 8})
    save_declaration(runtime.data_dir, "everyone", {**base, "mode": "full", "key": "id", "batch_rows": 8})
    first = runtime.connectors.run("ids")
    assert (first.status, first.rows_read, first.rows_written) == ("ok", 30, 30)
    full = runtime.connectors.run("everyone")
    assert (full.rows_read, full.rows_written) == (30, 30)  # its own source: its own events
    my(mysql_url, "INSERT INTO people VALUES (31, 'p31@example.org', 1.5, '2024-03-02')")
    my(mysql_url, "UPDATE people SET score = 9.5 WHERE id = 2")
    assert runtime.connectors.run("ids").rows_read == 1  # an id cursor sees only new rows
    again = runtime.connectors.run("everyone")
    assert (again.rows_read, again.rows_written, again.rows_skipped) == (31, 2, 29)
    (traits,) = runtime.db.execute(
        "SELECT traits FROM events WHERE source_id = 'mysql:ids' ORDER BY seq LIMIT 1"
    )[0]
    assert json.loads(traits) == {"score": 0.5, "seen": "2024-03-01T00:00:00.000000Z"}


def test_scheduler_runs_declared_connectors_and_status_shows_them(data_dir, pg_customers: str) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from tailor.cli import main

    rt = Runtime(data_dir.path)
    _fill_pg(pg_customers, 20)
    _declare(rt, "shop", pg_customers, interval_s=0.5)
    done = threading.Event()
    rt.connectors.page_hook = lambda page: done.set()
    rt.start()
    try:
        assert done.wait(20), "the scheduler did not run the connector"
        _fill_pg(pg_customers, 5, start=21)
        pg(pg_customers, "UPDATE customers SET updated_at = now() WHERE id > 20")
        deadline = __import__("time").monotonic() + 20
        while len(_stored(rt, "postgres:shop")) < 25 and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.2)
        assert len(_stored(rt, "postgres:shop")) == 25
        result = CliRunner().invoke(main, ["connectors", "status", "--data", str(data_dir.path), "--json"])
        assert result.exit_code == 0, result.output
        (row,) = json.loads(result.output)
        assert row["name"] == "shop"
        assert row["type"] == "sql_source"
        assert row["last_run"]["status"] in ("ok", "running")
        assert row["cursor"][1] >= 20
    finally:
        rt.close()
    history = CliRunner().invoke(main, ["connectors", "history", "shop", "--data", str(data_dir.path)])
    assert history.exit_code == 0
    assert "ok" in history.output


def test_broken_declaration_is_reported(runtime: Runtime, tmp_path: Path) -> None:
    folder = runtime.data_dir / "connectors"
    folder.mkdir(exist_ok=True)
    (folder / "bad.toml").write_text(
        'type = "sql_source"\nurl = "postgresql://x"\n[mapping]\nkind = "track"\n'
    )
    runtime.connectors.declarations()
    assert "mapping" in runtime.connectors.broken["bad"]
    assert "table/query: give exactly one of them" in runtime.connectors.broken["bad"]
