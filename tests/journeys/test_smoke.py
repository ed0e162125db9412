from __future__ import annotations

from tests.journeys.conftest import OFFERS, Shop


def test_event_entry_sends_the_offer(shop: Shop) -> None:
    shop.people(3)
    shop.put_journey(
        {
            "name": "basket",
            "entry": {"event": {"name": "Product Added", "where": [{"property": "category", "op": "=", "value": "Home"}]}},
            "offers": OFFERS,
            "steps": [{"id": "mail", "send": {"channel": "email", "template": "offer_email", "offer": "home10"}}],
        }
    )
    shop.track("u0", "Product Added", category="Home", product="Lamp")
    shop.track("u1", "Product Added", category="Garden", product="Hose")
    shop.settle()
    shop.delivered(1)
    print(shop.outbox(), shop.instances("basket"))
    assert [a for a, _ in shop.received()] == ["u0@example.org"]
