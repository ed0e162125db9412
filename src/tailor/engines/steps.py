"""The steps a batch pipeline is made of: SQL as data that any engine can run.

A pipeline is a list of steps, each producing one named relation from the ones before it. Queries
are written in DuckDB's dialect; an engine translates them to its own (see
`tailor.engines.dialect`). Two kinds of step are not plain SQL:

- `ArrowMap`: a Python function over Arrow record batches (normalising emails and phones with the
  libraries that have no SQL form), which DuckDB runs in-process and Spark on its executors;
- `Fixpoint`: a relation that relaxes until nothing changes (connected components and nearest user
  ids by label propagation), which engines without DuckDB's `USING KEY` recursive CTEs run as a
  loop of joins; every engine runs it the same way, so results agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Query:
    """A relation named `output`, the result of a DuckDB query over relations made before it."""

    output: str
    sql: str


@dataclass(frozen=True)
class ArrowMap:
    """`output`: the rows of `source` (a query) passed batch by batch through `fn`, shaped like `schema`."""

    output: str
    source: str
    fn: Callable[[pa.RecordBatch], pa.RecordBatch]
    schema: pa.Schema


@dataclass(frozen=True)
class Fixpoint:
    """`output(node, label)`: the least label reaching each node, by relaxation from `seed`.

    `seed` is a query of (node, label). `relax` is a query of candidate (node, label) rows made from
    the rows improved in the last round, which it reads as `{delta}`; it must group by node. A
    candidate replaces a node's label when it is smaller (labels are numbers or structs, compared
    field by field), and the rounds stop when none does. Labels only ever decrease, so the loop
    ends, and its result is the same whatever the order of the rounds.
    """

    output: str
    seed: str
    relax: str


Step = Query | ArrowMap | Fixpoint


def fixpoint_round(step: Fixpoint, state: str, delta: str) -> tuple[str, str]:
    """SQL of one round: the improved (node, label) rows, and the new state given them as `{improved}`."""
    # str.replace, not str.format: the SQL holds struct literals in braces.
    candidates = step.relax.replace("{delta}", delta)
    improved = f"""SELECT c.node, c.label FROM ({candidates}) c LEFT JOIN {state} s ON s.node = c.node
        WHERE s.node IS NULL OR c.label < s.label"""
    merged = f"""SELECT s.node, s.label FROM {state} s ANTI JOIN {{improved}} i ON i.node = s.node
        UNION ALL SELECT node, label FROM {{improved}}"""
    return improved, merged
