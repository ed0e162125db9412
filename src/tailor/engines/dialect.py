"""What differs between the engines the batch pipeline runs on, in one object per engine.

Tailor's SQL is written in DuckDB's dialect. Each engine's `Capabilities` says how to translate it
(identity for DuckDB, `tailor.engines.spark_sql` for Spark), and spells the few pieces that no
translation of DuckDB SQL can give, because the two engines' functions differ in what they return:
lists read from JSON paths with `[*]`, the elements of a JSON array, and the key/value pairs of a
JSON object. The analytics' own spellings (`tailor.analytics.dialect`) hang off the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tailor.analytics.dialect import DUCKDB as DUCKDB_ANALYTICS
from tailor.analytics.dialect import SPARK as SPARK_ANALYTICS
from tailor.analytics.dialect import Dialect as AnalyticsDialect
from tailor.profiles.fields import FieldPath
from tailor.profiles.golden import PAIRS


def _same(sql: str) -> str:
    return sql


def _spark(sql: str) -> str:
    from tailor.engines.spark_sql import to_spark

    return to_spark(sql)


@dataclass(frozen=True)
class Capabilities:
    """One engine's dialect: how its SQL is spelled, and what it can do."""

    name: str
    translate: Callable[[str], str]
    """DuckDB SQL to this engine's SQL."""
    json_list: str
    """Template of the list of texts at a path with `[*]` in {col}: {full} (the whole DuckDB path), or
    {path} (to the list) and then {rest} (inside each element; `$` for the element itself)."""
    json_array: str
    """Template of the texts of the elements of the JSON list at {path} in {col} ({full}: DuckDB's path)."""
    json_elements: str
    """Template of the elements of the JSON array {x}, one row each, as JSON text (in a SELECT list)."""
    json_pairs: str
    """The pairs of each trait object `src.t`: (seq, k, source_id, ts, key, value as JSON, text)."""
    analytics: AnalyticsDialect
    """The analytics' spellings for this engine."""
    distributed: bool
    """Whether the engine spreads work over a cluster (the batch pipeline then checkpoints loops)."""

    def field(self, path: FieldPath) -> str:
        """SQL reading a field of an event (a list of texts for a path with `[*]`)."""
        if not path.is_list or path.list_at is None:
            return path.extract_sql()
        keys = [f'."{k}"' for k in path.keys]
        at = path.list_at + 1
        template = self.json_list if at < len(keys) else self.json_array
        return template.format(
            col=path.root, full=path.json_path(), path="$" + "".join(keys[:at]), rest="$" + "".join(keys[at:])
        )


DUCKDB = Capabilities(
    name="duckdb",
    translate=_same,
    json_list="json_extract_string({col}, '{full}')",
    json_array="json_extract_string({col}, '{full}')",
    json_elements="unnest(json_extract({x}, '$[*]'))",
    json_pairs=PAIRS,
    analytics=DUCKDB_ANALYTICS,
    distributed=False,
)
"""DuckDB, the embedded default."""

SPARK = Capabilities(
    name="spark",
    translate=_spark,
    json_list=(
        "list_transform(from_json(json_extract({col}, '{path}'), 'array<string>'),"
        " lambda x: json_extract_string(x, '{rest}'))"
    ),
    json_array="from_json(json_extract({col}, '{path}'), 'array<string>')",
    json_elements="explode(from_json({x}, 'array<string>'))",
    # Spark's VARIANT keeps each value's JSON type, as DuckDB's json_each does.
    json_pairs="""SELECT seq, k, source_id, ts, j.key, to_json(j.value) AS value,
                CASE WHEN schema_of_variant(j.value) = 'STRING' THEN CAST(j.value AS VARCHAR)
                     ELSE to_json(j.value) END AS text
            FROM src, LATERAL variant_explode(try_parse_json(src.t)) AS j
            WHERE j.key IS NOT NULL AND schema_of_variant(j.value) <> 'VOID'""",
    analytics=SPARK_ANALYTICS,
    distributed=True,
)
"""Apache Spark (PySpark 4)."""
