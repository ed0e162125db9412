"""UK phone numbers and the many ways people and systems write them down.

Every format produced here parses with the `phonenumbers` library under default region "GB" to the
same number as `Phone.e164`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailor.demo.dice import Dice
from tailor.demo.pools import MOBILE_PREFIXES, Town


@dataclass(frozen=True, slots=True)
class Phone:
    """A UK phone number: dialling code (without the trunk 0) and local digit groups."""

    area: str
    groups: tuple[str, ...]

    @property
    def e164(self) -> str:
        """The number in E.164 form, e.g. +442079460018."""
        return "+44" + self.area + "".join(self.groups)

    @property
    def national(self) -> str:
        """The number as written in the UK, e.g. 020 7946 0018."""
        return f"0{self.area} " + " ".join(self.groups)

    @property
    def mobile(self) -> bool:
        """Whether this is a mobile number."""
        return self.area.startswith("7")


def mobile_number(rng: np.random.Generator) -> Phone:
    """A random number in a UK mobile range, written 07xxx xxxxxx."""
    prefix = MOBILE_PREFIXES[int(rng.integers(len(MOBILE_PREFIXES)))]
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 8))
    return Phone(prefix + digits[:2], (digits[2:],))


def landline_number(rng: np.random.Generator, town: Town) -> Phone:
    """A random geographic number in a town's dialling code."""
    length = sum(town.local_groups)
    lead = town.leads[int(rng.integers(len(town.leads)))]
    local = lead + "".join(str(int(d)) for d in rng.integers(0, 10, length - len(lead)))
    groups, at = [], 0
    for size in town.local_groups:
        groups.append(local[at : at + size])
        at += size
    return Phone(town.area_code, tuple(groups))


def _e164(p: Phone) -> str:
    return p.e164


def _intl(p: Phone) -> str:
    return f"+44 {p.area} " + " ".join(p.groups)


def _national(p: Phone) -> str:
    return p.national


def _compact(p: Phone) -> str:
    return "0" + p.area + "".join(p.groups)


def _brackets(p: Phone) -> str:
    return f"(0{p.area}) " + "-".join(p.groups)


def _double_zero(p: Phone) -> str:
    return f"0044 {p.area} " + " ".join(p.groups)


def _intl_trunk(p: Phone) -> str:
    return f"+44 (0){p.area} " + " ".join(p.groups)


def _dashes(p: Phone) -> str:
    return f"0{p.area}-" + "-".join(p.groups)


def _spaced_pairs(p: Phone) -> str:
    digits = "0" + p.area + "".join(p.groups)
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def _intl_compact(p: Phone) -> str:
    return "0044" + p.area + "".join(p.groups)


# (formatter, how often a person or system writes a number that way)
FORMATS = (
    (_national, 30.0),
    (_compact, 18.0),
    (_e164, 12.0),
    (_intl, 10.0),
    (_brackets, 7.0),
    (_double_zero, 5.0),
    (_intl_trunk, 6.0),
    (_dashes, 5.0),
    (_spaced_pairs, 3.0),
    (_intl_compact, 4.0),
)
_FORMAT_CUM = [sum(w for _, w in FORMATS[: i + 1]) / sum(w for _, w in FORMATS) for i in range(len(FORMATS))]


def written(dice: Dice, phone: Phone) -> str:
    """The number written in one of the formats seen in real records."""
    return FORMATS[dice.index(_FORMAT_CUM)][0](phone)


def mistyped(dice: Dice, phone: Phone) -> Phone:
    """The number with one local digit typed wrongly or two neighbouring digits swapped."""
    local = "".join(phone.groups)
    i = dice.below(len(local) - 1) + 1
    if dice.chance(0.5):
        digits = local[:i] + local[i + 1] + local[i] + local[i + 2 :] if i + 1 < len(local) else local
    else:
        digits = local[:i] + str((int(local[i]) + dice.between(1, 9)) % 10) + local[i + 1 :]
    groups, at = [], 0
    for g in phone.groups:
        groups.append(digits[at : at + len(g)])
        at += len(g)
    return Phone(phone.area, tuple(groups))
