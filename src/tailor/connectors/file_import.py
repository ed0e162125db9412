"""Importing one CSV, JSON Lines or Parquet file through a mapping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tailor.connectors.events import EventShape
from tailor.connectors.files import open_source_file
from tailor.connectors.importer import EventImport, ImportCounts
from tailor.connectors.mapping import Mapping

if TYPE_CHECKING:
    from tailor.collect.writer import EventWriter
    from tailor.store.database import Database

FileProgress = Callable[[int, int, int], None]
"""Called after each chunk with (position, rows read, size), position and size in bytes or rows."""

IMPORT_PREFIX = "import"


def import_file(
    db: Database,
    writer: EventWriter,
    path: Path,
    mapping: Mapping,
    name: str,
    fmt: str | None = None,
    progress: FileProgress | None = None,
) -> ImportCounts:
    """Imports a file's rows as events of source `import:NAME`; bad rows are quarantined with their line.

    A mapped column the file does not have stops the import before anything is stored.
    """
    source = open_source_file(path, fmt)
    if not mapping.text_traits:
        mapping.check_columns(source.columns, str(path))
    shape = EventShape(mapping, f"{IMPORT_PREFIX}:{name}", mapping.record or name)
    run = EventImport(db, writer, shape, str(path), source.unit, endpoint=f"{IMPORT_PREFIX}:{name}")
    size = source.size
    try:
        return run.run(
            source.chunks(), None if progress is None else (lambda pos, rows: progress(pos, rows, size))
        )
    finally:
        run.close()
