"""Each step type against a running Tailor and a real SMTP server: entries, waits, branches, sends, exits."""

from __future__ import annotations

import json
from collections.abc import Callable

import xxhash

from tests.channels.conftest import HttpReceiver, wait_for
from tests.journeys.conftest import OFFERS, Shop


def test_event_entry_wait_for_event_takes_either_branch(shop: Shop) -> None:
    shop.people(3)
    shop.put_journey(
        {
            "name": "basket",
            "entry": {
                "event": {
                    "name": "Product Added",
                    "where": [{"property": "category", "op": "=", "value": "Home"}],
                }
            },
            "re_entry": "always",
            "steps": [
                {
                    "id": "wait_order",
                    "wait_for_event": {"event": "Order Completed", "timeout": "4s", "on_timeout": "nudge"},
                },
                {"id": "thanks", "send": {"channel": "email", "template": "plain_email"}, "next": None},
                {"id": "nudge", "send": {"channel": "email", "template": "event_email"}},
            ],
        }
    )
    shop.track("u0", "Product Added", category="Home", product="Lamp")
    shop.track("u1", "Product Added", category="Home", product="Rug")
    shop.track("u2", "Product Added", category="Garden", product="Hose")  # filtered out
    shop.settle()
    shop.track("u0", "Order Completed", total=30)
    shop.settle()
    shop.delivered(2, timeout=15)
    wait_for(lambda: all(i["state"] == "done" for i in shop.instances("basket")))
    assert shop.mail_to("u0@example.org") == ["Hello U0"]
    assert shop.mail_to("u1@example.org") == ["You left Rug in your basket"]  # the entry event's data
    assert shop.mail_to("u2@example.org") == []
    counts = shop.client.get("/api/v1/journeys/basket/counts", headers=shop.admin).json()["steps"]
    assert counts["wait_order"] == {"event": 1, "timed out": 1}
    assert counts["thanks"] == {"sent": 1}


def test_an_order_in_the_same_batch_as_the_entry_is_not_missed(shop: Shop) -> None:
    shop.people(2)
    for name, extra in (("cart_wait", {}), ("cart_exit", {"exit_on": ["Order Completed"]})):
        steps: list[dict[str, object]] = [
            {
                "id": "wait_order",
                "wait_for_event": {"event": "Order Completed", "timeout": "1h", "on_timeout": "nudge"},
                "next": None,
            },
            {"id": "nudge", "send": {"channel": "email", "template": "event_email"}},
        ]
        if extra:
            steps = [{"id": "pause", "wait": {"duration": "1h"}}, *steps]
        shop.put_journey({"name": name, "entry": {"event": "Product Added"}, **extra, "steps": steps})
    batch = [
        {"type": "track", "userId": "u0", "event": "Product Added", "properties": {"product": "Lamp"}},
        {"type": "track", "userId": "u0", "event": "Order Completed", "properties": {"total": 20}},
        {"type": "track", "userId": "u1", "event": "Product Added", "properties": {"product": "Rug"}},
    ]
    assert shop.client.post("/v1/batch", json={"batch": batch}).status_code == 200
    shop.settle()
    u0, u1 = shop.profile_id("u0"), shop.profile_id("u1")
    waited = {i["profile_id"]: (i["state"], i["step"]) for i in shop.instances("cart_wait")}
    assert waited == {u0: ("done", None), u1: ("waiting", "wait_order")}  # u0's order was seen at once
    exits = {i["profile_id"]: (i["state"], i["reason"]) for i in shop.instances("cart_exit")}
    assert exits == {u0: ("exited", "exit event: Order Completed"), u1: ("waiting", None)}


DRIP = [
    {"id": "hello", "send": {"channel": "email", "template": "plain_email"}},
    {"id": "pause", "wait": {"duration": "1h"}},
    {"id": "nudge", "send": {"channel": "email", "template": "plain_email"}},
]
"""A hello, an hour's pause and a nudge."""


def test_exit_on_conversion_and_re_entry_policies(shop: Shop) -> None:
    shop.people(3)
    for name, policy in (("drip_never", "never"), ("drip_always", "always"), ("drip_hour", "1h")):
        shop.put_journey(
            {
                "name": name,
                "entry": {"event": "Signed Up"},
                "re_entry": policy,
                "exit_on": [{"event": "Order Completed"}],
                "steps": DRIP,
            }
        )
    shop.track("u0", "Signed Up")
    shop.track("u1", "Signed Up")
    shop.settle()
    shop.track("u0", "Order Completed", total=12)  # during the pause: the journeys end for u0
    shop.settle()
    u0, u1 = shop.profile_id("u0"), shop.profile_id("u1")

    def states(name: str) -> list[tuple[str, str, str | None]]:
        return sorted((i["profile_id"], i["state"], i["reason"]) for i in shop.instances(name))

    for name in ("drip_never", "drip_always", "drip_hour"):
        assert states(name) == sorted([(u0, "exited", "exit event: Order Completed"), (u1, "waiting", None)])
    shop.track("u1", "Signed Up")  # while still on the journeys: nobody is on one twice at once
    shop.settle()
    assert all(len(shop.instances(n)) == 2 for n in ("drip_never", "drip_always", "drip_hour"))
    shop.track("u1", "Order Completed", total=5)
    shop.settle()
    shop.track("u1", "Signed Up")  # again, after the first run is over
    shop.settle()
    entries = {
        n: sum(1 for i in shop.instances(n) if i["profile_id"] == u1)
        for n in ("drip_never", "drip_always", "drip_hour")
    }
    assert entries == {"drip_never": 1, "drip_always": 2, "drip_hour": 1}
    shop.delivered(3 + 3 + 1)
    assert len(shop.mail_to("u0@example.org")) == 3  # the hellos, and never a nudge
    assert len(shop.mail_to("u1@example.org")) == 4  # three hellos, and the always journey's second


def test_leaving_an_exit_segment_ends_the_journey_and_an_unknown_one_is_refused(shop: Shop) -> None:
    shop.people(2, newsletter=True)
    shop.put_segment({"name": "subscribers", "condition": {"trait": "newsletter", "op": "=", "value": True}})
    r = shop.client.put(
        "/api/v1/journeys/bad",
        json={
            "name": "bad",
            "entry": {"event": "Signed Up"},
            "exit_on": [{"segment_exit": "no_such_segment"}, {"segment_exit": ""}],
            "steps": [{"id": "hello", "send": {"channel": "email", "template": "plain_email"}}],
        },
        headers=shop.admin,
    )
    assert r.status_code == 422, r.text
    paths = {p["path"]: p["message"] for p in r.json()["problems"]}
    assert "unknown segment 'no_such_segment'" in paths["exit_on"]
    assert "exit_on[1].segment_exit" in paths
    shop.put_journey(
        {
            "name": "newsletter_drip",
            "entry": {"event": "Signed Up"},
            "exit_on": [{"segment_exit": "subscribers"}],
            "steps": DRIP,
        }
    )
    shop.track("u0", "Signed Up")
    shop.track("u1", "Signed Up")
    shop.settle()
    # u0 unsubscribes from the newsletter during the pause: out of the segment, off the journey.
    r = shop.client.post("/v1/identify", json={"userId": "u0", "traits": {"newsletter": False}})
    assert r.status_code == 200, r.text
    shop.settle()
    u0, u1 = shop.profile_id("u0"), shop.profile_id("u1")
    states = sorted((i["profile_id"], i["state"], i["reason"]) for i in shop.instances("newsletter_drip"))
    assert states == sorted([(u0, "exited", "left segment subscribers"), (u1, "waiting", None)])


def test_a_merge_moves_instances_to_the_surviving_profile(shop: Shop) -> None:
    shop.people(2)
    shop.put_journey(
        {
            "name": "basket",
            "entry": {"event": "Product Added"},
            "exit_on": [{"event": "Order Completed"}],
            "steps": [
                {"id": "pause", "wait": {"duration": "1h"}},
                {"id": "remind", "send": {"channel": "email", "template": "plain_email"}},
            ],
        }
    )

    def anonymous(anon: str, event: str) -> None:
        r = shop.client.post("/v1/track", json={"anonymousId": anon, "event": event, "properties": {}})
        assert r.status_code == 200, r.text

    anonymous("tablet-0", "Product Added")  # u0 on a device not yet linked to them
    anonymous("tablet-1", "Product Added")  # u1 likewise, and on the journey as themself too
    shop.track("u1", "Product Added")
    shop.settle()
    assert len([i for i in shop.instances("basket") if i["state"] == "waiting"]) == 3
    for n in (0, 1):  # they sign in on the tablet: the anonymous profile merges into theirs
        r = shop.client.post("/v1/identify", json={"userId": f"u{n}", "anonymousId": f"tablet-{n}"})
        assert r.status_code == 200, r.text
    shop.settle()
    u0, u1 = shop.profile_id("u0"), shop.profile_id("u1")
    got = sorted((i["profile_id"], i["state"], i["reason"]) for i in shop.instances("basket"))
    assert got == sorted(
        [
            (u0, "waiting", None),
            (u1, "waiting", None),  # the tablet's instance entered first and goes on
            (u1, "exited", "profiles merged: already on this journey"),
        ]
    )
    shop.track("u0", "Order Completed", total=20)  # the order ends the instance that began anonymously
    shop.settle()
    states = {(i["profile_id"], i["state"]) for i in shop.instances("basket")}
    assert (u0, "exited") in states
    assert (u0, "waiting") not in states


def _variant(journey: str, step: str, profile_id: str) -> str:
    point = xxhash.xxh64_intdigest(f"split:{journey}:{step}:{profile_id}".encode()) % 10_000 * 2 // 10_000
    return "A" if point == 0 else "B"


def test_broadcast_with_holdout_control_and_a_deterministic_split(shop_factory: Callable[..., Shop]) -> None:
    shop = shop_factory(control_percent=20, chunk_size=7)  # small chunks: many transactions per broadcast
    users = shop.people(60, newsletter=True)
    shop.put_segment({"name": "subscribers", "condition": {"trait": "newsletter", "op": "=", "value": True}})
    shop.put_journey(
        {
            "name": "autumn",
            "entry": {"schedule": {"segment": "subscribers"}},
            "holdout_percent": 25,
            "offers": OFFERS,
            "steps": [
                {
                    "id": "ab",
                    "split": {
                        "variants": [
                            {"name": "A", "weight": 1, "next": "a"},
                            {"name": "B", "weight": 1, "next": "b"},
                        ]
                    },
                },
                {"id": "a", "send": {"channel": "email", "template": "plain_email"}, "next": None},
                {"id": "b", "send": {"channel": "email", "template": "offer_email", "offer": "home10"}},
            ],
        }
    )
    shop.settle()
    instances = shop.instances("autumn")
    assert len(instances) == 60  # everyone recorded as entered, holdout and control too
    groups = {i["profile_id"]: i["grp"] for i in instances}
    treated = [p for p, g in groups.items() if g == "treatment"]
    assert 0 < len(treated) < 60
    assert {"holdout", "control"} <= set(groups.values())
    shop.delivered(len(treated))
    wait_for(lambda: all(s in ("delivered", "sent") for _, s, _ in shop.outbox()))
    emails = {shop.profile_id(u): f"{u}@example.org" for u in users}
    got = {a for r in shop.smtp.received for a in r.rcpt_tos}
    assert got == {emails[p] for p in treated}, "holdout and control people receive nothing"
    assert len(shop.smtp.received) == len(treated), "one email each"
    for i in instances:
        if i["grp"] == "treatment":
            assert i["variant"] == _variant("autumn", "ab", i["profile_id"])
            subjects = shop.mail_to(emails[i["profile_id"]])
            assert ("% off" in subjects[0]) == (i["variant"] == "B")
        else:
            assert (i["state"], i["reason"], i["variant"]) == ("done", i["grp"], None)
    assert {i["variant"] for i in instances if i["grp"] == "treatment"} == {"A", "B"}
    results = shop.client.get("/api/v1/journeys/autumn/results", headers=shop.admin).json()
    sent = {(s["step"], s["variant"]): s["sent"] for s in results["steps"]}
    assert sum(sent.values()) == len(treated)
    assert sent[("b", "B")] == sum(1 for i in instances if i["variant"] == "B")
    assert {g["group"]: g["entered"] for g in results["groups"]} == {
        g: sum(1 for x in groups.values() if x == g) for g in set(groups.values())
    }
    shop.runtime.journeys.runner.run_once()
    assert len(shop.instances("autumn")) == 60, "a schedule's run happens once"


def test_conditions_trait_updates_and_webhooks(shop: Shop, receiver: HttpReceiver) -> None:
    shop.people(3)
    shop.put_segment({"name": "vips", "condition": {"trait": "vip", "op": "=", "value": True}})
    shop.track("u1", "Order Completed", total=99)
    shop.put_journey(
        {
            "name": "loyalty",
            "entry": {"event": "Checked In"},
            "re_entry": "always",
            "steps": [
                {"id": "is_vip", "condition": {"if": {"segment": "vips"}, "then": "hook", "else": "bought"}},
                {
                    "id": "bought",
                    "condition": {
                        "if": {"event": "Order Completed", "within": "1d"},
                        "then": "promote",
                        "else": None,
                    },
                },
                {"id": "promote", "update_trait": {"traits": {"vip": True}, "tags": ["loyal"]}, "next": None},
                {"id": "hook", "webhook": {"url": receiver.url + "/crm", "template": "crm_hook"}},
            ],
        }
    )
    shop.put_journey(
        {
            "name": "vip_welcome",
            "entry": {"segment": {"name": "vips", "on": "enter"}},
            "steps": [{"id": "hello", "send": {"channel": "email", "template": "plain_email"}}],
        }
    )
    shop.track("u0", "Checked In")
    shop.track("u1", "Checked In")
    shop.settle()
    # u1 ordered, so is promoted: an identify event through the event log makes them a VIP.
    u1 = shop.profile_id("u1")

    def traits() -> dict[str, object]:
        r = shop.client.get(f"/api/v1/profiles/{u1}", headers=shop.admin)
        return {k: v["value"] for k, v in r.json()["traits"].items()}

    wait_for(lambda: traits().get("vip") is True, timeout=15)
    assert traits()["tag_loyal"] is True
    shop.settle()
    wait_for(
        lambda: any(
            s["segment"] == "vips"
            for s in shop.client.get(f"/api/v1/profiles/{u1}", headers=shop.admin).json()["segments"]
        )
    )
    shop.track("u1", "Checked In")  # now a VIP: the CRM hears of it through a signed webhook
    shop.settle()
    wait_for(lambda: len(receiver.requests) == 1, timeout=15)
    assert receiver.requests[0].path == "/crm"
    assert json.loads(receiver.requests[0].body) == {"profile": "u1@example.org", "journey": "loyalty"}
    assert "webhook-signature" in receiver.requests[0].headers
    # Entering the segment entered the welcome journey (segment changes are read by id).
    wait_for(lambda: shop.mail_to("u1@example.org") == ["Hello U1"])
    assert [i["profile_id"] for i in shop.instances("vip_welcome")] == [u1]
    outcomes = {(i["profile_id"], i["state"]) for i in shop.instances("loyalty")}
    assert (shop.profile_id("u0"), "done") in outcomes  # not a VIP, no order: the journey just ends


def test_frequency_cap_holds_across_journeys(shop_factory: Callable[..., Shop]) -> None:
    shop = shop_factory(frequency_cap=1)
    shop.people(2)
    for name in ("welcome", "tips"):
        shop.put_journey(
            {
                "name": name,
                "entry": {"event": "Signed Up"},
                "steps": [{"id": "mail", "send": {"channel": "email", "template": "plain_email"}}],
            }
        )
    shop.track("u0", "Signed Up")
    shop.track("u1", "Signed Up")
    shop.settle()
    wait_for(
        lambda: len(shop.outbox()) == 4 and all(s not in ("queued", "sending") for _, s, _ in shop.outbox())
    )
    assert sorted(len(shop.mail_to(f"u{i}@example.org")) for i in range(2)) == [1, 1]
    suppressed = [r for _, s, r in shop.outbox() if s == "suppressed"]
    assert len(suppressed) == 2
    assert all(r is not None and r.startswith("frequency cap") for r in suppressed)


def test_one_offer_per_campaign_whichever_channel_carries_it(
    shop_factory: Callable[..., Shop], receiver: HttpReceiver
) -> None:
    receiver.respond = lambda n, r: (201, json.dumps({"sid": f"SM{n}"}).encode())
    shop = shop_factory(sms=True)
    shop.people(1, phone="+447700900123")
    for name, channel, template in (("home_mail", "email", "offer_email"), ("home_sms", "sms", "offer_sms")):
        shop.put_journey(
            {
                "name": name,
                "campaign": "home_accessories",
                "entry": {"event": "Viewed Home"},
                "offers": OFFERS,
                "steps": [
                    {"id": "offer", "send": {"channel": channel, "template": template, "offer": "home10"}}
                ],
            }
        )
    shop.track("u0", "Viewed Home")
    shop.settle()
    wait_for(lambda: len(shop.smtp.received) + len(receiver.requests) >= 1)
    shop.settle()
    assert len(shop.smtp.received) + len(receiver.requests) == 1, "one offer, on one channel"
    conn = shop.runtime.messaging.connect()
    visits = dict(conn.execute("SELECT journey, outcome FROM journey_visits").fetchall())
    offers = conn.execute("SELECT campaign, code FROM journey_offers").fetchall()
    conn.close()
    assert sorted(visits.values()) == ["not sent: offer already given in this campaign", "sent"]
    assert offers == [("home_accessories", "HOME10")]


def test_a_template_error_at_send_time_fails_that_message_not_the_journey(shop: Shop) -> None:
    r = shop.client.post(
        "/api/v1/templates",
        json={"name": "fav", "channel": "email", "subject": "For you: {{ profile.traits.favourite }}",
              "html": "<p>{{ profile.traits.favourite }}</p>", "text": "{{ profile.traits.favourite }}"},
        headers=shop.admin,
    )  # fmt: skip
    assert r.status_code in (200, 201), r.text
    shop.people(1, favourite="lamps")
    shop.people(1, prefix="v")  # v0 has no favourite
    shop.put_journey(
        {
            "name": "fav",
            "entry": {"event": "Visited"},
            "steps": [
                {"id": "fav", "send": {"channel": "email", "template": "fav"}},
                {"id": "after", "send": {"channel": "email", "template": "plain_email"}},
            ],
        }
    )
    shop.track("u0", "Visited")
    shop.track("v0", "Visited")
    shop.settle()
    shop.delivered(3)
    wait_for(lambda: all(s not in ("queued", "sending") for _, s, _ in shop.outbox()))
    failed = [(k, r) for k, s, r in shop.outbox() if s == "failed"]
    assert len(failed) == 1
    assert failed[0][0].endswith(":fav")
    assert "template error" in (failed[0][1] or "")
    assert shop.mail_to("u0@example.org") == ["For you: lamps", "Hello U0"]
    assert shop.mail_to("v0@example.org") == ["Hello V0"]  # the journey went on
    assert {i["state"] for i in shop.instances("fav")} == {"done"}
