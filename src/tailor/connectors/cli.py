"""`tailor import` and `tailor connectors`: file imports with a progress bar, connector runs and status."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.syntax import Syntax
from rich.table import Table

from tailor.connectors.exceptions import ConnectorError
from tailor.connectors.files import open_source_file
from tailor.connectors.importer import ImportCounts
from tailor.connectors.infer import infer_mapping
from tailor.connectors.mapping import Mapping, dump_mapping, load_mapping

console = Console(stderr=True)
_DATA = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in text.lower()).strip("_") or "file"


def choose_mapping(
    path: Path, fmt: str | None, mapping_path: Path | None, infer: bool, yes: bool, record: str | None
) -> Mapping:
    """The mapping of a file import: read from TOML, or inferred, shown and confirmed."""
    if mapping_path is not None:
        return load_mapping(mapping_path)
    if not infer:
        raise ConnectorError(
            f"{path}: say how columns map to events with --mapping FILE.toml, or use --infer"
        )
    source = open_source_file(path, fmt)
    sample = next(iter(source.chunks(rows=1000)))
    mapping = infer_mapping(source.columns, sample, record)
    console.print(f"[bold]Inferred mapping[/bold] for {path.name} (from its first {len(sample)} rows):")
    console.print(Syntax(dump_mapping(mapping), "toml"))
    if not yes:
        if not sys.stdin.isatty():
            raise ConnectorError("the inferred mapping needs confirming: run with --yes, or save it as TOML")
        click.confirm("Import with this mapping?", abort=True, err=True)
    return mapping


def print_counts(counts: ImportCounts, what: str) -> None:
    """One import's counts, with the first reasons of failed rows."""
    table = Table("rows read", "written", "unchanged", "quarantined", title=what)
    table.add_row(
        *(f"{n:,}" for n in (counts.rows_read, counts.rows_written, counts.rows_skipped, counts.rows_failed))
    )
    console.print(table)
    for reason in counts.errors[:20]:
        console.print(f"  [red]quarantined[/red] {reason}")
    if counts.rows_failed > 20:
        console.print(f"  ... {counts.rows_failed - 20:,} more in the quarantine (GET /api/v1/quarantine)")


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_DATA
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file mapping columns to identifiers, traits and event fields.",
)
@click.option("--infer", is_flag=True, help="Infer the mapping from the file and show it for confirmation.")
@click.option("--yes", is_flag=True, help="Accept the inferred mapping without asking.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default=None,
    help="File format (default: from the extension).",
)
@click.option(
    "--source", "source_name", default=None, help="Source name (default: the record kind or file name)."
)
@click.option(
    "--save-mapping",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the mapping used to this TOML file.",
)
def import_command(
    file: Path,
    data_dir: Path,
    mapping_path: Path | None,
    infer: bool,
    yes: bool,
    fmt: str | None,
    source_name: str | None,
    save_mapping: Path | None,
) -> None:
    """Import a CSV, JSON Lines or Parquet file as events (the server must be stopped)."""
    from tailor.connectors.file_import import import_file
    from tailor.runtime import Runtime

    stem = _safe_name(file.stem)
    mapping = choose_mapping(file, fmt, mapping_path, infer, yes, record=stem)
    if save_mapping is not None:
        save_mapping.write_text(dump_mapping(mapping), "utf-8")
    name = source_name or mapping.record or stem
    runtime = Runtime(data_dir)
    try:
        runtime.writer.start()
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rows]:>12,} rows"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"importing {file.name}", total=None, rows=0)

            def advance(position: int, rows: int, total: int) -> None:
                progress.update(task, completed=position, total=total, rows=rows)

            counts = import_file(runtime.db, runtime.writer, file, mapping, name, fmt, advance)
        print_counts(counts, f"{file.name} -> source import:{name}")
        with console.status("resolving identities of the imported rows"):
            runtime.processor.run_once()
    finally:
        runtime.close()


@click.group()
def connectors() -> None:
    """Declared connectors: status and history (while the server runs), runs on demand."""


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@connectors.command("status")
@_DATA
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(data_dir: Path, as_json: bool) -> None:
    """Last run, lag, counts and errors of every connector (reads only the connectors' state file)."""
    import time

    import msgspec

    from tailor.connectors.api import connector_status
    from tailor.connectors.declarations import load_declarations
    from tailor.connectors.state import ConnectorState
    from tailor.datadir import require_data_dir

    data = require_data_dir(data_dir)
    declared, broken = load_declarations(data)
    state = ConnectorState.of(data)
    try:
        rows = connector_status(state, declared, broken)
    finally:
        state.close()
    if as_json:
        click.echo(msgspec.json.encode(rows).decode())
        return
    table = Table(
        "connector",
        "type",
        "every",
        "last run",
        "status",
        "lag",
        "read",
        "written",
        "unchanged",
        "failed",
        "error",
        title="connectors",
        show_lines=False,
    )
    now = time.time()
    for row in rows:
        run = row.get("last_run")
        if run is None:
            table.add_row(
                row["name"],
                row["type"] or "[red]invalid[/red]",
                _ago(row.get("interval_s")),
                "never",
                "-",
                "-",
                "",
                "",
                "",
                "",
                row.get("error") or "",
            )
            continue
        colour = {"ok": "green", "partial": "yellow", "failed": "red"}.get(run["status"], "blue")
        table.add_row(
            row["name"],
            row["type"],
            _ago(row.get("interval_s")),
            _ago(now - run["started_at"]) + " ago",
            f"[{colour}]{run['status']}[/{colour}]",
            _ago(row.get("lag_s")),
            *(f"{run[k]:,}" for k in ("rows_read", "rows_written", "rows_skipped", "rows_failed")),
            (run["error"] or "")[:80],
        )
    console = Console()
    console.print(table)
    for row in rows:
        if "sync" in row:  # a CRM sync's last cycle, both ways
            c = row["sync"]
            console.print(
                f"{row['name']}: {c['contacts_read']:,} contacts read, {c['written_to_crm']:,} written to"
                f" the CRM, {c['written_to_tailor']:,} to Tailor, {c['conflicts']:,} conflicts,"
                f" {c['deferred']:,} deferred (changed meanwhile), {c['failed']:,} failed"
            )


@connectors.command("history")
@_DATA
@click.argument("name")
@click.option("--limit", type=int, default=20, show_default=True)
def history_command(data_dir: Path, name: str, limit: int) -> None:
    """The run history of one connector, newest first."""
    from datetime import datetime

    from tailor.connectors.state import ConnectorState
    from tailor.datadir import require_data_dir

    state = ConnectorState.of(require_data_dir(data_dir))
    try:
        runs = state.runs(name, limit)
    finally:
        state.close()
    table = Table("run", "started", "seconds", "status", "read", "written", "unchanged", "failed", "error")
    for r in runs:
        took = "-" if r.finished_at is None else f"{r.finished_at - r.started_at:.1f}"
        table.add_row(
            str(r.id),
            datetime.fromtimestamp(r.started_at).isoformat(timespec="seconds"),
            took,
            r.status,
            *(f"{n:,}" for n in (r.rows_read, r.rows_written, r.rows_skipped, r.rows_failed)),
            (r.error or "")[:80],
        )
    Console().print(table)


@connectors.command("run")
@_DATA
@click.argument("name")
def run_command(data_dir: Path, name: str) -> None:
    """Run one connector now (the server must be stopped; while it runs, POST /api/v1/connectors/NAME/run)."""
    from tailor.runtime import Runtime

    runtime = Runtime(data_dir)
    try:
        runtime.writer.start()
        with console.status(f"running {name}"):
            run = runtime.connectors.run(name)
    finally:
        runtime.close()
    print_counts(
        ImportCounts(run.rows_read, run.rows_written, run.rows_skipped, run.rows_failed),
        f"{name}: {run.status}",
    )
    if run.error:
        raise click.ClickException(run.error)


@connectors.command("replay-dead")
@_DATA
@click.argument("name")
def replay_dead_command(data_dir: Path, name: str) -> None:
    """Queue a destination's dead-lettered batches again (they are sent at its next run)."""
    from tailor.runtime import Runtime

    runtime = Runtime(data_dir)
    try:
        n = runtime.connectors.outbox.requeue_dead(name)
    finally:
        runtime.close()
    console.print(f"{n} dead-lettered batches of {name} queued again")
