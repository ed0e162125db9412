"""The live store's event log and definitions as files a batch rebuild reads, on any engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tailor.batch.definitions import (
    DEFINITIONS_FILE,
    MATCHES_FILE,
    OVERRIDES_FILE,
    BatchDefinitions,
    write_definitions,
)
from tailor.config import load_config
from tailor.datadir import require_data_dir
from tailor.store.database import Database, open_database

EVENTS_FILE = "events.parquet"


@dataclass
class Export:
    """Where an export went and how many rows it holds."""

    events: Path
    definitions: Path
    rows: dict[str, int]


def _has_table(db: Database, name: str) -> bool:
    return bool(db.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = ?", [name]))


def store_definitions(db: Database, data_dir: Path) -> BatchDefinitions:
    """The definitions in force in a store and its settings."""
    config = load_config(data_dir)
    traits, segments = [], []
    if _has_table(db, "definitions"):
        from tailor.profiles.catalog import load_catalog

        cur = db.cursor()
        try:
            catalog = load_catalog(cur)
        finally:
            cur.close()
        traits = [dict(t.body) for t in catalog.traits]
        segments = [dict(s.body) for s in catalog.segments]
    return BatchDefinitions(
        traits=traits,
        segments=segments,
        identity=config.identity,
        profiles=config.profiles,
        analytics=config.analytics,
    )


def export_store(data_dir: Path, out: Path, row_group_rows: int = 1_000_000) -> Export:
    """Writes the event log (Parquet, in seq order), the definitions and the identity side tables.

    The store must not be in use by a running server (DuckDB allows one process).
    """
    data_dir = require_data_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    db = open_database(data_dir)
    rows: dict[str, int] = {}
    try:
        events = out / EVENTS_FILE
        db.execute(
            f"""COPY (SELECT * FROM events ORDER BY seq) TO '{_q(str(events))}'
            (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {int(row_group_rows)})"""
        )
        rows["events"] = int(db.execute("SELECT count(*) FROM events")[0][0])
        for table, file, columns in (
            ("identity_overrides", OVERRIDES_FILE, "id, action, a_type, a_value, b_type, b_value, note"),
            ("identity_matches", MATCHES_FILE, "a, b, seq, veto"),
        ):
            if _has_table(db, table):
                db.execute(
                    f"COPY (SELECT {columns} FROM {table}) TO '{_q(str(out / file))}' (FORMAT parquet)"
                )
                rows[table] = int(db.execute(f"SELECT count(*) FROM {table}")[0][0])
        definitions = out / DEFINITIONS_FILE
        write_definitions(definitions, store_definitions(db, data_dir))
    finally:
        db.close()
    return Export(events, definitions, rows)


def _q(text: str) -> str:
    return text.replace("'", "''")


__all__ = ["EVENTS_FILE", "Export", "export_store"]
