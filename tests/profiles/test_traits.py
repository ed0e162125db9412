"""Computed traits on small hand-made streams: every aggregate, windows, expressions, time, quantiles."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.profiles.store import T0, Store, track

DAY = timedelta(days=1)


def _orders(store: Store) -> None:
    store.send(
        track(
            "ana",
            "Order Completed",
            T0 - 100 * DAY,
            total=50,
            category="Home",
            products=[{"id": "a"}, {"id": "b"}],
        ),
        track("ana", "Order Completed", T0 - 10 * DAY, total="30.5", category="Home", products=[{"id": "b"}]),
        track("ana", "Order Completed", T0 - 1 * DAY, total=19.5, category="Men", products=[{"id": "c"}]),
        track("ana", "Product Viewed", T0 - 2 * DAY, category="Home"),
        track("bob", "Product Viewed", T0 - 2 * DAY, category="Kids"),
    )


def test_every_aggregate_on_a_small_stream(store: Store) -> None:
    order = {"event": "Order Completed"}
    store.define_many(
        [
            {"name": "orders", "aggregate": "count", **order},
            {"name": "spent", "aggregate": "sum", "of": "total", **order},
            {"name": "spent_30d", "aggregate": "sum", "of": "total", "within": "30d", **order},
            {"name": "avg_order", "aggregate": "avg", "of": "total", **order},
            {"name": "smallest", "aggregate": "min", "of": "total", **order},
            {"name": "largest", "aggregate": "max", "of": "total", **order},
            {"name": "p90", "aggregate": "percentile", "of": "total", "p": 0.9, **order},
            {"name": "first_category", "aggregate": "first", "of": "category", **order},
            {"name": "last_category", "aggregate": "last", "of": "category", **order},
            {"name": "first_at", "aggregate": "first_at", **order},
            {"name": "last_at", "aggregate": "last_at", **order},
            {"name": "categories", "aggregate": "distinct", "of": "category"},
            {"name": "breadth", "aggregate": "distinct_count", "of": "category"},
            {"name": "top_category", "aggregate": "most_frequent", "of": "category"},
            {"name": "top2", "aggregate": "top", "n": 2, "of": "category"},
            {"name": "products", "aggregate": "distinct", "of": "products[*].id", **order},
            {
                "name": "home_orders",
                "aggregate": "count",
                "where": [{"property": "category", "op": "=", "value": "Home"}],
                **order,
            },
            {"name": "orders_by_category", "aggregate": "count", "by": "category", **order},
        ]
    )
    _orders(store)
    ana = store.computed("user_id:ana")
    assert ana["orders"] == 3
    assert ana["spent"] == pytest.approx(100.0)  # "30.5" as text counts as a number
    assert ana["spent_30d"] == pytest.approx(50.0)
    assert ana["avg_order"] == pytest.approx(100 / 3)
    assert (ana["smallest"], ana["largest"]) == (19.5, 50.0)
    assert ana["p90"] == pytest.approx(float(np.percentile([50, 30.5, 19.5], 90)))  # 30.5 + 0.8 * 19.5
    assert (ana["first_category"], ana["last_category"]) == ("Home", "Men")
    assert ana["first_at"].startswith((T0 - 100 * DAY).date().isoformat())
    assert ana["last_at"].startswith((T0 - DAY).date().isoformat())
    assert ana["categories"] == ["Home", "Men"]
    assert ana["breadth"] == 2
    assert ana["top_category"] == "Home"
    assert ana["top2"] == ["Home", "Men"]
    assert ana["products"] == ["a", "b", "c"]
    assert ana["home_orders"] == 2
    assert ana["orders_by_category"] == {"Home": 2, "Men": 1}
    bob = store.computed("user_id:bob")
    assert (bob["orders"], bob["spent"], bob["breadth"], bob["avg_order"]) == (0, 0, 1, None)


def test_expressions_and_time_functions(store: Store) -> None:
    store.define_many(
        [
            {"name": "orders", "aggregate": "count", "event": "Order Completed"},
            {"name": "spent", "aggregate": "sum", "of": "total", "event": "Order Completed"},
            {"name": "last_order_at", "aggregate": "last_at", "event": "Order Completed"},
            {"name": "aov", "expression": "spent / nullif(orders, 0)"},
            {"name": "days_since_order", "expression": "days_since(last_order_at)"},
            {"name": "recent_buyer", "expression": "within(last_order_at, '7d')"},
            {"name": "big_and_recent", "expression": "aov > 30 AND recent_buyer"},
            {"name": "title", "expression": "upper(coalesce(traits.first_name, 'friend'))"},
        ]
    )
    _orders(store)
    store.send({"type": "identify", "userId": "ana", "traits": {"firstName": "Ana"}})
    ana = store.computed("user_id:ana")
    assert ana["aov"] == pytest.approx(100 / 3)
    assert ana["days_since_order"] == 1
    assert ana["recent_buyer"] is True
    assert ana["big_and_recent"] is True
    assert ana["title"] == "ANA"
    assert store.computed("user_id:bob")["title"] == "FRIEND"
    # Time alone changes them: a day later, then after the 7-day window, with no new event.
    store.tick(DAY)
    assert store.computed("user_id:ana")["days_since_order"] == 2
    store.tick(6 * DAY)
    ana = store.computed("user_id:ana")
    assert (ana["days_since_order"], ana["recent_buyer"], ana["big_and_recent"]) == (8, False, False)


def test_a_window_slides_past_the_oldest_event_with_no_new_event(store: Store) -> None:
    store.define_many(
        [{"name": "orders_30d", "aggregate": "count", "event": "Order Completed", "within": "30d"}]
    )
    store.send(
        track("ana", "Order Completed", T0 - 29 * DAY),
        track("ana", "Order Completed", T0 - 5 * DAY),
    )
    assert store.computed("user_id:ana")["orders_30d"] == 2
    store.tick(timedelta(hours=23))
    assert store.computed("user_id:ana")["orders_30d"] == 2
    store.tick(timedelta(hours=2))
    assert store.computed("user_id:ana")["orders_30d"] == 1
    store.tick(25 * DAY)
    assert store.computed("user_id:ana")["orders_30d"] == 0


def test_quantile_scores_rank_people_against_everyone(store: Store) -> None:
    store.define_many(
        [
            {"name": "spent", "aggregate": "sum", "of": "total", "event": "Order Completed"},
            {"name": "spent_if_buyer", "expression": "nullif(spent, 0)"},
            {"name": "monetary", "quantile": {"of": "spent_if_buyer", "buckets": 4}},
            {
                "name": "monetary_low_best",
                "quantile": {"of": "spent_if_buyer", "buckets": 4, "descending": True},
            },
        ]
    )
    store.send(*[track(f"u{i}", "Order Completed", T0 - DAY, total=10 * (i + 1)) for i in range(8)])
    store.send({"type": "identify", "userId": "browser", "traits": {"plan": "free"}})
    # Thresholds are taken from everyone's values when everyone is evaluated.
    with store.rt.processor.exclusive() as cur:
        store.rt.profiles.install(cur, store.rt.profiles.catalog, force=True)
    scores = {u: store.computed(f"user_id:{u}")["monetary"] for u in [f"u{i}" for i in range(8)]}
    assert scores == {"u0": 1, "u1": 1, "u2": 2, "u3": 2, "u4": 3, "u5": 3, "u6": 4, "u7": 4}
    assert store.computed("user_id:u7")["monetary_low_best"] == 1
    assert store.computed("user_id:u0")["monetary_low_best"] == 4
    assert store.computed("user_id:browser")["monetary"] is None
