"""What differs between SQL engines for the analytics: JSON access and splitting a text into a list.

The definitions of the analytics use standard SQL (joins, GROUP BY, window functions); the few
functions engines name differently are asked of this object, so that another engine (Spark) fills in
its own names instead of branching through the analytics.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """Function spellings of one SQL engine."""

    name: str
    json_text: str
    """Template for the text at a JSON path: {col}, {path} (a `$.a.b` path)."""
    json_has: str
    """Template for whether a JSON path exists."""
    explode_split: str
    """Template of a FROM clause yielding (id, pos, item) from {table}.{id} and {text} split on {sep}."""
    seconds_between: str
    """Template for the seconds from timestamp {a} to timestamp {b}."""

    def text(self, col: str, path: str) -> str:
        """SQL for the text at `path` in JSON column `col` (NULL when absent)."""
        return self.json_text.format(col=col, path=path)

    def has(self, col: str, path: str) -> str:
        """SQL for whether `path` exists in JSON column `col`."""
        return self.json_has.format(col=col, path=path)

    def explode(self, table: str, id: str, text: str, sep: str) -> str:
        """SQL selecting (id, pos, item): each `sep`-separated item of `text`, numbered from 1."""
        return self.explode_split.format(table=table, id=id, text=text, sep=sep)

    def seconds(self, a: str, b: str) -> str:
        """SQL for the seconds from `a` to `b` (positive when b is later)."""
        return self.seconds_between.format(a=a, b=b)


DUCKDB = Dialect(
    name="duckdb",
    json_text="json_extract_string({col}, '{path}')",
    json_has="json_exists({col}, '{path}')",
    explode_split=(
        "(SELECT {id} AS id, generate_subscripts(string_split({text}, {sep}), 1) AS pos,"
        " unnest(string_split({text}, {sep})) AS item FROM {table})"
    ),
    seconds_between="(epoch({b}) - epoch({a}))",
)
"""DuckDB, the embedded default."""

SPARK = Dialect(
    name="spark",
    json_text=DUCKDB.json_text,
    json_has=DUCKDB.json_has,
    explode_split=DUCKDB.explode_split,
    seconds_between="((epoch_us({b}) - epoch_us({a})) / 1000000.0)",
)
"""Apache Spark, through the translation of DuckDB SQL (`tailor.engines.spark_sql`): Spark's
`unix_timestamp`, which `epoch` becomes, drops the fraction of a second, so seconds are taken from
microseconds."""
