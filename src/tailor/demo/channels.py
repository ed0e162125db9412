"""Where visits come from: referrers and UTM campaign tags of each marketing channel."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus

from tailor.demo.catalogue import CATEGORIES
from tailor.demo.dice import Dice

# Channels a visit to the site or app can arrive through on its own; email and SMS visits start
# from a click in a message instead, and the call centre and shop tills are not visits at all.
WEB_CHANNELS = (
    "direct",
    "organic_search",
    "paid_search",
    "organic_social",
    "paid_social",
    "display",
    "referral",
)
WEB_MIX = (0.3, 0.24, 0.16, 0.08, 0.08, 0.06, 0.08)

SLUGS = {c: c.lower().replace(" ", "-") for c in CATEGORIES}
_SEARCH_WORDS = {
    "Women": ("womens", "ladies"),
    "Men": ("mens", "men's"),
    "Kids": ("kids", "childrens"),
    "Home Accessories": ("", "home"),
    "Furniture": ("", ""),
    "Bedroom": ("", "bedroom"),
}
_SEARCH_ENGINES = (
    "https://www.google.com/",
    "https://www.google.co.uk/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.ecosia.org/",
)
_SOCIAL_REFERRERS = (
    ("https://l.instagram.com/", "instagram"),
    ("https://lm.facebook.com/", "facebook"),
    ("https://www.pinterest.co.uk/", "pinterest"),
    ("https://www.tiktok.com/", "tiktok"),
)
_REFERRAL_SITES = (
    "https://www.idealhome.co.uk/living-room/living-room-ideas",
    "https://www.mumsnet.com/talk/style_and_beauty",
    "https://www.vogue.co.uk/shopping",
    "https://www.houseandgarden.co.uk/gallery/best-armchairs",
    "https://www.hotukdeals.com/deals/fashion",
    "https://www.independent.co.uk/extras/indybest",
)
_AFFILIATES = ("vouchercodes", "topcashback", "quidco", "hotukdeals")
_PAID_SOCIAL_CREATIVES = ("carousel_a", "carousel_b", "video_15s", "video_6s", "static_lifestyle")
_DISPLAY_SOURCES = (
    ("criteo", "retargeting_basket"),
    ("google", "gdn_prospecting"),
    ("taboola", "native_edit"),
)


@dataclass(frozen=True, slots=True)
class Arrival:
    """How one visit arrived: channel, referrer, UTM parameters and the page it landed on."""

    channel: str
    referrer: str
    campaign: dict[str, str] | None  # Segment context.campaign, from the landing URL's UTM tags
    landing: str  # "home", "category", "product", "search" or "sale"
    category: str
    term: str  # search words, for search arrivals


def search_term(dice: Dice, category: str, item: str) -> str:
    """What someone types into a search box looking for an item."""
    words = _SEARCH_WORDS[category]
    prefix = dice.pick(words)
    term = f"{prefix} {item.lower()}".strip()
    return term if dice.chance(0.85) else term + dice.pick((" sale", " uk", " cheap", " near me"))


def utm_query(campaign: dict[str, str] | None) -> str:
    """The landing URL's query string for a campaign."""
    if not campaign:
        return ""
    keys = (
        ("source", "utm_source"),
        ("medium", "utm_medium"),
        ("name", "utm_campaign"),
        ("term", "utm_term"),
        ("content", "utm_content"),
    )
    return "?" + "&".join(f"{utm}={quote_plus(campaign[k])}" for k, utm in keys if k in campaign)


def arrival(dice: Dice, channel: str, category: str, item: str, year: int, basket: bool) -> Arrival:
    """A visit through a web channel, looking for something in a category."""
    slug = SLUGS[category]
    if channel == "organic_search":
        landing = "product" if dice.chance(0.35) else ("category" if dice.chance(0.6) else "home")
        return Arrival(channel, dice.pick(_SEARCH_ENGINES), None, landing, category, "")
    if channel == "paid_search":
        brand = dice.chance(0.35)
        term = "hartley and hale" if brand else search_term(dice, category, item)
        if brand:
            name, landing = "brand_uk_exact", "home"
        elif dice.chance(0.5):
            name, landing = f"shopping_{slug}", "product"
        else:
            name, landing = f"generic_{slug}_uk", "category"
        source = "google" if dice.chance(0.88) else "bing"
        campaign = {"source": source, "medium": "cpc", "name": name, "term": term}
        referrer = "https://www.google.com/" if source == "google" else "https://www.bing.com/"
        return Arrival(channel, referrer, campaign, landing, category, term)
    if channel == "organic_social":
        referrer, source = dice.pick(_SOCIAL_REFERRERS)
        tags = {"source": source, "medium": "social", "name": "profile_link"} if dice.chance(0.3) else None
        return Arrival(channel, referrer, tags, "category" if dice.chance(0.5) else "product", category, "")
    if channel == "paid_social":
        referrer, source = dice.pick(_SOCIAL_REFERRERS)
        campaign = {
            "source": source,
            "medium": "paid_social",
            "name": f"{slug}_{year}_always_on",
            "content": dice.pick(_PAID_SOCIAL_CREATIVES),
        }
        return Arrival(
            channel, referrer, campaign, "product" if dice.chance(0.6) else "category", category, ""
        )
    if channel == "display":
        source, name = _DISPLAY_SOURCES[0] if basket else dice.pick(_DISPLAY_SOURCES)
        campaign = {
            "source": source,
            "medium": "display",
            "name": name,
            "content": dice.pick(("300x250", "728x90", "320x50", "160x600")),
        }
        referrer = "https://www.theguardian.com/uk" if dice.chance(0.5) else "https://www.bbc.co.uk/food"
        return Arrival(channel, referrer, campaign, "product", category, "")
    if channel == "referral":
        if dice.chance(0.5):
            source = dice.pick(_AFFILIATES)
            campaign = {"source": "awin", "medium": "affiliate", "name": source, "content": "deeplink"}
            return Arrival(channel, f"https://www.{source}.co.uk/", campaign, "sale", category, "")
        return Arrival(channel, dice.pick(_REFERRAL_SITES), None, "product", category, "")
    return Arrival("direct", "", None, "home" if dice.chance(0.7) else "category", category, "")


def message_arrival(channel: str, campaign: dict[str, str], category: str, landing: str = "") -> Arrival:
    """A visit from a link in an email or SMS: to the campaign's category, the sale, or `landing`."""
    return Arrival(channel, "", campaign, landing or ("category" if category else "sale"), category, "")
