"""What people do during a visit: browse, search, get recommendations, fill and abandon baskets."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from tailor.demo.catalogue import CATEGORIES, LIST_SIZE, STORE_NAME
from tailor.demo.channels import SLUGS, search_term
from tailor.demo.checkout import checkout, sign_in
from tailor.demo.model import PlannedOrder
from tailor.demo.pools import JUNK_EMAILS, JUNK_USER_IDS
from tailor.demo.reviews import rating, review_text
from tailor.demo.session import Visit
from tailor.demo.world import CartLine

_SUFFIX = f" | {STORE_NAME}"
_BOUNCE = {"desktop": 0.3, "mobile_web": 0.38, "app": 0.12, "tv": 0.2}
_STEPS = {"desktop": 4.0, "mobile_web": 3.2, "app": 3.6, "tv": 2.5}


def listing(v: Visit, category: str, list_id: str | None = None) -> list[int]:
    """A category page and the products it lists."""
    w = v.world
    v.view("Category", f"/c/{SLUGS[category]}", category + _SUFFIX, {"category": category})
    shown = w.catalogue.sample(w.dice, category, 10)[:LIST_SIZE]
    _list_viewed(v, list_id or SLUGS[category], category, shown)
    return shown


def _list_viewed(v: Visit, list_id: str, category: str, shown: list[int]) -> None:
    products = v.world.catalogue.products
    lines = [products[p].listed(position) for position, p in enumerate(shown, 1)]
    v.track("Product List Viewed", {"list_id": list_id, "category": category, "products": lines})


def search(v: Visit, category: str, term: str = "") -> list[int]:
    """A search and its results."""
    w = v.world
    if not term:
        item = w.catalogue.pick(w.dice, category).item
        term = search_term(w.dice, category, item)
    v.view("Search Results", f"/search?q={quote_plus(term)}", f"Search results for '{term}'" + _SUFFIX)
    v.track("Products Searched", {"query": term})
    shown = w.catalogue.sample(w.dice, category, 8)[:6]
    _list_viewed(v, "search_results", category, shown)
    return shown


def view_product(v: Visit, product: int, recommendation_id: str | None = None) -> None:
    """A product page."""
    p = v.world.catalogue.products[product]
    v.view("Product", p.url.split(".example", 1)[1], p.name + _SUFFIX, {"category": p.category})
    props = p.viewed()
    if recommendation_id is not None:
        props["recommended"] = True
        props["recommendation_id"] = recommendation_id
    v.track("Product Viewed", props)


def recommend(v: Visit, source: int, placement: str) -> tuple[str, list[int]]:
    """Cross-sell recommendations shown next to a product or the basket."""
    w, dice = v.world, v.world.dice
    strategy = dice.pick(("bought_together", "bought_together", "similar", "trending"))
    source_category = w.catalogue.products[source].category
    if strategy == "bought_together":
        # Things bought with it usually come from another category: a lamp with an armchair.
        category = dice.pick([c for c in CATEGORIES if c != source_category])
    elif strategy == "similar":
        category = source_category
    else:
        category = dice.pick(v.person.categories)
    shown = [i for i in w.catalogue.sample(dice, category, 6) if i != source][:4]
    rec_id = f"rec-{w.next_id('rec'):08d}"
    lines = [w.catalogue.products[p].listed(position) for position, p in enumerate(shown, 1)]
    v.track(
        "Recommendation Shown",
        {
            "recommendation_id": rec_id,
            "placement": placement,
            "strategy": strategy,
            "source_product_id": w.catalogue.products[source].product_id,
            "products": lines,
        },
    )
    return rec_id, shown


def cart_of(v: Visit) -> list[CartLine]:
    """The basket of the person on this device."""
    return v.world.carts.setdefault((v.device.index, v.person.index), [])


def cart_id(v: Visit) -> str:
    """The basket's id; the shop keys baskets on the browser cookie."""
    return "cart_" + v.anon.replace("-", "")[:16].lower()


def add_to_cart(v: Visit, product: int, quantity: int, recommendation_id: str | None) -> None:
    """Puts a product in the basket."""
    p = v.world.catalogue.products[product]
    cart_of(v).append(CartLine(product, quantity, recommendation_id))
    props: dict[str, Any] = {"cart_id": cart_id(v), **p.line(), "quantity": quantity, "currency": "GBP"}
    if recommendation_id is not None:
        props["recommendation_id"] = recommendation_id
    v.track("Product Added", props)


def remove_from_cart(v: Visit) -> None:
    """Takes the last product back out of the basket."""
    line = cart_of(v).pop()
    p = v.world.catalogue.products[line.product]
    v.track(
        "Product Removed", {"cart_id": cart_id(v), **p.line(), "quantity": line.quantity, "currency": "GBP"}
    )


def view_cart(v: Visit, cross_sell: bool = True) -> None:
    """The basket page, maybe with cross-sell recommendations."""
    products = v.world.catalogue.products
    v.view("Basket", "/basket", "Your basket" + _SUFFIX)
    lines = [
        {**products[c.product].line(), "quantity": c.quantity, "position": i + 1}
        for i, c in enumerate(cart_of(v))
    ]
    v.track("Cart Viewed", {"cart_id": cart_id(v), "products": lines})
    cart = cart_of(v)
    if cross_sell and cart and v.world.dice.chance(0.5):
        # Cross-sell in the basket: "complete the look" or "goes well with".
        rec_id, recs = recommend(v, cart[-1].product, "basket")
        if recs and v.world.dice.chance(0.08 + 0.2 * v.person.archetype.buy):
            v.wait(20)
            add_to_cart(v, v.world.dice.pick(recs), 1, rec_id)


def _review_due(v: Visit) -> bool:
    """Whether something the person bought arrived a few days ago and could be reviewed now."""
    pending = v.world.states[v.person.index].to_review
    return bool(pending) and pending[0][1] + 4 <= v.world.cal.day_of(v.t)


def review(v: Visit) -> None:
    """A review of something bought a while ago."""
    w = v.world
    if not sign_in(v):
        return  # reviews need an account
    product_index, _ = w.states[v.person.index].to_review.pop(0)
    p = w.catalogue.products[product_index]
    view_product(v, product_index)
    v.wait(120)
    stars = rating(w.dice, p)
    v.track(
        "Product Reviewed",
        {
            "product_id": p.product_id,
            "sku": p.sku,
            "name": p.name,
            "category": p.category,
            "review_id": f"rev-{w.next_id('review'):07d}",
            "review_body": review_text(w.dice, p, stars),
            "rating": stars,
        },
    )


def land(v: Visit) -> list[int]:
    """The first screen of a visit, and the products it shows."""
    a, kind = v.arrival, v.device.profile.kind
    if kind in ("app", "tv"):
        v.track("Application Opened", {"from_background": v.world.dice.chance(0.4), "version": "5.12.0"})
        v.view("Home", "/", "Home")
        return listing(v, a.category or v.person.categories[0]) if a.landing != "home" else []
    if a.landing == "product":
        product = v.world.catalogue.pick(v.world.dice, a.category).index
        view_product(v, product)
        return [product]
    if a.landing == "category":
        return listing(v, a.category)
    if a.landing == "search":
        return search(v, a.category, a.term)
    if a.landing == "sale":
        v.view("Sale", "/sale", "Sale" + _SUFFIX)
        shown = [v.world.catalogue.pick(v.world.dice, c).index for c in v.person.categories for _ in range(2)]
        _list_viewed(v, "sale", a.category or "Sale", shown)
        return shown
    v.view("Home", "/", f"{STORE_NAME} | Fashion, Home & Furniture")
    return []


def _junk_identify(v: Visit) -> None:
    """A broken form or test script sending placeholder identifiers."""
    dice = v.world.dice
    traits = {"email": dice.pick(JUNK_EMAILS)} if dice.chance(0.7) else {}
    v.identify(dice.pick(JUNK_USER_IDS), traits)


def _refresh_identity(v: Visit) -> None:
    """Re-identifies a logged-in user whose email changed; apps also re-identify on start."""
    w, person = v.world, v.person
    state = w.states[person.index]
    email = person.email_on(w.cal.day_of(v.t))
    if state.identified_email != email or (not v.web and w.dice.chance(0.3)):
        v.identify(person.user_id, {"email": email})
        state.identified_email = email


def browse(v: Visit, planned: PlannedOrder | None = None) -> None:
    """A whole visit: landing, signing in, browsing, and perhaps buying."""
    w, dice, person = v.world, v.world.dice, v.person
    kind = v.device.profile.kind
    shown = land(v)
    if v.user == person.index:
        _refresh_identity(v)
    if v.web and dice.chance(w.config.junk_rate):
        _junk_identify(v)
    if planned is not None:
        # A fresh basket, so that the order matches the shop's guest-order export exactly.
        w.carts[(v.device.index, person.index)] = []
        for product, quantity in planned.items:
            v.wait(40)
            view_product(v, product)
            v.wait(30)
            add_to_cart(v, product, quantity, None)
        v.wait(30)
        view_cart(v, cross_sell=False)
        checkout(v, planned)
        return
    if dice.chance(_BOUNCE[kind] * (0.6 if v.label.channel in ("email", "sms") else 1.0)):
        return
    # Most people who can log in here do so straight away; the rest only when they come to pay.
    if v.user != person.index and dice.chance(0.6 if v.user is None else 0.35):
        sign_in(v)
    asked = v.campaign is not None and v.campaign.get("name") == "review_request"
    if _review_due(v) and (asked or dice.chance(0.3)):
        review(v)
    buyer = person.archetype.buy > 0
    add_chance = 0.14 if buyer else 0.2
    last: int | None = shown[0] if len(shown) == 1 else None
    for _ in range(dice.geometric(_STEPS[kind] * (1.6 if not buyer else 1.0))):
        v.wait(45)
        r = dice.u()
        cart = cart_of(v)
        if r < 0.06 and cart:
            view_cart(v)
        elif r < 0.5 and shown:
            last = shown[int(len(shown) * dice.u() ** 2)]
            view_product(v, last)
            if dice.chance(0.4 if v.web else 0.3):
                v.wait(10)
                rec_id, recs = recommend(v, last, "product_page")
                if recs and dice.chance(0.1):
                    last = dice.pick(recs)
                    v.track(
                        "Product Clicked", {"recommendation_id": rec_id, **w.catalogue.products[last].line()}
                    )
                    view_product(v, last, rec_id)
                    if dice.chance(0.35 * (person.archetype.buy + 0.2)):
                        add_to_cart(v, last, 1, rec_id)
                    continue
            if dice.chance(add_chance):
                v.wait(20)
                add_to_cart(v, last, 2 if dice.chance(0.08) else 1, None)
        elif r < 0.66:
            shown = listing(v, person.categories[dice.index(person.category_weights)])
        elif r < 0.75:
            shown = search(v, person.categories[dice.index(person.category_weights)])
        elif r < 0.8 and _review_due(v):
            review(v)
        elif r < 0.82 and last is not None:
            p = w.catalogue.products[last]
            v.track(
                "Product Added to Wishlist",
                {"wishlist_id": "wl_default", "wishlist_name": "Favourites", **p.line()},
            )
        elif r < 0.88 and cart:
            remove_from_cart(v)
        else:
            last = w.catalogue.pick(dice, person.categories[dice.index(person.category_weights)]).index
            view_product(v, last)
    _finish(v)


def _finish(v: Visit) -> None:
    """Goes to the checkout or leaves a full basket behind."""
    w, dice, person = v.world, v.world.dice, v.person
    cart = cart_of(v)
    if not cart:
        return
    day = w.cal.day_of(v.t)
    boost = 1.5 if v.label.channel in ("email", "sms", "display") else 1.0
    season = w.cal.category_factor(day, w.catalogue.products[cart[0].product].category)
    go = dice.chance(min(0.95, person.archetype.buy * 1.7 * boost * season))
    if not go and person.archetype.buy == 0 and dice.chance(0.15):
        go = True  # a window shopper who gets as far as the checkout page
    if go:
        v.wait(30)
        view_cart(v)
        if checkout(v, None):
            return
    w.states[person.index].abandoned_day = day
