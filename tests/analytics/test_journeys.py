"""Touchpoints, journeys, funnels, paths and retention on a store whose people are known by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.funnels import FunnelDefinition
from tailor.analytics.service import JourneyAnalytics
from tailor.runtime import Runtime
from tests.analytics.journey_data import ana_and_ben, send
from tests.conftest import DataDir


@pytest.fixture
def analytics(data_dir: DataDir) -> Iterator[JourneyAnalytics]:
    rt = Runtime(data_dir.path)
    send(rt, ana_and_ben())
    yield JourneyAnalytics(rt.db, rt.config.analytics)
    rt.close()


def test_a_cross_device_journey_is_one_persons_path(analytics: JourneyAnalytics) -> None:
    result = analytics.attribution()
    # Ana's order is credited to paid search (laptop) and email (phone): one journey of two touches.
    assert result.models["first_touch"]["paid_search"].conversions == 1
    assert result.models["last_touch"]["email"].conversions == 1
    assert result.models["linear"]["paid_search"].value == pytest.approx(60.0)
    # Cy's two orders, 40 days apart, are two journeys through direct; Ben's journey did not convert.
    assert result.models["last_touch"]["direct"].conversions == 2
    assert result.models["last_touch"]["direct"].value == pytest.approx(75.5)
    assert (result.conversions, result.value, result.nulls) == (3, pytest.approx(195.5), 1)
    # The email click and the visit its link opened are one touch, not two.
    assert result.models["linear"]["email"].conversions == pytest.approx(0.5)
    campaigns = analytics.attribution("campaign").models["last_touch"]
    assert campaigns["email / june_sale"].conversions == 1


def test_funnel_modes(analytics: JourneyAnalytics) -> None:
    steps = ["Product Viewed", "Product Added", "Order Completed"]
    ordered = analytics.funnel(FunnelDefinition(steps, window_hours=48))
    assert [s.people for s in ordered.steps] == [3, 2, 1]
    # Times come from a person's earliest attempt that got furthest: Ben 1 min; Ana from her first
    # view on the laptop to the basket on her phone a day later.
    assert ordered.steps[1].median_seconds == pytest.approx((60 + 1440.5 * 60) / 2)
    # Ana's first view (laptop) was a day before her basket: a 1-hour window needs her second view.
    assert [s.people for s in analytics.funnel(FunnelDefinition(steps, window_hours=1)).steps] == [3, 2, 1]
    assert [s.people for s in analytics.funnel(FunnelDefinition(steps, window_hours=0.02)).steps] == [3, 2, 0]
    assert [s.people for s in analytics.funnel(FunnelDefinition(steps, window_hours=0.01)).steps] == [3, 0, 0]
    strict = analytics.funnel(FunnelDefinition(steps, window_hours=48, mode="strict"))
    assert [s.people for s in strict.steps] == [3, 2, 1]  # Ana's order directly followed her basket
    # View then order: Ana's basket came between, Cy's did not.
    pair = ["Product Viewed", "Order Completed"]
    assert [s.people for s in analytics.funnel(FunnelDefinition(pair, 48)).steps] == [3, 2]
    assert [s.people for s in analytics.funnel(FunnelDefinition(pair, 48, "strict")).steps] == [3, 1]
    unordered = analytics.funnel(FunnelDefinition(["Order Completed", "Product Viewed"], 48, "unordered"))
    assert [s.people for s in unordered.steps] == [3, 2]
    by_device = analytics.funnel(FunnelDefinition(steps, 48, breakdown="device"))
    assert sum(g[0].people for g in by_device.groups.values()) == 3
    with pytest.raises(AnalyticsError, match="unknown breakdown"):
        analytics.funnel(FunnelDefinition(steps, breakdown="star sign"))


def test_paths_and_sankey_links(analytics: JourneyAnalytics) -> None:
    report = analytics.paths("channel")
    assert {tuple(p.steps): p.journeys for p in report.paths} == {
        ("paid_search", "email"): 1,
        ("organic_search",): 1,
        ("direct",): 1,
    }
    assert [(link.source, link.target, link.value) for link in report.links] == [
        ("1. paid_search", "2. email", 1)
    ]
    to_order = analytics.paths("event", anchor="Order Completed", direction="to", steps=3)
    assert ["Product Viewed", "Product Added", "Order Completed"] in [p.steps for p in to_order.paths]


def test_retention_by_cohort(analytics: JourneyAnalytics) -> None:
    monthly = analytics.retention("month")
    assert [(c.start, c.size, c.active[:2]) for c in monthly.cohorts] == [("2026-06-01", 3, [3, 1])]
    buyers = analytics.retention("month", "first_purchase", "purchase")
    assert [(c.size, c.active[:2]) for c in buyers.cohorts] == [(2, [2, 1])]
