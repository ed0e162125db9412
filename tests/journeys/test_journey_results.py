"""Campaign results against hand-computed values: opens, clicks, conversions, revenue and lift."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from tailor.cli import main
from tailor.journeys.stats import two_proportion_test
from tests.channels.conftest import wait_for
from tests.conftest import DataDir
from tests.journeys.conftest import OFFERS, Shop

HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}
PROXY = {"User-Agent": "Mozilla/5.0"}  # Apple Mail Privacy Protection's prefetch
TRACKED = re.compile(r"https://t\.shop\.example(/t/[co]/[A-Za-z0-9_.\-]+)")


def test_results_per_step_with_lift_over_the_holdout(
    shop_factory: Callable[..., Shop], data_dir: DataDir
) -> None:
    shop = shop_factory()
    users = shop.people(16, newsletter=True)
    shop.put_segment({"name": "subscribers", "condition": {"trait": "newsletter", "op": "=", "value": True}})
    shop.put_journey(
        {
            "name": "spring",
            "entry": {"schedule": {"segment": "subscribers"}},
            "holdout_percent": 40,
            "conversion": {"event": "Order Completed", "within": "1d", "revenue": "total"},
            "offers": OFFERS,
            "steps": [
                {"id": "mail", "send": {"channel": "email", "template": "offer_email", "offer": "home10"}}
            ],
        }
    )
    shop.settle()
    groups = {i["profile_id"]: i["grp"] for i in shop.instances("spring")}
    by_profile = {shop.profile_id(u): u for u in users}
    treated = sorted(by_profile[p] for p, g in groups.items() if g == "treatment")
    held = sorted(by_profile[p] for p, g in groups.items() if g == "holdout")
    assert len(treated) >= 6, groups
    assert len(held) >= 2, groups
    shop.delivered(len(treated))
    wait_for(lambda: all(s == "delivered" for _, s, _ in shop.outbox()))
    links: dict[str, list[str]] = {}
    for r in shop.smtp.received:
        html = r.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        links[r.rcpt_tos[0].split("@")[0]] = TRACKED.findall(html)

    def hit(user: str, kind: str, headers: dict[str, str]) -> None:
        path = next(p for p in links[user] if p.startswith(f"/t/{kind}/"))
        assert shop.client.get(path, headers=headers, follow_redirects=False).status_code in (200, 302)

    for user in treated[:4]:
        hit(user, "o", HUMAN)  # four people open
    hit(treated[0], "o", HUMAN)  # a second open is not a second unique open
    for user in treated[:2]:
        hit(user, "c", HUMAN)  # two of them click
    hit(treated[4], "c", HUMAN)  # one clicks with images off: a click counts as an open
    hit(treated[5], "o", PROXY)  # a machine open does not count
    shop.track(treated[0], "Order Completed", total=50)
    shop.track(treated[1], "Order Completed", total=20)
    shop.track(treated[1], "Order Completed", total=30)  # one converter, revenue 50
    shop.track(held[0], "Order Completed", total=10)
    shop.settle()
    results = shop.client.get("/api/v1/journeys/spring/results", headers=shop.admin).json()
    (step,) = results["steps"]
    n = len(treated)
    assert (step["step"], step["sent"], step["delivered"], step["bounced"]) == ("mail", n, n, 0)
    assert (step["unique_opens"], step["unique_clicks"]) == (5, 3)
    assert step["open_rate"] == pytest.approx(5 / n)
    assert step["click_rate"] == pytest.approx(3 / n)
    assert step["click_to_open"] == pytest.approx(3 / 5)
    assert step["conversions"] == 2
    assert step["conversion_rate"] == pytest.approx(2 / n)
    assert step["revenue"] == pytest.approx(110.0 - 10.0)
    assert step["revenue_per_1000"] == pytest.approx(100.0 / n * 1000)
    groups_out = {g["group"]: (g["entered"], g["conversions"], g["revenue"]) for g in results["groups"]}
    assert groups_out == {"treatment": (n, 2, 100.0), "holdout": (len(held), 1, 10.0)}
    (lift,) = results["lift"]
    expected = two_proportion_test(2, n, 1, len(held))
    assert lift["baseline"] == "holdout"
    assert lift["difference"] == pytest.approx(2 / n - 1 / len(held))
    assert lift["z"] == pytest.approx(expected.z)
    assert lift["p_value"] == pytest.approx(expected.p_value)
    assert lift["significant"] is False  # a handful of people proves nothing
    shop.close()  # the CLI opens the data directory itself
    out = CliRunner().invoke(main, ["journeys", "results", "spring", "--data", str(data_dir.path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == results
    table = CliRunner().invoke(main, ["journeys", "results", "spring", "--data", str(data_dir.path)])
    assert table.exit_code == 0, table.output
    assert "lift over the baseline" in table.output
