"""An engine that runs batch pipelines: the template every engine fills with a few hooks."""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import final

import pyarrow as pa

from tailor.engines.dialect import Capabilities
from tailor.engines.steps import ArrowMap, Fixpoint, Query, Step, fixpoint_round

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class Engine(ABC):
    """Runs steps, reads and writes Parquet. Subclasses fill the hooks; the template methods are final."""

    capabilities: Capabilities

    # -- hooks --------------------------------------------------------------------------------------

    @abstractmethod
    def _create(self, name: str, sql: str, keep: bool = True) -> None:
        """Makes the result of `sql` (already in the engine's dialect) relation `name`.

        `keep` says that it is read more than once: an engine that plans lazily (Spark) computes and
        keeps it then, and otherwise only names the query for the steps that read it.
        """

    @abstractmethod
    def _map_arrow(self, step: ArrowMap, source: str) -> None:
        """Materialises `step.output` from the rows of `source` (engine SQL) passed through `step.fn`."""

    @abstractmethod
    def _count(self, name: str) -> int:
        """The number of rows of relation `name`."""

    @abstractmethod
    def read_parquet(self, name: str, path: str) -> None:
        """Makes the Parquet file or directory at `path` (local or object storage) readable as `name`."""

    @abstractmethod
    def write_parquet(self, name: str, path: str) -> None:
        """Writes relation `name` as Parquet under `path` (a directory)."""

    @abstractmethod
    def arrow(self, sql: str) -> pa.Table:
        """The result of a DuckDB-dialect query, as an Arrow table (for small results)."""

    @abstractmethod
    def register(self, name: str, table: pa.Table) -> None:
        """Makes a small Arrow table readable as `name` (definitions, overrides)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Forgets relation `name`."""

    def close(self) -> None:  # noqa: B027 - engines with nothing to release need not say so
        """Releases the engine's resources."""

    # -- template -----------------------------------------------------------------------------------

    @final
    def run(self, steps: Sequence[Step], progress: Progress | None = None) -> None:
        """Runs steps in order, logging each with its duration."""
        for i, step in enumerate(steps):
            started = time.perf_counter()
            if progress is not None:
                progress(step.output)
            if isinstance(step, Query):
                self._create(step.output, self.sql(step.sql), keep=_reads(step.output, steps[i + 1 :]) != 1)
            elif isinstance(step, ArrowMap):
                self._map_arrow(step, self.sql(step.source))
            else:
                rounds = self._fixpoint(step)
                log.debug("%s: %d rounds", step.output, rounds)
            log.debug(
                "%s: %s in %.1f ms",
                self.capabilities.name,
                step.output,
                (time.perf_counter() - started) * 1000,
            )

    @final
    def sql(self, duckdb_sql: str) -> str:
        """A DuckDB-dialect query in this engine's dialect."""
        return self.capabilities.translate(duckdb_sql)

    @final
    def _fixpoint(self, step: Fixpoint) -> int:
        """Runs a fixpoint as a loop of joins: each round relaxes from the rows improved in the last."""
        state, delta = f"{step.output}__s0", f"{step.output}__d0"
        self._create(state, self.sql(step.seed))
        self._create(delta, self.sql(f"SELECT * FROM {state}"))
        rounds = 0
        while True:
            rounds += 1
            improved_sql, merged_sql = fixpoint_round(step, state, delta)
            improved = f"{step.output}__d{rounds}"
            self._create(improved, self.sql(improved_sql))
            self.drop(delta)
            delta = improved
            if self._count(improved) == 0:
                break
            merged = f"{step.output}__s{rounds}"
            self._create(merged, self.sql(merged_sql.replace("{improved}", improved)))
            self.drop(state)
            state = merged
        self.drop(delta)
        self._create(step.output, self.sql(f"SELECT node, label FROM {state}"))
        self.drop(state)
        return rounds

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reads(name: str, later: Sequence[Step]) -> int:
    """How many later steps read relation `name` (outputs that nothing reads count as kept)."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    sources = (
        s.sql if isinstance(s, Query) else s.source if isinstance(s, ArrowMap) else s.seed + s.relax
        for s in later
    )
    return sum(1 for sql in sources if pattern.search(sql))


def local_path(path: str) -> Path | None:
    """The local path of `path`, or None for object storage (s3a://, gs://, abfss://, ...)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return Path(path.removeprefix("file://"))
