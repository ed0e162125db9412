"""Product reviews: star ratings and review text whose wording matches the rating."""

from __future__ import annotations

import zlib

from tailor.demo.catalogue import Product
from tailor.demo.dice import Dice

_CLOTHING = ("Women", "Men", "Kids")

_OPENERS = {
    5: (
        "Absolutely love this {item}!",
        "Really pleased with my {item}.",
        "Brilliant {item}, exactly as pictured.",
        "Fantastic quality {item}.",
        "This {item} is gorgeous.",
    ),
    4: (
        "Very happy with the {item} overall.",
        "Nice {item}, good value.",
        "Lovely {item}, would recommend.",
        "Good {item} for the price.",
    ),
    3: (
        "The {item} is okay.",
        "Decent {item} but nothing special.",
        "Mixed feelings about this {item}.",
        "Average {item}.",
    ),
    2: (
        "Disappointed with the {item}.",
        "Not great, the {item} looked better online.",
        "Expected more from this {item}.",
    ),
    1: (
        "Terrible {item}, returning it.",
        "Awful quality, the {item} fell apart.",
        "Really poor {item}, would not buy again.",
        "Very disappointed, the {item} arrived damaged.",
    ),
}
_GOOD = {
    "clothing": (
        "Fits true to size.",
        "The fabric feels soft and well made.",
        "Washes really well.",
        "Colour is just as shown.",
        "Comfortable enough to wear all day.",
    ),
    "home": (
        "Looks beautiful in our living room.",
        "Sturdy and well finished.",
        "Easy to put together.",
        "Great quality for the money.",
        "The colour works perfectly with our decor.",
    ),
}
_BAD = {
    "clothing": (
        "Came up very small, had to size up.",
        "The material feels cheap and thin.",
        "Shrank after one wash.",
        "The colour was nothing like the photo.",
        "Stitching came loose.",
    ),
    "home": (
        "It was scratched when it arrived.",
        "Assembly instructions were useless.",
        "Wobbly and flimsy.",
        "Much smaller than expected.",
        "The finish started peeling within a week.",
    ),
}
_DELIVERY_GOOD = (
    "Delivery was quick.",
    "Arrived the next day, well packaged.",
    "Courier was friendly and on time.",
)
_DELIVERY_BAD = (
    "Delivery took over two weeks.",
    "Customer service never replied to my email.",
    "The courier left it in the rain.",
)
_CLOSERS_GOOD = ("Would definitely buy again.", "Highly recommend.", "Five stars from me!", "")
_CLOSERS_BAD = ("Will be returning it.", "Save your money.", "Not impressed at all.", "")
_RATING_SHIFT = (-1.6, -0.8, 0.0, 0.4, 0.9)


def product_quality(product: Product) -> float:
    """A fixed hidden quality of a product between 0 and 1; better products get better reviews."""
    return (zlib.crc32(product.product_id.encode()) % 1000) / 1000


def rating(dice: Dice, product: Product) -> int:
    """A star rating from 1 to 5, mostly good, worse for poorer products."""
    score = 3.9 + _RATING_SHIFT[int(product_quality(product) * 5)] + dice.expo(0.6) - dice.expo(0.9)
    return max(1, min(5, round(score)))


def review_text(dice: Dice, product: Product, stars: int) -> str:
    """Review text whose words agree with the star rating."""
    kind = "clothing" if product.category in _CLOTHING else "home"
    item = product.item.lower() if dice.chance(0.6) else product.name.lower()
    parts = [dice.pick(_OPENERS[stars]).format(item=item)]
    if stars >= 4:
        parts.append(dice.pick(_GOOD[kind]))
        if dice.chance(0.4):
            parts.append(dice.pick(_DELIVERY_GOOD))
        parts.append(dice.pick(_CLOSERS_GOOD))
    elif stars == 3:
        parts.append(dice.pick(_GOOD[kind]))
        parts.append("However, " + dice.pick(_BAD[kind]).lower())
    else:
        parts.append(dice.pick(_BAD[kind]))
        if dice.chance(0.5):
            parts.append(dice.pick(_DELIVERY_BAD))
        parts.append(dice.pick(_CLOSERS_BAD))
    return " ".join(p for p in parts if p)
