"""The computed traits every new store starts with: the ones marketers of a retailer ask for first.

They read the Segment e-commerce spec's events (`Order Completed` with `total` and `products`,
`Product Viewed` with `category`, `Product Added`, `Recommendation Shown`, ...), so they work on
any store whose sources follow it; each can be changed or deleted like any other definition.
"""

from __future__ import annotations

from typing import Any

from tailor.profiles.catalog import Catalog, parse_trait

ORDER = "Order Completed"

LIBRARY: list[dict[str, Any]] = [
    {"name": "orders_lifetime", "description": "Orders ever placed", "aggregate": "count", "event": ORDER},
    {
        "name": "revenue_lifetime",
        "description": "Money spent on all orders (sum of Order Completed total)",
        "aggregate": "sum",
        "of": "properties.total",
        "event": ORDER,
    },
    {
        "name": "orders_90d",
        "description": "Orders in the last 90 days",
        "aggregate": "count",
        "event": ORDER,
        "within": "90d",
    },
    {
        "name": "revenue_90d",
        "description": "Money spent in the last 90 days",
        "aggregate": "sum",
        "of": "properties.total",
        "event": ORDER,
        "within": "90d",
    },
    {
        "name": "refunds_lifetime",
        "description": "Money refunded (sum of Order Refunded total)",
        "aggregate": "sum",
        "of": "properties.total",
        "event": "Order Refunded",
    },
    {
        "name": "lifetime_value",
        "description": "Money spent less money refunded",
        "expression": "revenue_lifetime - refunds_lifetime",
    },
    {
        "name": "average_order_value",
        "description": "Revenue per order",
        "expression": "revenue_lifetime / nullif(orders_lifetime, 0)",
    },
    {
        "name": "purchase_threshold",
        "description": "The basket this person usually reaches: 90th percentile of their order totals",
        "aggregate": "percentile",
        "of": "properties.total",
        "p": 0.9,
        "event": ORDER,
    },
    {
        "name": "first_order_at",
        "description": "When the first order was placed",
        "aggregate": "first_at",
        "event": ORDER,
    },
    {
        "name": "last_order_at",
        "description": "When the latest order was placed",
        "aggregate": "last_at",
        "event": ORDER,
    },
    {
        "name": "days_since_last_order",
        "description": "Whole days since the latest order",
        "expression": "days_since(last_order_at)",
    },
    {
        "name": "rfm_recency",
        "description": "Recency score 1-5 (5: ordered most recently), by quintile of days since last order",
        "quantile": {"of": "days_since_last_order", "buckets": 5, "descending": True},
    },
    {
        "name": "rfm_frequency",
        "description": "Frequency score 1-5 by quintile of lifetime orders",
        "quantile": {"of": "orders_lifetime_if_buyer", "buckets": 5},
    },
    {
        "name": "orders_lifetime_if_buyer",
        "description": "Lifetime orders of people who ordered (empty for the rest, so they take no quintile)",
        "expression": "nullif(orders_lifetime, 0)",
    },
    {
        "name": "rfm_monetary",
        "description": "Monetary score 1-5 by quintile of lifetime revenue",
        "quantile": {"of": "revenue_lifetime_if_buyer", "buckets": 5},
    },
    {
        "name": "revenue_lifetime_if_buyer",
        "description": "Lifetime revenue of people who ordered",
        "expression": "CASE WHEN orders_lifetime > 0 THEN revenue_lifetime END",
    },
    {
        "name": "rfm_score",
        "description": "R, F and M scores as one three-digit number (555: the best customers)",
        "expression": "rfm_recency * 100 + rfm_frequency * 10 + rfm_monetary",
    },
    {
        "name": "categories_browsed",
        "description": "The product categories this person viewed",
        "aggregate": "distinct",
        "of": "properties.category",
        "event": "Product Viewed",
    },
    {
        "name": "category_breadth",
        "description": "How many product categories this person viewed (several: buying for several people)",
        "aggregate": "distinct_count",
        "of": "properties.category",
        "event": "Product Viewed",
    },
    {
        "name": "recommendations_shown",
        "description": "Cross-sell recommendations shown",
        "aggregate": "count",
        "event": "Recommendation Shown",
    },
    {
        "name": "recommendations_bought",
        "description": "Recommendations from which something was bought",
        "aggregate": "distinct_count",
        "of": "properties.products[*].recommendation_id",
        "event": ORDER,
    },
    {
        "name": "cross_sell_acceptance",
        "description": "Share of the recommendations shown that led to a purchase",
        "expression": "recommendations_bought / nullif(recommendations_shown, 0)",
    },
    {
        "name": "views_90d",
        "description": "Page and screen views in the last 90 days",
        "aggregate": "count",
        "type": ["page", "screen"],
        "within": "90d",
    },
    {
        "name": "high_touch_non_buyer",
        "description": "Many visits (20+ page or screen views in 90 days) and no order ever",
        "expression": "views_90d >= 20 AND orders_lifetime = 0",
    },
    {
        "name": "last_cart_add_at",
        "description": "When something was last added to the basket",
        "aggregate": "last_at",
        "event": "Product Added",
    },
    {
        "name": "cart_abandoner",
        "description": "Added to the basket at least an hour ago and ordered nothing since",
        "expression": "last_cart_add_at IS NOT NULL"
        " AND (last_order_at IS NULL OR last_order_at < last_cart_add_at)"
        " AND older_than(last_cart_add_at, '1h')",
    },
    {
        "name": "devices_used",
        "description": "Kinds of device this person was seen on",
        "aggregate": "distinct",
        "of": "device",
    },
    {
        "name": "channels_used",
        "description": "Channels this person was seen on",
        "aggregate": "distinct",
        "of": "channel",
    },
    {
        "name": "preferred_channel",
        "description": "The channel of most of their events",
        "aggregate": "most_frequent",
        "of": "channel",
    },
    {
        "name": "last_seen_by_channel",
        "description": "When this person was last active on each channel",
        "aggregate": "last_at",
        "type": ["track", "page", "screen"],
        "by": "channel",
    },
    {
        "name": "last_seen_at",
        "description": "When this person was last active (a page, screen or track event)",
        "aggregate": "last_at",
        "type": ["track", "page", "screen"],
    },
]


def library_catalog(catalog: Catalog) -> Catalog:
    """The catalog with every library trait it does not define already."""
    for body in LIBRARY:
        if catalog.trait(body["name"]) is None:
            catalog = catalog.with_trait(parse_trait(body))
    return catalog
