"""`tailor rebuild --engine ... --events ...` and `tailor export-events`: the batch pipeline's commands."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tailor.exceptions import ConfigError

console = Console(stderr=True)


@click.command("export-events")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory to write to."
)
def export_events(data_dir: Path, out: Path) -> None:
    """Export the event log (Parquet) and the definitions, for `tailor rebuild --events` on any engine."""
    from tailor.batch.export import export_store

    with console.status("exporting the event log"):
        done = export_store(data_dir, out)
    for name, n in done.rows.items():
        console.print(f"{name}: {n:,} rows")
    click.echo(str(done.events))


def batch_rebuild(
    engine_name: str,
    events: str,
    out: str,
    data_dir: Path | None,
    definitions_path: Path | None,
    now: str | None,
    master: str | None,
    spark_conf: dict[str, str] | None = None,
) -> None:
    """Runs the batch rebuild and prints what it wrote."""
    from tailor.batch.definitions import (
        DEFINITIONS_FILE,
        MATCHES_FILE,
        MATCHES_SCHEMA,
        OVERRIDES_FILE,
        OVERRIDES_SCHEMA,
        read_definitions,
        read_side_table,
    )
    from tailor.batch.pipeline import rebuild
    from tailor.engines import make_engine

    beside = Path(events).parent if "://" not in events else None
    if data_dir is not None and definitions_path is None:
        from tailor.batch.export import store_definitions
        from tailor.store.database import open_database

        db = open_database(data_dir)
        try:
            definitions = store_definitions(db, data_dir)
        finally:
            db.close()
    else:
        path = definitions_path or (beside / DEFINITIONS_FILE if beside is not None else None)
        if path is None:
            raise ConfigError("give --definitions FILE or --data DIR for events in object storage")
        definitions = read_definitions(path)
    overrides = read_side_table(beside / OVERRIDES_FILE, OVERRIDES_SCHEMA) if beside else None
    matches = read_side_table(beside / MATCHES_FILE, MATCHES_SCHEMA) if beside else None
    at = datetime.fromisoformat(now) if now else datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    with (
        make_engine(
            engine_name,
            master=master,
            spill=Path(out) / ".spill" if "://" not in out else None,
            conf=spark_conf,
        ) as engine,
        console.status(f"rebuilding on {engine_name}") as status,
    ):
        result = rebuild(
            engine,
            events,
            out,
            definitions,
            at,
            overrides,
            matches,
            lambda s: status.update(f"{engine_name}: {s}"),
        )
    table = Table("output", "rows", title=f"rebuilt on {engine_name} in {result.seconds['total']:.1f} s")
    for name, n in result.rows.items():
        table.add_row(f"{out}/{name}", f"{n:,}")
    console.print(table)
    sys.stdout.flush()
