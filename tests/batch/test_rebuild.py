"""The batch rebuild on DuckDB equals the live store; on Spark it equals DuckDB's."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tailor.batch.definitions import read_definitions
from tailor.batch.export import Export
from tailor.batch.pipeline import OUTPUTS, RebuildResult, rebuild
from tailor.engines.duckdb_engine import DuckDBEngine
from tests.batch.conftest import NOW

TOLERANCE = 1e-9
"""Relative tolerance of floating-point traits: sums and percentiles may add in another order."""


def _rebuild(engine: Any, exported: Export, out: Path) -> RebuildResult:
    return rebuild(engine, str(exported.events), str(out), read_definitions(exported.definitions), NOW)


@pytest.fixture(scope="module")
def duckdb_out(exported: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("duckdb_out")
    with DuckDBEngine() as engine:
        _rebuild(engine, exported, out)
    return out


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def _parquet(out: Path, name: str) -> str:
    return f"read_parquet('{out / name}/*.parquet')"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _computed(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {relation}")
    names = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        values = dict(zip(names, row, strict=True))
        out[values.pop("profile_id")] = {k: _plain(v) for k, v in values.items()}
    return out


def _plain(v: Any) -> Any:
    # Maps come back from Parquet as lists of (key, value) or dicts, depending on the writer.
    if isinstance(v, list) and v and isinstance(v[0], tuple):
        return dict(v)
    return v


def assert_computed_equal(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    assert a.keys() == b.keys()
    bad = [(p, k, a[p][k], b[p].get(k)) for p in a for k in a[p] if not _same(a[p][k], b[p].get(k))]
    assert not bad, bad[:5]
    assert all(a[p].keys() == b[p].keys() for p in a)


def test_duckdb_rebuild_equals_the_live_store(live_store: Path, duckdb_out: Path) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{live_store / 'tailor.duckdb'}' AS live (READ_ONLY)")
    ids = "SELECT type, value, profile_id FROM "
    assert _rows(con, ids + "live.identity_nodes") == _rows(con, ids + _parquet(duckdb_out, "identities"))
    golden = "SELECT profile_id, trait, value, text, source_id, seq, observed_at, observations, policy FROM "
    assert _rows(con, golden + "live.profile_traits") == _rows(
        con, golden + _parquet(duckdb_out, "golden_traits")
    )
    members = "SELECT segment, profile_id FROM "
    live_members = _rows(con, members + "live.segment_members")
    assert live_members
    assert live_members == _rows(con, members + _parquet(duckdb_out, "segment_members"))
    batch = _computed(con, _parquet(duckdb_out, "computed_traits"))
    live = _computed(con, "live.profile_computed")
    assert_computed_equal({p: {k: live[p][k] for k in batch[p]} for p in live}, batch)
    profiles = con.execute(f"SELECT count(*), sum(events) FROM {_parquet(duckdb_out, 'profiles')}").fetchall()
    events = con.execute("SELECT count(*) FROM live.events").fetchall()
    assert profiles[0][0] == len(live)
    assert profiles[0][1] == events[0][0]


def test_rebuild_outputs_are_not_empty(duckdb_out: Path) -> None:
    con = duckdb.connect()
    for name in OUTPUTS:
        (n,) = con.execute(f"SELECT count(*) FROM {_parquet(duckdb_out, name)}").fetchall()[0]
        assert n > 0, name


@pytest.mark.spark
@pytest.mark.slow
def test_spark_rebuild_equals_duckdb(spark: Any, exported: Export, duckdb_out: Path, tmp_path: Path) -> None:
    from tailor.engines.spark_engine import SparkEngine

    result = _rebuild(SparkEngine(spark), exported, tmp_path / "spark")
    assert result.engine == "spark"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in ("profiles", "identities", "golden_traits", "segment_members", "touchpoints", "conversions"):
        a = _rows(con, f"SELECT * FROM {_parquet(duckdb_out, name)}")
        b = _rows(con, f"SELECT * FROM {_parquet(tmp_path / 'spark', name)}")
        assert len(a) == len(b), name
        assert all(_same(x, y) for x, y in zip(a, b, strict=True)), name
    assert_computed_equal(
        _computed(con, _parquet(duckdb_out, "computed_traits")),
        _computed(con, _parquet(tmp_path / "spark", "computed_traits")),
    )


def test_import_tailor_does_not_load_pyspark() -> None:
    code = (
        "import sys, tailor, tailor.cli, tailor.engines, tailor.batch.pipeline;"
        " print(any(m == 'pyspark' or m.startswith('pyspark.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
