"""The stage interface: a set-based step applied to one micro-batch of the event log at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import duckdb

from tailor.store.database import Database, run

log = logging.getLogger(__name__)

BATCH_VIEW = "batch_events"


@dataclass(frozen=True)
class Batch:
    """The events with lo < seq <= hi, visible to a stage as the view `batch_events`."""

    lo: int
    hi: int

    @property
    def full(self) -> bool:
        """Whether this batch starts at the beginning of the log (a rebuild)."""
        return self.lo == 0


@dataclass(frozen=True)
class SqlStep:
    """One SQL statement of a stage, named by what it produces."""

    sql: str
    output: str


@dataclass(frozen=True)
class PyStep:
    """One step of a stage computed in Python (over arrays), named by the table it produces."""

    run: Callable[[duckdb.DuckDBPyConnection], None]
    output: str


class Stage(Protocol):
    """A processing stage; its state lives in its own tables, updated in the batch's transaction."""

    name: str
    """Unique name; the key of the stage's offset."""

    def setup(self, db: Database) -> None:
        """Creates the stage's tables if they do not exist (with `db.ddl`)."""

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the stage's state before a rebuild from the start of the log."""

    def steps(self, batch: Batch) -> list[SqlStep]:
        """The SQL steps that fold `batch_events` into the stage's state."""
        ...


class Refreshing(Protocol):
    """A stage whose state also changes without new events: windows that expire, profiles split by a user.

    The processor calls `refresh` after each pass over the log, in a transaction of its own, with no
    micro-batch running; the stage returns the steps that bring its state up to date (none when
    nothing is due).
    """

    name: str

    def refresh(self, cur: duckdb.DuckDBPyConnection) -> list[SqlStep]:
        """The steps due now; an empty list when nothing is."""
        ...


def run_steps(cur: duckdb.DuckDBPyConnection, stage: str, steps: Sequence[SqlStep | PyStep]) -> None:
    """Runs a stage's steps in order, logging each with its duration."""
    for step in steps:
        started = time.perf_counter()
        if isinstance(step, PyStep):
            step.run(cur)
        else:
            run(cur, step.sql)
        log.debug("%s: %s in %.1f ms", stage, step.output, (time.perf_counter() - started) * 1000)
