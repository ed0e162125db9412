"""The event-volume stage: events per day, source, type and name, kept live from the log."""

from __future__ import annotations

import duckdb

from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database


class EventVolume:
    """Counts events per day of their (corrected) timestamp, source, message type and event name."""

    name = "event_volume"

    def setup(self, db: Database) -> None:
        """Creates the `event_volume` table."""
        db.ddl(
            """CREATE TABLE IF NOT EXISTS event_volume (
                day DATE NOT NULL,
                source_id VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR NOT NULL,
                events BIGINT NOT NULL,
                PRIMARY KEY (day, source_id, type, event)
            )"""
        )

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the table."""
        cur.execute("DELETE FROM event_volume")

    def steps(self, batch: Batch) -> list[SqlStep]:
        """One upsert of the batch's counts."""
        return [
            SqlStep(
                f"""INSERT INTO event_volume
                SELECT CAST(timezone('UTC', timestamp) AS DATE), source_id, type,
                       coalesce(event, name, ''), count(*)
                FROM {BATCH_VIEW} GROUP BY ALL
                ON CONFLICT DO UPDATE SET events = events + excluded.events""",
                "event_volume",
            )
        ]
