"""Analytics drawn in the terminal with rich: attribution side by side, funnels and top paths as bars."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from tailor.analytics.attribution import MODELS, Attribution

if TYPE_CHECKING:
    from tailor.analytics.funnels import FunnelResult
    from tailor.analytics.paths import TopPath

_SHORT = {
    "first_touch": "first",
    "last_touch": "last",
    "linear": "linear",
    "time_decay": "decay",
    "position_based": "U-shape",
    "markov": "Markov",
    "shapley": "Shapley",
}
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_white")


def bar(n: float, top: float, width: int = 30, colour: str = "cyan") -> str:
    """A horizontal bar of `n` against `top`, in rich markup."""
    cells = 0 if top <= 0 else max(1 if n > 0 else 0, round(width * n / top))
    return f"[{colour}]" + "█" * cells + f"[/{colour}]"


def attribution_tables(result: Attribution, what: str = "conversions") -> list[Table]:
    """The credit per key under every model as a table, and the models compared as bars per key."""
    models = [m for m in MODELS if m != "shapley_ordered"]
    keys = sorted(
        {k for m in models for k in result.models[m]},
        key=lambda k: (-result.models["linear"][k].conversions, k),
    )
    table = Table(title=f"Credit per channel under every model ({what} / value)")
    table.add_column("channel")
    for m in models:
        table.add_column(_SHORT[m], justify="right")
    for k in keys:
        cells = []
        for m in models:
            c = result.models[m].get(k)
            cells.append("-" if c is None else f"{c.conversions:,.1f} / {c.value:,.0f}")
        table.add_row(k, *cells)
    bars = Table(title="Models compared (conversions credited)", show_header=False, box=None, padding=(0, 1))
    top = max((c.conversions for m in models for c in result.models[m].values()), default=0.0)
    for k in keys[:6]:
        for i, m in enumerate(models):
            c = result.models[m].get(k)
            n = 0.0 if c is None else c.conversions
            bars.add_row(k if i == 0 else "", _SHORT[m], f"{n:>9,.1f}", bar(n, top, 36, _COLOURS[i]))
    ordered = Table(title="Ordered Shapley: credit by the touch at which it was earned")
    positions = sorted({int(k.rsplit("@", 1)[1]) for k in result.models["shapley_ordered"]})[:6]
    ordered.add_column("channel")
    for p in positions:
        ordered.add_column(f"touch {p}", justify="right")
    for k in keys:
        row = [result.models["shapley_ordered"].get(f"{k}@{p}") for p in positions]
        ordered.add_row(k, *("-" if c is None else f"{c.conversions:,.2f}" for c in row))
    effects = Table(title=f"Markov chain (order {result.markov.order}): removal effects")
    effects.add_column("channel")
    effects.add_column("removal effect", justify="right")
    effects.add_column("")
    for k in keys:
        e = result.markov.removal_effects.get(k, 0.0)
        effects.add_row(k, f"{e:.3f}", bar(e, 1.0, 30, "magenta"))
    effects.caption = f"P(conversion) of the chain: {result.markov.conversion_probability:.4f}"
    return [table, bars, ordered, effects]


def funnel_table(result: FunnelResult) -> Table:
    """A funnel as bars: people reaching each step, conversion from the first and drop-off."""
    table = Table(title=f"Funnel ({result.mode}, window {result.window_hours:g} h)", box=None, padding=(0, 1))
    for col in ("step", "people", "", "of first", "dropped", "median time"):
        table.add_column(col, justify="left" if col in ("step", "") else "right")
    first = result.steps[0].people if result.steps else 0
    for step in result.steps:
        median = "" if step.median_seconds is None else _duration(step.median_seconds)
        table.add_row(
            step.name,
            f"{step.people:,}",
            bar(step.people, first, 40, "green"),
            f"{step.conversion:.1%}",
            f"{step.dropped:,}",
            median,
        )
    return table


def paths_table(paths: list[TopPath], title: str) -> Table:
    """The most travelled paths as bars."""
    table = Table(title=title, show_header=False, box=None, padding=(0, 1))
    top = max((p.journeys for p in paths), default=0)
    for p in paths:
        table.add_row(" > ".join(p.steps), f"{p.journeys:>7,}", bar(p.journeys, top, 30, "cyan"))
    return table


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
