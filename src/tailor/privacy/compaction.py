"""Physical removal: making deleted rows' bytes leave every file of the data directory.

DuckDB does not remove deleted rows from a row group: they stay in its blocks (only marked) until
the row group is written again, and a block that a checkpoint frees keeps its old bytes until
DuckDB reuses it. Measured on an uncompressed store (so that the bytes can be searched for), with
a person's events in every row group:

- `DELETE` + `CHECKPOINT`: every deleted email still in the file;
- overwriting the deleted rows' text columns first (an `UPDATE` makes the checkpoint write those
  columns again) and overwriting every free block: still found, in blocks shared by several
  small segments (DuckDB packs column tails of several tables into one block, and a rewritten
  segment leaves its old bytes as a hole in a block that stays in use);
- every table written again, then every free block overwritten: gone. This is what `compact`
  does: each table is copied into a new table made from its own `CREATE` statement (keys and
  defaults kept), the old one dropped and the copy renamed; a checkpoint frees every old block;
  a filler table of random numbers as large as the free space is written (DuckDB fills free blocks
  first) and dropped, and the WAL is emptied by the last checkpoint; staging-log segments are
  sealed and, once loaded, deleted;
- and the metadata: a segment's statistics (its smallest and largest value, the first 12 bytes of
  each) live in metadata sub-blocks of 4 KB inside shared blocks, which a rewrite frees without
  overwriting. Found by a phone number that was the smallest value of a segment of traits. So
  filler tables of many columns are written until every sub-block that was free in the old
  metadata blocks has held filler metadata (new metadata blocks start empty), then dropped.
  DuckDB writes into a metadata block's free sub-blocks only while no free block of the file has
  a lower id (it keeps metadata near the start of the file), so this runs while the random filler
  holds every free block; at 10M events, without that, 46-60 sub-blocks with the person's
  statistics were never reused. The free blocks are overwritten once more at the end: blocks
  freed meanwhile (a metadata block left empty) hold old bytes too.

`COPY FROM DATABASE` into a new file does the same work, but the running server would have to
close and reopen every connection; the steps above run on the live store. Either way the cost
grows with the size of the store, not of the person: a person's events are spread over the
whole log (see bench/privacy.py).
"""

from __future__ import annotations

import contextlib
import logging
import time

import msgspec

from tailor.collect.loader import EventLoader
from tailor.store.database import Database

log = logging.getLogger(__name__)

FILLER = "_privacy_filler"
METADATA_FILLER = "_privacy_metadata_filler"
FREE_METADATA = "SELECT block_id, free_list FROM pragma_metadata_info()"


class Compaction(msgspec.Struct):
    """What one compaction did."""

    seconds: float
    tables_rewritten: int
    free_blocks_overwritten: int
    staging_segments_deleted: int
    file_bytes: int


def rewrite_tables(db: Database) -> int:
    """Writes every table of the main database again, keeping its definition; returns how many."""
    tables = db.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND NOT temporary ORDER BY table_name"
    )
    cur = db.cursor()
    try:
        for name, sql in tables:
            if name == FILLER or name.startswith(METADATA_FILLER):
                continue
            fresh = f"{name}__compact"
            quoted = f'"{name}"'
            create = str(sql).replace(f"CREATE TABLE {name}(", f"CREATE TABLE {fresh}(", 1)
            create = create.replace(f"CREATE TABLE {quoted}(", f"CREATE TABLE {fresh}(", 1)
            if fresh not in create:
                raise RuntimeError(f"cannot rewrite table {name}: unexpected definition")
            # Dropping the table drops its indexes: they are made again on the copy.
            indexes = [
                str(ddl)
                for (ddl,) in cur.execute(
                    "SELECT sql FROM duckdb_indexes() WHERE database_name = current_database()"
                    " AND schema_name = 'main' AND table_name = ? AND sql IS NOT NULL",
                    [name],
                ).fetchall()
            ]
            cur.execute("BEGIN")
            try:
                cur.execute(f"DROP TABLE IF EXISTS {fresh}")
                cur.execute(create)
                cur.execute(f"INSERT INTO {fresh} SELECT * FROM {quoted}")
                cur.execute(f"DROP TABLE {quoted}")
                cur.execute(f"ALTER TABLE {fresh} RENAME TO {quoted}")
                for ddl in indexes:
                    cur.execute(ddl)
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
    finally:
        cur.close()
    return len(tables)


def fill_free_blocks(db: Database) -> int:
    """Writes random bytes into every free block of the file and keeps them; returns how many were free."""
    ((free, block_size),) = db.execute("SELECT free_blocks, block_size FROM pragma_database_size()")
    if free:
        # Random doubles do not compress: about 8 bytes a value, plus a margin for metadata.
        values = int(free) * int(block_size) // 8 + 65_536
        db.execute(f"CREATE OR REPLACE TABLE {FILLER} AS SELECT random() AS r FROM range({values})")
        db.execute("FORCE CHECKPOINT")
    return int(free)


def release_filler(db: Database) -> None:
    """Frees the blocks `fill_free_blocks` took (they hold random bytes)."""
    db.execute(f"DROP TABLE IF EXISTS {FILLER}")
    db.execute("FORCE CHECKPOINT")


def overwrite_free_blocks(db: Database) -> int:
    """Fills every free block of the file with random bytes, then frees them again; returns how many."""
    free = fill_free_blocks(db)
    if free:
        release_filler(db)
    return free


def _free_metadata(db: Database) -> dict[int, set[int]]:
    """Each metadata block's free sub-blocks."""
    return {int(b): {int(i) for i in free} for b, free in db.execute(FREE_METADATA)}


def overwrite_free_metadata(db: Database, limit: int = 400) -> int:
    """Writes filler metadata into every metadata sub-block that is free now; returns how many were.

    A sub-block counts as overwritten once it has been in use after this started (new metadata was
    written into it); one whose whole block is freed is left to `overwrite_free_blocks`. Free
    sub-blocks come back after every checkpoint (the previous metadata is freed), so the count of
    free sub-blocks is not what is watched: the set of those free at the start is.
    """
    pending = {(block, sub) for block, subs in _free_metadata(db).items() for sub in subs}
    first = len(pending)
    made = 0
    # Each filler table writes the metadata of 192 column segments (about ten sub-blocks).
    columns = ", ".join(f"'filler' AS c{j}" for j in range(192))
    while pending and made < limit:
        db.execute(f"CREATE TABLE {METADATA_FILLER}_{made} AS SELECT {columns} FROM range(16)")
        db.execute("FORCE CHECKPOINT")
        made += 1
        now = _free_metadata(db)
        pending = {(block, sub) for block, sub in pending if block in now and sub in now[block]}
    if pending:
        log.warning("compaction: %d metadata sub-blocks could not be overwritten", len(pending))
    for i in range(made):
        db.execute(f"DROP TABLE {METADATA_FILLER}_{i}")
    if made:
        db.execute("FORCE CHECKPOINT")
    return first


def _rewrite_and_overwrite(db: Database) -> tuple[int, int]:
    tables = rewrite_tables(db)
    db.execute("FORCE CHECKPOINT")
    # DuckDB puts new metadata into a metadata block's free sub-blocks only while no free block of
    # the file has a lower id; with every free block taken by the filler, the metadata filler lands
    # in the old blocks' free sub-blocks (measured at 10M events: 46-60 of them left otherwise).
    free = fill_free_blocks(db)
    overwrite_free_metadata(db)
    release_filler(db)
    # Blocks freed meanwhile (metadata blocks left empty, the fillers' own) are overwritten too.
    free += overwrite_free_blocks(db)
    return tables, free


def compact(db: Database, loader: EventLoader | None) -> Compaction:
    """Rewrites every table, overwrites every free block, and deletes loaded staging segments.

    The caller holds off processing; loading is held off here.
    """
    started = time.perf_counter()
    if loader is not None:
        loader.flush()
        loader.staging.seal()
    with loader.exclusive() if loader is not None else contextlib.nullcontext():
        tables, free = _rewrite_and_overwrite(db)
    deleted = loader.staging.release(loader.loaded_head) if loader is not None else 0
    size = db.path.stat().st_size if db.path is not None else 0
    result = Compaction(time.perf_counter() - started, tables, free, deleted, size)
    log.info(
        "compaction: %d tables rewritten, %d free blocks overwritten in %.2f s", tables, free, result.seconds
    )
    return result
