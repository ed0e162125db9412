"""Small journeys written as path files, for the attribution tests."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from tailor.analytics.journeys import PathTables
from tailor.analytics.pathfile import load_path_file

Row = tuple[str, float, float, float]  # path, conversions, value, nulls
Load = Callable[[list[Row]], PathTables]


@pytest.fixture
def cur() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


@pytest.fixture
def load(tmp_path: Path, cur: duckdb.DuckDBPyConnection) -> Load:
    """Writes rows as a path file and reads them into journeys."""

    def write(rows: list[Row]) -> PathTables:
        path = tmp_path / "paths.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["path", "conversions", "value", "nulls"])
            out.writerows(rows)
        tables, read = load_path_file(cur, path)
        assert read.problems == []
        return tables

    return write
