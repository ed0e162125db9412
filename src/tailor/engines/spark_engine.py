"""The Spark engine: the batch pipeline on a Spark cluster, or on local-mode Spark on one machine.

PySpark is imported here only, when a Spark engine is made: `import tailor` never loads it.
Relations are temporary views of checkpointed DataFrames: each step's result is computed once,
kept on the executors, and its lineage cut, so the loops of label propagation do not grow a plan
per round.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailor.engines.base import Engine
from tailor.engines.dialect import SPARK
from tailor.engines.steps import ArrowMap
from tailor.exceptions import ConfigError, StoreError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Enough partitions that one task's share of a 10M-event aggregation fits in memory; adaptive
    # execution coalesces them again for small inputs.
    "spark.sql.shuffle.partitions": "32",
    "spark.sql.adaptive.enabled": "true",
}
"""Settings of a local-mode session (a cluster's come from spark-submit)."""


def local_driver_memory() -> str:
    """A local session's heap: a third of the machine's memory, between 2 and 16 GB.

    The driver is the whole of local-mode Spark. 4 GB ran out of memory in the profiles stage at
    10M events (bench/README.md).
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4g"
    return f"{max(2, min(16, total // 3 // 2**30))}g"


REQUIRED_CONF = {
    # Every timestamp is UTC, as in DuckDB's store.
    "spark.sql.session.timeZone": "UTC",
    # DuckDB's casts of text that is not a number give NULL (TRY_CAST) and Tailor relies on it.
    "spark.sql.ansi.enabled": "false",
    # Parquet timestamps as DuckDB writes them (UTC microseconds), not Spark's legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def local_session(master: str = "local[2]", conf: dict[str, str] | None = None) -> SparkSession:
    """A local-mode SparkSession (Spark bundled with PySpark; Java 17 must be installed)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise ConfigError("the Spark engine needs PySpark: pip install 'tailor[spark]'") from e
    # Executors run Tailor's Python (normalisation) with this interpreter and its packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName("tailor")
    settings = {**LOCAL_CONF, "spark.driver.memory": local_driver_memory(), **(conf or {}), **REQUIRED_CONF}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine(Engine):
    """Runs steps on a SparkSession (local or a cluster's)."""

    capabilities = SPARK

    def __init__(self, session: SparkSession | None = None) -> None:
        self.spark = session if session is not None else local_session()
        for key, value in REQUIRED_CONF.items():
            self.spark.conf.set(key, value)
        self._views: dict[str, DataFrame] = {}

    def _sql(self, sql: str) -> DataFrame:
        try:
            return self.spark.sql(sql)
        except Exception as e:  # PySpark raises its own exception tree, rooted nowhere useful
            raise StoreError(f"{type(e).__name__}: {_first_line(e)}", sql) from e

    def _keep(self, name: str, df: DataFrame) -> None:
        try:
            kept = df.localCheckpoint(eager=True)
        except Exception as e:
            raise StoreError(f"{type(e).__name__}: {_first_line(e)}", name) from e
        kept.createOrReplaceTempView(name)
        self._views[name] = kept

    def _create(self, name: str, sql: str, keep: bool = True) -> None:
        df = self._sql(sql)
        if keep:
            self._keep(name, df)
        else:
            df.createOrReplaceTempView(name)
            self._views[name] = df

    def _map_arrow(self, step: ArrowMap, source: str) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        fn = step.fn

        def mapped(batches: Any) -> Any:
            for batch in batches:
                yield fn(batch)

        df = self._sql(source).mapInArrow(mapped, from_arrow_schema(step.schema))
        self._keep(step.output, df)

    def _count(self, name: str) -> int:
        return int(self._views[name].count())

    def read_parquet(self, name: str, path: str) -> None:
        try:
            df = self.spark.read.parquet(path)
        except Exception as e:
            raise StoreError(f"cannot read Parquet at {path}: {_first_line(e)}") from e
        df.createOrReplaceTempView(name)
        self._views[name] = df

    def write_parquet(self, name: str, path: str) -> None:
        self._views[name].write.mode("overwrite").parquet(path)

    def arrow(self, sql: str) -> pa.Table:
        result = self._sql(self.sql(sql)).toArrow()
        assert isinstance(result, pa.Table)
        return result

    def register(self, name: str, table: pa.Table) -> None:
        df = self.spark.createDataFrame(table) if table.num_rows else self._empty(table.schema)
        df.createOrReplaceTempView(name)
        self._views[name] = df

    def _empty(self, schema: pa.Schema) -> DataFrame:
        from pyspark.sql.pandas.types import from_arrow_schema

        return self.spark.createDataFrame([], from_arrow_schema(schema))

    def drop(self, name: str) -> None:
        df = self._views.pop(name, None)
        self.spark.catalog.dropTempView(name)
        if df is not None:
            df.unpersist()


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
