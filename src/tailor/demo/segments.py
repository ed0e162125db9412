"""The segments the demo defines before any event arrives, so they fill as the customer base streams in."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from tailor.profiles import view
from tailor.runtime import Runtime

DEMO_SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "home_accessories_browsers",
        "description": "Viewed home accessories in the last three months",
        "condition": {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "=", "value": "Home Accessories"}],
            "within": "90d",
        },
    },
    {
        "name": "cart_abandoners",
        "description": "Added to the basket and ordered nothing since",
        "condition": {"computed": "cart_abandoner", "op": "=", "value": True},
    },
    {
        "name": "lapsed_customers",
        "description": "Ordered before, but not in the last 60 days",
        "condition": {
            "all": [
                {"computed": "orders_lifetime", "op": ">=", "value": 1},
                {"not": {"event": "Order Completed", "within": "60d"}},
            ]
        },
    },
    {
        "name": "champions",
        "description": "RFM 4 or 5 on recency, frequency and money",
        "condition": {
            "all": [
                {"computed": "rfm_recency", "op": ">=", "value": 4},
                {"computed": "rfm_frequency", "op": ">=", "value": 4},
                {"computed": "rfm_monetary", "op": ">=", "value": 4},
            ]
        },
    },
    {
        "name": "multi_category_shoppers",
        "description": "Browse three or more categories: buying for several people",
        "condition": {"computed": "category_breadth", "op": ">=", "value": 3},
    },
    {
        "name": "high_touch_non_buyers",
        "description": "Many visits, never an order",
        "condition": {"computed": "high_touch_non_buyer", "op": "=", "value": True},
    },
    {
        "name": "big_spenders_90d",
        "description": "Spent over 250 in the last 90 days",
        "condition": {
            "event": "Order Completed",
            "aggregate": "sum",
            "of": "total",
            "within": "90d",
            "op": ">",
            "value": 250,
        },
    },
    {
        "name": "email_engaged",
        "description": "Opened at least two emails in the last 90 days",
        "condition": {"event": "Email Opened", "within": "90d", "op": ">=", "value": 2},
    },
    {
        "name": "cross_sell_responders",
        "description": "Bought from a recommendation",
        "condition": {"computed": "recommendations_bought", "op": ">", "value": 0},
    },
    {
        "name": "lapsed_multi_category",
        "description": "Lapsed customers who browse widely: win-back with a broad edit",
        "condition": {"all": [{"segment": "lapsed_customers"}, {"segment": "multi_category_shoppers"}]},
    },
]


def define_demo_segments(runtime: Runtime) -> None:
    """Saves the demo's segments (existing definitions of the same names are replaced)."""
    runtime.definitions.put_many(DEMO_SEGMENTS)


def show_segments(runtime: Runtime, console: Console) -> None:
    """Segment sizes as a bar chart, and the traits, computed traits and segments of one person."""
    from tailor.demo.scenario import _bar_chart

    db = runtime.db
    sizes = db.execute(
        """SELECT d.name, count(m.profile_id) FROM definitions d
        LEFT JOIN segment_members m ON m.segment = d.name WHERE d.kind = 'segment'
        GROUP BY d.name ORDER BY 2 DESC, 1"""
    )
    ((entries, exits),) = db.execute(
        """SELECT count(*) FILTER (WHERE change = 'entered'), count(*) FILTER (WHERE change = 'exited')
        FROM segment_changes"""
    )
    console.print(_bar_chart(f"Segments, live ({entries:,} entries and {exits:,} exits recorded)", sizes))
    rows = db.execute(
        """SELECT profile_id FROM profile_computed WHERE orders_lifetime >= 2
        ORDER BY category_breadth DESC, orders_lifetime DESC, profile_id LIMIT 1"""
    )
    if not rows:
        return
    pid = str(rows[0][0])
    traits, computed, segments = view.golden(db, pid), view.computed(db, pid), view.memberships(db, pid)
    table = Table(title=f"One customer's golden record and computed traits: {pid}")
    table.add_column("trait (survivor, source)")
    table.add_column("computed trait")
    table.add_column("segments")
    shown = ("first_name", "last_name", "email", "phone", "city", "postcode", "birthday")
    golden = "\n".join(f"{t}: {traits[t].value} ({traits[t].source_id})" for t in shown if t in traits)
    picks = (
        "orders_lifetime", "revenue_lifetime", "average_order_value", "purchase_threshold",
        "days_since_last_order", "rfm_score", "category_breadth", "cross_sell_acceptance",
        "preferred_channel", "devices_used",
    )  # fmt: skip
    values = "\n".join(f"{k}: {_short(computed.get(k))}" for k in picks)
    table.add_row(golden, values, "\n".join(s.segment for s in segments) or "(none)")
    console.print(table)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
