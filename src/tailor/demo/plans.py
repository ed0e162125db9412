"""Guest orders and call-centre calls, planned up front because other systems' records show them."""

from __future__ import annotations

import hashlib

from tailor.demo.catalogue import Catalogue
from tailor.demo.config import SynthConfig
from tailor.demo.dice import Dice, cumulative
from tailor.demo.model import Device, Household, Person, PlannedCall, PlannedOrder
from tailor.demo.phones import Phone
from tailor.demo.rhythm import Calendar

CALL_REASONS = (
    "order status",
    "delivery problem",
    "return or refund",
    "product question",
    "complaint",
    "account help",
    "payment issue",
    "change of address",
    "furniture assembly",
)
_REASON_CUM = cumulative((0.24, 0.16, 0.18, 0.12, 0.08, 0.08, 0.05, 0.04, 0.05))


def caller_contact_id(phone: Phone) -> str:
    """The call-centre platform's contact id for a calling number (one per number, not per person)."""
    return "cti-" + hashlib.sha1(phone.e164.encode()).hexdigest()[:14]


def pick_product(dice: Dice, catalogue: Catalogue, person: Person) -> int:
    """A product from one of the categories a person shops in."""
    category = person.categories[dice.index(person.category_weights)]
    return catalogue.pick(dice, category).index


def _anonymous_on(device: Device, day: int) -> bool:
    """Whether a personal device on which one could shop is still logged out on a day."""
    first = device.logins[0]
    return not device.shared and device.profile.kind != "tv" and (first is None or first > day)


def plan_guest_orders(
    dice: Dice,
    config: SynthConfig,
    cal: Calendar,
    catalogue: Catalogue,
    devices: list[Device],
    person: Person,
) -> tuple[PlannedOrder, ...]:
    """Online orders a person places without logging in, on a device that is not logged in that day."""
    if person.archetype.name == "browser":
        return ()
    share = config.guest_share * (2.0 if person.user_id is None else 0.5)
    if not dice.chance(min(1.0, share)):
        return ()
    orders = []
    lo, hi = person.active
    for _ in range(1 + dice.chance(0.3) + dice.chance(0.1)):
        day = dice.between(lo, hi)
        # A personal device, since on a family device someone else may be logged in.
        candidates = [d for d in person.devices if _anonymous_on(devices[d], day)]
        if not candidates:
            continue
        items: dict[int, int] = {}
        for _ in range(dice.geometric(1.6)):
            product = pick_product(dice, catalogue, person)
            items[product] = items.get(product, 0) + (2 if dice.chance(0.12) else 1)
        device = dice.pick(candidates)
        orders.append(
            PlannedOrder(
                order_id="",  # numbered later, in time order
                day=day,
                ms=cal.moment(dice, day, devices[device].profile.kind),
                device=device,
                items=tuple(items.items()),
                email=person.email_on(day),
                tracked=not dice.chance(config.untracked_guest_rate),
                identify=dice.chance(0.5),
            )
        )
    return tuple(sorted(orders, key=lambda o: o.ms))


def plan_calls(
    dice: Dice,
    config: SynthConfig,
    cal: Calendar,
    person: Person,
    household: Household,
) -> tuple[PlannedCall, ...]:
    """Calls a person makes to the call centre."""
    age_boost = 1.8 if person.birth_date.year < 1965 else 1.0
    if not dice.chance(min(1.0, config.call_share * age_boost)):
        return ()
    calls = []
    lo, hi = person.active
    for _ in range(dice.geometric(1.5)):
        r = dice.u()
        if r < 0.1:
            phone = None  # number withheld
        elif r < 0.35 and household.landline is not None:
            phone = household.landline
        else:
            phone = person.mobile or household.landline
        day = dice.between(lo, hi)
        calls.append(
            PlannedCall(
                call_id="",  # numbered later, in time order
                day=day,
                ms=cal.moment(dice, day, "call"),
                reason=CALL_REASONS[dice.index(_REASON_CUM)],
                phone=phone,
                verified=person.user_id is not None and dice.chance(0.7),
            )
        )
    return tuple(sorted(calls, key=lambda c: c.ms))
