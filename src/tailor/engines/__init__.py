"""Engines that run Tailor's batch pipeline: DuckDB on one machine, Spark on a cluster.

Nothing here imports PySpark: `SparkEngine` is loaded when asked for by name.
"""

from __future__ import annotations

from pathlib import Path

from tailor.engines.base import Engine
from tailor.engines.dialect import DUCKDB, SPARK, Capabilities
from tailor.exceptions import ConfigError

ENGINES = ("duckdb", "spark")


def make_engine(
    name: str, master: str | None = None, spill: Path | None = None, conf: dict[str, str] | None = None
) -> Engine:
    """The engine of a name: `duckdb`, or `spark` (a local-mode session, or `master`'s cluster).

    `conf` is Spark settings for the session made here (ignored by DuckDB).
    """
    if name == "duckdb":
        from tailor.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(spill_dir=spill)
    if name == "spark":
        from tailor.engines.spark_engine import SparkEngine, local_session

        return SparkEngine(local_session(master or "local[2]", conf) if master or conf else None)
    raise ConfigError(f"unknown engine {name!r}; engines are {', '.join(ENGINES)}")


__all__ = ["DUCKDB", "ENGINES", "SPARK", "Capabilities", "Engine", "make_engine"]
