"""Tombstones of erased people, and the stage that keeps replayed or late events from rebuilding them.

A tombstone is the keyed hash (`tailor.privacy.secret`) of one identifier `TYPE:VALUE` of an
erased person, with the erasure it came from; `privacy_erasures` is the audit record of each
erasure: when, by whom, how many rows of each table, never who. The guard stage runs first in
every micro-batch: it normalises the identifiers of the batch's events as identity does, hashes
them in SQL, and deletes (and counts) the events that name an erased identifier, before any
other stage sees them.
"""

from __future__ import annotations

import duckdb

from tailor.identity.extract import register_normaliser
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.privacy.secret import KeyedHash, load_secret
from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database, run

DDL = """
CREATE TABLE IF NOT EXISTS privacy_tombstones (
    hash VARCHAR NOT NULL,
    erasure_id VARCHAR NOT NULL,
    erased_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS privacy_erasures (
    erasure_id VARCHAR PRIMARY KEY,
    erased_at TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    identifiers BIGINT NOT NULL,
    rows_deleted VARCHAR NOT NULL,
    compacted_at TIMESTAMPTZ,
    dropped_events BIGINT NOT NULL DEFAULT 0
);
-- The erasure guard's drops, one row per erasure and batch: appended inside the processor's
-- transaction, where an update of the erasure's row would conflict with the collector's count
-- and with compaction, which update that row on their own.
CREATE TABLE IF NOT EXISTS privacy_erasure_drops (
    erasure_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    events BIGINT NOT NULL
);
"""

# The identifiers of each event, where identity reads them (see tailor.identity.extract).
_RAW_IDS = f"""
WITH src AS (
    SELECT seq, user_id, anonymous_id, CASE WHEN type = 'alias' THEN previous_id END AS previous_id,
           CASE WHEN type = 'identify' AND traits IS NOT NULL
                THEN json_extract_string(traits, ['$.email', '$.phone']) END AS t,
           CASE WHEN context IS NOT NULL
                THEN json_extract_string(context, ['$.traits.email', '$.traits.phone', '$.device.id'])
           END AS c,
           CASE WHEN context LIKE '%"externalIds"%' THEN json_extract(context, '$.externalIds[*]') END AS x
    FROM {BATCH_VIEW}
)
SELECT seq, 'user_id' AS type, user_id AS raw FROM src WHERE user_id IS NOT NULL
UNION ALL SELECT seq, 'anonymous_id', anonymous_id FROM src WHERE anonymous_id IS NOT NULL
UNION ALL SELECT seq, 'anonymous_id', previous_id FROM src WHERE previous_id IS NOT NULL
UNION ALL SELECT seq, 'email', t[1] FROM src WHERE t[1] IS NOT NULL
UNION ALL SELECT seq, 'phone', t[2] FROM src WHERE t[2] IS NOT NULL
UNION ALL SELECT seq, 'email', c[1] FROM src WHERE c[1] IS NOT NULL
UNION ALL SELECT seq, 'phone', c[2] FROM src WHERE c[2] IS NOT NULL
UNION ALL SELECT seq, 'device_id', c[3] FROM src WHERE c[3] IS NOT NULL
UNION ALL SELECT seq, coalesce(json_extract_string(x, '$.type'), ''),
                 coalesce(json_extract_string(x, '$.id'), json_extract_string(x, '$.value'))
FROM (SELECT seq, unnest(x) AS x FROM src WHERE x IS NOT NULL)
"""


class ErasureGuard:
    """The first processing stage: drops events that name an identifier of an erased person."""

    name = "erasure_guard"

    def __init__(self, normaliser: IdentifierNormaliser | None = None) -> None:
        self.normaliser = normaliser or default_normaliser()
        self.hasher: KeyedHash | None = None
        self.active = False
        """Whether any tombstone exists; without one the stage has nothing to do."""
        self.dropped = 0
        self._function: str | None = None
        self._owner: duckdb.DuckDBPyConnection | None = None

    def setup(self, db: Database) -> None:
        """Creates the tombstone and audit tables, loads the secret, registers the normaliser."""
        db.ddl(DDL)
        self.hasher = KeyedHash(load_secret(None if db.path is None else db.path.parent))
        self._function, self._owner = register_normaliser(db, self.normaliser)
        self.active = bool(db.execute("SELECT count(*) FROM privacy_tombstones")[0][0])

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Nothing to empty: tombstones outlive rebuilds (the events they dropped are gone)."""

    def steps(self, batch: Batch) -> list[SqlStep]:
        """Normalise, hash, match against tombstones, delete the matching events and count them."""
        if not self.active:
            return []
        assert self.hasher is not None
        assert self._function is not None
        f = self._function
        digest = self.hasher.sql("o.type", "o.value")
        return [
            SqlStep(f"CREATE OR REPLACE TEMP TABLE _eg_raw AS {_RAW_IDS}", "_eg_raw"),
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE _eg_hit AS
                WITH d AS (SELECT DISTINCT type, raw FROM _eg_raw),
                n AS (SELECT type, raw, {f}(type, raw) AS o FROM d),
                h AS (SELECT type, raw, {digest} AS hash
                      FROM n WHERE o.value IS NOT NULL)
                SELECT DISTINCT r.seq, t.erasure_id
                FROM _eg_raw r JOIN h USING (type, raw) JOIN privacy_tombstones t ON t.hash = h.hash""",
                "_eg_hit",
            ),
            SqlStep(
                f"""INSERT INTO privacy_erasure_drops
                SELECT erasure_id, {int(batch.hi)}, count(DISTINCT seq) FROM _eg_hit GROUP BY erasure_id""",
                "privacy_erasure_drops",
            ),
            SqlStep("DELETE FROM events WHERE seq IN (SELECT seq FROM _eg_hit)", "events (dropped)"),
            SqlStep("DROP TABLE IF EXISTS _eg_raw", "cleanup"),
            SqlStep("DROP TABLE IF EXISTS _eg_hit", "cleanup"),
        ]


def tombstone_of(
    cur: duckdb.DuckDBPyConnection, hasher: KeyedHash, type: str, value: str
) -> tuple[str, str] | None:
    """The erasure id and time of the tombstone holding an identifier, if any."""
    rows = run(
        cur,
        "SELECT erasure_id, erased_at FROM privacy_tombstones WHERE hash = ? ORDER BY erased_at DESC LIMIT 1",
        [hasher.of(type, value)],
    ).fetchall()
    return (str(rows[0][0]), rows[0][1].isoformat()) if rows else None
