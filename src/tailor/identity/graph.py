"""The identity graph: deterministic stitching of identifiers into profiles, as a processing stage.

Every event links the identifiers it carries to its strongest one, its hub (user id, else CRM id,
record, anonymous id, device id, email, phone): identify joins anonymousId, userId and email;
alias joins previousId and userId; a track with both ids joins them; an imported CRM row joins
its record, CRM id, email and phone. Edges keep their first evidence (seq, message id, event
type). Merge rules decide which edges link:

- shared-device protection: an anonymous or device id seen with two or more user ids links none
  of them (its edges to user ids stay as evidence, marked `shared`);
- one user id per profile: an edge that would put two user ids in one profile is refused;
- per-type limits (at most five emails, ...): values over a limit are detached and their edges
  refused;
- splits: an edge removed or an identifier blocked by a user (`identity_overrides`) never links.

Profiles are the connected components of the linking edges (see `tailor.identity.components`).
Each event's hub is kept (`identity_event_hubs`), so an event belongs to its hub's profile.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from tailor.identity.components import DEFAULT_LIMITS, component_steps
from tailor.identity.extract import extraction_steps, register_normaliser
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.process.stage import Batch, SqlStep
from tailor.store.database import Database

TABLES = ("identity_nodes", "identity_edges", "identity_refusals", "identity_profiles", "identity_event_hubs")
"""The tables a rebuild empties. `profile_aliases` survives it, as ids handed out must keep resolving;
so do the user's splits (`identity_overrides`) and the log of changes (`profile_changes`)."""


def cut_by_override(e: str, only: str = "TRUE") -> str:
    """SQL: whether edge `e` is cut by an override (itself removed, or touching a blocked identifier)."""
    return f"""EXISTS (SELECT 1 FROM identity_overrides o WHERE ({only}) AND (
    (o.action = 'remove_edge' AND o.a_type = {e}.a_type AND o.a_value = {e}.a_value
        AND o.b_type = {e}.b_type AND o.b_value = {e}.b_value)
    OR (o.action = 'block' AND ((o.a_type = {e}.a_type AND o.a_value = {e}.a_value)
        OR (o.a_type = {e}.b_type AND o.a_value = {e}.b_value)))))"""


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
    cut BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (a_type, a_value, b_type, b_value)
);
CREATE TABLE IF NOT EXISTS identity_event_hubs (
    seq BIGINT NOT NULL,
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_overrides (
    id VARCHAR PRIMARY KEY,
    action VARCHAR NOT NULL,
    a_type VARCHAR NOT NULL,
    a_value VARCHAR NOT NULL,
    b_type VARCHAR,
    b_value VARCHAR,
    note VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_changes (
    seq BIGINT NOT NULL,
    change VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    other_id VARCHAR NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
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
        """CREATE OR REPLACE TEMP TABLE _idg_hub AS
        SELECT seq, arg_min(type, (priority, value)) AS h_type, arg_min(value, (priority, value)) AS h_value
        FROM _idg_ids GROUP BY seq""",
        "_idg_hub",
    ),
    SqlStep(
        "INSERT INTO identity_event_hubs SELECT seq, h_type, h_value FROM _idg_hub", "identity_event_hubs"
    ),
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_batch_edges AS
        WITH spoke AS (
            SELECT i.seq, i.message_id, i.kind, i.type, i.value, h.h_type, h.h_value
            FROM _idg_ids i JOIN _idg_hub h USING (seq)
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
        SELECT b.*, FALSE, FALSE, CASE WHEN """
        + cut_by_override("b")
        + """ THEN 'split: cut by a user override' END, """
        + cut_by_override("b")
        + """ FROM _idg_batch_edges b
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
    "_idg_hub",
    "_idg_all",
    "_idg_grp1",
    "_idg_over",
    "_idg_redo",
    "_idg_adj2",
    "_idg_grp2",
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

    def __init__(
        self, normaliser: IdentifierNormaliser | None = None, limits: Mapping[str, int] = DEFAULT_LIMITS
    ) -> None:
        self.normaliser = default_normaliser() if normaliser is None else normaliser
        self.limits = dict(limits)
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
        return [
            *extraction_steps(self._function),
            *_EDGE_STEPS,
            *component_steps(batch.hi, self.limits),
            *_cleanup(),
        ]

    def override_steps(self, override_id: str, hi: int) -> list[SqlStep]:
        """Steps that apply a stored override (a removed edge or a blocked identifier) to the live graph.

        The edges it cuts stop linking and the components around both ends are formed again, so a
        wrongly merged profile splits; `hi` is the seq up to which the graph is applied, with which
        the split is logged.
        """
        oid = override_id.replace("'", "''")
        this = f"o.id = '{oid}'"
        cut = cut_by_override("e", this)
        return [
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE _idg_seeds AS
                SELECT a_type AS type, a_value AS value FROM identity_edges e WHERE {cut}
                UNION SELECT b_type, b_value FROM identity_edges e WHERE {cut}
                UNION SELECT a_type, a_value FROM identity_overrides o WHERE {this}
                UNION SELECT b_type, b_value FROM identity_overrides o WHERE {this} AND b_type IS NOT NULL""",
                "_idg_seeds",
            ),
            SqlStep(
                f"""UPDATE identity_edges SET cut = TRUE, linking = FALSE,
                    reason = (SELECT 'split: ' || coalesce(o.note, o.action) || ' (override ' || o.id || ')'
                              FROM identity_overrides o WHERE {this})
                WHERE {cut_by_override("identity_edges", this)}""",
                "identity_edges (cut)",
            ),
            *component_steps(hi, self.limits),
            *_cleanup(),
        ]


def _cleanup() -> list[SqlStep]:
    return [SqlStep(f"DROP TABLE IF EXISTS {t}", "cleanup") for t in _TEMP_TABLES]
