"""Touches outside a visit: marketing email and SMS, call-centre calls and shop-till purchases."""

from __future__ import annotations

from typing import Any

from tailor.demo.campaigns import Campaign
from tailor.demo.catalogue import STORE_NAME
from tailor.demo.channels import message_arrival
from tailor.demo.model import Person, PlannedCall
from tailor.demo.plans import caller_contact_id, pick_product
from tailor.demo.pools import TOWNS
from tailor.demo.world import EventLabel, World

_PLATFORM = ("analytics-python", "2.3.3")  # the email and SMS platform's Segment integration
_TILLS = ("analytics-java", "3.5.1")
_TELEPHONY = ("analytics-node", "2.1.2")
_STORES = tuple((t.store, t.name[:3].upper()) for t in TOWNS if t.store is not None)
_HOUR = 3_600_000


def server_track(
    world: World,
    ms: int,
    label: EventLabel,
    user_id: str | None,
    anonymous_id: str | None,
    event: str,
    properties: dict[str, Any],
    library: tuple[str, str] = _PLATFORM,
    traits: dict[str, Any] | None = None,
) -> None:
    """Queues a track call sent by a back-office system rather than by a device."""
    msg: dict[str, Any] = {"type": "track", "messageId": "", "timestamp": world.cal.iso(ms)}
    if user_id is not None:
        msg["userId"] = user_id
    if anonymous_id is not None:
        msg["anonymousId"] = anonymous_id
    msg["event"] = event
    msg["properties"] = properties
    context: dict[str, Any] = {"library": {"name": library[0], "version": library[1]}}
    if traits:
        context["traits"] = dict(traits)  # callers reuse one traits dict for several messages
    msg["context"] = context
    world.push(ms, label, msg)


def _ids(world: World, person: Person) -> tuple[str | None, str | None]:
    """The (userId, anonymousId) a back-office system knows a person by."""
    if person.user_id is not None and world.states[person.index].signed_up:
        return person.user_id, None
    return None, person.subscriber_id


def send_campaign(world: World, campaign: Campaign, send_ms: int) -> None:
    """Queues a campaign's delivery to everyone subscribed; the platform sends over half an hour."""
    email = campaign.channel == "email"
    for person in world.pop.people:
        state = world.states[person.index]
        subscribed = state.email_subscribed if email else state.sms_subscribed and person.mobile is not None
        if not subscribed or campaign.day < person.active[0] or (person.user_id and not state.signed_up):
            continue
        world.schedule(
            send_ms + world.dice.below(1_800_000), "message", person.index, (campaign, "delivered")
        )


def message(world: World, person: Person, campaign: Campaign, stage: str, ms: int) -> None:
    """One step of a campaign message reaching a person: "delivered" or "opened"."""
    user_id, anon = _ids(world, person)
    label = EventLabel(person.person_id, "", campaign.channel)
    if campaign.channel == "sms":
        if person.mobile is not None:
            _sms(world, campaign, person, ms, label, user_id, anon, {"phone": person.mobile.e164})
        return
    dice = world.dice
    address = person.email_on(campaign.day)
    traits = {"email": address}
    props = {
        "campaign_id": campaign.key,
        "campaign_name": campaign.name,
        "email_id": f"{campaign.key}-{person.subscriber_id}",
        "email_subject": campaign.subject,
    }
    engaged = person.archetype.engagement * (0.4 if campaign.day > person.active[1] else 1.0)
    if stage == "delivered":
        server_track(world, ms, label, user_id, anon, "Email Delivered", props, traits=traits)
        # Apple Mail privacy protection fetches every message, so iCloud users "open" everything.
        if address.endswith("@icloud.example"):
            world.schedule(ms + 120_000, "message", person.index, (campaign, "opened"))
        elif dice.chance(0.2 * engaged):
            world.schedule(ms + int(dice.expo(4 * _HOUR)), "message", person.index, (campaign, "opened"))
        return
    server_track(world, ms, label, user_id, anon, "Email Opened", props, traits=traits)
    if dice.chance(0.004 / max(engaged, 0.2)):
        unsubscribed = {"campaign_id": campaign.key, "campaign_name": campaign.name, "list": "marketing"}
        server_track(world, ms + 30_000, label, user_id, anon, "Unsubscribed", unsubscribed, traits=traits)
        world.states[person.index].email_subscribed = False
    elif dice.chance(0.13 * engaged):
        _click(world, campaign, person, ms, label, user_id, anon, traits, "Email Link Clicked", dict(props))


def _sms(
    world: World,
    campaign: Campaign,
    person: Person,
    ms: int,
    label: EventLabel,
    user_id: str | None,
    anon: str | None,
    traits: dict[str, Any],
) -> None:
    props = {"campaign_id": campaign.key, "campaign_name": campaign.name, "message_body": campaign.subject}
    server_track(world, ms, label, user_id, anon, "SMS Delivered", props, traits=traits)
    if world.dice.chance(0.06 * person.archetype.engagement):
        _click(world, campaign, person, ms, label, user_id, anon, traits, "SMS Link Clicked", dict(props))


def _click(
    world: World,
    campaign: Campaign,
    person: Person,
    t: int,
    label: EventLabel,
    user_id: str | None,
    anon: str | None,
    traits: dict[str, Any],
    event: str,
    props: dict[str, Any],
) -> None:
    """A click on a message link, and the visit it starts with the link's UTM tags."""
    dice = world.dice
    slot = dice.pick(("hero", "hero", "product_grid_1", "product_grid_2", "footer"))
    t += int(dice.expo(180_000))
    url = f"https://www.hartleyhale.example/{campaign.key}"
    server_track(
        world, t, label, user_id, anon, event, {**props, "link_id": slot, "link_url": url}, traits=traits
    )
    source = "newsletter" if campaign.key.startswith("newsletter") else "crm"
    tags = {"source": source, "medium": campaign.channel, "name": campaign.key, "content": slot}
    category = campaign.category or dice.pick(person.categories)
    world.schedule(t + 2_000, "visit", person.index, message_arrival(campaign.channel, tags, category))


def review_request(world: World, person: Person, ms: int) -> None:
    """The transactional email asking a recent buyer for a review, and the visit if they follow it."""
    dice = world.dice
    if not world.states[person.index].to_review or person.user_id is None:
        return
    label = EventLabel(person.person_id, "", "email")
    props = {
        "campaign_id": "review_request",
        "campaign_name": "Review request",
        "email_subject": "How did we do?",
    }
    traits = {"email": person.email_on(world.cal.day_of(ms))}
    server_track(world, ms, label, person.user_id, None, "Email Delivered", props, traits=traits)
    if not dice.chance(0.5):
        return
    ms += int(dice.expo(5 * _HOUR))
    server_track(world, ms, label, person.user_id, None, "Email Opened", dict(props), traits=traits)
    if dice.chance(0.5):
        ms += int(dice.expo(60_000))
        url = "https://www.hartleyhale.example/account/reviews"
        clicked = {**props, "link_id": "stars", "link_url": url}
        server_track(world, ms, label, person.user_id, None, "Email Link Clicked", clicked, traits=traits)
        tags = {"source": "transactional", "medium": "email", "name": "review_request", "content": "stars"}
        world.schedule(ms + 2_000, "visit", person.index, message_arrival("email", tags, "", "home"))


def call(world: World, person: Person, planned: PlannedCall, ms: int) -> None:
    """A call to the call centre, as the telephony system reports it."""
    if planned.phone is None and not planned.verified:
        return  # withheld number and no account found: the CDP hears nothing of it
    dice = world.dice
    user_id = person.user_id if planned.verified else None
    anon = caller_contact_id(planned.phone) if user_id is None and planned.phone is not None else None
    traits = {"phone": planned.phone.e164} if planned.phone is not None else None
    props = {
        "call_id": planned.call_id,
        "reason": planned.reason,
        "direction": "inbound",
        "duration_seconds": 60 + int(dice.expo(300)),
        "queue": "customer_service",
        "outcome": dice.pick(("resolved", "resolved", "resolved", "callback", "escalated")),
    }
    server_track(
        world,
        ms,
        EventLabel(person.person_id, "", "call_centre"),
        user_id,
        anon,
        "Call Completed",
        props,
        library=_TELEPHONY,
        traits=traits,
    )


def store_purchase(world: World, person: Person, ms: int) -> None:
    """A purchase at a shop till, seen by the CDP through the loyalty app or the payment card."""
    dice, catalogue = world.dice, world.catalogue
    paid_by = dice.pick(("contactless", "contactless", "card", "cash"))
    state = world.states[person.index]
    if person.scans_loyalty and person.user_id is not None and state.signed_up:
        user_id, anon = person.user_id, None
    elif paid_by != "cash" and person.pos_token is not None:
        user_id, anon = None, person.pos_token
    else:
        return  # cash and no loyalty app: an anonymous sale the CDP never sees
    town = TOWNS[world.pop.households[person.household].town]
    store, code = next(
        ((s, c) for s, c in _STORES if s == town.store), _STORES[person.household % len(_STORES)]
    )
    items: dict[int, int] = {}
    for _ in range(dice.geometric(1.8)):
        product = pick_product(dice, catalogue, person)
        items[product] = items.get(product, 0) + 1
    lines = [{**catalogue.products[p].line(), "quantity": q} for p, q in items.items()]
    if user_id is not None:
        state.to_review += [(p, world.cal.day_of(ms)) for p in items if dice.chance(0.15)]
        del state.to_review[:-5]
    total = sum(catalogue.products[p].price * q for p, q in items.items())
    tax = total - (total * 5 + 3) // 6
    props = {
        "order_id": f"POS-{code}-{world.next_id('store'):07d}",
        "affiliation": f"{STORE_NAME} {store}",
        "store_id": f"store-{code.lower()}",
        "total": total / 100,
        "subtotal": total / 100,
        "revenue": (total - tax) / 100,
        "tax": tax / 100,
        "discount": 0.0,
        "shipping": 0.0,
        "currency": "GBP",
        "payment_method": paid_by,
        "products": lines,
    }
    server_track(
        world,
        ms,
        EventLabel(person.person_id, "", "store"),
        user_id,
        anon,
        "Order Completed",
        props,
        library=_TILLS,
    )
