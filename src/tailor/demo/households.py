"""Households and the names, addresses, birthdays and contact details of the people in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tailor.demo.dice import Dice, cumulative
from tailor.demo.model import Address
from tailor.demo.phones import Phone, landline_number, mobile_number
from tailor.demo.pools import EMAIL_DOMAINS, NICKNAMES, TOWNS, WORK_DOMAINS, Pools, home_ip, postcode

_SIZES = (0.3, 0.36, 0.16, 0.13, 0.05)  # households of 1..5 adults
_TOWN_CUM = cumulative([t.weight for t in TOWNS])
_DOMAIN_CUM = cumulative([w for _, w in EMAIL_DOMAINS])


@dataclass(frozen=True, slots=True)
class Resident:
    """Who a person is, before any behaviour is attached."""

    gender: str
    first_name: str
    last_name: str
    nickname: str | None
    birth_date: date
    emails: tuple[str, ...]
    switches_email: bool  # emails[1] is a new personal address rather than a work one
    mobile: Phone | None
    children: bool  # lives with children under 18, so buys kids' clothes


@dataclass(frozen=True, slots=True)
class HomeDraft:
    """A household before ids and device plans are attached."""

    address: Address
    previous_address: Address | None
    landline: Phone | None
    ip: str
    town: int
    residents: tuple[Resident, ...]


def household_sizes(dice: Dice, people: int) -> list[int]:
    """Sizes of households that together hold exactly `people` people."""
    cum = cumulative(_SIZES)
    sizes: list[int] = []
    left = people
    while left > 0:
        size = min(dice.index(cum) + 1, left)
        sizes.append(size)
        left -= size
    return sizes


def address(dice: Dice, rng: np.random.Generator, pools: Pools, town_index: int) -> Address:
    """A street address in a town."""
    town = TOWNS[town_index]
    street = str(pools.streets[int(rng.choice(len(pools.streets), p=pools.street_weights))])
    number = dice.geometric(40)
    flat_chance = 0.35 if town.name == "London" else 0.12
    line = (
        f"Flat {dice.between(1, 24)}, {number} {street}" if dice.chance(flat_chance) else f"{number} {street}"
    )
    return Address(line, town.name, postcode(rng, town))


def _email_local(dice: Dice, first: str, last: str, nickname: str | None, year: int) -> str:
    first = re.sub(r"[^a-z]", "", first.lower())
    last = re.sub(r"[^a-z]", "", last.lower())
    nick = re.sub(r"[^a-z]", "", (nickname or first).lower())
    pattern = dice.below(9)
    if pattern == 0:
        return f"{first}.{last}"
    if pattern == 1:
        return f"{first}{last}"
    if pattern == 2:
        return f"{first[0]}{last}"
    if pattern == 3:
        return f"{first}.{last}{year % 100:02d}"
    if pattern == 4:
        return f"{first}{last}{dice.between(1, 999)}"
    if pattern == 5:
        return f"{nick}{last[:4]}{dice.between(1, 99)}"
    if pattern == 6:
        return f"{first}_{last}"
    if pattern == 7:
        return f"{last}.{first}"
    return f"{first[0]}.{last}{year % 100:02d}"


def email_address(dice: Dice, taken: set[str], first: str, last: str, nickname: str | None, year: int) -> str:
    """A personal email address no one else has."""
    domain = EMAIL_DOMAINS[dice.index(_DOMAIN_CUM)][0]
    local = _email_local(dice, first, last, nickname, year)
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{dice.between(1, 9999)}@{domain}"
    taken.add(email)
    return email


def _resident(
    dice: Dice,
    pools: Pools,
    taken: set[str],
    today: date,
    surname: str,
    age: tuple[int, int],
    gender: str,
    children: bool,
) -> Resident:
    pool = pools.female if gender == "f" else pools.male
    first = str(pool[dice.below(len(pool))])
    nicks = NICKNAMES.get(first)
    nickname = dice.pick(nicks) if nicks and dice.chance(0.6) else None
    born = today - timedelta(days=dice.between(age[0] * 365, age[1] * 365))
    emails = [email_address(dice, taken, first, surname, nickname, born.year)]
    switches = False
    if dice.chance(0.22):
        # A second address: a new personal one they switch to, or a work one.
        if dice.chance(0.5):
            emails.append(email_address(dice, taken, first, surname, nickname, born.year))
            switches = True
        else:
            work = f"{first.lower()}.{surname.lower().replace(' ', '')}@{dice.pick(WORK_DOMAINS)}"
            if work not in taken:
                taken.add(work)
                emails.append(work)
    mobile = None if dice.chance(0.08) else mobile_number(dice.rng)
    return Resident(gender, first, surname, nickname, born, tuple(emails), switches, mobile, children)


def draft_household(
    dice: Dice, rng: np.random.Generator, pools: Pools, taken: set[str], today: date, size: int
) -> HomeDraft:
    """A household of `size` adults with an address, a broadband line and maybe a landline."""
    town = dice.index(_TOWN_CUM)
    home = address(dice, rng, pools, town)
    moved = dice.chance(0.15)
    previous = (
        address(dice, rng, pools, town if dice.chance(0.6) else dice.index(_TOWN_CUM)) if moved else None
    )
    landline = landline_number(rng, TOWNS[town]) if dice.chance(0.42) else None
    surname = str(pools.surnames[dice.below(len(pools.surnames))])
    flatmates = size > 1 and dice.chance(0.2)
    children = not flatmates and size >= 2 and dice.chance(0.45)
    residents = []
    for k in range(size):
        if flatmates:
            own = str(pools.surnames[dice.below(len(pools.surnames))])
            residents.append(_resident(dice, pools, taken, today, own, (20, 38), dice.pick("fm"), False))
        elif k < 2:
            # A couple; about a quarter of partners keep their own surname.
            name = (
                surname
                if k == 0 or dice.chance(0.75)
                else str(pools.surnames[dice.below(len(pools.surnames))])
            )
            gender = dice.pick("fm") if k == 0 else ("m" if residents[0].gender == "f" else "f")
            ages = (24, 80) if size <= 2 else (36, 62)
            residents.append(_resident(dice, pools, taken, today, name, ages, gender, children))
        else:
            residents.append(_resident(dice, pools, taken, today, surname, (18, 27), dice.pick("fm"), False))
    return HomeDraft(home, previous, landline, home_ip(rng), town, tuple(residents))
