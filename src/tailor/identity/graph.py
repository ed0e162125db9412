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

import logging
import re
import time
from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa

from tailor.identity.components import DEFAULT_LIMITS, SHARED_TYPES, component_steps
from tailor.identity.extract import extraction_steps, register_normaliser
from tailor.identity.index import GraphIndex
from tailor.identity.live import apply_live
from tailor.identity.live_extract import Normalised
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.identity.record_matching import MATCH_DDL
from tailor.process.heap import freeze_loaded
from tailor.process.stage import Batch, PyStep, SqlStep, run_steps
from tailor.store.database import Database, run

log = logging.getLogger(__name__)

_PROFILE_ID = re.compile("prof_[0-9a-f]{16}")

SQL_NORMALISATION_EVENTS = 20_000
"""From how many events a batch normalises emails and phone numbers in SQL (see `extraction_steps`)."""

TABLES = (
    "identity_nodes",
    "identity_sightings",
    "identity_edges",
    "identity_edge_sightings",
    "identity_refusals",
    "identity_event_hubs",
)
"""The tables a rebuild empties. `profile_aliases` survives it, as ids handed out must keep resolving;
so do the user's splits (`identity_overrides`) and the log of changes (`profile_changes`)."""

# Nodes and edges hold what never changes once written (first evidence) and the current verdicts;
# when each was seen again is appended to the `_sightings` tables, which are cheap to add to and
# summed when someone asks, instead of updating millions of rows per batch. Refusals likewise: a
# row per value and batch, summed by the view `identity_refused_values` (an upsert of a batch's few
# refused values cost 10-11 ms at 120k refused values, mostly finding them; an append 1-1.5 ms).
_DDL = """
CREATE TABLE IF NOT EXISTS identity_nodes (
    k UBIGINT NOT NULL,
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    first_seq BIGINT NOT NULL,
    shared BOOLEAN NOT NULL,
    component UBIGINT NOT NULL,
    profile_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_sightings (
    k UBIGINT NOT NULL, last_seq BIGINT NOT NULL, events BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_edges (
    a UBIGINT NOT NULL,
    b UBIGINT NOT NULL,
    a_type VARCHAR NOT NULL,
    a_value VARCHAR NOT NULL,
    b_type VARCHAR NOT NULL,
    b_value VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    linking BOOLEAN NOT NULL,
    reason VARCHAR,
    shared BOOLEAN NOT NULL,
    cut BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_edge_sightings (
    a UBIGINT NOT NULL, b UBIGINT NOT NULL, last_seq BIGINT NOT NULL, events BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_refusals (
    type VARCHAR NOT NULL,
    raw_value VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    last_seq BIGINT NOT NULL,
    events BIGINT NOT NULL
);
CREATE OR REPLACE VIEW identity_refused_values AS
SELECT type, raw_value, arg_min(reason, seq) AS reason, min(seq) AS seq,
       arg_min(message_id, seq) AS message_id, max(last_seq) AS last_seq, sum(events)::BIGINT AS events
FROM identity_refusals GROUP BY type, raw_value;
CREATE TABLE IF NOT EXISTS identity_event_hubs (seq BIGINT NOT NULL, k UBIGINT NOT NULL);
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
CREATE TABLE IF NOT EXISTS profile_aliases (
    old_id VARCHAR PRIMARY KEY,
    profile_id VARCHAR NOT NULL
);
CREATE VIEW IF NOT EXISTS identity_profiles AS SELECT type, value, profile_id FROM identity_nodes;
"""

# No ART index on the graph's tables. DuckDB's commit of keys added to an ART costs 10-160 ms for
# the first few dozen commits after each start or checkpoint (at 4.9M identifiers: 46, 29, 21 ...
# ms for 150 keys), and an UPDATE of an indexed column is a delete and an insert (the index on
# `profile_id` cost a batch 20-40 ms more); a live batch's UPDATEs scan instead (~15 ms at 1M
# people). One person's identifiers are read from the stage's in-memory index (`profile_nodes`),
# or by a scan where it is not loaded. Stores made by earlier versions lose their indexes.
_RETIRED_INDEXES = "; ".join(
    f"DROP INDEX IF EXISTS {name}"
    for name in ("identity_nodes_k", "identity_nodes_profile", "identity_edges_a")
)


def _unkey_refusals(db: Database) -> None:
    """A store made before refusals were appended has them keyed by value: the rows (one per value,
    what the view sums) move to the table as it is now."""
    keyed = db.execute(
        """SELECT count(*) FROM duckdb_constraints()
        WHERE table_name = 'identity_refusals' AND constraint_type = 'PRIMARY KEY'"""
    )[0][0]
    if keyed:
        db.ddl(
            f"""BEGIN; ALTER TABLE identity_refusals RENAME TO identity_refusals_keyed; {_DDL};
            INSERT INTO identity_refusals SELECT * FROM identity_refusals_keyed;
            DROP TABLE identity_refusals_keyed; COMMIT"""
        )


NODE_KEY = "md5_number_lower({t} || ':' || {v})"
"""SQL for an identifier's key, from its type and normalised value."""


def cut_by_override(e: str, only: str = "TRUE") -> str:
    """SQL: whether edge `e` is cut by an override (itself removed, or touching a blocked identifier).

    Three membership tests rather than one EXISTS with ORs: DuckDB runs each as a hash join, where
    the EXISTS compared every edge with every override (2 s of a rebuild with none at all).
    """
    overrides = f"FROM identity_overrides o WHERE ({only}) AND o.action"
    blocked = f"SELECT (o.a_type, o.a_value) {overrides} = 'block'"
    return f"""(({e}.a_type, {e}.a_value, {e}.b_type, {e}.b_value) IN (
        SELECT (o.a_type, o.a_value, o.b_type, o.b_value) {overrides} = 'remove_edge')
    OR ({e}.a_type, {e}.a_value) IN ({blocked}) OR ({e}.b_type, {e}.b_value) IN ({blocked}))"""


_SHARED = ", ".join(f"'{t}'" for t in SHARED_TYPES)

# From the batch's identifiers to its new nodes, new edges and the inputs of the component steps.
# Existing nodes of the batch, found by key (a scan; the in-memory index finds them otherwise).
_KNOWN = SqlStep(
    """CREATE OR REPLACE TEMP TABLE _idg_known AS
    SELECT k, type, value, component FROM identity_nodes
    WHERE k IN (SELECT k FROM _idg_keys UNION ALL SELECT a FROM _idg_m UNION ALL SELECT b FROM _idg_m)""",
    "_idg_known",
)

_SEEDC = SqlStep(
    "CREATE OR REPLACE TEMP TABLE _idg_seedc AS SELECT DISTINCT component FROM _idg_known",
    "_idg_seedc",
)

_COLLISION_STEPS = [
    # A key of the batch that names another value than the known node's is a collision.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_collide AS
        SELECT i.k, i.type, i.value, n.type AS other_type, n.value AS other_value
        FROM _idg_keys i JOIN _idg_known n USING (k) WHERE i.type <> n.type OR i.value <> n.value""",
        "_idg_collide",
    ),
    SqlStep(
        """INSERT INTO _idg_bad
        WITH s AS (
            SELECT k, min(seq) AS seq, max(seq) AS last_seq, count(*) AS events FROM _idg_ids
            WHERE k IN (SELECT k FROM _idg_collide) GROUP BY k
        )
        SELECT c.type, c.value, 'invalid: its key collides with ' || c.other_type || ' ' || c.other_value
               || '; it is kept apart', s.seq, e.message_id, s.last_seq, s.events
        FROM _idg_collide c JOIN s USING (k) JOIN _idg_src e ON e.seq = s.seq""",
        "_idg_bad (collisions)",
    ),
    SqlStep("DELETE FROM _idg_ids WHERE k IN (SELECT k FROM _idg_collide)", "_idg_ids (collisions)"),
    SqlStep("DELETE FROM _idg_keys WHERE k IN (SELECT k FROM _idg_collide)", "_idg_keys (collisions)"),
]

# From the batch's identifiers (collisions removed) to its new nodes and edges.
_EDGE_STEPS = [
    SqlStep(
        "INSERT INTO identity_refusals SELECT * FROM _idg_bad",
        "identity_refusals",
    ),
    # Each identifier's first and last event of the batch, for its sightings and, if new, its node.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_seen AS
        SELECT k, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS events FROM _idg_ids GROUP BY k""",
        "_idg_seen",
    ),
    SqlStep("INSERT INTO identity_sightings SELECT k, last_seq, events FROM _idg_seen", "identity_sightings"),
    # Each event's hub: its strongest identifier.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_hub AS
        SELECT seq, arg_min(k, (priority, k)) AS h_k FROM _idg_ids GROUP BY seq""",
        "_idg_hub",
    ),
    SqlStep("INSERT INTO identity_event_hubs SELECT seq, h_k FROM _idg_hub", "identity_event_hubs"),
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_bnodes AS
        SELECT k, y.type, y.value, s.first_seq FROM _idg_seen s JOIN _idg_keys y USING (k)
        WHERE k NOT IN (SELECT k FROM _idg_known)""",
        "_idg_bnodes",
    ),
    # An edge joins an event's identifiers to its hub; (a, b) is ordered by (type, value), so each
    # pair is stored once and a device always comes before the user id it is linked with.
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_batch_edges AS
        WITH pairs AS (
            SELECT i.k, h.h_k, min(i.seq) AS seq, max(i.seq) AS last_seq, count(*) AS events
            FROM _idg_ids i JOIN _idg_hub h USING (seq) WHERE i.k <> h.h_k GROUP BY i.k, h.h_k
        ),
        named AS (
            SELECT p.*, x.type AS x_type, x.value AS x_value, y.type AS y_type, y.value AS y_value,
                   (x.type, x.value) < (y.type, y.value) AS first
            FROM pairs p JOIN _idg_keys x ON x.k = p.k JOIN _idg_keys y ON y.k = p.h_k
        ),
        ordered AS (
            SELECT CASE WHEN first THEN k ELSE h_k END AS a, CASE WHEN first THEN h_k ELSE k END AS b,
                   CASE WHEN first THEN x_type ELSE y_type END AS a_type,
                   CASE WHEN first THEN x_value ELSE y_value END AS a_value,
                   CASE WHEN first THEN y_type ELSE x_type END AS b_type,
                   CASE WHEN first THEN y_value ELSE x_value END AS b_value,
                   seq, last_seq, events
            FROM named
        ),
        edges AS (
            SELECT a, b, any_value(a_type) AS a_type, any_value(a_value) AS a_value,
                   any_value(b_type) AS b_type, any_value(b_value) AS b_value,
                   min(seq) AS seq, max(last_seq) AS last_seq, sum(events) AS events
            FROM ordered GROUP BY a, b
        )
        SELECT edges.a, edges.b, edges.a_type, edges.a_value, edges.b_type, edges.b_value, edges.seq,
               e.message_id, e.kind, edges.last_seq, edges.events, NULL::VARCHAR AS veto
        FROM edges JOIN _idg_src e ON e.seq = edges.seq""",
        "_idg_batch_edges",
    ),
    # Probabilistic matches found in this batch join two record nodes.
    SqlStep(
        """INSERT INTO _idg_batch_edges
        SELECT m.a, m.b, 'record', m.a_value, 'record', m.b_value, m.seq,
               printf('match: probability %.4f, weight %.2f', m.probability, m.weight), 'match', m.seq, 1,
               m.veto
        FROM _idg_m m
        WHERE m.a IN (SELECT k FROM _idg_known UNION ALL SELECT k FROM _idg_keys)
          AND m.b IN (SELECT k FROM _idg_known UNION ALL SELECT k FROM _idg_keys)
          AND (m.a, m.b) NOT IN (SELECT (a, b) FROM _idg_batch_edges)""",
        "_idg_batch_edges (matches)",
    ),
    SqlStep(
        "INSERT INTO identity_edge_sightings SELECT a, b, last_seq, events FROM _idg_batch_edges",
        "identity_edge_sightings",
    ),
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _idg_be AS
        SELECT * EXCLUDE (veto, overridden), veto IS NOT NULL OR overridden AS cut,
               CASE WHEN veto IS NOT NULL THEN veto WHEN overridden THEN 'split: cut by a user override' END
                   AS reason
        FROM (SELECT be.*, """
        + cut_by_override("be")
        + """ AS overridden FROM _idg_batch_edges be)""",
        "_idg_be",
    ),
]

_TEMP_TABLES = (
    "_idg_m",
    "_idg_src",
    "_idg_keys",
    "_idg_collide",
    "_idg_raw",
    "_idg_norm",
    "_idg_ids",
    "_idg_bad",
    "_idg_known",
    "_idg_seen",
    "_idg_hub",
    "_idg_bnodes",
    "_idg_batch_edges",
    "_idg_be",
    "_idg_benew",
    "_idg_touched_users",
    "_idg_seedc",
    "_idg_cn0",
    "_idg_se",
    "_idg_cn",
    "_idg_ce",
    "_idg_adj",
    "_idg_comp",
    "_idg_all",
    "_idg_near",
    "_idg_cc",
    "_idg_grp1",
    "_idg_over",
    "_idg_redo",
    "_idg_adj2",
    "_idg_grp2",
    "_idg_groups",
    "_idg_new",
    "_idg_absorbed",
    "_idg_verdict",
)


class IdentityGraph:
    """The processing stage that stitches each micro-batch's identifiers into the identity graph.

    A rebuild (a batch from the start of the log) is SQL, its label propagation over NumPy arrays
    (`tailor.identity.arrays`). Later batches read the graph's slice around them from an in-memory
    `GraphIndex` instead of scanning the tables (`in_memory_index`, on by default): it is loaded
    from the tables at the first such batch and follows each batch's outcome. The index records the
    offset it reflects; a batch that does not start there (after a failed transaction, a split or a
    rebuild) loads it again, so it cannot drift from the tables.
    """

    name = "identity_graph"

    def __init__(
        self,
        normaliser: IdentifierNormaliser | None = None,
        limits: Mapping[str, int] = DEFAULT_LIMITS,
        in_memory_index: bool = True,
    ) -> None:
        self.normaliser = default_normaliser() if normaliser is None else normaliser
        self.limits = dict(limits)
        self.in_memory_index = in_memory_index
        self._normalised = Normalised(self.normaliser)
        self._function: str | None = None
        self._owner: duckdb.DuckDBPyConnection | None = None
        self._index: GraphIndex | None = None
        self._index_at = -1
        self._db: Database | None = None

    def setup(self, db: Database) -> None:
        """Creates the identity tables and registers the normalisation function."""
        _unkey_refusals(db)
        db.ddl(_DDL)
        db.ddl(_RETIRED_INDEXES)
        # Matches come from the record-matching stage; the table exists even when it does not run.
        db.ddl(MATCH_DDL)
        self._function, self._owner = register_normaliser(db, self.normaliser)
        self._db = db

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the graph and its profiles, keeping the aliases of ids already handed out."""
        self._index = None
        # Dropped and created again rather than emptied: DuckDB's commit of millions of rows deleted
        # from tables with ART indexes took minutes (over four at 4.9M identifiers), a new table none.
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        run(cur, _DDL)

    def steps(self, batch: Batch) -> list[SqlStep]:
        """None: the stage's SQL runs in `apply`, around the reads of its in-memory index."""
        return []

    def sql_steps(self, batch: Batch) -> list[SqlStep | PyStep]:
        """The whole batch as SQL: extraction, edges and merge rules, then the touched components."""
        return [
            *self._extraction(batch),
            _KNOWN,
            *_COLLISION_STEPS,
            *_EDGE_STEPS,
            _SEEDC,
            *component_steps(batch.hi, self.limits),
            *_cleanup(),
        ]

    def apply(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        """Folds the batch into the graph, in the batch's transaction."""
        if batch.full or not self.in_memory_index:
            self._index = None
            run_steps(cur, self.name, self.sql_steps(batch))
            return
        try:
            self._apply_indexed(cur, batch)
        except BaseException:
            self._index = None  # it may hold part of a batch that will be rolled back
            raise

    def committed(self, batch: Batch) -> None:
        """After a batch's commit: what the in-memory index took from it is now in the tables."""
        index = self._index
        if index is not None:
            index.settle()

    def profile_nodes(self, profile_id: str) -> tuple[GraphIndex, pa.Table] | None:
        """A profile's identifiers as committed (k, type, value, first_seq) from the in-memory index,
        or None when it is not loaded (a reader then scans `identity_nodes`).

        A reader checks, once it has read what it needs, that the index is still the stage's
        (`index_is`): a split, a rebuild or a failed batch replaces it.
        """
        index = self._index
        if index is None:
            return None
        if not _PROFILE_ID.fullmatch(profile_id):
            return index, index.node_table(np.empty(0, np.int64)).select(["k", "type", "value", "first_seq"])
        rows = index.committed_rows(int(profile_id[5:], 16))
        return index, index.node_table(rows).select(["k", "type", "value", "first_seq"])

    def index_is(self, index: GraphIndex) -> bool:
        """Whether `index` is still the stage's (a split, a rebuild or a failed batch replaces it)."""
        return self._index is index

    def load_index(self, cur: duckdb.DuckDBPyConnection) -> GraphIndex:
        """Loads the in-memory index from the tables as they are now (it loads itself when needed)."""
        started = time.perf_counter()
        self._index = GraphIndex.load(cur)
        offset = cur.execute('SELECT "offset" FROM stage_offsets WHERE stage = ?', [self.name]).fetchall()
        self._index_at = int(offset[0][0]) if offset else 0
        log.info(
            "identity index: %d nodes, %d edges, %.0f MB, loaded in %.2f s",
            self._index.nodes,
            self._index.edges,
            self._index.nbytes() / 1e6,
            time.perf_counter() - started,
        )
        freeze_loaded()
        return self._index

    def _extraction(self, batch: Batch) -> list[SqlStep | PyStep]:
        if self._function is None:
            raise RuntimeError("IdentityGraph.setup() must run before a batch")
        key = NODE_KEY.format(t="'record'", v="{}")
        matches = SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_m AS
            SELECT {key.format("a")} AS a, {key.format("b")} AS b, a AS a_value, b AS b_value,
                   seq, probability, weight, veto
            FROM identity_matches WHERE found_in = {int(batch.hi)}""",
            "_idg_m",
        )
        # A rebuild always does, so that tests comparing live batches with a rebuild cover both.
        large = batch.full or batch.hi - batch.lo >= SQL_NORMALISATION_EVENTS
        return [matches, *extraction_steps(self._function, self.normaliser, large)]

    def _apply_indexed(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        index = self._index
        if index is None or self._index_at != batch.lo:
            index = self.load_index(cur)
        apply_live(cur, self.name, batch.hi, index, self.limits, self._normalised)
        self._index_at = batch.hi

    def override_steps(self, override_id: str, hi: int) -> list[SqlStep | PyStep]:
        """Steps that apply a stored override (a removed edge or a blocked identifier) to the live graph.

        The edges it cuts stop linking and the components around both ends are formed again, so a
        wrongly merged profile splits; `hi` is the seq up to which the graph is applied, with which
        the split is logged.
        """
        self._index = None  # the split changes the graph outside a batch
        oid = override_id.replace("'", "''")
        this = f"o.id = '{oid}'"
        key_a = NODE_KEY.format(t="a_type", v="a_value")
        key_b = NODE_KEY.format(t="b_type", v="b_value")
        return [
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE _idg_seedc AS
                SELECT DISTINCT component FROM identity_nodes WHERE k IN (
                    SELECT {key_a} FROM identity_overrides o WHERE {this}
                    UNION SELECT {key_b} FROM identity_overrides o WHERE {this} AND b_type IS NOT NULL)""",
                "_idg_seedc",
            ),
            SqlStep(
                """CREATE OR REPLACE TEMP TABLE _idg_bnodes AS
                SELECT k, type, value, first_seq FROM identity_nodes WHERE FALSE""",
                "_idg_bnodes",
            ),
            SqlStep(
                """CREATE OR REPLACE TEMP TABLE _idg_keys AS
                SELECT k, type, value, 0 AS priority FROM identity_nodes WHERE FALSE""",
                "_idg_keys",
            ),
            SqlStep(
                """CREATE OR REPLACE TEMP TABLE _idg_be AS
                SELECT a, b, a_type, a_value, b_type, b_value, seq, message_id, kind,
                       seq AS last_seq, seq AS events, cut, reason
                FROM identity_edges WHERE FALSE""",
                "_idg_be",
            ),
            SqlStep(
                f"""UPDATE identity_edges SET cut = TRUE, linking = FALSE, shared = FALSE,
                    reason = (SELECT 'split: ' || coalesce(o.note, o.action) || ' (override ' || o.id || ')'
                              FROM identity_overrides o WHERE {this})
                WHERE {cut_by_override("identity_edges", this)}""",
                "identity_edges (cut)",
            ),
            *component_steps(hi, self.limits),
            *_cleanup(),
        ]


def _cleanup() -> list[SqlStep]:
    # One statement string: 33 separate round trips cost several milliseconds of a live batch.
    return [SqlStep("; ".join(f"DROP TABLE IF EXISTS {t}" for t in _TEMP_TABLES), "cleanup")]
