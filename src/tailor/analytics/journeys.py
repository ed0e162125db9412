"""Journeys ready for attribution: one row per path and one per touch, as tables on one cursor.

Every source of journeys (a path file, the event log) produces the same two tables, so that every
model is defined once over them:

- paths:   path_id BIGINT, conversions DOUBLE, value DOUBLE, nulls DOUBLE
- touches: path_id BIGINT, pos INTEGER (1 = first), n INTEGER (touches in the path), key VARCHAR
  (the channel or campaign credited), age DOUBLE (how long before the path's end the touch was)
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class PathTables:
    """The two tables of a set of journeys on one cursor, and the unit of their touches' age."""

    cur: duckdb.DuckDBPyConnection
    paths: str
    touches: str
    age_unit: str
    """"days" for journeys from events, "touches" for a path file (touches before the conversion)."""

    def counts(self) -> tuple[int, float, float, float]:
        """Paths, conversions, conversion value and non-converting journeys."""
        row = self.cur.execute(
            f"SELECT count(*), coalesce(sum(conversions), 0), coalesce(sum(value), 0),"
            f" coalesce(sum(nulls), 0) FROM {self.paths}"
        ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1]), float(row[2]), float(row[3])


PATHS_DDL = "path_id BIGINT, conversions DOUBLE, value DOUBLE, nulls DOUBLE"
TOUCHES_DDL = "path_id BIGINT, pos INTEGER, n INTEGER, key VARCHAR, age DOUBLE"
