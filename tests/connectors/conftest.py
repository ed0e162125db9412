"""Live PostgreSQL and MariaDB databases for connector tests, each uniquely named and dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pymysql
import pytest

from tailor.runtime import Runtime
from tests.conftest import DataDir
from tests.connectors.receiver import receiver  # noqa: F401  (a fixture)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def runtime(data_dir: DataDir) -> Iterator[Runtime]:
    """A running runtime whose connector scheduler is stopped: these tests run connectors by hand.

    A declared connector is due at once, so a running scheduler would race the test's own run
    (tests of the scheduler start a runtime of their own).
    """
    rt = Runtime(data_dir.path)
    rt.start()
    rt.connectors.stop()
    yield rt
    rt.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server (trust auth), dropped afterwards."""
    name = f"tailor_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB database on the local server (root, no password), dropped afterwards."""
    name = f"tailor_test_{uuid.uuid4().hex[:12]}"
    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"mysql://root@127.0.0.1:3306/{name}"
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        con.close()


def pg(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Runs one statement on a PostgreSQL database and returns its rows (if any)."""
    with psycopg.connect(url, autocommit=True) as con:
        cur = con.execute(sql, params)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def my(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Runs one statement on a MariaDB database and returns its rows (if any)."""
    from urllib.parse import urlsplit

    db = urlsplit(url).path.lstrip("/")
    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, autocommit=True)
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        con.close()
