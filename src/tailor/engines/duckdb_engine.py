"""The DuckDB engine: the batch pipeline in-process, on one machine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from tailor.engines.base import Engine
from tailor.engines.dialect import DUCKDB
from tailor.engines.steps import ArrowMap
from tailor.exceptions import StoreError
from tailor.store.database import registered, run


class DuckDBEngine(Engine):
    """Runs steps on a private DuckDB database; relations are temporary tables (spilled to `spill_dir`)."""

    capabilities = DUCKDB

    def __init__(self, spill_dir: Path | None = None, threads: int | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        run(self.con, "SET TimeZone = 'UTC'")
        if spill_dir is not None:
            spill_dir.mkdir(parents=True, exist_ok=True)
            run(self.con, f"SET temp_directory = '{_q(str(spill_dir))}'")
        if threads is not None:
            run(self.con, f"SET threads = {int(threads)}")

    def _create(self, name: str, sql: str, keep: bool = True) -> None:
        run(self.con, f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def _map_arrow(self, step: ArrowMap, source: str) -> None:
        reader = self._relation(source).to_arrow_reader(1 << 16)
        batches = [step.fn(b) for b in reader]
        table = pa.Table.from_batches(batches, schema=step.schema)
        with registered(self.con, _tailor_mapped=table):
            self._create(step.output, "SELECT * FROM _tailor_mapped")

    def _count(self, name: str) -> int:
        row = run(self.con, f"SELECT count(*) FROM {name}").fetchone()
        return int(row[0]) if row else 0

    def read_parquet(self, name: str, path: str) -> None:
        if not _exists(path):
            raise StoreError(f"no Parquet file or directory at {path}")
        glob = f"{path}/**/*.parquet" if Path(path).is_dir() else path
        run(self.con, f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{_q(glob)}')")

    def write_parquet(self, name: str, path: str) -> None:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        run(
            self.con, f"COPY {name} TO '{_q(str(out / 'part-0.parquet'))}' (FORMAT parquet, COMPRESSION zstd)"
        )

    def arrow(self, sql: str) -> pa.Table:
        result = self._relation(sql).to_arrow_table()
        assert isinstance(result, pa.Table)
        return result

    def _relation(self, sql: str) -> duckdb.DuckDBPyRelation:
        try:
            return self.con.sql(sql)
        except duckdb.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}", sql) from e

    def register(self, name: str, table: pa.Table) -> None:
        with registered(self.con, **{f"_{name}_arrow": table}):
            self._create(name, f"SELECT * FROM _{name}_arrow")

    def drop(self, name: str) -> None:
        run(self.con, f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        self.con.close()


def _exists(path: str) -> bool:
    return "*" in path or Path(path).exists()


def _q(text: str) -> str:
    return text.replace("'", "''")
