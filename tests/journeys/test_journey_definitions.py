"""Journey definitions: reading, and save-time validation that lists every problem (API 422, CLI exit 2)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tailor.cli import main
from tailor.journeys.definitions import parse_journey
from tailor.journeys.engine import StepRunner
from tailor.journeys.exceptions import InvalidJourney
from tailor.journeys.people import Person
from tailor.journeys.stats import normal_cdf, two_proportion_test
from tailor.journeys.validate import Catalogue, check_journey
from tests.conftest import DataDir
from tests.journeys.conftest import EVENT_EMAIL, OFFER_EMAIL, OFFERS, PLAIN_EMAIL, Shop

CATALOGUE = Catalogue(
    frozenset({"home_browsers"}),
    {t.name: t for t in (OFFER_EMAIL, PLAIN_EMAIL, EVENT_EMAIL)},
)

GOOD: dict[str, Any] = {
    "name": "home_offer",
    "entry": {"schedule": {"segment": "home_browsers", "at": "2026-12-01T09:00:00Z", "every": "7d"}},
    "re_entry": "30d",
    "holdout_percent": 10,
    "exit_on": ["Order Completed"],
    "conversion": {"event": "Order Completed", "within": "7d", "revenue": "total"},
    "offers": OFFERS,
    "steps": [
        {"id": "morning", "wait": {"until_time": "09:30"}},
        {
            "id": "ab",
            "split": {"variants": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50, "next": "b"}]},
        },
        {
            "id": "a",
            "send": {"channel": "email", "template": "offer_email", "offer": "home10"},
            "next": "remind",
        },
        {"id": "b", "send": {"channel": "email", "template": "plain_email"}, "next": None},
        {"id": "remind", "wait": {"until_offer": "home10", "offset": "-24h"}},
        {
            "id": "bought",
            "condition": {"if": {"event": "Order Completed", "within": "3d"}, "then": None, "else": "again"},
        },
        {"id": "again", "send": {"channel": "email", "template": "offer_email", "offer": "home10"}},
    ],
}


def test_a_full_journey_reads_and_checks() -> None:
    j = check_journey(GOOD, CATALOGUE)
    assert j.entry.kind == "schedule"
    assert j.entry.every == dt.timedelta(days=7)
    assert j.re_entry == "after"
    assert j.re_entry_after == dt.timedelta(days=30)
    assert [s.kind for s in j.steps] == ["wait", "split", "send", "send", "wait", "condition", "send"]
    assert j.step("remind") is not None
    assert j.step("remind").offset == -dt.timedelta(hours=24)  # type: ignore[union-attr]
    assert [v.next for v in j.step("ab").variants] == ["a", "b"]  # type: ignore[union-attr]
    assert j.step("b").next is None  # type: ignore[union-attr]


BAD: dict[str, Any] = {
    "name": "broken",
    "entry": {"segment": {"name": "nobody_defined_this"}},
    "steps": [
        {"id": "first", "send": {"channel": "email", "template": "event_email"}, "next": "loop_a"},
        {
            "id": "loop_a",
            "condition": {"if": {"trait": "vip", "op": "=", "value": True}, "then": "loop_b", "else": "gone"},
        },
        {"id": "loop_b", "send": {"channel": "email", "template": "offer_email"}, "next": "loop_a"},
        {"id": "orphan", "send": {"channel": "email", "template": "no_such_template"}},
        {"id": "member", "condition": {"if": {"segment": "unknown_members"}}},
    ],
}


def test_every_problem_is_listed_together() -> None:
    with pytest.raises(InvalidJourney) as e:
        check_journey(BAD, CATALOGUE)
    found = [(p.path, p.message) for p in e.value.problems]
    messages = "\n".join(m for _, m in found)
    assert "step 'loop_a' leads to unknown step 'gone'" in messages  # unknown step reference
    assert "step 'orphan' is unreachable from the first step" in messages
    assert "step 'member' is unreachable from the first step" in messages
    assert "cycle without a wait: loop_a -> loop_b -> loop_a" in messages
    assert ("entry.segment.segment", "unknown segment 'nobody_defined_this'") in found
    assert ("steps[4].condition.if.segment", "unknown segment 'unknown_members'") in found
    assert ("steps[3].send.template", "unknown template 'no_such_template'") in found
    # Missing template variables: no event (segment entry) and no offer on that step.
    assert any(p == "steps[0].send.template" and "'event.properties.product'" in m for p, m in found)
    assert any(
        p == "steps[2].send.template" and "'offer.code'" in m and "carries no offer" in m for p, m in found
    )
    missing_offer = {m.split("'")[3] for p, m in found if p == "steps[2].send.template"}
    assert missing_offer == {"offer.discount_percent", "offer.expires_at", "offer.code", "offer.url"}
    assert len(found) == 12, found


def test_shape_problems_carry_their_paths() -> None:
    body = {
        "name": "Bad Name",
        "entry": {"event": {"name": "X"}, "segment": "y"},
        "holdout_percent": 150,
        "steps": [
            {"id": "w", "wait": {"duration": "soon"}},
            {"id": "w", "send": {"channel": "fax", "template": "t"}},
            {"id": "x", "teleport": {}},
        ],
    }
    with pytest.raises(InvalidJourney) as e:
        parse_journey(body)
    paths = {p.path for p in e.value.problems}
    assert {"name", "entry", "holdout_percent", "steps[0].wait.duration", "steps[1].send.channel"} <= paths
    assert "steps[1].id" in paths  # used twice
    assert "steps[2].teleport" in paths


def test_waits_until_a_local_time_and_a_trait_date() -> None:
    runner = StepRunner(None, "Europe/London")  # type: ignore[arg-type]
    j = parse_journey(
        {
            "name": "w",
            "entry": {"event": "E"},
            "steps": [
                {"id": "nine", "wait": {"until_time": "09:00"}},
                {"id": "trial", "wait": {"until_trait": "trial_ends_at", "offset": "-1d"}},
            ],
        }
    )
    # 2026-07-01 20:00 UTC is 05:00 on 2 July in Tokyo and 21:00 on 1 July in London (BST).
    now = dt.datetime(2026, 7, 1, 20, 0, tzinfo=dt.UTC).timestamp()
    tokyo = Person("p1", traits={"timezone": "Asia/Tokyo", "trial_ends_at": "2026-07-10T12:00:00Z"})
    london = Person("p2")
    nine = j.steps[0]
    at_tokyo = runner._wait_until(j, nine, tokyo, {}, now)
    at_london = runner._wait_until(j, nine, london, {}, now)
    assert at_tokyo == dt.datetime(2026, 7, 2, 0, 0, tzinfo=dt.UTC).timestamp()  # 09:00 JST
    assert at_london == dt.datetime(2026, 7, 2, 8, 0, tzinfo=dt.UTC).timestamp()  # 09:00 BST
    at_trial = runner._wait_until(j, j.steps[1], tokyo, {}, now)
    assert at_trial == dt.datetime(2026, 7, 9, 12, 0, tzinfo=dt.UTC).timestamp()
    assert runner._wait_until(j, j.steps[1], london, {}, now) is None  # no date: the wait is skipped


def test_two_proportion_z_test_by_hand() -> None:
    # 60 of 500 treated converted, 30 of 500 held out. Pooled p = 90/1000 = 0.09,
    # SE = sqrt(0.09 * 0.91 * (1/500 + 1/500)) = sqrt(0.0003276) = 0.0180997,
    # z = 0.06 / 0.0180997 = 3.31497, p = 2 * (1 - Phi(3.31497)) = 0.000916.
    # Unpooled SE = sqrt(0.12 * 0.88 / 500 + 0.06 * 0.94 / 500) = sqrt(0.000324) = 0.018,
    # 95% interval 0.06 -/+ 1.959964 * 0.018 = [0.024721, 0.095279]; lift = 0.06 / 0.06 = 100%.
    t = two_proportion_test(60, 500, 30, 500)
    assert t.rate == pytest.approx(0.12)
    assert t.baseline_rate == pytest.approx(0.06)
    assert t.lift == pytest.approx(1.0)
    assert t.z == pytest.approx(3.31497, abs=1e-5)
    assert t.p_value == pytest.approx(0.000916, abs=2e-6)
    assert t.ci_low == pytest.approx(0.024721, abs=1e-6)
    assert t.ci_high == pytest.approx(0.095279, abs=1e-6)
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975)
    same = two_proportion_test(5, 50, 5, 50)
    assert same.z == 0
    assert same.p_value == pytest.approx(1.0)
    nothing = two_proportion_test(0, 10, 0, 10)
    assert nothing.z is None
    assert nothing.lift is None
    assert not math.isnan(nothing.ci_low)


def test_the_api_answers_422_with_every_problem_and_the_cli_exits_2(
    shop: Shop, data_dir: DataDir, tmp_path: Path
) -> None:
    r = shop.client.put("/api/v1/journeys/broken", json=BAD, headers=shop.admin)
    assert r.status_code == 422, r.text
    assert len(r.json()["problems"]) == 12
    assert shop.client.get("/api/v1/journeys/broken", headers=shop.admin).status_code == 404
    shop.put_segment(
        {"name": "home_browsers", "condition": {"trait": "newsletter", "op": "=", "value": True}}
    )
    assert (
        shop.put_journey(
            {**GOOD, "entry": {"schedule": {"segment": "home_browsers", "at": "2030-01-01T00:00:00Z"}}}
        )["version"]
        == 1
    )
    scheduled = {**GOOD, "entry": {"schedule": {"segment": "home_browsers", "at": "2030-01-01T00:00:00Z"}}}
    assert shop.put_journey(scheduled)["version"] == 1, "the same definition again is no new version"
    assert shop.put_journey({**scheduled, "holdout_percent": 20})["version"] == 2
    listed = shop.client.get("/api/v1/journeys", headers=shop.admin).json()["journeys"]
    assert [j["name"] for j in listed] == ["home_offer"]
    assert shop.client.get("/api/v1/journeys", headers={}).status_code == 401
    assert "/api/v1/journeys/{name}/results" in shop.client.get("/openapi.json").json()["paths"]
    shop.close()  # the CLI opens the data directory itself
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(BAD))
    result = CliRunner().invoke(main, ["journeys", "apply", "--data", str(data_dir.path), str(bad_file)])
    assert result.exit_code == 2, result.output
    assert "12 problems" in result.output
    listing = CliRunner().invoke(main, ["journeys", "list", "--data", str(data_dir.path)])
    assert listing.exit_code == 0
    assert "home_offer" in listing.output
