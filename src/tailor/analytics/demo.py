"""The analytics part of `tailor demo`: a spend file for the paid channels, then the results drawn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tailor.analytics.funnels import FunnelDefinition
from tailor.analytics.service import JourneyAnalytics
from tailor.analytics.terminal import attribution_tables, bar, funnel_table, paths_table
from tailor.analytics.touchpoints import build_touches

if TYPE_CHECKING:
    from tailor.runtime import Runtime

# What a visit from each paid channel costs (GBP, affiliates by commission): a small shop's few
# visits are priced so that return on spend lands where retailers' usually does (about 2 to 10).
COST_PER_VISIT = {"paid_search": 2.6, "paid_social": 3.5, "display": 4.0, "affiliate": 5.5}
FUNNEL = ["Product Viewed", "Product Added", "Checkout Started", "Payment Info Entered", "Order Completed"]
BROKEN_SPEND = [
    "2026-13-01,paid_search,brand_uk_exact,12.50,GBP",  # no 13th month
    "2026-06-02,display,gdn_prospecting,18.00,USD",  # another currency
]


def write_demo_spend(runtime: Runtime, path: Path) -> int:
    """Writes a spend CSV for the demo's paid visits (cost per visit with day-to-day noise)."""
    cur = runtime.db.cursor()
    try:
        build_touches(cur, runtime.config.analytics)
        costs = " ".join(f"WHEN '{c}' THEN {v}" for c, v in COST_PER_VISIT.items())
        rows = cur.execute(
            f"""SELECT strftime(day, '%Y-%m-%d'), channel, campaign,
                round(count(*) * (CASE channel {costs} END) * (0.6 + 0.8 * (hash(day, channel) % 100) / 100.0), 2)
            FROM (SELECT CAST(ts AS DATE) AS day, channel, campaign FROM an_touches)
            WHERE channel IN ({", ".join(f"'{c}'" for c in COST_PER_VISIT)})
            GROUP BY day, channel, campaign ORDER BY 1, 2, 3"""
        ).fetchall()
    finally:
        cur.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "date,channel,campaign,cost,currency",
        *(f"{d},{c},{k},{v},GBP" for d, c, k, v in rows),
        *BROKEN_SPEND,
    ]
    path.write_text("\n".join(lines) + "\n")
    return len(rows)


def show_analytics(runtime: Runtime, data_dir: Path, console: Console) -> None:
    """Imports the demo's spend and draws attribution, the purchase funnel, paths and return on spend."""
    service = JourneyAnalytics(runtime.db, runtime.config.analytics)
    spend_file = data_dir / "imports" / "spend.csv"
    with console.status("analysing journeys"):
        write_demo_spend(runtime, spend_file)
        imported = service.import_spend(spend_file.read_text(), str(spend_file))
        result = service.attribution("channel")
        funnel = service.funnel(FunnelDefinition(FUNNEL, window_hours=72))
        paths = service.paths("channel", steps=4)
        returns = service.returns("channel")
        budget = service.reallocation("markov")
    console.print(
        f"Journey analytics on identity-resolved people: {result.paths:,} journeys, "
        f"{result.conversions:,.0f} orders worth £{result.value:,.0f}"
    )
    console.print(funnel_table(funnel))
    console.print(paths_table(paths.paths, "Top channel paths (one person's journey across devices)"))
    for table in attribution_tables(result)[:2]:
        console.print(table)
    console.print(
        f"spend imported from {spend_file.name}: {imported.stored:,} rows stored, "
        f"{len(imported.problems)} problems: " + "; ".join(str(p) for p in imported.problems)
    )
    roas = Table(title="Return on ad spend per paid channel (attributed value / spend)")
    roas.add_column("channel")
    roas.add_column("spend", justify="right")
    for model in ("last_touch", "linear", "markov", "shapley"):
        roas.add_column(model, justify="right")
    roas.add_column("Markov ROAS")
    top = max((r.roas or 0.0) for r in returns["markov"].values())
    for channel, r in returns["markov"].items():
        if r.spend <= 0:
            continue
        cells = [
            f"{(returns[m][channel].roas or 0):.2f}" for m in ("last_touch", "linear", "markov", "shapley")
        ]
        roas.add_row(channel, f"£{r.spend:,.0f}", *cells, bar(r.roas or 0.0, top, 24, "green"))
    console.print(roas)
    console.print("[bold]Budget suggestion[/bold] (Markov credit, diminishing returns):")
    for line in budget.reasoning:
        console.print(f"  {line}", highlight=False)
