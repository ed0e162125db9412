"""`tailor report`: one self-contained HTML file of the journey analytics, its charts drawn by the
vendored Apache ECharts inlined into the page (it opens offline, with nothing fetched)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tailor
from tailor.analytics.attribution import MODELS
from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.funnels import FunnelDefinition
from tailor.analytics.service import JourneyAnalytics

ECHARTS = Path(tailor.__file__).parent / "console" / "static" / "vendor" / "echarts" / "echarts.min.js"
FUNNEL = ["Product Viewed", "Product Added", "Checkout Started", "Payment Info Entered", "Order Completed"]


def _bars(categories: list[str], series: dict[str, list[float]], horizontal: bool = False) -> dict[str, Any]:
    cat = {
        "type": "category",
        "data": categories,
        "axisLabel": {"interval": 0, "rotate": 0 if horizontal else 30},
    }
    val = {"type": "value"}
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll"},
        "grid": {"containLabel": True, "left": 10, "right": 20},
        "xAxis": val if horizontal else cat,
        "yAxis": cat if horizontal else val,
        "series": [{"name": n, "type": "bar", "data": [round(v, 3) for v in d]} for n, d in series.items()],
    }


def _sankey(links: list[tuple[str, str, int]]) -> dict[str, Any]:
    nodes = sorted({n for a, b, _ in links for n in (a, b)})
    return {
        "tooltip": {"trigger": "item"},
        "series": [
            {
                "type": "sankey",
                "emphasis": {"focus": "adjacency"},
                "data": [{"name": n} for n in nodes],
                "links": [{"source": a, "target": b, "value": v} for a, b, v in links],
                "lineStyle": {"color": "gradient", "curveness": 0.5},
            }
        ],
    }


def build_sections(service: JourneyAnalytics) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(title, HTML text, ECharts option or None) for each part of the report."""
    out: list[tuple[str, str, dict[str, Any] | None]] = []
    result = service.attribution("channel")
    models = [m for m in MODELS if m != "shapley_ordered"]
    keys = sorted(result.models["linear"], key=lambda k: -result.models["linear"][k].conversions)
    out.append(
        (
            "Attribution: conversions credited per channel under every model",
            f"<p>{result.paths:,} journeys of identity-resolved people; {result.conversions:,.0f} conversions "
            f"worth {result.value:,.2f}; {result.nulls:,.0f} journeys without conversion. Markov chain "
            f"P(conversion) = {result.markov.conversion_probability:.4f}.</p>",
            _bars(keys, {m: [result.models[m][k].conversions for k in keys] for m in models}),
        )
    )
    out.append(
        (
            "Markov removal effects (exact, absorbing-chain algebra)",
            "<p>The share of conversions lost if a channel's touches led nowhere.</p>",
            _bars(keys, {"removal effect": [result.markov.removal_effects.get(k, 0.0) for k in keys]}),
        )
    )
    positions = sorted({int(k.rsplit("@", 1)[1]) for k in result.models["shapley_ordered"]})[:6]
    out.append(
        (
            "Ordered Shapley: credit by the touch at which it was earned",
            "",
            _bars(
                keys,
                {
                    f"touch {p}": [
                        getattr(result.models["shapley_ordered"].get(f"{k}@{p}"), "conversions", 0.0)
                        for k in keys
                    ]
                    for p in positions
                },
            ),
        )
    )
    funnel = service.funnel(FunnelDefinition(FUNNEL, window_hours=72))
    out.append(
        (
            "Purchase funnel (ordered, 72-hour window)",
            "<table><tr><th>step</th><th>people</th><th>of first</th><th>median time</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(s.name)}</td><td>{s.people:,}</td><td>{s.conversion:.1%}</td>"
                f"<td>{'' if s.median_seconds is None else f'{s.median_seconds / 60:.1f} min'}</td></tr>"
                for s in funnel.steps
            )
            + "</table>",
            {
                "tooltip": {"trigger": "item"},
                "series": [
                    {
                        "type": "funnel",
                        "sort": "none",
                        "label": {"show": True, "position": "inside"},
                        "data": [{"name": s.name, "value": s.people} for s in funnel.steps],
                    }
                ],
            },
        )
    )
    paths = service.paths("channel", steps=4)
    out.append(
        (
            "Journeys across channels (first four touches, Sankey)",
            "<ol>"
            + "".join(f"<li>{html.escape(' > '.join(p.steps))}: {p.journeys:,}</li>" for p in paths.paths)
            + "</ol>",
            _sankey([(link.source, link.target, link.value) for link in paths.links]),
        )
    )
    ret = service.retention("month")
    cells = [
        [k, i, round(a / c.size, 3) if c.size else 0]
        for i, c in enumerate(ret.cohorts)
        for k, a in enumerate(c.active)
    ]
    out.append(
        (
            "Retention by monthly cohort (first seen)",
            "",
            {
                "tooltip": {},
                "grid": {"containLabel": True},
                "xAxis": {
                    "type": "category",
                    "data": [f"+{k}" for k in range(len(ret.cohorts[0].active))] if ret.cohorts else [],
                },
                "yAxis": {"type": "category", "data": [f"{c.start} ({c.size})" for c in ret.cohorts]},
                "visualMap": {
                    "min": 0,
                    "max": 1,
                    "calculable": True,
                    "orient": "horizontal",
                    "left": "center",
                },
                "series": [{"type": "heatmap", "data": cells, "label": {"show": True}}],
            },
        )
    )
    returns = service.returns("channel")
    paid = [k for k, r in returns["markov"].items() if r.spend > 0]
    if paid:
        out.append(
            (
                "Return on ad spend per channel under every model",
                "",
                _bars(paid, {m: [returns[m][k].roas or 0.0 for k in paid] for m in models}),
            )
        )
        budget = service.reallocation("markov")
        out.append(
            (
                "Budget suggestion",
                "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in budget.reasoning) + "</ul>",
                _bars(
                    [c.channel for c in budget.channels],
                    {
                        "now": [c.spend for c in budget.channels],
                        "suggested": [c.suggested for c in budget.channels],
                    },
                ),
            )
        )
    life = service.lifecycle()
    flows = life["flows"]
    months = sorted({f.month for f in flows})[-3:]  # type: ignore[attr-defined]
    links = [
        (f"{_prev(f.month)} {f.source}", f"{f.month} {f.target}", f.people)
        for f in flows  # type: ignore[attr-defined]
        if f.month in months
    ]
    out.append(("Lifecycle stages: flow between the last months", "", _sankey(links)))
    top = service.engagement(10)
    out.append(
        (
            "Most engaged people",
            "<table><tr><th>profile</th><th>score</th><th>stage</th><th>sentiment</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(p.person)}</td><td>{p.score:.1f}</td><td>{p.stage}</td>"
                f"<td>{'' if p.sentiment is None else f'{p.sentiment:+.2f}'}</td></tr>"
                for p in top
            )
            + "</table>",
            None,
        )
    )
    try:
        drivers = service.drivers()
    except AnalyticsError as e:
        out.append(("Conversion drivers", f"<p>{html.escape(str(e))}</p>", None))
    else:
        names = [d.feature for d in drivers.drivers][::-1]
        out.append(
            (
                "Conversion drivers (ridge logistic regression, coefficient per standard deviation, 95% interval)",
                "<table><tr><th>feature</th><th>coefficient</th><th>95% interval</th><th>odds ratio</th></tr>"
                + "".join(
                    f"<tr><td>{html.escape(d.feature)}</td><td>{d.coefficient:+.2f}</td>"
                    f"<td>[{d.low:+.2f}, {d.high:+.2f}]</td><td>{d.odds_ratio:.2f}</td></tr>"
                    for d in drivers.drivers
                )
                + "</table>",
                _bars(
                    names, {"coefficient": [d.coefficient for d in drivers.drivers][::-1]}, horizontal=True
                ),
            )
        )
    return out


def _prev(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    return f"{y - (m == 1)}-{12 if m == 1 else m - 1:02d}"


def render(sections: list[tuple[str, str, dict[str, Any] | None]], title: str) -> str:
    """The report's HTML with ECharts and every chart's data inlined."""
    script = ECHARTS.read_text("utf-8")
    parts, options = [], {}
    for i, (heading, text, option) in enumerate(sections):
        chart = f'<div class="chart" id="c{i}"></div>' if option else ""
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{text}{chart}</section>")
        if option:
            options[f"c{i}"] = option
    data = json.dumps(options).replace("</", "<\\/")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}}
.chart{{height:420px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:3px 8px}}
section{{margin-bottom:2.5rem}}</style>
<script>{script}</script></head><body><h1>{html.escape(title)}</h1>
{"".join(parts)}
<script type="application/json" id="options">{data}</script>
<script>const o=JSON.parse(document.getElementById('options').textContent);
for(const id in o){{const c=echarts.init(document.getElementById(id));c.setOption(o[id]);
addEventListener('resize',()=>c.resize());}}</script></body></html>"""


def write_report(data_dir: Path, output: Path) -> None:
    """Computes the analytics of a data directory and writes them as one HTML file."""
    from tailor.runtime import Runtime

    with Runtime(data_dir) as runtime:
        runtime.processor.run_once()  # identity resolved up to the last stored event
        service = JourneyAnalytics(runtime.db, runtime.config.analytics)
        sections = build_sections(service)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    output.write_text(render(sections, f"Tailor journey analytics: {data_dir.name}, {stamp}"), "utf-8")
