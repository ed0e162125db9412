"""Candidate pairs: records that agree on at least one blocking key, found with SQL joins in DuckDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from tailor.exceptions import StoreError
from tailor.identity.matching.prepare import PreparedRecords


@dataclass(frozen=True)
class BlockingRule:
    """Pairs of records `l` and `r` for which an SQL condition holds (equalities, so it is a hash join)."""

    name: str
    condition: str


DEFAULT_RULES = (
    BlockingRule("email", "l.email = r.email"),
    BlockingRule("email local part", "l.email_local = r.email_local"),
    BlockingRule("phone", "l.phone = r.phone"),
    BlockingRule("last name and initial", "l.last = r.last AND l.initial = r.initial"),
    # A record with first and last name swapped: both orientations, as each side can be the swapped one.
    BlockingRule("names swapped", "l.last = r.first AND l.initial = left(r.last, 1)"),
    BlockingRule("names swapped (mirrored)", "r.last = l.first AND r.initial = left(l.last, 1)"),
    BlockingRule("date of birth", "l.dob = r.dob"),
    BlockingRule("postcode and initial", "l.postcode = r.postcode AND l.initial = r.initial"),
)
"""Rules for people: any shared contact point, or a name with a date of birth or a postcode."""


def blocking_sql(rules: Sequence[BlockingRule], table: str, first_new: int) -> str:
    """One query for the distinct pairs (a < b) of any rule that involve a record at or after `first_new`."""
    selects = [
        f"""SELECT least(l.i, r.i) AS a, greatest(l.i, r.i) AS b
        FROM {table} AS l JOIN {table} AS r ON {rule.condition}
        WHERE l.i >= {first_new:d} AND (r.i < {first_new:d} OR r.i > l.i)"""
        for rule in rules
    ]
    return "\nUNION\n".join(selects) + "\nORDER BY a, b"


def candidate_pairs(
    records: PreparedRecords, rules: Sequence[BlockingRule] = DEFAULT_RULES, *, first_new: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (left, right) of the candidate pairs, left < right, with at least one side >= `first_new`.

    With `first_new` = 0 this is a full pass; otherwise only the pairs that involve the records from
    `first_new` on, so that new records are compared with the stored ones and among themselves.
    """
    table = records.table.append_column("i", pa.array(np.arange(len(records), dtype=np.int64)))
    sql = blocking_sql(rules, "records", first_new)
    con = duckdb.connect()
    try:
        con.register("records", table)
        result = con.execute(sql).fetchnumpy()
    except duckdb.Error as e:
        raise StoreError(f"blocking failed: {e}", sql) from e
    finally:
        con.close()
    left = np.asarray(result["a"], dtype=np.int64)
    right = np.asarray(result["b"], dtype=np.int64)
    return left, right
