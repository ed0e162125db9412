"""What the translation of DuckDB SQL to Spark SQL fixes beyond sqlglot's own (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.batch.definitions import read_definitions
from tailor.engines import make_engine
from tailor.engines.duckdb_engine import DuckDBEngine
from tailor.engines.spark_sql import to_spark
from tailor.exceptions import ConfigError, StoreError


@pytest.mark.parametrize(
    ("duckdb_sql", "spark_sql"),
    [
        ("SELECT arg_max(v, (ts, seq)) FROM t", "SELECT MAX_BY(v, STRUCT(ts, seq)) FROM t"),
        ("SELECT epoch_us(ts) FROM t", "SELECT UNIX_MICROS(ts) FROM t"),
        ("SELECT hash(a, b) FROM t", "SELECT XXHASH64(a, b) FROM t"),
        ("SELECT least(a) FROM t", "SELECT a FROM t"),
        ("SELECT quantile_cont(x, 0.5) FROM t", "SELECT PERCENTILE(x, 0.5) FROM t"),
        (
            "SELECT regexp_replace(k, '([a-z])([A-Z])', '\\1_\\2', 'g') FROM t",
            "SELECT REGEXP_REPLACE(k, '([a-z])([A-Z])', '$1_$2') FROM t",
        ),
        ("SELECT x SIMILAR TO '.*(a|b).*' FROM t", "SELECT x RLIKE '^(?:.*(a|b).*)$' FROM t"),
        ("SELECT json_exists(c, '$.app') FROM t", "SELECT NOT GET_JSON_OBJECT(c, '$.app') IS NULL FROM t"),
        (
            "SELECT coalesce(list_position(['a'], s), 9) FROM t",
            "SELECT COALESCE(NULLIF(ARRAY_POSITION(ARRAY('a'), s), 0), 9) FROM t",
        ),
        (
            "SELECT list_distinct(l) FROM t",
            "SELECT ARRAY_COMPACT(ARRAY_DISTINCT(l)) FROM t",
        ),
        (
            "SELECT list(x) FROM t",
            "SELECT CASE WHEN SIZE(COLLECT_LIST(x)) > 0 THEN COLLECT_LIST(x) END FROM t",
        ),
    ],
)
def test_translation(duckdb_sql: str, spark_sql: str) -> None:
    assert to_spark(duckdb_sql) == spark_sql


def test_key_keeps_the_order_of_duckdbs_unsigned_key() -> None:
    sql = to_spark("SELECT md5_number_lower('x')")
    assert "CONV(CONCAT(" in sql
    assert "- 9223372036854775808" in sql


def test_descending_lists_are_refused_with_the_sql() -> None:
    with pytest.raises(StoreError, match="descending order"):
        to_spark("SELECT list(v ORDER BY c DESC) FROM t")


def test_unreadable_sql_names_itself() -> None:
    with pytest.raises(StoreError, match="failing SQL"):
        to_spark("SELECT FROM WHERE (")


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown engine 'hive'"):
        make_engine("hive")
    with DuckDBEngine() as engine, pytest.raises(StoreError, match="no Parquet file"):
        engine.read_parquet("events", str(tmp_path / "missing.parquet"))
    bad = tmp_path / "definitions.json"
    bad.write_text('{"traits": [], "segmets": []}')
    with pytest.raises(ConfigError, match=r"definitions\.json"):
        read_definitions(bad)
    with pytest.raises(ConfigError, match="no definitions file"):
        read_definitions(tmp_path / "none.json")
