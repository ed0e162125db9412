"""Candidate pairs: records that agree on at least one blocking key, found with SQL joins in DuckDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from tailor.exceptions import StoreError
from tailor.identity.matching.prepare import PreparedRecords

MAX_BLOCK_SIZE = 2_000
"""A key value shared by more records than this is skipped by its rule: it is a placeholder or a
very common value, and the pairs it would make (n² / 2) say little and cost much."""


@dataclass(frozen=True)
class BlockingRule:
    """Pairs of records whose keys are equal: `left` key expressions of one record against the
    `right` ones of the other (the same unless the rule crosses fields, as for swapped names)."""

    name: str
    left: tuple[str, ...]
    right: tuple[str, ...] = ()

    @property
    def right_keys(self) -> tuple[str, ...]:
        """The key expressions of the other record of a pair."""
        return self.right or self.left


DEFAULT_RULES = (
    BlockingRule("email", ("email",)),
    BlockingRule("email local part", ("email_local",)),
    BlockingRule("phone", ("phone",)),
    BlockingRule("last name and initial", ("last", "initial")),
    # A record with first and last name swapped: both orientations, as either side can be the swapped one.
    BlockingRule("names swapped", ("last", "initial"), ("first", "left(last, 1)")),
    BlockingRule("names swapped (mirrored)", ("first", "left(last, 1)"), ("last", "initial")),
    BlockingRule("date of birth", ("dob",)),
    BlockingRule("postcode and initial", ("postcode", "initial")),
)
"""Rules for people: any shared contact point, or a name with a date of birth or a postcode."""


def _side(table: str, keys: tuple[str, ...], max_block_size: int) -> str:
    """The records with all keys present, as (i, k0, k1, ...), without keys shared by too many records."""
    columns = ", ".join(f"{expr} AS k{n}" for n, expr in enumerate(keys))
    names = ", ".join(f"k{n}" for n in range(len(keys)))
    present = " AND ".join(f"({expr}) IS NOT NULL" for expr in keys)
    return f"""SELECT * FROM (
            SELECT i, {names}, count(*) OVER (PARTITION BY {names}) AS block
            FROM (SELECT i, {columns} FROM {table} WHERE {present})
        ) WHERE block <= {max_block_size:d}"""


def rule_sql(rule: BlockingRule, table: str, first_new: int, max_block_size: int) -> str:
    """The pairs (a < b) of one rule that involve a record at or after `first_new`, as one SELECT."""
    on = " AND ".join(f"l.k{n} = r.k{n}" for n in range(len(rule.left)))
    return f"""SELECT least(l.i, r.i) AS a, greatest(l.i, r.i) AS b
        FROM ({_side(table, rule.left, max_block_size)}) AS l
        JOIN ({_side(table, rule.right_keys, max_block_size)}) AS r ON {on}
        WHERE l.i >= {first_new:d} AND (r.i < {first_new:d} OR r.i > l.i)"""


def blocking_sql(
    rules: Sequence[BlockingRule], table: str, first_new: int, max_block_size: int = MAX_BLOCK_SIZE
) -> str:
    """One query for the distinct pairs (a < b) of any rule that involve a record at or after `first_new`."""
    selects = [rule_sql(rule, table, first_new, max_block_size) for rule in rules]
    return "\nUNION\n".join(selects) + "\nORDER BY a, b"


def candidate_pairs(
    records: PreparedRecords,
    rules: Sequence[BlockingRule] = DEFAULT_RULES,
    *,
    first_new: int = 0,
    max_block_size: int = MAX_BLOCK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (left, right) of the candidate pairs, left < right, with at least one side >= `first_new`.

    With `first_new` = 0 this is a full pass; otherwise only the pairs that involve the records from
    `first_new` on, so that new records are compared with the stored ones and among themselves.
    """
    table = records.table.append_column("i", pa.array(np.arange(len(records), dtype=np.int64)))
    sql = blocking_sql(rules, "records", first_new, max_block_size)
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
