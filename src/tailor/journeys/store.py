"""The journeys' state in messaging.sqlite, next to the outbox: definitions, instances, visits, offers, runs.

Living in the outbox's file is what makes a step exactly once: one SQLite transaction moves an
instance to its next step, records the visit and enqueues the message (key
`journey:<instance>:<step>`), so a crash leaves either all of it or none.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import msgspec

from tailor.channels.store import transaction
from tailor.journeys.exceptions import UnknownJourneyError

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS journeys (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    # state: ready (due at due_at for its next step), waiting (a wait or a wait for an event, until
    # due_at), done, exited. grp: treatment, holdout (of this journey) or control (global).
    """CREATE TABLE IF NOT EXISTS journey_instances (
        id TEXT PRIMARY KEY,
        journey TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        grp TEXT NOT NULL,
        variant TEXT,
        step TEXT,
        state TEXT NOT NULL,
        due_at REAL,
        waiting_event TEXT,
        step_since REAL NOT NULL,
        entered_at REAL NOT NULL,
        finished_at REAL,
        reason TEXT,
        context TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX IF NOT EXISTS journey_due ON journey_instances (due_at)"
    " WHERE state IN ('ready', 'waiting')",
    "CREATE INDEX IF NOT EXISTS journey_person ON journey_instances (profile_id, journey)",
    """CREATE TABLE IF NOT EXISTS journey_visits (
        instance_id TEXT NOT NULL,
        journey TEXT NOT NULL,
        step TEXT NOT NULL,
        at REAL NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (instance_id, step)
    )""",
    "CREATE INDEX IF NOT EXISTS journey_visits_journey ON journey_visits (journey, step)",
    # One offer per campaign and person, whichever journey or channel carries it.
    """CREATE TABLE IF NOT EXISTS journey_offers (
        campaign TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        offer TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        code TEXT NOT NULL,
        channel TEXT NOT NULL,
        given_at REAL NOT NULL,
        expires_at REAL,
        PRIMARY KEY (campaign, profile_id)
    )""",
    """CREATE TABLE IF NOT EXISTS journey_runs (
        journey TEXT NOT NULL,
        run_at REAL NOT NULL,
        entered INTEGER NOT NULL,
        done_at REAL NOT NULL,
        PRIMARY KEY (journey, run_at)
    )""",
]


def create_journey_schema(conn: sqlite3.Connection) -> None:
    """Creates the journeys' tables in the messaging database if they do not exist."""
    with transaction(conn):
        for ddl in SCHEMA:
            conn.execute(ddl)


class SavedJourney(msgspec.Struct):
    """A journey as stored: its definition body, version and times."""

    name: str
    version: int
    definition: dict[str, Any]
    created_at: float
    updated_at: float


_BODY = msgspec.json.Decoder(dict[str, Any])


def save_journey(conn: sqlite3.Connection, name: str, body: dict[str, Any]) -> SavedJourney:
    """Creates or replaces a journey's definition (a new version unless unchanged); instances carry on."""
    now = time.time()
    encoded = msgspec.json.encode(body).decode()
    with transaction(conn):
        row = conn.execute(
            "SELECT version, created_at, body, updated_at FROM journeys WHERE name = ?", (name,)
        ).fetchone()
        if row is not None and row[2] == encoded:  # unchanged (a file applied again at start): no new version
            return SavedJourney(name, int(row[0]), body, float(row[1]), float(row[3]))
        version, created = (1, now) if row is None else (int(row[0]) + 1, float(row[1]))
        conn.execute(
            "INSERT INTO journeys (name, version, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET version = excluded.version, body = excluded.body,"
            " updated_at = excluded.updated_at",
            (name, version, encoded, created, now),
        )
    return SavedJourney(name, version, body, created, now)


def saved_journeys(conn: sqlite3.Connection) -> list[SavedJourney]:
    """Every saved journey, by name."""
    rows = conn.execute("SELECT name, version, body, created_at, updated_at FROM journeys ORDER BY name")
    return [SavedJourney(n, int(v), _BODY.decode(b), float(c), float(u)) for n, v, b, c, u in rows]


def saved_journey(conn: sqlite3.Connection, name: str) -> SavedJourney:
    """One saved journey; UnknownJourneyError if there is none of that name."""
    for j in saved_journeys(conn):
        if j.name == name:
            return j
    raise UnknownJourneyError(f"no journey {name!r}")


def delete_journey(conn: sqlite3.Connection, name: str) -> int:
    """Deletes a journey; its running instances exit. Returns how many did."""
    now = time.time()
    with transaction(conn):
        if conn.execute("DELETE FROM journeys WHERE name = ?", (name,)).rowcount == 0:
            raise UnknownJourneyError(f"no journey {name!r}")
        return conn.execute(
            "UPDATE journey_instances SET state = 'exited', finished_at = ?, reason = 'journey deleted',"
            " due_at = NULL WHERE journey = ? AND state IN ('ready', 'waiting')",
            (now, name),
        ).rowcount


def step_counts(conn: sqlite3.Connection, journey: str) -> dict[str, dict[str, int]]:
    """Per step: how many people went through it, by outcome, and how many are on it now."""
    out: dict[str, dict[str, int]] = {}
    for step, outcome, n in conn.execute(
        "SELECT step, outcome, count(*) FROM journey_visits WHERE journey = ? GROUP BY 1, 2", (journey,)
    ):
        out.setdefault(step, {})[outcome] = int(n)
    for step, n in conn.execute(
        "SELECT step, count(*) FROM journey_instances WHERE journey = ? AND state IN ('ready', 'waiting')"
        " GROUP BY 1",
        (journey,),
    ):
        out.setdefault(step, {})["now"] = int(n)
    return out
