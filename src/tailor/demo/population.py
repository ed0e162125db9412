"""Builds the planned population: people, households, devices and offline dealings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tailor.demo.catalogue import CATEGORIES, build_catalogue
from tailor.demo.channels import WEB_MIX
from tailor.demo.config import SynthConfig
from tailor.demo.devices import PERSONAL_MIX, PROFILES, RESETS_PER_180_DAYS, SHARED_MIX
from tailor.demo.dice import Dice, cumulative
from tailor.demo.households import HomeDraft, Resident, draft_household, household_sizes
from tailor.demo.model import Archetype, Device, Household, Person, Population
from tailor.demo.plans import plan_calls, plan_guest_orders
from tailor.demo.pools import build_pools, carrier_ips
from tailor.demo.rhythm import Calendar

ARCHETYPES = (
    # name, share, visits/week, buys, categories, shop visits/week, opens messages
    Archetype("one_off", 0.14, 0.5, 0.3, (1, 2), 0.0, 0.3),
    Archetype("casual", 0.27, 0.09, 0.25, (1, 2), 0.006, 0.5),
    Archetype("regular", 0.2, 0.21, 0.35, (1, 3), 0.01, 0.8),
    Archetype("family_shopper", 0.1, 0.34, 0.45, (3, 5), 0.012, 1.0),
    Archetype("loyal_specialist", 0.08, 0.26, 0.5, (1, 1), 0.01, 1.1),
    Archetype("browser", 0.08, 0.7, 0.0, (2, 4), 0.0, 1.2),
    Archetype("store_first", 0.08, 0.04, 0.2, (1, 3), 0.1, 0.6),
    Archetype("lapsed", 0.05, 0.26, 0.35, (1, 2), 0.006, 0.4),
)
_FAMILY_SHOPPER = next(a for a in ARCHETYPES if a.name == "family_shopper")
_ARCHETYPE_CUM = cumulative([a.share for a in ARCHETYPES])
_PERSONAL_KINDS = tuple(PERSONAL_MIX)
_PERSONAL_CUM = cumulative(list(PERSONAL_MIX.values()))
_SHARED_KINDS = tuple(SHARED_MIX)
_SHARED_CUM = cumulative(list(SHARED_MIX.values()))
_DEVICE_COUNT_CUM = cumulative((0.32, 0.36, 0.22, 0.1))  # 1..4 devices per person


class _Builder:
    """Mutable state while the population is drawn."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng([config.seed, 0])
        self.dice = Dice(self.rng)
        self.calendar = Calendar(config.end, config.days)
        self.devices: list[Device] = []
        self.taken_ids: set[str] = set()

    def unique(self, make: str) -> str:
        """A fresh random identifier of a given shape: "uuid", "UUID", "hex16" or "customer"."""
        while True:
            if make == "customer":
                value = str(self.dice.between(10_000_000, 99_999_999))
            elif make == "hex16":
                value = self.dice.hex(16)
            else:
                value = self.dice.uuid(upper=make == "UUID")
            if value not in self.taken_ids:
                self.taken_ids.add(value)
                return value

    def device(self, kind: str, users: tuple[int, ...], logins: tuple[int | None, ...], home: int) -> int:
        """Adds a device of a kind ("tablet" being an app on a family tablet) and returns its index."""
        profile = self.dice.pick(PROFILES[kind])
        ios = profile.device_type == "ios" or profile.library[0] == "analytics-swift"
        device_id = None
        if profile.kind in ("app", "tv"):
            device_id = self.unique("UUID") if ios else self.unique("hex16")
        n_resets = self.dice.poisson(RESETS_PER_180_DAYS[kind] * self.config.days / 180)
        resets = tuple(sorted(self.dice.below(self.config.days) for _ in range(n_resets)))
        ids = tuple(self.unique("UUID" if ios else "uuid") for _ in range(n_resets + 1))
        self.devices.append(Device(len(self.devices), profile, device_id, ids, resets, users, logins, home))
        return len(self.devices) - 1

    def login_day(self, signup: int | None, primary: bool) -> int | None:
        """The first day someone logs in on a device (None: never; negative: before the history)."""
        if signup is None or (not primary and self.dice.chance(self.config.anonymous_device_share)):
            return None
        if primary and signup >= 0:
            return signup  # they sign up on their main device
        if signup < 0 and self.dice.chance(0.75 if primary else 0.45):
            return signup  # logged in since before the history began
        return max(signup, 0) + int(self.dice.expo(self.config.days / 4))

    def person(self, index: int, hh: int, r: Resident, arch: Archetype) -> Person:
        """A person with behaviour and plans attached, devices still to come."""
        dice, days, cfg = self.dice, self.config.days, self.config
        registered = dice.chance(
            cfg.registered_share * (0.55 if arch.name in ("one_off", "store_first") else 1.1)
        )
        signup = None
        if registered:
            signup = (
                dice.between(0, days - 1)
                if dice.chance(cfg.signup_in_window_share)
                else -dice.between(1, 2000)
            )
        start = 0 if dice.chance(0.78) else dice.below(int(days * 0.85))
        end = days - 1 if dice.chance(0.9) else dice.between(start, days - 1)
        if arch.name == "lapsed":
            end = min(end, start + dice.between(days // 8, days // 2))
        elif arch.name == "one_off":
            start = dice.below(days)
            end = min(days - 1, start + dice.between(0, 14))
        if signup is not None and signup >= 0:
            start, end = min(start, signup), max(end, signup)
        k = dice.between(*arch.categories)
        weights = np.array([_category_weight(r, c, arch) for c in CATEGORIES])
        chosen = self.rng.choice(len(CATEGORIES), size=k, replace=False, p=weights / weights.sum())
        prefs = self.rng.dirichlet(np.full(k, 2.0))
        channel = self.rng.dirichlet(np.array(WEB_MIX) * 12)
        change = dice.between(1, days - 1) if r.switches_email else None
        store = (arch.store_visits_per_week > 0 and dice.chance(0.9)) or dice.chance(0.3)
        return Person(
            index=index,
            person_id=f"person-{index + 1:06d}",
            household=hh,
            archetype=arch,
            gender=r.gender,
            first_name=r.first_name,
            last_name=r.last_name,
            nickname=r.nickname,
            birth_date=r.birth_date,
            emails=r.emails,
            email_change_day=change,
            mobile=r.mobile,
            user_id=self.unique("customer") if registered else None,
            signup_day=signup,
            active=(start, end),
            visit_rate=arch.visits_per_week / 7 * float(self.rng.lognormal(0, 0.5)) * cfg.activity,
            categories=tuple(CATEGORIES[int(c)] for c in chosen),
            category_weights=tuple(cumulative(prefs.tolist())),
            devices=(),
            device_weights=(),
            channel_weights=tuple(cumulative(channel.tolist())),
            email_opt_in=dice.chance(cfg.email_opt_in),
            sms_opt_in=r.mobile is not None and dice.chance(cfg.sms_opt_in),
            subscriber_id=f"sub_{self.dice.hex(12)}",
            pos_token=f"card_{self.dice.hex(16)}" if store else None,
            scans_loyalty=registered and dice.chance(0.55),
            guest_orders=(),
            calls=(),
        )


def _category_weight(r: Resident, category: str, arch: Archetype) -> float:
    own, other = ("Women", "Men") if r.gender == "f" else ("Men", "Women")
    base = {
        own: 4.0,
        other: 0.7,
        "Kids": 3.0 if r.children else 0.15,
        "Home Accessories": 1.6,
        "Furniture": 0.7,
        "Bedroom": 1.0,
    }[category]
    if arch.name == "family_shopper" and category == "Kids":
        base = 6.0
    return base


def build_population(config: SynthConfig) -> Population:
    """Draws everyone in the customer base for a config."""
    b = _Builder(config)
    dice, rng = b.dice, b.rng
    pools = build_pools(config.seed)
    catalogue = build_catalogue(np.random.default_rng([config.seed, 1]), config.products_per_category)
    today = b.calendar.dates[-1]
    taken: set[str] = set()
    drafts: list[HomeDraft] = [
        draft_household(dice, rng, pools, taken, today, size) for size in household_sizes(dice, config.people)
    ]
    people: list[Person] = []
    households: list[Household] = []
    for hh, draft in enumerate(drafts):
        members = []
        for r in draft.residents:
            arch = ARCHETYPES[dice.index(_ARCHETYPE_CUM)]
            if r.children and arch.name in ("casual", "regular") and dice.chance(0.5):
                arch = _FAMILY_SHOPPER  # parents buy for the children
            members.append(b.person(len(people), hh, r, arch))
            people.append(members[-1])
        registered = sum(p.user_id is not None for p in members)
        family = f"fam_{dice.hex(10)}" if registered >= 2 and dice.chance(0.3) else None
        households.append(
            Household(
                hh,
                f"household-{hh + 1:06d}",
                draft.address,
                draft.previous_address,
                draft.landline,
                draft.ip,
                tuple(p.index for p in members),
                draft.town,
                family,
            )
        )
        owned = _attach_devices(b, members, hh)
        for p in members:
            devices = owned[p.index]
            weights = cumulative([2.5 if i == 0 else 1.0 for i in range(len(devices))])
            people[p.index] = replace(p, devices=tuple(devices), device_weights=tuple(weights))
    for p in people:
        orders = plan_guest_orders(dice, config, b.calendar, catalogue, b.devices, p)
        calls = plan_calls(dice, config, b.calendar, p, households[p.household])
        people[p.index] = replace(p, guest_orders=orders, calls=calls)
    _number_in_time_order(people)
    return Population(tuple(people), tuple(households), tuple(b.devices), catalogue, tuple(carrier_ips(rng)))


def _number_in_time_order(people: list[Person]) -> None:
    """Gives guest orders and calls ids that grow with time, as the shop's systems would."""
    orders = sorted((o.ms, p.index, k) for p in people for k, o in enumerate(p.guest_orders))
    calls = sorted((c.ms, p.index, k) for p in people for k, c in enumerate(p.calls))
    order_ids = {(i, k): f"HH-{5_000_001 + n}" for n, (_, i, k) in enumerate(orders)}
    call_ids = {(i, k): f"CC{700_001 + n}" for n, (_, i, k) in enumerate(calls)}
    for p in people:
        people[p.index] = replace(
            p,
            guest_orders=tuple(
                replace(o, order_id=order_ids[p.index, k]) for k, o in enumerate(p.guest_orders)
            ),
            calls=tuple(replace(c, call_id=call_ids[p.index, k]) for k, c in enumerate(p.calls)),
        )


def _attach_devices(b: _Builder, members: list[Person], hh: int) -> dict[int, list[int]]:
    """Gives each member 1-4 devices, one of which may be a family device the household shares."""
    dice = b.dice
    owned: dict[int, list[int]] = {p.index: [] for p in members}
    if len(members) > 1 and dice.chance(b.config.shared_device_share):
        users = tuple(p.index for p in members if dice.chance(0.85)) or tuple(p.index for p in members)
        if len(users) < 2:
            users = tuple(p.index for p in members[:2])
        signups = {p.index: p.signup_day for p in members}
        logins = tuple(b.login_day(signups[i], dice.chance(0.8)) for i in users)
        kind = _SHARED_KINDS[dice.index(_SHARED_CUM)]
        shared = b.device(kind, users, logins, hh)
        for i in users:
            owned[i].append(shared)
    for p in members:
        count = max(1, dice.index(_DEVICE_COUNT_CUM) + 1 - len(owned[p.index]))
        kinds = sorted(
            {_PERSONAL_KINDS[dice.index(_PERSONAL_CUM)] for _ in range(count)}, key=_PERSONAL_KINDS.index
        )
        # The phone comes first: it is the device most people use most.
        kinds.sort(key=lambda k: k not in ("mobile_web", "app"))
        personal = [
            b.device(kind, (p.index,), (b.login_day(p.signup_day, n == 0),), hh)
            for n, kind in enumerate(kinds)
        ]
        owned[p.index] = personal + owned[p.index]
    return owned
