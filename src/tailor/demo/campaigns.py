"""The marketing calendar: fortnightly newsletters and seasonal email and SMS promotions."""

from __future__ import annotations

from dataclasses import dataclass

from tailor.demo.rhythm import Calendar

# (month, day, key, name, focus category, also sent by SMS)
_PROMOTIONS = (
    (1, 2, "january_sale", "January Sale: up to 50% off", "", True),
    (1, 15, "bedroom_white_sale", "The White Sale: bedding and more", "Bedroom", False),
    (3, 5, "mothers_day", "Mother's Day gifts she'll love", "Women", False),
    (3, 19, "spring_new_in", "New in for spring", "Women", False),
    (4, 16, "garden_living", "Bring the outside in", "Home Accessories", False),
    (5, 14, "summer_wardrobe", "Your summer wardrobe starts here", "Women", False),
    (6, 11, "fathers_day", "Father's Day: gifts for dad", "Men", False),
    (6, 25, "summer_sale", "Summer Sale starts now", "", True),
    (8, 6, "back_to_school", "Back to school: uniform essentials", "Kids", True),
    (9, 10, "autumn_home", "The Autumn Home edit", "Home Accessories", False),
    (9, 24, "furniture_event", "The Furniture Event: 20% off sofas and tables", "Furniture", True),
    (10, 8, "bedroom_refresh", "Cosy bedroom refresh", "Bedroom", False),
    (10, 22, "halloween_kids", "Spooky season dress-up for kids", "Kids", False),
    (11, 19, "black_friday_early_access", "Black Friday early access", "", True),
    (12, 3, "christmas_gifting", "The Christmas gift guide", "Home Accessories", False),
    (12, 26, "boxing_day_sale", "Boxing Day Sale is live", "", True),
)


@dataclass(frozen=True, slots=True)
class Campaign:
    """One send of an email or SMS campaign."""

    key: str  # campaign id and utm_campaign, e.g. "summer_sale_2026"
    name: str
    subject: str
    channel: str  # "email" or "sms"
    day: int
    category: str  # focus category, "" for all


def campaign_calendar(cal: Calendar) -> dict[int, list[Campaign]]:
    """The campaigns sent on each day of the history."""
    sends: dict[int, list[Campaign]] = {}
    fortnight = 0
    for day, date in enumerate(cal.dates):
        if date.weekday() == 3:  # newsletters go out on Thursdays, every other week
            fortnight += 1
            if fortnight % 2 == 1:
                week = date.isocalendar().week
                key = f"newsletter_{date.year}_w{week:02d}"
                subject = f"The Weekly Edit: {date.day} {date.strftime('%B')}"
                sends.setdefault(day, []).append(Campaign(key, "Newsletter", subject, "email", day, ""))
        for month, dom, key, name, category, sms in _PROMOTIONS:
            if (date.month, date.day) == (month, dom):
                campaign_key = f"{key}_{date.year}"
                sends.setdefault(day, []).append(Campaign(campaign_key, name, name, "email", day, category))
                if sms:
                    text = f"Hartley & Hale: {name}. Shop now: hhale.example/{key} Reply STOP to opt out"
                    sends.setdefault(day, []).append(Campaign(campaign_key, name, text, "sms", day, category))
    return sends
