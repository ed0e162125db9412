"""The `tailor identity` commands: matching a file of records into people."""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tailor.exceptions import TailorError

if TYPE_CHECKING:
    from tailor.identity.matching import MatchResult, PreparedRecords, RecordFile

_SHOWN_REJECTIONS = 20
# The steps a full pass reports through its progress callback, for the length of the bar.
_STEPS = 9


class InputError(click.ClickException):
    """A file or column the command cannot work with: exit code 2, like other usage errors."""

    exit_code = 2


@click.group("identity")
def identity() -> None:
    """Identity resolution: match records that share no identifier."""


@identity.command("match")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id-column", required=True, help="Column holding each record's unique id.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write id,cluster_id here (default: standard output); rejected rows go to OUTPUT.rejected.csv, "
    "values that could not be used (invalid phone, email, date...) to OUTPUT.unusable.csv.",
)
@click.option(
    "--column",
    "column_options",
    multiple=True,
    metavar="TYPE=NAME",
    help="Use column NAME as TYPE (first_name, last_name, full_name, dob, email, phone, address, "
    "postcode, city); repeatable. Other columns are recognised by their header.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Match probability from which two records are the same person (default 0.8).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Score with this fitted model (JSON from --save-model) instead of fitting one on FILE; "
    "useful for a small file, where there is too little to learn from.",
)
@click.option(
    "--save-model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fitted model's parameters here as JSON.",
)
def match(
    file: Path,
    id_column: str,
    output: Path | None,
    column_options: tuple[str, ...],
    threshold: float | None,
    model_path: Path | None,
    save_model: Path | None,
) -> None:
    """Deduplicate a CSV file of records: writes id,cluster_id; the same cluster_id is one person."""
    from tailor.identity.matching import (
        DEFAULT_THRESHOLD,
        MatchingError,
        MatchModel,
        ModelError,
        match_records,
        parse_column_option,
        prepare_records,
        read_record_file,
    )

    err = Console(stderr=True, soft_wrap=True)
    started = time.perf_counter()
    try:
        explicit = dict(parse_column_option(option) for option in column_options)
        model = None if model_path is None else MatchModel.from_json(_read_model(model_path))
        with _progress(err) as step:
            step("reading records")
            records_file = read_record_file(file, id_column)
            step("preparing records")
            records = prepare_records(records_file.table, id_column, explicit)
            try:
                result: MatchResult | None = match_records(
                    records, threshold=threshold or DEFAULT_THRESHOLD, model=model, progress=step
                )
            except ModelError as e:
                err.print(f"[yellow]no model could be fitted ({e}); every record is its own cluster[/yellow]")
                result = None
    except MatchingError as e:
        raise InputError(str(e)) from e
    except TailorError as e:
        raise click.ClickException(str(e)) from e
    if save_model is not None and result is not None:
        save_model.write_bytes(result.model.to_json())
    ids = records.ids
    clusters = ids if result is None else result.clusters.column("cluster_id").to_pylist()
    if output is None:
        _write_clusters(sys.stdout, id_column, ids, clusters)
    else:
        with output.open("w", encoding="utf-8", newline="") as f:
            _write_clusters(f, id_column, ids, clusters)
        rejected = [(r.row, r.field or "", r.reason) for r in records_file.rejected]
        _write_rows(Path(f"{output}.rejected.csv"), rejected)
        # Values that could not be used: the row was matched on its other fields.
        unusable = [(records_file.rows[p.row], p.column, p.reason) for p in records.problems]
        _write_rows(Path(f"{output}.unusable.csv"), unusable)
    _summary(err, records_file, result, records, len(set(clusters)), output, time.perf_counter() - started)


def _read_model(path: Path) -> bytes:
    from tailor.identity.matching import ModelError

    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read the model {path}: {e.strerror}") from None


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=_STEPS + 2)

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)

        yield step
        progress.update(task, completed=_STEPS + 2)


def _write_clusters(out: IO[str], id_column: str, ids: list[str], clusters: list[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((id_column, "cluster_id"))
    writer.writerows(zip(ids, clusters, strict=True))


def _write_rows(path: Path, rows: list[tuple[int, str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("row", "field", "reason"))
        writer.writerows(rows)


def _summary(
    err: Console,
    records_file: RecordFile,
    result: MatchResult | None,
    records: PreparedRecords,
    clusters: int,
    output: Path | None,
    seconds: float,
) -> None:
    rejected = records_file.rejected
    for r in rejected[:_SHOWN_REJECTIONS]:
        err.print(f"[red]rejected[/red] {r}", highlight=False)
    if len(rejected) > _SHOWN_REJECTIONS:
        where = f" (all in {output}.rejected.csv)" if output else ""
        err.print(f"... and {len(rejected) - _SHOWN_REJECTIONS} more rejected rows{where}")
    unusable = Counter((p.column, p.reason.partition(":")[0]) for p in records.problems)
    for (column, kind), count in sorted(unusable.items()):
        first = next(p for p in records.problems if p.column == column and p.reason.startswith(kind))
        err.print(
            f"[yellow]{count} unusable {column} value(s)[/yellow] ({kind}), ignored for matching; "
            f"first at row {records_file.rows[first.row]}: {first.reason}",
            highlight=False,
        )
    pairs = 0 if result is None else len(result.pairs)
    matches = 0 if result is None else len(result.matches)
    err.print(
        f"records {len(records):,}, rejected rows {len(rejected):,}, pairs compared {pairs:,}, "
        f"matches {matches:,}, clusters {clusters:,} in {seconds:.1f} s",
        highlight=False,
    )
