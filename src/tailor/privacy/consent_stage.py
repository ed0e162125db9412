"""The consent stage: every consent statement of the log, and each profile's current consent.

`consent_records` is the full history: one row per statement that changed what was known for the
identifier that carried it (Segment's SDKs repeat the same preferences on every event; only
changes are kept), with its proof (the event's seq and message id), source, time and legal basis.
Each record keeps the key of its event's hub identifier, so it follows that identifier through
merges and splits. `consent_current` holds, per profile, purpose and channel, the latest record
(by event time, then seq) over all of the profile's identifiers; it is recomputed for the profiles
a batch added records to, and for those `profile_changes` names (merges and splits, splits made
by users between batches included). The view `profile_consents` is what other stages join.

Runs after the identity graph, which gives each event its hub.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from tailor.privacy.config import PrivacyConfig
from tailor.privacy.consent import ConsentParser, Statement
from tailor.privacy.exceptions import ConsentPayloadError
from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database, registered, run

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS consent_records (
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    k UBIGINT,
    origin VARCHAR NOT NULL,
    purpose VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    legal_basis VARCHAR NOT NULL,
    detail VARCHAR,
    recorded_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_current (
    profile_id VARCHAR NOT NULL,
    purpose VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    legal_basis VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,
    detail VARCHAR,
    source_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    message_id VARCHAR NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_state (id INTEGER PRIMARY KEY, changes_seen TIMESTAMPTZ);
CREATE VIEW IF NOT EXISTS profile_consents AS
SELECT profile_id, purpose, channel, status, legal_basis, origin, detail, source_id, seq, message_id,
       recorded_at
FROM consent_current;
"""

_CANDIDATES = f"""
SELECT e.seq, e.message_id, e.source_id, e.timestamp, e.received_at, h.k, e.type, e.event,
       e.properties, e.traits, e.context
FROM {BATCH_VIEW} e LEFT JOIN (
    SELECT seq, k FROM identity_event_hubs WHERE seq > ? AND seq <= ?
) h USING (seq)
WHERE e.context LIKE '%"consent"%'
   OR (e.type = 'identify' AND e.traits LIKE '%"consent"%')
   OR (e.type = 'track' AND e.event IN ('Consent Updated', 'Unsubscribed', 'Subscribed'))
ORDER BY e.seq
"""

_STATEMENTS = pa.schema(
    [
        ("seq", pa.int64()),
        ("message_id", pa.string()),
        ("source_id", pa.string()),
        ("k", pa.uint64()),
        ("origin", pa.string()),
        ("purpose", pa.string()),
        ("channel", pa.string()),
        ("status", pa.string()),
        ("legal_basis", pa.string()),
        ("detail", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)

# A statement is kept when it changes what was last known for its identifier, purpose and channel.
_KEEP_CHANGES = SqlStep(
    """INSERT INTO consent_records
    WITH last AS (
        SELECT k, purpose, channel, arg_max(status, (recorded_at, seq)) AS status,
               max((recorded_at, seq)) AS at
        FROM consent_records
        WHERE (k, purpose, channel) IN (SELECT (k, purpose, channel) FROM _cs_new)
        GROUP BY ALL
    ),
    ordered AS (
        SELECT n.*, coalesce(
            lag(n.status) OVER (PARTITION BY n.k, n.purpose, n.channel ORDER BY n.recorded_at, n.seq),
            CASE WHEN l.at < (n.recorded_at, n.seq) THEN l.status END
        ) AS before
        FROM _cs_new n LEFT JOIN last l
          ON l.k IS NOT DISTINCT FROM n.k AND l.purpose = n.purpose AND l.channel = n.channel
    )
    SELECT * EXCLUDE (before) FROM ordered
    WHERE before IS DISTINCT FROM status OR k IS NULL
       OR origin IN ('api', 'import', 'event', 'unsubscribe')""",
    "consent_records",
)

_CHANGED_SINCE = """SELECT EXISTS (
    SELECT 1 FROM profile_changes
    WHERE changed_at > (SELECT coalesce(max(changes_seen), '-infinity') FROM consent_state))"""

_RECOMPUTE = [
    SqlStep(
        """CREATE OR REPLACE TEMP TABLE _cs_dirty AS
        SELECT DISTINCT n.profile_id FROM identity_nodes n WHERE n.k IN (SELECT k FROM _cs_new)
        UNION SELECT profile_id FROM profile_changes
            WHERE changed_at >= (SELECT coalesce(max(changes_seen), '-infinity') FROM consent_state)
        UNION SELECT other_id FROM profile_changes
            WHERE changed_at >= (SELECT coalesce(max(changes_seen), '-infinity') FROM consent_state)""",
        "_cs_dirty",
    ),
    SqlStep(
        "DELETE FROM consent_current WHERE profile_id IN (SELECT profile_id FROM _cs_dirty)",
        "consent_current",
    ),
    SqlStep(
        """INSERT INTO consent_current
        SELECT n.profile_id, r.purpose, r.channel, r.status, r.legal_basis, r.origin, r.detail, r.source_id,
               r.seq, r.message_id, r.recorded_at
        FROM consent_records r JOIN identity_nodes n ON n.k = r.k
        WHERE n.profile_id IN (SELECT profile_id FROM _cs_dirty)
        QUALIFY row_number() OVER (
            PARTITION BY n.profile_id, r.purpose, r.channel ORDER BY r.recorded_at DESC, r.seq DESC) = 1""",
        "consent_current (dirty profiles)",
    ),
    SqlStep(
        """INSERT OR REPLACE INTO consent_state
        SELECT 1, coalesce((SELECT max(changed_at) FROM profile_changes),
                           (SELECT max(changes_seen) FROM consent_state))""",
        "consent_state",
    ),
    SqlStep("DROP TABLE IF EXISTS _cs_new", "cleanup"),
    SqlStep("DROP TABLE IF EXISTS _cs_dirty", "cleanup"),
]

_ORIGIN_BY_SOURCE = {"api:consent": "api", "import:consent": "import"}


class ConsentStage:
    """The processing stage that records consent statements and keeps each profile's current consent."""

    name = "consent"

    def __init__(self, config: PrivacyConfig | None = None) -> None:
        self.parser = ConsentParser(config or PrivacyConfig())
        self.malformed = 0
        """Stored events whose consent payload could not be read (collected before validation)."""
        self._unchanged = False

    def setup(self, db: Database) -> None:
        """Creates the consent tables and the `profile_consents` view."""
        db.ddl(DDL)

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties the history and the current consent; a rebuild reads them again from the log."""
        for table in ("consent_records", "consent_current", "consent_state"):
            cur.execute(f"DELETE FROM {table}")

    def apply(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        """Reads the statements of the batch's consent-carrying events into `_cs_new`."""
        rows = run(cur, _CANDIDATES, [batch.lo, batch.hi]).fetchall()
        table = statements_table(self.parser, rows, self)
        # No statement and no merge or split since the last look: the batch changes no one's
        # consent, and its steps (seven statements, 20-50 ms of a busy server's batch) are skipped.
        # Changes are logged only inside the processor's transactions, each at its own now().
        self._unchanged = table.num_rows == 0 and not run(cur, _CHANGED_SINCE).fetchall()[0][0]
        if self._unchanged:
            return
        with registered(cur, _cs_arrow=table):
            run(cur, "CREATE OR REPLACE TEMP TABLE _cs_new AS SELECT * FROM _cs_arrow")

    def steps(self, batch: Batch) -> list[SqlStep]:
        """Keeps the changes, then recomputes the current consent of the profiles they concern."""
        unchanged, self._unchanged = self._unchanged, False
        return [] if unchanged else [_KEEP_CHANGES, *_RECOMPUTE]


def statements_table(
    parser: ConsentParser, rows: list[tuple[Any, ...]], stage: ConsentStage | None
) -> pa.Table:
    """The statements of candidate events as an Arrow table in `consent_records` column order."""
    columns: dict[str, list[Any]] = {name: [] for name in _STATEMENTS.names}
    for seq, message_id, source_id, at, received, k, type, event, properties, traits, context in rows:
        try:
            found: list[Statement] = parser.message(type, event, properties, traits, context)
        except (ConsentPayloadError, ValueError) as e:
            # Validated at collection; an older or imported event may still be malformed.
            if stage is not None:
                stage.malformed += 1
            log.warning("event seq %d: unreadable consent payload: %s", seq, type_of(e))
            continue
        origin_override = _ORIGIN_BY_SOURCE.get(source_id)
        for s in found:
            row = (
                seq,
                message_id,
                source_id,
                k,
                origin_override or s.origin,
                s.purpose,
                s.channel,
                s.status,
                s.legal_basis,
                s.detail,
                at,
                received,
            )
            for name, value in zip(_STATEMENTS.names, row, strict=True):
                columns[name].append(value)
    return pa.table(columns, schema=_STATEMENTS)


def type_of(e: Exception) -> str:
    """An error's paths only: the message may quote personal data, which logs must not hold."""
    if isinstance(e, ConsentPayloadError):
        return ", ".join(err.path for err in e.errors)
    return type(e).__name__


def latest_change(db: Database) -> datetime | None:
    """When the consent stage last looked at `profile_changes` (for tests and stats)."""
    rows = db.execute("SELECT max(changes_seen) FROM consent_state")
    return rows[0][0] if rows else None
