"""Command-line entry points of the analytics: `tailor attribution FILE` and `tailor report`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import duckdb
from rich.console import Console

from tailor.analytics.exceptions import InputProblem


def _problems(problems: list[InputProblem], err: Console, what: str) -> None:
    if not problems:
        return
    err.print(f"[yellow]{len(problems)} problem(s) in {what}; those rows were left out:[/yellow]")
    for p in problems[:200]:
        err.print(f"  {p}", markup=False, highlight=False)
    if len(problems) > 200:
        err.print(f"  ... and {len(problems) - 200} more")


@click.command("attribution")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help='Print {model: {channel: {"conversions", "value"}}}.')
@click.option("--delimiter", default=">", show_default=True, help="Separator of the channels in a path.")
@click.option("--csv-delimiter", default=",", show_default=True, help="Separator of the CSV fields.")
@click.option("--path-column", default="path", show_default=True)
@click.option("--conversions-column", default="conversions", show_default=True)
@click.option("--value-column", default="value", show_default=True)
@click.option("--nulls-column", default="nulls", show_default=True, help="Journeys that did not convert.")
@click.option("--half-life", default=1.0, show_default=True, help="Time decay: half-life in touches.")
@click.option("--order", default=1, show_default=True, help="Order of the Markov chain.")
def attribution(
    file: Path,
    as_json: bool,
    delimiter: str,
    csv_delimiter: str,
    path_column: str,
    conversions_column: str,
    value_column: str,
    nulls_column: str,
    half_life: float,
    order: int,
) -> None:
    """Credit per channel under every attribution model, from a CSV of paths."""
    from tailor.analytics.attribution import as_json as to_json
    from tailor.analytics.attribution import attribute
    from tailor.analytics.pathfile import PathFileOptions, load_path_file
    from tailor.analytics.terminal import attribution_tables

    err = Console(stderr=True)
    options = PathFileOptions(
        path_column, conversions_column, value_column, nulls_column, delimiter, csv_delimiter
    )
    cur = duckdb.connect()
    try:
        tables, read = load_path_file(cur, file, options)
        _problems(read.problems, err, str(file))
        result = attribute(tables, half_life=half_life, markov_order=order)
    finally:
        cur.close()
    if as_json:
        click.echo(json.dumps(to_json(result)))
        return
    out = Console()
    out.print(
        f"{read.used:,} of {read.rows:,} paths used: {result.conversions:,.2f} conversions worth "
        f"{result.value:,.2f}, {result.nulls:,.0f} journeys without conversion"
    )
    for table in attribution_tables(result):
        out.print(table)


@click.command("report")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
)
def report(data_dir: Path, output: Path) -> None:
    """Write a self-contained HTML report (charts included) of the journeys in a data directory."""
    from tailor.analytics.report import write_report

    err = Console(stderr=True)
    with err.status("computing the analytics"):
        write_report(data_dir, output)
    err.print(f"wrote {output}")
