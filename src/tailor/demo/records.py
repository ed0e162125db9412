"""Rows about the same people in other systems: CRM, call-centre log and guest-checkout export."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from tailor.demo.config import SynthConfig
from tailor.demo.dice import Dice
from tailor.demo.model import Household, Person, PlannedCall, PlannedOrder, Population
from tailor.demo.noise import (
    birth_date,
    cased,
    country,
    messy_email,
    messy_phone,
    messy_postcode,
    street,
    typo,
)
from tailor.demo.rhythm import DAY_MS, Calendar

CRM_COLUMNS = (
    "crm_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "country",
    "created_at",
    "updated_at",
)
CALL_COLUMNS = ("call_id", "caller_name", "phone", "email", "called_at", "reason", "notes")
GUEST_COLUMNS = (
    "order_id",
    "email",
    "name",
    "phone",
    "shipping_street",
    "shipping_city",
    "shipping_postcode",
    "shipping_country",
    "total",
    "currency",
    "ordered_at",
)

_NOTES = {
    "order status": (
        "Chased order, advised it is with the courier.",
        "Asked where order is, sent tracking link.",
    ),
    "delivery problem": (
        "Parcel shows delivered but not received, raised claim with courier.",
        "Missed delivery, rebooked for next week.",
        "Item arrived damaged, replacement arranged.",
    ),
    "return or refund": (
        "Wants to return an item, emailed returns label.",
        "Refund not received yet, confirmed processed, allow 3-5 working days.",
    ),
    "product question": (
        "Asked about sizing before ordering.",
        "Asked for dimensions, checking stock in store.",
    ),
    "complaint": (
        "Very unhappy with quality, caller upset. Offered 15% goodwill voucher.",
        "Complained about rude courier, escalated to team leader.",
        "Angry about late refund, apologised.",
    ),
    "account help": ("Could not log in, password reset sent.", "Asked to update email on account."),
    "payment issue": (
        "Card declined twice at checkout, advised to try PayPal.",
        "Charged twice, refund raised.",
    ),
    "change of address": (
        "Moved house, asked to update address.",
        "Update delivery address for future orders.",
    ),
    "furniture assembly": (
        "Missing fixings for flat-pack item, sending replacement pack.",
        "Asked about assembly service, booked for Saturday.",
    ),
}


def stamp(ms: int) -> str:
    """A record timestamp as the back-office systems export it: UTC, no offset, second precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


class RecordWriter:
    """Builds the rows of each record source with realistic typing errors, and who each row is about."""

    def __init__(self, population: Population, config: SynthConfig) -> None:
        self.pop = population
        self.cfg = config
        self.rng = np.random.default_rng([config.seed, 3])
        self.dice = Dice(self.rng)
        self.cal = Calendar(config.end, config.days)
        self.used: set[str] = set()

    def _id(self, prefix: str, digits: int) -> str:
        while True:
            value = f"{prefix}{self.dice.below(10**digits):0{digits}d}"
            if value not in self.used:
                self.used.add(value)
                return value

    def names(self, person: Person) -> tuple[str, str]:
        """First and last name as a clerk typed them: nicknames, typos, swaps and odd casing."""
        d, cfg = self.dice, self.cfg
        first = person.nickname if person.nickname and d.chance(cfg.nickname_rate) else person.first_name
        last = person.last_name
        if d.chance(cfg.typo_rate):
            if d.chance(0.5):
                first = typo(d, first)
            else:
                last = typo(d, last)
        if d.chance(cfg.swap_rate):
            first, last = last, first
        return cased(d, first), cased(d, last)

    def _home(self, person: Person) -> Household:
        return self.pop.households[person.household]

    def crm(self) -> list[tuple[dict[str, str], Person]]:
        """CRM customers, some of them twice."""
        d, cfg = self.dice, self.cfg
        rows = []
        for person in self.pop.people:
            likely = 1.3 if person.user_id is not None else (1.1 if person.pos_token else 0.5)
            if not d.chance(min(0.97, cfg.crm_share * likely)):
                continue
            created = self.cal.start_ms - d.below(3 * 365) * DAY_MS - d.below(DAY_MS)
            if person.signup_day is not None and person.signup_day >= 0 and d.chance(0.7):
                created = self.cal.day_start(person.signup_day) + d.below(DAY_MS)
            rows.append((self._crm_row(person, created), person))
            if d.chance(cfg.crm_duplicate_rate):
                later = created + d.below(400) * DAY_MS + d.below(DAY_MS)
                if later >= self.cal.end_ms:
                    later = max(created, self.cal.end_ms - d.below(30 * DAY_MS) - 1)
                rows.append((self._crm_row(person, later), person))
        rows.sort(key=lambda r: r[0]["crm_id"])
        return rows

    def _crm_row(self, person: Person, created: int) -> dict[str, str]:
        d, cfg = self.dice, self.cfg
        home = self._home(person)
        first, last = self.names(person)
        email = person.emails[0] if person.email_change_day is None or d.chance(0.6) else person.emails[1]
        if len(person.emails) > 1 and person.email_change_day is None and d.chance(0.2):
            email = person.emails[1]  # a work address
        email_text = "" if d.chance(cfg.missing_rate) else messy_email(d, email, cfg.typo_rate)
        if d.chance(0.01):
            email_text = "noemail@noemail.com"  # what the till staff type when a customer has none
        phone = person.mobile if d.chance(0.75) else home.landline
        phone_text = (
            "" if phone is None or d.chance(cfg.missing_rate) else messy_phone(d, phone, cfg.typo_rate)
        )
        stale = home.previous_address is not None and d.chance(cfg.stale_address_rate)
        address = home.previous_address if stale and home.previous_address is not None else home.address
        updated = created + d.below(max(1, (self.cal.end_ms - created) // DAY_MS)) * DAY_MS + d.below(DAY_MS)
        return {
            "crm_id": self._id("CRM", 7),
            "first_name": first,
            "last_name": last,
            "email": email_text,
            "phone": phone_text,
            "date_of_birth": birth_date(d, person.birth_date, cfg.missing_rate),
            "street": street(d, address),
            "city": cased(d, address.city),
            "postcode": "" if d.chance(cfg.missing_rate / 2) else messy_postcode(d, address.postcode),
            "country": country(d),
            "created_at": stamp(created),
            "updated_at": stamp(min(updated, self.cal.end_ms - 1)),
        }

    def calls(self) -> list[tuple[dict[str, str], Person]]:
        """The call-centre log: one row per call, typed by the agent during the call."""
        rows = [(self._call_row(person, c), person) for person in self.pop.people for c in person.calls]
        rows.sort(key=lambda r: (r[0]["called_at"], r[0]["call_id"]))
        return rows

    def _caller_name(self, person: Person) -> str:
        d = self.dice
        first, last = self.names(person)
        r = d.u()
        if r < 0.5:
            return f"{first} {last}"
        if r < 0.62:
            title = (
                "Mrs" if person.gender == "f" and d.chance(0.6) else ("Ms" if person.gender == "f" else "Mr")
            )
            return f"{title} {last}"
        if r < 0.72:
            return f"{first[:1]}. {last}" if d.chance(0.5) else f"{first[:1]} {last}"
        if r < 0.82:
            return f"{last}, {first}"
        if r < 0.94:
            return first
        return ""

    def _call_row(self, person: Person, call: PlannedCall) -> dict[str, str]:
        d, cfg = self.dice, self.cfg
        phone = "" if call.phone is None else messy_phone(d, call.phone, cfg.typo_rate * 2)
        email = messy_email(d, person.email_on(call.day), cfg.typo_rate * 2) if d.chance(0.3) else ""
        note = d.pick(_NOTES[call.reason])
        earlier = [o for o in person.guest_orders if o.ms < call.ms]
        if earlier and call.reason in ("order status", "delivery problem", "return or refund"):
            note = f"Order {earlier[-1].order_id}. {note}"
        if d.chance(0.3):
            note += f" Verified postcode {self._home(person).address.postcode}."
        return {
            "call_id": call.call_id,
            "caller_name": self._caller_name(person),
            "phone": phone,
            "email": email,
            "called_at": stamp(call.ms),
            "reason": call.reason,
            "notes": note,
        }

    def guest_checkouts(self) -> list[tuple[dict[str, str], Person]]:
        """The shop's export of orders placed without an account."""
        rows = [
            (self._guest_row(person, o), person) for person in self.pop.people for o in person.guest_orders
        ]
        rows.sort(key=lambda r: (r[0]["ordered_at"], r[0]["order_id"]))
        return rows

    def _guest_row(self, person: Person, order: PlannedOrder) -> dict[str, str]:
        d, cfg = self.dice, self.cfg
        first, last = self.names(person)
        home = self._home(person)
        address = home.address
        if d.chance(0.06):
            # Sent somewhere else: a gift to another household.
            address = self.pop.households[d.below(len(self.pop.households))].address
        phone = person.mobile if person.mobile is not None and d.chance(0.85) else home.landline
        return {
            "order_id": order.order_id,
            "email": messy_email(d, order.email, cfg.typo_rate),
            "name": f"{first} {last}",
            "phone": "" if phone is None else messy_phone(d, phone, cfg.typo_rate),
            "shipping_street": street(d, address),
            "shipping_city": address.city,
            "shipping_postcode": messy_postcode(d, address.postcode),
            "shipping_country": country(d),
            "total": f"{order.total(self.pop.catalogue) / 100:.2f}",
            "currency": "GBP",
            "ordered_at": stamp(order.ms),
        }
