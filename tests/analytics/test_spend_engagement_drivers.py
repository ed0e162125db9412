"""Spend files with bad rows, return on spend, sentiment, engagement, lifecycle and conversion drivers."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tailor.analytics.drivers import fit_logistic
from tailor.analytics.sentiment import score
from tailor.analytics.service import JourneyAnalytics
from tailor.analytics.spend import parse_spend
from tailor.runtime import Runtime
from tests.analytics.journey_data import ana_and_ben, send
from tests.conftest import DataDir

SPEND = """date,channel,campaign,cost,currency
2026-06-01,paid_search,brand,30.00,GBP
2026-06-01,paid_search,brand,10,
2026-06-02,email,june_sale,5,gbp
01/06/2026,display,x,3,GBP
2026-06-03,,x,3,GBP
2026-06-03,display,x,-4,GBP
2026-06-03,display,x,lots,GBP
2026-06-04,display,x,2,USD
2026-06-04,display,x,2,£
2026-06-05,display
"""


def test_every_bad_spend_row_is_reported_and_the_good_ones_kept() -> None:
    good, problems = parse_spend(SPEND, "GBP")
    assert [(p.line, p.field) for p in problems] == [
        (5, "date"),
        (6, "channel"),
        (7, "cost"),
        (8, "cost"),
        (9, "currency"),
        (10, "currency"),
        (11, "row"),
    ]
    assert "not the report currency GBP" in problems[4].message
    assert "not an ISO 4217" in problems[5].message
    assert [(str(d), c, k, cost) for d, c, k, cost, _, _ in good] == [
        ("2026-06-01", "paid_search", "brand", 30.0),
        ("2026-06-01", "paid_search", "brand", 10.0),
        ("2026-06-02", "email", "june_sale", 5.0),
    ]


@pytest.fixture
def analytics(data_dir: DataDir) -> Iterator[JourneyAnalytics]:
    rt = Runtime(data_dir.path)
    send(rt, ana_and_ben())
    yield JourneyAnalytics(rt.db, rt.config.analytics)
    rt.close()


def test_return_on_spend_under_every_model(analytics: JourneyAnalytics) -> None:
    imported = analytics.import_spend(SPEND, "spend.csv")
    assert (imported.stored, len(imported.problems)) == (3, 7)
    again = analytics.import_spend(SPEND, "spend.csv")  # the same file again replaces, not adds
    assert again.stored == 3
    returns = analytics.returns()
    # Paid search: 40 spent (two rows of one day added up); first touch credits it Ana's 120.
    assert returns["first_touch"]["paid_search"].spend == pytest.approx(40)
    assert returns["first_touch"]["paid_search"].roas == pytest.approx(3.0)
    assert returns["first_touch"]["paid_search"].roi == pytest.approx(2.0)
    assert returns["last_touch"]["email"].roas == pytest.approx(24.0)
    assert returns["last_touch"]["paid_search"].roas == pytest.approx(0.0)
    budget = analytics.reallocation("last_touch")
    moved = {c.channel: c.suggested - c.spend for c in budget.channels}
    assert moved["email"] > 0 > moved["paid_search"]  # toward the higher marginal return
    assert sum(moved.values()) == pytest.approx(0.0)
    assert any("Moving" in line for line in budget.reasoning)


def test_sentiment_is_scored_offline_from_the_lexicon() -> None:
    happy, sad, flat = score(
        ["Absolutely love it, brilliant quality!", "Terrible, it fell apart.", "A chair."]
    )
    assert happy > 0.5
    assert sad < -0.4
    assert flat == 0.0


def test_engagement_and_lifecycle(analytics: JourneyAnalytics) -> None:
    people = analytics.engagement(10)
    assert len(people) == 3
    ana = people[0]  # a day of browsing on two devices and an order
    assert ana.stage == "use"
    stages = {p.stage for p in people}
    assert stages == {"use", "interest"}  # Ben viewed and added to basket but never ordered
    history = analytics.lifecycle(ana.person)["history"]
    assert history[0] == ("2026-06", "use")
    life = analytics.lifecycle()
    assert sum(life["months"]["2026-06"].values()) == 3  # type: ignore[index]


def test_ridge_logistic_regression_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20_000, 3))
    truth = np.array([-0.5, 1.2, 0.0, -0.8])
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(truth[0] + x @ truth[1:])))).astype(float)
    beta, cov = fit_logistic(x, y, penalty=1e-6)
    se = np.sqrt(np.diag(cov))
    assert np.all(np.abs(beta - truth) < 4 * se)
    # A strong penalty shrinks every coefficient toward 0 but not the intercept.
    shrunk, _ = fit_logistic(x, y, penalty=5_000.0)
    assert np.all(np.abs(shrunk[1:]) < np.abs(beta[1:]) + 1e-9)
