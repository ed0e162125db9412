"""The event stream: ordered, valid Segment messages with consistent e-commerce facts."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tailor.demo.catalogue import CATEGORIES
from tailor.demo.synth import CustomerBase, EventLabel, SynthConfig, generate
from tailor.demo.timeline import batches

Labelled = list[tuple[EventLabel, dict[str, Any]]]
TYPES = {"track", "identify", "page", "screen", "alias", "group"}


def _pence(amount: float) -> int:
    return round(amount * 100)


def test_events_are_ordered_by_timestamp_within_the_history(events: list[dict[str, Any]]) -> None:
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert all(s.utcoffset() == timedelta(0) for s in stamps)
    assert stamps == sorted(stamps)
    config: SynthConfig = SynthConfig(people=400, seed=7)
    assert stamps[0] >= config.end - timedelta(days=config.days)
    assert stamps[-1] < config.end


def test_every_message_is_a_valid_segment_message(events: list[dict[str, Any]]) -> None:
    errors = []
    for e in events:
        where = f"{e.get('messageId')}:"
        if e.get("type") not in TYPES:
            errors.append(f"{where} type {e.get('type')!r}")
        if not (e.get("userId") or e.get("anonymousId")):
            errors.append(f"{where} neither userId nor anonymousId")
        if not isinstance(e.get("context"), dict) or not e["context"]["library"]["name"]:
            errors.append(f"{where} context.library")
        kind = e["type"]
        if kind == "track" and not (isinstance(e.get("event"), str) and e["event"]):
            errors.append(f"{where} track without event")
        if kind in ("track", "page", "screen") and not isinstance(e.get("properties"), dict):
            errors.append(f"{where} {kind} without properties")
        if kind in ("page", "screen") and not e.get("name"):
            errors.append(f"{where} {kind} without name")
        if kind == "identify" and not isinstance(e.get("traits"), dict):
            errors.append(f"{where} identify without traits")
        if kind == "alias" and not (e.get("previousId") and e.get("userId")):
            errors.append(f"{where} alias without previousId and userId")
        if kind == "group" and not (e.get("groupId") and isinstance(e.get("traits"), dict)):
            errors.append(f"{where} group without groupId")
    assert errors == []


def test_message_ids_are_unique(events: list[dict[str, Any]]) -> None:
    ids = [e["messageId"] for e in events]
    assert all(ids)
    assert len(set(ids)) == len(ids)


def test_device_context_matches_the_sdk(events: list[dict[str, Any]]) -> None:
    web = [e for e in events if e["context"]["library"]["name"] == "analytics.js"]
    apps = [e for e in events if e["context"]["library"]["name"] in ("analytics-swift", "analytics-kotlin")]
    assert web
    assert apps
    for e in web:
        ctx = e["context"]
        assert ctx["userAgent"]
        assert ctx["ip"]
        assert ctx["locale"] == "en-GB"
        if e["type"] == "page":
            assert ctx["page"]["url"].startswith("https://")
            assert ctx["page"]["path"].startswith("/")
    for e in apps:
        assert e["context"]["device"]["id"]
        assert e["context"]["app"]["name"]
        assert e["context"]["os"]["name"]
    assert {e["context"]["device"]["type"] for e in apps} >= {"ios", "android", "tv"}


def test_volume_is_in_the_promised_range(events: list[dict[str, Any]]) -> None:
    # 2,000 people give roughly 60-150k events, so 400 give roughly 12-30k.
    assert 12_000 <= len(events) <= 32_000


def test_ecommerce_spec_events_are_present(events: list[dict[str, Any]]) -> None:
    names = Counter(e["event"] for e in events if e["type"] == "track")
    expected = {
        "Products Searched", "Product List Viewed", "Product Viewed", "Product Added", "Product Removed",
        "Cart Viewed", "Checkout Started", "Payment Info Entered", "Order Completed", "Product Reviewed",
        "Coupon Applied", "Signed Up", "Signed In", "Recommendation Shown", "Product Clicked",
        "Email Delivered", "Email Opened", "Email Link Clicked", "SMS Delivered", "Call Completed",
        "Application Opened",
    }  # fmt: skip
    assert expected <= set(names)
    assert names["Product Viewed"] > names["Product Added"] > names["Order Completed"] > 0


def test_order_totals_equal_the_sum_of_their_lines(base: CustomerBase, events: list[dict[str, Any]]) -> None:
    catalogue = {p.product_id: p for p in base.population.catalogue.products}
    orders = [e for e in events if e.get("event") == "Order Completed"]
    assert orders
    for e in orders:
        props = e["properties"]
        lines = props["products"]
        assert lines
        assert props["currency"] == "GBP"
        assert _pence(props["total"]) == sum(_pence(x["price"]) * x["quantity"] for x in lines)
        assert _pence(props["revenue"]) + _pence(props["tax"]) == _pence(props["total"])
        for x in lines:
            product = catalogue[x["product_id"]]
            assert x["sku"] == product.sku
            assert x["name"] == product.name
            assert x["category"] in CATEGORIES
            assert 0 < _pence(x["price"]) <= product.price


def test_online_orders_follow_a_checkout_on_the_same_device(events: list[dict[str, Any]]) -> None:
    started = {
        e["properties"]["order_id"]: e["anonymousId"] for e in events if e.get("event") == "Checkout Started"
    }
    online = [e for e in events if e.get("event") == "Order Completed" and "checkout_id" in e["properties"]]
    assert online
    for e in online:
        assert started[e["properties"]["order_id"]] == e["anonymousId"]
    completed = {e["properties"]["order_id"] for e in online}
    assert set(started) - completed, "some checkouts are abandoned"


def test_baskets_are_abandoned(labelled: Labelled) -> None:
    added = {label.session_id for label, e in labelled if e.get("event") == "Product Added"}
    checked_out = {label.session_id for label, e in labelled if e.get("event") == "Checkout Started"}
    assert len(added - checked_out) > len(added) / 3


def test_recommendations_are_shown_and_sometimes_bought(events: list[dict[str, Any]]) -> None:
    shown = {e["properties"]["recommendation_id"] for e in events if e.get("event") == "Recommendation Shown"}
    bought = {
        line["recommendation_id"]
        for e in events
        if e.get("event") == "Order Completed"
        for line in e["properties"]["products"]
        if "recommendation_id" in line
    }
    assert bought
    assert bought <= shown
    assert len(bought) < len(shown) / 10


def test_reviews_carry_text_whose_tone_matches_the_rating(events: list[dict[str, Any]]) -> None:
    reviews = [e["properties"] for e in events if e.get("event") == "Product Reviewed"]
    assert reviews
    assert all(r["review_body"] and 1 <= r["rating"] <= 5 and r["review_id"] for r in reviews)
    good = [r["review_body"] for r in reviews if r["rating"] >= 4]
    bad = [r["review_body"] for r in reviews if r["rating"] <= 2]
    assert good
    assert bad
    assert not any("Disappointed" in body or "Terrible" in body for body in good)
    assert not any("Highly recommend" in body for body in bad)


def test_campaign_arrivals_carry_utm_tags_in_context_and_url(events: list[dict[str, Any]]) -> None:
    tagged = [e for e in events if e["type"] == "page" and "campaign" in e["context"]]
    assert tagged
    for e in tagged:
        query = parse_qs(urlsplit(e["context"]["page"]["url"]).query)
        assert query["utm_source"] == [e["context"]["campaign"]["source"]]
        assert query["utm_medium"] == [e["context"]["campaign"]["medium"]]
    mediums = {e["context"]["campaign"]["medium"] for e in tagged}
    assert {"cpc", "email", "display", "paid_social", "affiliate"} <= mediums


def test_every_channel_of_arrival_is_used(labelled: Labelled) -> None:
    channels = Counter(label.channel for label, _ in labelled if label.session_id)
    visits = {label.session_id: label.channel for label, _ in labelled if label.session_id}
    mix = Counter(visits.values())
    assert set(channels) >= {"direct", "organic_search", "paid_search", "organic_social", "paid_social",
                             "display", "referral", "email", "app"}  # fmt: skip
    assert mix["direct"] > mix["email"] > 0
    offline = {label.channel for label, _ in labelled if not label.session_id}
    assert {"email", "sms", "call_centre", "store"} <= offline


def test_weekends_and_seasons_shape_the_traffic() -> None:
    config = SynthConfig(people=300, days=365, end=datetime(2027, 1, 1, tzinfo=UTC), seed=5)
    per_day: Counter[str] = Counter()
    for e in generate(config).events():
        if e["type"] in ("page", "screen"):
            per_day[e["timestamp"][:10]] += 1
    by_month: defaultdict[int, int] = defaultdict(int)
    for day, n in per_day.items():
        by_month[int(day[5:7])] += n
    assert by_month[11] > by_month[2] * 1.2  # the run-up to Christmas beats February
    by_weekday: Counter[int] = Counter()
    for day, n in per_day.items():
        by_weekday[datetime.fromisoformat(day).weekday()] += n
    assert by_weekday[6] > by_weekday[4] * 1.15  # Sunday evenings beat Fridays


def test_people_shop_in_one_category_or_across_several(base: CustomerBase, labelled: Labelled) -> None:
    bought: defaultdict[str, set[str]] = defaultdict(set)
    for label, e in labelled:
        if e.get("event") == "Order Completed":
            bought[label.person_id].update(x["category"] for x in e["properties"]["products"])
    sizes = Counter(min(len(c), 3) for c in bought.values())
    assert sizes[1] > 0
    assert sizes[3] > 0


def test_high_touch_people_who_never_buy_exist(base: CustomerBase, labelled: Labelled) -> None:
    visits: Counter[str] = Counter()
    buyers = set()
    for label, e in labelled:
        if e["type"] in ("page", "screen"):
            visits[label.person_id] += 1
        if e.get("event") == "Order Completed":
            buyers.add(label.person_id)
    busy = [p for p, n in visits.items() if n >= 30]
    assert any(p not in buyers for p in busy)
    share = len(buyers) / base.config.people
    assert 0.2 < share < 0.6


def test_events_are_released_in_batches_that_do_not_grow_with_the_history() -> None:
    def sizes(days: int) -> list[int]:
        base = generate(SynthConfig(people=300, days=days, seed=3))
        return [len(batch) for batch in batches(base.population, base.config)]

    short, long = sizes(30), sizes(120)
    assert max(long) < 2 * max(short)
    assert max(long) < sum(long) / 50


def test_events_share_no_nested_objects(events: list[dict[str, Any]]) -> None:
    # Consumers may enrich or redact events in place; that must never leak into another event.
    owner: dict[int, str] = {}

    def walk(node: object, message_id: str) -> None:
        if isinstance(node, dict | list):
            assert owner.setdefault(id(node), message_id) == message_id
            for child in node.values() if isinstance(node, dict) else node:
                walk(child, message_id)

    for e in events:
        walk(e, e["messageId"])
