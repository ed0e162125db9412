"""`tailor traits` and `tailor segments`: definitions from JSON or YAML files, previews, members."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import msgspec
from rich.console import Console
from rich.table import Table

from tailor.profiles.catalog import SEGMENT, TRAIT
from tailor.profiles.reading import load_documents

console = Console()
_data = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)


@contextmanager
def _runtime(data_dir: Path) -> Iterator[object]:
    from tailor.runtime import Runtime

    with Runtime(data_dir) as runtime:
        yield runtime


def _print(value: object) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, default=str))


def _group(kind: str, name: str, help_text: str) -> click.Group:
    what = kind.replace("_", " ")

    @click.group(name=name, help=help_text)
    def group() -> None:
        pass

    @group.command("list")
    @_data
    def list_(data_dir: Path) -> None:
        """List the saved definitions."""
        with _runtime(data_dir) as rt:
            found = rt.definitions.definitions(kind)  # type: ignore[attr-defined]
        table = Table(show_edge=False)
        for column in (
            "name",
            "version",
            "updated",
            *(("members",) if kind == SEGMENT else ()),
            "description",
        ):
            table.add_column(column)
        for d in found:
            members = (f"{d.members:,}",) if kind == SEGMENT else ()
            table.add_row(
                d.name,
                str(d.version),
                d.updated_at.strftime("%Y-%m-%d %H:%M"),
                *members,
                str(d.definition.get("description", "")),
            )
        console.print(table)

    @group.command()
    @_data
    @click.argument("name")
    def show(data_dir: Path, name: str) -> None:
        """Print one definition as JSON."""
        with _runtime(data_dir) as rt:
            _print(rt.definitions.get(kind, name))  # type: ignore[attr-defined]

    @group.command()
    @_data
    @click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
    def put(data_dir: Path, file: Path) -> None:
        """Create or replace the definitions in FILE (JSON or YAML: one or a list) and evaluate them."""
        bodies = load_documents(file)
        with _runtime(data_dir) as rt:
            saved = rt.definitions.put_many(bodies)  # type: ignore[attr-defined]
        for d in saved:
            extra = f", {d.members:,} members" if d.members is not None else ""
            console.print(
                f"saved {d.kind.replace('_', ' ')} [bold]{d.name}[/bold] (version {d.version}{extra})"
            )

    @group.command()
    @_data
    @click.argument("name")
    def delete(data_dir: Path, name: str) -> None:
        """Delete a definition (refused while others use it)."""
        with _runtime(data_dir) as rt:
            rt.definitions.delete(kind, name)  # type: ignore[attr-defined]
        console.print(f"deleted {what} {name}")

    @group.command()
    @_data
    @click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
    def preview(data_dir: Path, file: Path) -> None:
        """Evaluate the definition in FILE for everyone without saving it."""
        (body,) = load_documents(file)[:1]
        with _runtime(data_dir) as rt:
            service = rt.definitions  # type: ignore[attr-defined]
            result = service.preview_trait(body) if kind == TRAIT else service.preview_segment(body)
        _print(result)

    return group


traits = _group(
    TRAIT, "traits", "Computed traits: aggregations over each person's events, expressions, scores."
)
segments = _group(SEGMENT, "segments", "Segments: groups of people kept up to date as they act.")


@segments.command()
@_data
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
def members(data_dir: Path, name: str, fmt: str, output: Path | None) -> None:
    """Export the members of segment NAME with their email, phone and user id."""
    from tailor.segments.members import export_members

    with _runtime(data_dir) as rt:
        data = export_members(rt.db, name, fmt)  # type: ignore[attr-defined]
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        console.print(f"wrote {output}")
