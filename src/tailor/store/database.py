"""The embedded DuckDB database of a data directory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tailor.exceptions import ConfigError, DataDirError, StoreError
from tailor.store.schema import MIGRATIONS

DATABASE_FILE = "tailor.duckdb"

# DuckDB checkpoints (compresses the WAL into the database file) inside whichever commit pushes
# the WAL past its threshold, and every other commit waits meanwhile: the threshold trades the
# length of that stall against how often it happens (see StoreConfig.checkpoint_threshold_mb).
DEFAULT_CHECKPOINT_MB = 64
# The event log's text columns are zstd by their own declaration (see `tailor.store.schema`); every
# other table gets DuckDB's own choice. Forced on everything, zstd made the profiles' reads of their
# tables of everyone 2-3x slower than dictionary/FSST (a few hundred people's memberships out of
# 3.1M: 69 against 21 ms); at 1M people a full evaluation 8.73 -> 7.74 s, a 1,000-event micro-batch
# 470 -> 361 ms, a 1% tick 0.90 -> 0.53 s (bench/segments.py, same session).
DEFAULT_COMPRESSION = "auto"


class Database:
    """One open DuckDB database; hands out a cursor per thread of work."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self._con = con
        self.path = path
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database, for use by one thread."""
        with self._lock:
            return self._con.cursor()

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """Runs one statement on a fresh cursor and returns every row; driver errors carry the SQL."""
        cur = self.cursor()
        try:
            return run(cur, sql, params).fetchall()
        finally:
            cur.close()

    def ddl(self, sql: str) -> None:
        """Runs schema changes on the main connection.

        DDL issued on a cursor of a reopened database can leave DuckDB believing a write
        transaction is still active, which then blocks every checkpoint; the main connection
        does not have that problem.
        """
        with self._lock:
            run(self._con, sql)

    def checkpoint(self, wait_s: float = 10.0) -> None:
        """Folds the write-ahead log into the database file, waiting for open write transactions.

        A plain CHECKPOINT fails while another thread (the processor, the loader) is inside a
        write transaction; those are short, so it is tried again until `wait_s` has passed.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.execute("CHECKPOINT")
                return
            except StoreError as e:
                if "other write transactions" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        """Closes the database; cursors made from it stop working."""
        self._con.close()


def run(
    cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | tuple[Any, ...] | None = None
) -> duckdb.DuckDBPyConnection:
    """Executes SQL on a cursor, translating driver errors into StoreError with the failing SQL."""
    try:
        return cur.execute(sql, params) if params is not None else cur.execute(sql)
    except duckdb.Error as e:
        raise StoreError(f"{type(e).__name__}: {e}", sql) from e


@contextmanager
def registered(cur: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
    """Arrow tables readable by statements on `cur` under the given names, until the block ends."""
    done: list[str] = []
    try:
        for name, table in tables.items():
            cur.register(name, table)
            done.append(name)
        yield cur
    finally:
        for name in done:
            cur.unregister(name)


@contextmanager
def arrow_transaction(cur: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    """One transaction on `cur` with Arrow tables readable under the given names; rolled back on error."""
    # The tables are registered outside the transaction: unregistering inside one leaves a write
    # transaction open on the cursor, which blocks checkpoints.
    with registered(cur, **tables):
        cur.execute("BEGIN")
        try:
            yield
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    for version, ddl in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        con.execute("BEGIN")
        run(con, ddl)
        con.execute("INSERT INTO schema_version VALUES (?)", [version])
        con.execute("COMMIT")


def open_database(
    data_dir: Path | None, checkpoint_mb: int = DEFAULT_CHECKPOINT_MB, compression: str = DEFAULT_COMPRESSION
) -> Database:
    """Opens (and migrates) the data directory's database; None opens a private in-memory one."""
    path = None if data_dir is None else data_dir / DATABASE_FILE
    try:
        config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": f"{checkpoint_mb}MB",
            "force_compression": compression,
        }
        con = duckdb.connect(":memory:" if path is None else str(path), config=config)
    except (duckdb.InvalidInputException, duckdb.NotImplementedException) as e:
        raise ConfigError(f"[store] settings rejected by DuckDB: {e}") from e
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise DataDirError(
                f"{data_dir} is in use by another Tailor process (a running `tailor serve`?); "
                "stop it or use its HTTP API"
            ) from e
        raise DataDirError(f"cannot open {path}: {e}") from e
    _migrate(con)
    return Database(con, path)
