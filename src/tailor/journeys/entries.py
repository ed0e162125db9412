"""Entering people into a journey, a set at a time: re-entry policy, holdout and the global control group.

Instance ids are derived from the journey, the person and what triggered the entry (an event's
seq, a segment change's id, a schedule's run time), so entering the same people again after a
crash creates nothing twice. Holdout and control people are recorded as entered (they are the
baseline of lift) and finish at once: they get no sends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from tailor.journeys.definitions import JourneyDefinition
from tailor.journeys.engine import bucket


@dataclass(frozen=True)
class Candidate:
    """Someone who may enter: the person, what triggered it, and the context messages may use."""

    profile_id: str
    trigger: str
    context: dict[str, Any]


@dataclass(frozen=True)
class ControlGroup:
    """The global control group: a stable share of everyone who receives no campaigns."""

    percent: float = 0.0
    salt: str = "tailor"

    def holds(self, profile_id: str) -> bool:
        """Whether this person is in the control group."""
        return self.percent > 0 and bucket("control", self.salt, profile_id) < self.percent * 100


def group_of(journey: JourneyDefinition, control: ControlGroup, profile_id: str) -> str:
    """treatment, holdout (of this journey) or control (of every journey)."""
    if control.holds(profile_id):
        return "control"
    if (
        journey.holdout_percent > 0
        and bucket("holdout", journey.name, profile_id) < journey.holdout_percent * 100
    ):
        return "holdout"
    return "treatment"


def _eligible(
    conn: sqlite3.Connection, journey: JourneyDefinition, people: Sequence[str], now: float
) -> set[str]:
    """Those of `people` the re-entry policy lets in now (nobody is in a journey twice at once)."""
    listed = msgspec.json.encode(list(people)).decode()
    rows = conn.execute(
        "SELECT profile_id, max(entered_at), max(state IN ('ready', 'waiting')) FROM journey_instances"
        " WHERE journey = ? AND profile_id IN (SELECT value FROM json_each(?)) GROUP BY profile_id",
        (journey.name, listed),
    ).fetchall()
    refused = set()
    for pid, last, active in rows:
        if (
            active
            or journey.re_entry == "never"
            or (
                journey.re_entry == "after"
                and journey.re_entry_after is not None
                and now - float(last) < journey.re_entry_after.total_seconds()
            )
        ):
            refused.add(pid)
    return {p for p in people if p not in refused}


def enter(
    conn: sqlite3.Connection,
    journey: JourneyDefinition,
    candidates: Sequence[Candidate],
    control: ControlGroup,
    now: float,
) -> int:
    """Enters the eligible candidates in the caller's transaction; returns how many entered."""
    first: dict[str, Candidate] = {}
    for c in candidates:
        first.setdefault(c.profile_id, c)
    if not first or not journey.enabled:
        return 0
    allowed = _eligible(conn, journey, list(first), now)
    rows: list[tuple[Any, ...]] = []
    for pid in sorted(allowed):
        c = first[pid]
        grp = group_of(journey, control, pid)
        context = msgspec.json.encode(c.context).decode()
        iid = f"{journey.name}:{pid}:{c.trigger}"
        if grp == "treatment":
            rows.append(
                (iid, journey.name, pid, grp, journey.first, "ready", now, now, now, None, None, context)
            )
        else:
            rows.append((iid, journey.name, pid, grp, None, "done", None, now, now, now, grp, context))
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO journey_instances (id, journey, profile_id, grp, step, state, due_at,"
        " step_since, entered_at, finished_at, reason, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return conn.total_changes - before
