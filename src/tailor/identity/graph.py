"""The identity graph: deterministic stitching of identifiers into profiles, as a processing stage.

Every event links the identifiers it carries to its strongest one (user id, else anonymous id,
else device id, email, phone): identify joins anonymousId, userId and email; alias joins
previousId and userId; a track with both ids joins them. Edges keep their first evidence (seq,
message id, event type). Two merge rules decide which edges link:

- shared-device protection: an anonymous or device id seen with two or more user ids links none
  of them (its edges to user ids stay as evidence, marked `shared`);
- one user id per profile: an edge that would put two user ids in one profile is refused.

Profiles are the connected components of the linking edges (see `tailor.identity.components`).
"""

from __future__ import annotations

import duckdb

from tailor.identity.components import component_steps
from tailor.identity.extract import extraction_steps, register_normaliser
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.process.stage import Batch, SqlStep
from tailor.store.database import Database

TABLES = ("identity_nodes", "identity_edges", "identity_refusals", "identity_profiles")
"""The tables a rebuild empties; `profile_aliases` survives it, as ids handed out must keep resolving."""

_DDL = """
CREATE TABLE IF NOT EXISTS identity_nodes (
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (type, value)
);
CREATE TABLE IF NOT EXISTS identity_edges (
    a_type VARCHAR NOT NULL,
    a_value VARCHAR NOT NULL,
    b_type VARCHAR NOT NULL,
    b_value VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    last_seq BIGINT NOT NULL,
    events BIGINT NOT NULL,
    shared BOOLEAN NOT NULL,
    linking BOOLEAN NOT NULL,
    reason VARCHAR,
    PRIMARY KEY (a_type, a_value, b_type, b_value)
);
CREATE TABLE IF NOT EXISTS identity_refusals (
    type VARCHAR NOT NULL,
    raw_value VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    last_seq BIGINT NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (type, raw_value)
);
CREATE TABLE IF NOT EXISTS identity_profiles (
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    PRIMARY KEY (type, value)
);
CREATE TABLE IF NOT EXISTS profile_aliases (
    old_id VARCHAR PRIMARY KEY,
    profile_id VARCHAR NOT NULL
);
"""

# An edge joins two identifiers of one event; (a, b) is ordered so that each pair is stored once.
_EDGE_STEPS = [
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_batch_edges AS
        WITH hub AS (
            SELECT seq, arg_min(type, (priority, value)) AS h_type,
                   arg_min(value, (priority, value)) AS h_value
            FROM _idg_ids GROUP BY seq
        ),
        spoke AS (
            SELECT i.seq, i.message_id, i.kind, i.type, i.value, h.h_type, h.h_value
            FROM _idg_ids i JOIN hub h USING (seq)
            WHERE (i.type, i.value) <> (h.h_type, h.h_value)
        ),
        ordered AS (
            SELECT seq, message_id, kind,
                   CASE WHEN (type, value) < (h_type, h_value) THEN type ELSE h_type END AS a_type,
                   CASE WHEN (type, value) < (h_type, h_value) THEN value ELSE h_value END AS a_value,
                   CASE WHEN (type, value) < (h_type, h_value) THEN h_type ELSE type END AS b_type,
                   CASE WHEN (type, value) < (h_type, h_value) THEN h_value ELSE value END AS b_value
            FROM spoke
        )
        SELECT a_type, a_value, b_type, b_value, min(seq) AS seq, arg_min(message_id, seq) AS message_id,
               arg_min(kind, seq) AS kind, max(seq) AS last_seq, count(*) AS events
        FROM ordered GROUP BY a_type, a_value, b_type, b_value""",
        "_idg_batch_edges",
    ),
    SqlStep(
        """INSERT INTO identity_edges
        SELECT *, FALSE, FALSE, NULL FROM _idg_batch_edges
        ON CONFLICT DO UPDATE SET last_seq = excluded.last_seq, events = events + excluded.events""",
        "identity_edges",
    ),
    # Shared-device protection; only the batch's own anonymous and device ids can have become shared.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_shared AS
        WITH touched AS (
            SELECT DISTINCT type, value FROM _idg_ids WHERE type IN ('anonymous_id', 'device_id')
        ),
        users AS (
            SELECT a_type AS type, a_value AS value, b_value AS user_id FROM identity_edges
            WHERE b_type = 'user_id' AND a_type IN ('anonymous_id', 'device_id')
            UNION ALL
            SELECT b_type, b_value, a_value FROM identity_edges
            WHERE a_type = 'user_id' AND b_type IN ('anonymous_id', 'device_id')
        )
        SELECT type, value, count(DISTINCT user_id) AS users
        FROM users SEMI JOIN touched USING (type, value)
        GROUP BY type, value HAVING count(DISTINCT user_id) >= 2""",
        "_idg_shared",
    ),
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_cut AS
        SELECT e.a_type, e.a_value, e.b_type, e.b_value,
               'shared device: ' || s.type || ' ' || s.value || ' was seen with ' || s.users
               || ' user ids, so it links none of them' AS reason
        FROM identity_edges e JOIN _idg_shared s
          ON (s.type = e.a_type AND s.value = e.a_value AND e.b_type = 'user_id')
          OR (s.type = e.b_type AND s.value = e.b_value AND e.a_type = 'user_id')""",
        "_idg_cut",
    ),
    SqlStep(
        """UPDATE identity_edges SET shared = TRUE, linking = FALSE, reason = c.reason
        FROM _idg_cut c
        WHERE identity_edges.a_type = c.a_type AND identity_edges.a_value = c.a_value
          AND identity_edges.b_type = c.b_type AND identity_edges.b_value = c.b_value""",
        "identity_edges (shared)",
    ),
    # Components to recompute: those of the batch's identifiers and of both ends of every cut
    # edge, as a cut may split a profile.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_seeds AS
        SELECT type, value FROM _idg_ids
        UNION SELECT a_type, a_value FROM _idg_cut
        UNION SELECT b_type, b_value FROM _idg_cut""",
        "_idg_seeds",
    ),
]

_TEMP_TABLES = (
    "_idg_raw",
    "_idg_norm",
    "_idg_ids",
    "_idg_batch_edges",
    "_idg_shared",
    "_idg_cut",
    "_idg_seeds",
    "_idg_cn",
    "_idg_adj",
    "_idg_near",
    "_idg_cc",
    "_idg_new",
    "_idg_absorbed",
)


class IdentityGraph:
    """The processing stage that stitches each micro-batch's identifiers into the identity graph."""

    name = "identity_graph"

    def __init__(self, normaliser: IdentifierNormaliser | None = None) -> None:
        self.normaliser = default_normaliser() if normaliser is None else normaliser
        self._function: str | None = None
        self._owner: duckdb.DuckDBPyConnection | None = None

    def setup(self, db: Database) -> None:
        """Creates the identity tables and registers the normalisation function."""
        db.ddl(_DDL)
        self._function, self._owner = register_normaliser(db, self.normaliser)

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the graph and its profiles, keeping the aliases of ids already handed out."""
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")

    def steps(self, batch: Batch) -> list[SqlStep]:
        """Extraction, edges and merge rules, then the profiles of every component the batch touched."""
        if self._function is None:
            raise RuntimeError("IdentityGraph.setup() must run before steps()")
        drop = [SqlStep(f"DROP TABLE IF EXISTS {t}", "cleanup") for t in _TEMP_TABLES]
        return [*extraction_steps(self._function), *_EDGE_STEPS, *component_steps(), *drop]
