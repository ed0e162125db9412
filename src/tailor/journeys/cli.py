"""`tailor journeys`: list, apply, show and measure journeys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec
from rich.console import Console
from rich.table import Table

from tailor.journeys.exceptions import InvalidJourney
from tailor.journeys.results import JourneyResults
from tailor.profiles.exceptions import DefinitionError
from tailor.profiles.reading import load_documents

if TYPE_CHECKING:
    from tailor.runtime import Runtime

console = Console()
_data = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Data directory.",
)


@contextmanager
def _runtime(data_dir: Path) -> Iterator[Runtime]:
    from tailor.runtime import Runtime

    with Runtime(data_dir) as runtime:
        yield runtime


@click.group()
def journeys() -> None:
    """Journeys: entries, waits, splits and sends, run durably next to the outbox, and their results."""


@journeys.command("list")
@_data
def list_(data_dir: Path) -> None:
    """List the saved journeys with the people on them."""
    with _runtime(data_dir) as rt:
        found = rt.journeys.saved()
        counts = {j.name: rt.journeys.counts(j.name) for j in found}
    table = Table(show_edge=False)
    for column in ("name", "version", "entry", "steps", "on it now", "description"):
        table.add_column(column)
    for j in found:
        entry = ", ".join(sorted(j.definition.get("entry", {})))
        now = sum(c.get("now", 0) for c in counts[j.name].values())
        steps = len(j.definition.get("steps", []))
        table.add_row(
            j.name, str(j.version), entry, str(steps), f"{now:,}", str(j.definition.get("description", ""))
        )
    console.print(table)


@journeys.command()
@_data
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def apply(ctx: click.Context, data_dir: Path, file: Path) -> None:
    """Check and save the journeys in FILE (JSON or YAML: one or a list); exit 2 listing every problem."""
    try:
        bodies = load_documents(file)
        with _runtime(data_dir) as rt:
            saved = rt.journeys.put_many(bodies)
    except (InvalidJourney, DefinitionError) as e:
        click.echo(str(e), err=True)
        ctx.exit(2)
    for j in saved:
        console.print(f"saved journey [bold]{j.name}[/bold] (version {j.version})")


@journeys.command()
@_data
@click.argument("name")
def show(data_dir: Path, name: str) -> None:
    """Print one journey as JSON, with the people through and on each step."""
    with _runtime(data_dir) as rt:
        saved = rt.journeys.get(name)
        counts = rt.journeys.counts(name)
    out = {**msgspec.to_builtins(saved), "steps": counts}
    click.echo(json.dumps(out, indent=2, default=str))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(title: str, columns: tuple[str, ...], left: int = 1) -> Table:
    table = Table(title=title, show_edge=False, pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    return table


def results_tables(results: JourneyResults) -> list[Table]:
    """A journey's results as rich tables: messages and conversions per step and variant, groups, lift."""
    name = results.journey
    sends = _table(f"{name}: messages per step", ("step", "variant", "sent", "deliv.", "suppr.", "failed",
                   "opens", "open %", "CTR", "CTO"), 2)  # fmt: skip
    money = _table(f"{name}: conversions per step", ("step", "variant", "conv.", "conv. %", "revenue",
                   "per 1,000"), 2)  # fmt: skip
    for s in results.steps:
        variant = s.variant or "-"
        sends.add_row(
            s.step, variant, f"{s.sent:,}", f"{s.delivered:,}", f"{s.suppressed:,}", f"{s.failed:,}",
            f"{s.unique_opens:,}", _pct(s.open_rate), _pct(s.click_rate), _pct(s.click_to_open),
        )  # fmt: skip
        per_1000 = "-" if s.revenue_per_1000 is None else f"{s.revenue_per_1000:,.2f}"
        money.add_row(
            s.step, variant, f"{s.conversions:,}", _pct(s.conversion_rate), f"{s.revenue:,.2f}", per_1000
        )
    hours = results.window_hours
    window = f"{hours / 24:g} d" if hours >= 24 else f"{hours:g} h"
    event = results.conversion_event or "no conversion event"
    groups = _table(f"{name}: {event} within {window} of entry", ("group", "entered", "conv.", "conv. %",
                    "revenue"))  # fmt: skip
    for g in results.groups:
        groups.add_row(
            g.group, f"{g.entered:,}", f"{g.conversions:,}", _pct(g.conversion_rate), f"{g.revenue:,.2f}"
        )
    lift = _table(f"{name}: lift over the baseline (two-proportion z-test)", ("against", "treated", "base",
                  "diff.", "lift", "95% CI (pt)", "p", "sig."))  # fmt: skip
    for x in results.lift:
        lift.add_row(
            x.baseline, _pct(x.treatment_rate), _pct(x.baseline_rate), f"{100 * x.difference:+.1f}pt",
            "-" if x.lift is None else f"{100 * x.lift:+.0f}%",
            f"{100 * x.ci_low:+.1f}..{100 * x.ci_high:+.1f}",
            "-" if x.p_value is None else f"{x.p_value:.3f}",
            "[green]yes[/green]" if x.significant else "no",
        )  # fmt: skip
    return [sends, money, groups, lift]


@journeys.command()
@_data
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def results(data_dir: Path, name: str, as_json: bool) -> None:
    """Campaign results of journey NAME: per step and variant, and lift over holdout and control."""
    with _runtime(data_dir) as rt:
        found = rt.journeys.results(name)
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(found), indent=2))
        return
    for table in results_tables(found):
        console.print(table)
