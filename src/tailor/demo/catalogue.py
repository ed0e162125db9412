"""The retailer's product catalogue: six categories of fashion and home products with prices."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailor.demo.dice import Dice, cumulative

LIST_SIZE = 8  # products on a list page
CATEGORIES = ("Women", "Men", "Kids", "Home Accessories", "Furniture", "Bedroom")
STORE_NAME = "Hartley & Hale"
SITE = "https://www.hartleyhale.example"

_CODES = {"Women": "WMN", "Men": "MEN", "Kids": "KID", "Home Accessories": "HAC", "Furniture": "FUR",
          "Bedroom": "BED"}  # fmt: skip
# Words that go in front of an item's name, by the kind of item.
_LOOKS = {
    "womenswear": ("Navy", "Black", "Ivory", "Sage", "Rust", "Camel", "Blush", "Cobalt", "Leopard Print",
                   "Striped", "Floral", "Charcoal"),
    "menswear": ("Navy", "Charcoal", "Olive", "Stone", "Burgundy", "Sky Blue", "Black", "Tan", "Check",
                 "Striped", "Forest Green", "Ecru"),
    "kidswear": ("Dinosaur", "Rainbow", "Navy", "Red", "Unicorn", "Camo", "Star Print", "Yellow", "Pink",
                 "Space", "Striped", "Grey Marl"),
    "decor": ("Amber", "Terracotta", "Brass", "Sage", "Ochre", "Smoke Grey", "Marble", "Speckled", "Teal",
              "Cream", "Charcoal", "Blush"),
    "wood": ("Oak", "Walnut", "Ash", "Mango Wood", "Pine", "White Oak", "Black Metal", "Smoked Oak",
             "Rattan", "Painted Grey", "Reclaimed Wood", "Bamboo"),
    "upholstery": ("Green Velvet", "Boucle", "Grey Linen", "Ochre Velvet", "Navy Velvet", "Oatmeal Weave",
                   "Tan Leather", "Rust Velvet", "Charcoal Wool", "Blush Velvet", "Cream Linen",
                   "Teal Velvet"),
    "bedding": ("White", "Dove Grey", "Sage", "Navy", "Natural Linen", "Cream", "Blush", "Charcoal", "Stripe",
                "Waffle", "Seersucker", "Terracotta"),
}  # fmt: skip
# (item, lowest price, highest price in pounds, palette)
# fmt: off
_ITEMS: dict[str, tuple[tuple[str, int, int, str], ...]] = {
    "Women": (("Wrap Dress", 35, 95, "womenswear"), ("Midi Skirt", 25, 65, "womenswear"),
              ("Linen Shirt", 22, 55, "womenswear"), ("Cashmere Jumper", 69, 149, "womenswear"),
              ("Wide-Leg Trousers", 29, 69, "womenswear"), ("Trench Coat", 89, 199, "womenswear"),
              ("Ankle Boots", 49, 129, "womenswear"), ("Silk Blouse", 39, 89, "womenswear"),
              ("Denim Jacket", 39, 79, "womenswear"), ("Knitted Cardigan", 29, 75, "womenswear"),
              ("Jersey T-Shirt", 9, 25, "womenswear"), ("Leather Tote Bag", 45, 120, "womenswear")),
    "Men": (("Oxford Shirt", 25, 59, "menswear"), ("Chino Trousers", 29, 65, "menswear"),
            ("Merino Jumper", 39, 99, "menswear"), ("Wool Overcoat", 99, 229, "menswear"),
            ("Crew-Neck T-Shirt", 9, 25, "menswear"), ("Slim Jeans", 29, 75, "menswear"),
            ("Suede Desert Boots", 59, 129, "menswear"), ("Quilted Gilet", 39, 85, "menswear"),
            ("Linen Blazer", 69, 159, "menswear"), ("Leather Belt", 15, 39, "menswear"),
            ("Rugby Shirt", 29, 55, "menswear"), ("Waxed Jacket", 79, 179, "menswear")),
    "Kids": (("School Jumper", 6, 16, "kidswear"), ("Dungarees", 12, 28, "kidswear"),
             ("Rain Mac", 18, 35, "kidswear"), ("Pyjama Set", 9, 22, "kidswear"),
             ("Trainers", 18, 40, "kidswear"),
             ("Party Dress", 16, 38, "kidswear"), ("Hoodie", 10, 24, "kidswear"),
             ("Swim Shorts", 7, 16, "kidswear"), ("Padded Coat", 24, 55, "kidswear"),
             ("Leggings Two-Pack", 6, 14, "kidswear"), ("Knitted Hat", 5, 12, "kidswear"),
             ("Backpack", 12, 28, "kidswear")),
    "Home Accessories": (("Scented Candle", 8, 32, "decor"), ("Cushion Cover", 10, 35, "decor"),
                         ("Table Lamp", 29, 95, "decor"), ("Ceramic Vase", 15, 55, "decor"),
                         ("Wall Mirror", 35, 149, "wood"), ("Throw", 25, 79, "bedding"),
                         ("Photo Frame", 8, 29, "wood"), ("Storage Basket", 12, 39, "decor"),
                         ("Wool Rug", 59, 249, "decor"), ("Serving Bowl", 12, 38, "decor"),
                         ("Wine Glasses Set", 18, 49, "decor"), ("Wall Clock", 19, 59, "decor")),
    "Furniture": (("Dining Table", 399, 1199, "wood"), ("Armchair", 249, 699, "upholstery"),
                  ("Bookcase", 149, 449, "wood"), ("Coffee Table", 129, 399, "wood"),
                  ("Three-Seater Sofa", 599, 1799, "upholstery"), ("Sideboard", 299, 899, "wood"),
                  ("Dining Chair Pair", 149, 399, "wood"), ("Console Table", 129, 349, "wood"),
                  ("Desk", 149, 499, "wood"), ("Bar Stool", 69, 179, "wood"), ("TV Unit", 179, 549, "wood"),
                  ("Footstool", 79, 199, "upholstery")),
    "Bedroom": (("Duvet Cover Set", 29, 89, "bedding"), ("Feather Pillow Pair", 25, 69, "bedding"),
                ("Mattress Topper", 49, 149, "bedding"), ("King-Size Bed Frame", 399, 1099, "wood"),
                ("Bedside Table", 99, 279, "wood"), ("Wardrobe", 449, 1299, "wood"),
                ("Linen Sheet Set", 49, 139, "bedding"), ("Chest of Drawers", 249, 699, "wood"),
                ("Blackout Curtains", 35, 99, "bedding"), ("Bedspread", 45, 120, "bedding"),
                ("Upholstered Headboard", 149, 399, "upholstery"), ("Hot Water Bottle", 9, 19, "bedding")),
}
_BRANDS = {
    "Women": ("Hartley & Hale", "Marlowe", "Isla Rose"),
    "Men": ("Hartley & Hale", "Fenwick & Co", "Ridgeway"),
    "Kids": ("Little Hale", "Puddle & Pip"), "Home Accessories": ("Hartley & Hale Home", "Ember & Oak"),
    "Furniture": ("Hartley & Hale Home", "Kinfolk Works"), "Bedroom": ("Hartley & Hale Home", "Dreamwell"),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class Product:
    """One product in the catalogue; prices are in pence, VAT included."""

    index: int
    product_id: str
    sku: str
    name: str
    item: str  # what it is without colour or material, e.g. "Coffee Table"
    category: str
    brand: str
    price: int
    url: str
    # Ready-made message fragments, copied rather than rebuilt for each of thousands of events.
    _line: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    _viewed: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    _listed: list[dict[str, object]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        line = {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "brand": self.brand,
            "price": self.price / 100,
        }
        self._line.update(line)
        self._viewed.update(line, currency="GBP", value=self.price / 100, url=self.url)
        self._listed.extend({**line, "position": position} for position in range(LIST_SIZE + 1))

    def line(self) -> dict[str, object]:
        """The product as a new Segment e-commerce product object (price in pounds)."""
        return self._line.copy()

    def viewed(self) -> dict[str, Any]:
        """Properties of a Product Viewed event for this product."""
        return self._viewed.copy()

    def listed(self, position: int) -> dict[str, object]:
        """The product as an item at a 1-based position of a product list."""
        return (
            self._listed[position].copy() if position <= LIST_SIZE else {**self._line, "position": position}
        )


@dataclass(frozen=True)
class Catalogue:
    """All products, with each category's products and their popularity."""

    products: tuple[Product, ...]
    by_category: dict[str, tuple[int, ...]]
    popularity: dict[str, list[float]]  # cumulative, aligned with by_category

    def pick(self, dice: Dice, category: str) -> Product:
        """A product of a category, best sellers more likely."""
        return self.products[self.by_category[category][dice.index(self.popularity[category])]]

    def sample(self, dice: Dice, category: str, draws: int) -> list[int]:
        """Indices of distinct products of a category from `draws` popularity-weighted draws."""
        cum, ids = self.popularity[category], self.by_category[category]
        return list(dict.fromkeys([ids[bisect_right(cum, u)] for u in dice.take(draws)]))


def _price(rng: np.random.Generator, lo: int, hi: int) -> int:
    pounds = lo + (hi - lo) * float(rng.beta(1.6, 2.4))
    # Shelf prices end in .99, .50 or .00, and bigger items in whole tens.
    if pounds > 150:
        return int(round(pounds / 10) * 10 - 1) * 100
    ending = (99, 50, 0)[int(rng.choice(3, p=(0.6, 0.15, 0.25)))]
    return int(pounds) * 100 + ending


def build_catalogue(rng: np.random.Generator, per_category: int) -> Catalogue:
    """A catalogue of `per_category` distinct products in each category."""
    products: list[Product] = []
    by_category: dict[str, tuple[int, ...]] = {}
    popularity: dict[str, list[float]] = {}
    ids = rng.choice(np.arange(100_000, 999_999), size=per_category * len(CATEGORIES), replace=False)
    for category in CATEGORIES:
        items = _ITEMS[category]
        combos = [(item, look) for item in items for look in _LOOKS[item[3]]]
        chosen = rng.permutation(len(combos))[: min(per_category, len(combos))]
        indices = []
        for serial, c in enumerate(chosen):
            item, look = combos[c]
            name = f"{look} {item[0]}"
            pid = f"P{ids[len(products)]}"
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            brands = _BRANDS[category]
            brand = brands[0] if rng.random() < 0.6 else brands[int(rng.integers(len(brands)))]
            sku = f"{_CODES[category]}-{serial + 1:04d}-{look[:3].upper()}"
            indices.append(len(products))
            products.append(
                Product(
                    len(products),
                    pid,
                    sku,
                    name,
                    item[0],
                    category,
                    brand,
                    _price(rng, item[1], item[2]),
                    f"{SITE}/p/{slug}-{pid.lower()}",
                )
            )
        by_category[category] = tuple(indices)
        # A few best sellers and a long tail.
        ranks = rng.permutation(len(indices))
        popularity[category] = cumulative([1.0 / (r + 3) ** 0.9 for r in ranks])
    return Catalogue(tuple(products), by_category, popularity)
