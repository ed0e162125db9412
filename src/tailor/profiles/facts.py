"""`profile_facts`: one narrow row per event of a known person, holding just what definitions read.

Each row keeps the event's seq, its hub (the identifier that ties it to a profile: the person is
`identity_nodes.profile_id` of that key, so merges and splits need no rewrite here), its time,
type, name, source, channel and device, and one typed column per field some definition reads
(`tailor.profiles.fields`). A definition that reads a field no definition read before adds a
column, filled from the event log once.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from tailor.identity.service import CONTEXT_SIGNALS, device_kind, signals_reader, touch_channel
from tailor.process.stage import BATCH_VIEW, SqlStep
from tailor.profiles.fields import BUILTIN_FIELDS, FieldPath, parse_field
from tailor.store.database import Database, run

_BASE = """
CREATE TABLE IF NOT EXISTS profile_facts (
    seq BIGINT NOT NULL,
    k UBIGINT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    type VARCHAR NOT NULL,
    event VARCHAR,
    name VARCHAR,
    source_id VARCHAR NOT NULL,
    channel VARCHAR,
    device VARCHAR
);
CREATE TABLE IF NOT EXISTS profile_fact_fields (
    path VARCHAR PRIMARY KEY,
    col VARCHAR NOT NULL
);
"""

BUILTIN_SQL = {name: parse_field(name).extract_sql() for name in BUILTIN_FIELDS if name not in ("timestamp",)}
"""The built-in columns, read from a row of `events` in SQL every engine runs."""

_BUILTIN_FROM_SIGNALS = BUILTIN_SQL | {
    "channel": touch_channel(signals_reader("_signals")),
    "device": device_kind(signals_reader("_signals")),
}
"""The same, read from a row of the batch beside its `_signals` (`CONTEXT_SIGNALS`, DuckDB's)."""


def create_facts(db: Database) -> None:
    """Creates the facts table (and its field register) if missing."""
    db.ddl(_BASE)


def stored_fields(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The fields that have a column now: {column: path}."""
    return {col: path for path, col in run(cur, "SELECT path, col FROM profile_fact_fields").fetchall()}


def add_fields(db: Database, cur: duckdb.DuckDBPyConnection, fields: Iterable[FieldPath]) -> list[FieldPath]:
    """Adds a column for every field that has none and fills it from the event log; returns those added.

    The columns are added with DDL on the main connection (see `Database.ddl`); filling them and
    registering them is one transaction on `cur`.
    """
    have = stored_fields(cur)
    new = sorted(
        {f.column: f for f in fields if not f.builtin and f.column not in have}.values(), key=lambda f: f.text
    )
    if not new:
        return []
    for f in new:
        db.ddl(f"ALTER TABLE profile_facts ADD COLUMN IF NOT EXISTS {f.column} {f.sql_type()}")
    sets = ", ".join(f"{f.column} = {f.extract_sql()}" for f in new)
    cur.execute("BEGIN")
    try:
        run(
            cur,
            f"""UPDATE profile_facts SET {sets}
            FROM (SELECT seq AS event_seq, properties, context, traits FROM events) e
            WHERE e.event_seq = profile_facts.seq""",
        )
        for f in new:
            run(cur, "INSERT OR REPLACE INTO profile_fact_fields VALUES (?, ?)", [f.text, f.column])
        cur.execute("COMMIT")
    except Exception:
        cur.execute("ROLLBACK")
        raise
    return new


def fact_steps(columns: dict[str, str]) -> list[SqlStep]:
    """Steps that add the batch's events of known people to `profile_facts` (`_pf_bf`, the batch's facts).

    `columns` maps each extra column to its field path. Each JSON column is parsed once per event
    for all the single-valued fields read from it (a list of paths); a list-valued field (`[*]`)
    reads its own.
    """
    extra: dict[str, str] = {}
    by_root: dict[str, list[tuple[str, str]]] = {}
    for col, path in sorted(columns.items()):
        f = parse_field(path)
        if f.is_list:
            extra[col] = f.extract_sql()
        else:
            by_root.setdefault(f.root, []).append((col, f.json_path()))
    reads = [f"{CONTEXT_SIGNALS} AS _signals"]
    for root, fields in sorted(by_root.items()):
        paths = ", ".join(f"'{json_path}'" for _, json_path in fields)
        reads.append(f"json_extract_string({root}, [{paths}]) AS _fields_{root}")
        extra.update((col, f"_fields_{root}[{i}]") for i, (col, _) in enumerate(fields, 1))
    selected = ", ".join(
        f"{sql} AS {name}" for name, sql in [*_BUILTIN_FROM_SIGNALS.items(), *sorted(extra.items())]
    )
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_bf AS
            SELECT e.seq, h.k, e.timestamp AS ts, {selected}
            FROM (SELECT *, {", ".join(reads)} FROM {BATCH_VIEW}) e
            JOIN identity_event_hubs h ON h.seq = e.seq""",
            "_pf_bf",
        ),
        SqlStep("INSERT INTO profile_facts BY NAME SELECT * FROM _pf_bf", "profile_facts"),
    ]
