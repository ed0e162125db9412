"""The planned population: households, people, their devices and their offline dealings.

Everything here is decided up front and never changes while events are generated, so the events,
the records and the ground truth can each be produced independently and still agree.
Days are indices into the history; a negative day lies before it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date

from tailor.demo.catalogue import Catalogue
from tailor.demo.phones import Phone


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address in the UK."""

    street: str
    city: str
    postcode: str
    country: str = "GB"


@dataclass(frozen=True, slots=True)
class Archetype:
    """A kind of customer: how often they visit, what they buy and how they are reached."""

    name: str
    share: float
    visits_per_week: float
    buy: float  # chance that a visit with something in the basket ends in an order
    categories: tuple[int, int]  # how many categories they shop in (min, max)
    store_visits_per_week: float
    engagement: float  # how readily they open marketing messages


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """The hardware and software of a device, as the SDK reports it in `context`."""

    kind: str  # "desktop", "mobile_web", "app" or "tv"
    user_agent: str
    os_name: str
    os_version: str
    manufacturer: str
    model: str
    device_type: str  # context.device.type for app and TV: "ios", "android" or "tv"
    library: tuple[str, str]
    screen: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Device:
    """A browser or app install; shared devices have several users."""

    index: int
    profile: DeviceProfile
    device_id: str | None  # context.device.id for app and TV installs
    anonymous_ids: tuple[str, ...]  # successive ids; a new one after each cookie reset
    resets: tuple[int, ...]  # days on which anonymous_ids moves to the next id
    users: tuple[int, ...]  # indices of the people who use it
    logins: tuple[int | None, ...]  # per user: first day they log in here (None: never)
    household: int  # the household it belongs to, whose broadband it uses when on wifi

    @property
    def shared(self) -> bool:
        """Whether more than one person uses this device."""
        return len(self.users) > 1

    def anonymous_id(self, day: int) -> str:
        """The anonymousId the device carries on a day."""
        return self.anonymous_ids[bisect_right(self.resets, day)]


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An online order placed without an account, as the shop's guest-checkout export shows it."""

    order_id: str
    day: int
    ms: int  # when the order was placed (epoch milliseconds)
    device: int
    items: tuple[tuple[int, int], ...]  # (product index, quantity)
    email: str
    tracked: bool  # whether the web tracking saw it (ad blockers and refused consent hide some)
    identify: bool  # whether the checkout page sent an identify with the email

    def total(self, catalogue: Catalogue) -> int:
        """The order total in pence."""
        return sum(catalogue.products[p].price * q for p, q in self.items)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A call to the call centre."""

    call_id: str
    day: int
    ms: int  # when the call was taken (epoch milliseconds)
    reason: str
    phone: Phone | None  # the caller's number, None when withheld
    verified: bool  # whether the agent found the caller's account


@dataclass(frozen=True, slots=True)
class Household:
    """People living at one address and sharing its broadband, landline and family devices."""

    index: int
    household_id: str
    address: Address
    previous_address: Address | None  # where they lived before moving, still in old records
    landline: Phone | None
    ip: str
    members: tuple[int, ...]
    town: int
    family_account: str | None  # groupId of a shared family account on the website, if they made one


@dataclass(frozen=True, slots=True)
class Person:
    """One real individual: the unit identity resolution must recover."""

    index: int
    person_id: str
    household: int
    archetype: Archetype
    gender: str
    first_name: str
    last_name: str
    nickname: str | None
    birth_date: date
    # Online they use emails[0] and, from email_change_day on, emails[1]; a second address without a
    # change day is a work address that only turns up in records.
    emails: tuple[str, ...]
    email_change_day: int | None
    mobile: Phone | None
    user_id: str | None  # None: never registers online
    signup_day: int | None
    active: tuple[int, int]  # first and last day they are active
    visit_rate: float  # visits per day
    categories: tuple[str, ...]
    category_weights: tuple[float, ...]  # cumulative
    devices: tuple[int, ...]
    device_weights: tuple[float, ...]  # cumulative
    channel_weights: tuple[float, ...]  # cumulative, over channels.WEB_CHANNELS
    email_opt_in: bool
    sms_opt_in: bool
    subscriber_id: str  # the email platform's contact id
    pos_token: str | None  # hashed payment card the shop tills see
    scans_loyalty: bool  # shows the app at the till, so store orders carry the userId
    guest_orders: tuple[PlannedOrder, ...]
    calls: tuple[PlannedCall, ...]

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"

    def email_on(self, day: int) -> str:
        """The email address a person uses online on a day."""
        if self.email_change_day is not None and day >= self.email_change_day:
            return self.emails[1]
        return self.emails[0]


@dataclass(frozen=True)
class Population:
    """Everyone in the synthetic customer base, with their households and devices."""

    people: tuple[Person, ...]
    households: tuple[Household, ...]
    devices: tuple[Device, ...]
    catalogue: Catalogue
    carrier_ips: tuple[str, ...]
