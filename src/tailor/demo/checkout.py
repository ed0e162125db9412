"""Signing in, signing up and paying: the steps that tie a device to a person and create orders."""

from __future__ import annotations

from typing import Any

from tailor.demo.catalogue import STORE_NAME
from tailor.demo.model import PlannedOrder
from tailor.demo.phones import written
from tailor.demo.session import Visit
from tailor.demo.touches import server_track

_SUFFIX = f" | {STORE_NAME}"
_COUPONS = (("WELCOME10", 10), ("AUTUMN15", 15), ("FAMILY20", 20), ("EXTRA10", 10))


def _can_sign_in(v: Visit) -> bool:
    person, device = v.person, v.device
    if person.user_id is None or person.index not in device.users:
        return False
    first = device.logins[device.users.index(person.index)]
    return first is not None and first <= v.world.cal.day_of(v.t)


def sign_in(v: Visit) -> bool:
    """Logs the visiting person in if they can on this device today; True if they are logged in."""
    w, person = v.world, v.person
    if v.user == person.index:
        return True
    if not _can_sign_in(v) or person.user_id is None:
        return False
    state = w.states[person.index]
    if v.user is not None:
        # Someone else is still logged in on the family device; the site keeps the same anonymousId.
        v.view("Account", "/account", "My account" + _SUFFIX)
        v.track("Signed Out", {})
        v.wait(15)
    email = person.email_on(w.cal.day_of(v.t))
    if state.phone_text is None:
        # Decided once: the number as they typed it into their account, if they gave one.
        state.phone_text = written(w.dice, person.mobile) if person.mobile and w.dice.chance(0.7) else ""
    if not state.signed_up:
        state.signed_up = True
        v.view("Create Account", "/account/register", "Create an account" + _SUFFIX)
        v.wait(60)
        # The SDK sends the new userId from the identify call on.
        v.set_user(person.index)
        w.device_user[v.device.index] = person.index
        if not v.web:
            v.alias(person.user_id)
        traits: dict[str, Any] = {
            "email": email,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "created_at": w.cal.iso(v.t),
        }
        if state.phone_text:
            traits["phone"] = state.phone_text
        v.identify(person.user_id, traits)
        v.track("Signed Up", {"method": "email", "newsletter_opt_in": person.email_opt_in})
    else:
        v.view("Sign In", "/account/login", "Sign in" + _SUFFIX)
        v.wait(25)
        v.set_user(person.index)
        w.device_user[v.device.index] = person.index
        traits = {"email": email}
        if w.dice.chance(0.4):
            traits.update(
                first_name=person.first_name,
                last_name=person.last_name,
                name=f"{person.first_name} {person.last_name}",
            )
        if state.phone_text and w.dice.chance(0.3):
            traits["phone"] = state.phone_text
        v.identify(person.user_id, traits)
        v.track("Signed In", {"method": w.dice.pick(("password", "password", "apple", "google"))})
    state.identified_email = email
    household = w.pop.households[person.household]
    if household.family_account is not None and not state.grouped:
        state.grouped = True
        v.group(
            household.family_account,
            {
                "name": f"The {person.last_name} family",
                "plan": "family",
                "address": {"city": household.address.city},
            },
        )
    return True


def _paid(price: int, percent: int) -> int:
    return price - (price * percent + 50) // 100


def checkout(v: Visit, planned: PlannedOrder | None) -> bool:
    """Takes the basket through the checkout; True if an order was placed."""
    w, dice, person = v.world, v.world.dice, v.person
    key = (v.device.index, person.index)
    cart = w.carts.get(key, [])
    if planned is None and not sign_in(v):
        # Only planned guest orders may skip the account: the shop's guest-order export lists them all.
        if dice.chance(0.5):
            v.view("Sign In", "/account/login", "Sign in" + _SUFFIX)
        return False
    products = w.catalogue.products
    order_id = planned.order_id if planned is not None else f"HH-{w.next_id('order')}"
    checkout_id = "chk_" + order_id[3:]
    coupon = dice.pick(_COUPONS) if planned is None and dice.chance(0.14) else None
    percent = coupon[1] if coupon is not None else 0
    lines: list[dict[str, Any]] = []
    total = full = 0
    for position, c in enumerate(cart, 1):
        p = products[c.product]
        unit = _paid(p.price, percent)
        total += unit * c.quantity
        full += p.price * c.quantity
        line: dict[str, Any] = {**p.line(), "price": unit / 100, "quantity": c.quantity, "position": position}
        if c.recommendation_id is not None:
            line["recommendation_id"] = c.recommendation_id
        lines.append(line)
    v.wait(40)
    v.view("Checkout", "/checkout", "Checkout" + _SUFFIX)
    v.track(
        "Checkout Started",
        {
            "checkout_id": checkout_id,
            "order_id": order_id,
            "value": full / 100,
            "currency": "GBP",
            "products": [
                dict(x, price=products[c.product].price / 100) for x, c in zip(lines, cart, strict=True)
            ],
        },
    )
    if coupon is not None:
        v.wait(20)
        v.track("Coupon Entered", {"checkout_id": checkout_id, "order_id": order_id, "coupon_id": coupon[0]})
        v.track(
            "Coupon Applied",
            {
                "checkout_id": checkout_id,
                "order_id": order_id,
                "coupon_id": coupon[0],
                "coupon_name": f"{coupon[1]}% off",
                "discount": (full - total) / 100,
            },
        )
    if planned is None and (person.archetype.buy == 0 or dice.chance(0.12)):
        return False  # abandoned at the payment step
    if planned is not None and planned.identify:
        # The guest's email from the checkout form, as typed.
        email = planned.email if dice.chance(0.8) else planned.email.capitalize()
        v.identify(None, {"email": email})
    v.wait(60)
    method = dice.pick(("card", "card", "card", "paypal", "apple_pay", "klarna"))
    v.track(
        "Payment Info Entered",
        {"checkout_id": checkout_id, "order_id": order_id, "step": 2, "payment_method": method},
    )
    v.wait(15)
    if planned is not None:
        v.t = max(v.t, planned.ms)  # the time the shop's order system recorded
    tax = total - (total * 5 + 3) // 6  # UK prices include 20% VAT
    affiliation = "Online Store" if v.web else ("TV App" if v.device.profile.kind == "tv" else "Mobile App")
    props: dict[str, Any] = {
        "checkout_id": checkout_id,
        "order_id": order_id,
        "affiliation": affiliation,
        "total": total / 100,
        "subtotal": total / 100,
        "revenue": (total - tax) / 100,
        "shipping": 0.0,
        "tax": tax / 100,
        "discount": (full - total) / 100,
        "currency": "GBP",
        "payment_method": method,
        "products": lines,
    }
    if coupon is not None:
        props["coupon"] = coupon[0]
    v.track("Order Completed", props)
    v.wait(5)
    v.view("Order Confirmation", "/checkout/confirmation", "Thank you for your order" + _SUFFIX)
    state = w.states[person.index]
    for c in cart:
        if dice.chance(0.45):
            state.to_review.append((c.product, w.cal.day_of(v.t)))
    del state.to_review[:-5]  # only recent purchases get reviewed; keeps memory flat over long histories
    if person.user_id is not None and state.to_review:
        w.schedule(v.t + int((6 + dice.expo(2)) * 86_400_000), "review_request", person.index)
    if planned is None and dice.chance(0.06) and person.user_id is not None:
        # A return, processed by the warehouse days later.
        returned = [dict(x) for x in lines[: 1 + dice.below(len(lines))]]
        refund = sum(round(x["price"] * 100) * x["quantity"] for x in returned)
        server_track(
            w,
            v.t + int(dice.expo(12) * 86_400_000) + 3 * 86_400_000,
            v.label._replace(session_id="", channel="returns"),
            person.user_id,
            None,
            "Order Refunded",
            {"order_id": order_id, "total": refund / 100, "currency": "GBP", "products": returned},
        )
    w.carts[key] = []
    return True
