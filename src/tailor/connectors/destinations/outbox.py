"""The destinations' outbox in DuckDB: what each destination holds, and the batches on their way to it.

A sync first plans: it runs the destination's query, fingerprints every row (md5 of its JSON),
and compares with what the destination holds or will hold once its pending batches land; new and
changed rows become upserts, rows gone from the query deletes, all written as numbered batches
in one transaction (the decision to send is recorded before anything is sent). Delivery then
sends batches in order; only after the destination acknowledges a batch is it marked sent and
its fingerprints recorded as held. A crash in between leaves the batch pending, and it is sent
again with the same batch id, which each destination uses to apply it once (an Idempotency-Key,
a table of applied batch ids written in the same transaction, a file named after the batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from tailor.store.database import Database, run

SCHEMA = """
CREATE TABLE IF NOT EXISTS destination_state (
    destination VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (destination, key)
);
CREATE TABLE IF NOT EXISTS destination_batches (
    destination VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    rows INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    PRIMARY KEY (destination, batch_id)
);
CREATE TABLE IF NOT EXISTS destination_outbox (
    destination VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    key VARCHAR NOT NULL,
    op VARCHAR NOT NULL,
    fingerprint VARCHAR,
    payload VARCHAR,
    PRIMARY KEY (destination, batch_id, position)
);
"""


@dataclass(frozen=True)
class OutboxRow:
    """One row of a batch: its key, upsert or delete, and the row as JSON (None for a delete)."""

    key: str
    op: str
    payload: str | None

    def data(self) -> dict[str, Any] | None:
        """The row's columns."""
        return None if self.payload is None else dict(msgspec.json.decode(self.payload))


@dataclass(frozen=True)
class Batch:
    """A batch waiting to be delivered."""

    batch_id: str
    attempts: int
    rows: list[OutboxRow]


@dataclass
class Plan:
    """What one planning step found."""

    rows_read: int
    unchanged: int
    upserts: int
    deletes: int
    batches: int


def _plan_sql(query: str, key: str) -> str:
    # `known` is what the destination holds once every batch still on its way has landed: the
    # latest outbox entry of a key (pending or dead-lettered) overrides what was acknowledged.
    return f"""
    CREATE OR REPLACE TEMP TABLE _dest_plan AS
    WITH q AS (SELECT CAST("{key}" AS VARCHAR) AS key, to_json(src) AS payload FROM ({query}) AS src),
    cur AS (SELECT key, payload, md5(payload) AS fp FROM q),
    waiting AS (
        SELECT o.key, o.op, o.fingerprint AS fp FROM destination_outbox o
        JOIN destination_batches b USING (destination, batch_id)
        WHERE o.destination = ? AND b.status IN ('pending', 'dead')
        QUALIFY row_number() OVER (PARTITION BY o.key ORDER BY o.batch_id DESC, o.position DESC) = 1
    ),
    known AS (
        SELECT key, op, fp FROM waiting
        UNION ALL
        SELECT s.key, 'upsert', s.fingerprint FROM destination_state s
        WHERE s.destination = ? AND s.key NOT IN (SELECT key FROM waiting)
    )
    SELECT c.key, 'upsert' AS op, c.fp, c.payload, 0 AS unchanged FROM cur c LEFT JOIN known k USING (key)
    WHERE k.key IS NULL OR k.op = 'delete' OR k.fp <> c.fp
    UNION ALL
    SELECT k.key, 'delete', NULL, NULL, 0 FROM known k
    WHERE k.op = 'upsert' AND k.key NOT IN (SELECT key FROM cur)
    UNION ALL
    SELECT NULL, 'count', NULL, NULL, (SELECT count(*) FROM cur)
    """


class Outbox:
    """The outbox of every destination of one store."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.ddl(SCHEMA)

    def plan(self, destination: str, query: str, key: str, batch_rows: int, run_id: int) -> Plan:
        """Records the batches that bring the destination up to the query's current rows."""
        cur = self._db.cursor()
        now = datetime.now(UTC)
        try:
            run(cur, "BEGIN")
            try:
                run(cur, _plan_sql(query, key.replace('"', '""')), [destination, destination])
                (total,) = run(
                    cur, "SELECT max(unchanged) FROM _dest_plan WHERE op = 'count'"
                ).fetchone() or (0,)
                counts = dict(
                    run(cur, "SELECT op, count(*) FROM _dest_plan WHERE op <> 'count' GROUP BY op").fetchall()
                )
                changed = sum(counts.values())
                # Batch ids sort in the order batches must land: run id, then batch number.
                run(
                    cur,
                    """INSERT INTO destination_outbox
                    SELECT ?, printf('%012d-%06d', ?::BIGINT, (n - 1) // ?), ((n - 1) % ?)::INTEGER,
                           key, op, fp, payload
                    FROM (SELECT *, row_number() OVER (ORDER BY op DESC, key) AS n
                          FROM _dest_plan WHERE op <> 'count')""",
                    [destination, run_id, batch_rows, batch_rows],
                )
                batches = (changed + batch_rows - 1) // batch_rows
                for b in range(batches):
                    rows = min(batch_rows, changed - b * batch_rows)
                    run(
                        cur,
                        "INSERT INTO destination_batches (destination, batch_id, status, rows,"
                        " next_attempt_at, created_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                        [destination, f"{run_id:012d}-{b:06d}", rows, now, now],
                    )
                run(cur, "COMMIT")
            except BaseException:
                run(cur, "ROLLBACK")
                raise
        finally:
            cur.close()
        total = int(total or 0)
        upserts = int(counts.get("upsert", 0))
        return Plan(total, total - upserts, upserts, int(counts.get("delete", 0)), batches)

    def due(self, destination: str, now: datetime | None = None) -> list[str]:
        """The pending batches whose next attempt is due, in the order they must land."""
        rows = self._db.execute(
            "SELECT batch_id FROM destination_batches WHERE destination = ? AND status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY batch_id",
            [destination, now or datetime.now(UTC)],
        )
        return [b for (b,) in rows]

    def batch(self, destination: str, batch_id: str) -> Batch:
        """A batch with its rows, in order."""
        (attempts,) = self._db.execute(
            "SELECT attempts FROM destination_batches WHERE destination = ? AND batch_id = ?",
            [destination, batch_id],
        )[0]
        rows = self._db.execute(
            "SELECT key, op, payload FROM destination_outbox WHERE destination = ? AND batch_id = ?"
            " ORDER BY position",
            [destination, batch_id],
        )
        return Batch(batch_id, attempts, [OutboxRow(k, o, p) for k, o, p in rows])

    def delivered(self, destination: str, batch_id: str) -> None:
        """Marks a batch acknowledged: its rows become what the destination holds."""
        cur = self._db.cursor()
        params = [destination, batch_id]
        pair = [destination, destination, batch_id]
        try:
            run(cur, "BEGIN")
            try:
                run(
                    cur,
                    """DELETE FROM destination_state WHERE destination = ? AND key IN
                    (SELECT key FROM destination_outbox WHERE destination = ? AND batch_id = ?)""",
                    pair,
                )
                run(
                    cur,
                    """INSERT INTO destination_state SELECT destination, key, fingerprint, now()
                    FROM destination_outbox
                    WHERE destination = ? AND batch_id = ? AND op = 'upsert'""",
                    params,
                )
                run(
                    cur,
                    "DELETE FROM destination_outbox WHERE destination = ? AND batch_id = ?",
                    params,
                )
                run(
                    cur,
                    "UPDATE destination_batches SET status = 'sent', sent_at = now(), attempts = attempts + 1"
                    " WHERE destination = ? AND batch_id = ?",
                    params,
                )
                run(cur, "COMMIT")
            except BaseException:
                run(cur, "ROLLBACK")
                raise
        finally:
            cur.close()

    def failed(
        self, destination: str, batch_id: str, error: str, backoff_s: float, max_attempts: int, terminal: bool
    ) -> bool:
        """Records a failed attempt; returns True if the batch is now dead-lettered."""
        (attempts,) = self._db.execute(
            "SELECT attempts + 1 FROM destination_batches WHERE destination = ? AND batch_id = ?",
            [destination, batch_id],
        )[0]
        dead = terminal or attempts >= max_attempts
        wait = timedelta(seconds=min(backoff_s * 2 ** (attempts - 1), 3600))
        self._db.execute(
            "UPDATE destination_batches SET attempts = ?, last_error = ?, next_attempt_at = ?, status = ?"
            " WHERE destination = ? AND batch_id = ?",
            [
                attempts,
                error[:2000],
                datetime.now(UTC) + wait,
                "dead" if dead else "pending",
                destination,
                batch_id,
            ],
        )
        return dead

    def requeue_dead(self, destination: str) -> int:
        """Sends dead-lettered batches again (after the cause is fixed); returns how many."""
        rows = self._db.execute(
            "UPDATE destination_batches SET status = 'pending', attempts = 0, next_attempt_at = now()"
            " WHERE destination = ? AND status = 'dead' RETURNING batch_id",
            [destination],
        )
        return len(rows)

    def summary(self, destination: str) -> dict[str, int]:
        """Batches of a destination by status, and the rows it holds."""
        out = {
            s: n
            for s, n in self._db.execute(
                "SELECT status, count(*) FROM destination_batches WHERE destination = ? GROUP BY status",
                [destination],
            )
        }
        (held,) = self._db.execute(
            "SELECT count(*) FROM destination_state WHERE destination = ?", [destination]
        )[0]
        out["rows_held"] = held
        return out
