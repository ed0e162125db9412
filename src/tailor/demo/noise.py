"""The errors people and clerks make when names, emails, phones and addresses are typed in."""

from __future__ import annotations

from datetime import date

from tailor.demo.dice import Dice
from tailor.demo.model import Address
from tailor.demo.phones import Phone, mistyped, written

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    ch: row[max(0, i - 1) : i] + row[i + 1 : i + 2] for row in _KEYBOARD_ROWS for i, ch in enumerate(row)
}
_DOMAIN_TYPOS = (
    ("gmail", "gmial"),
    ("gmail", "gmal"),
    ("hotmail", "hotmial"),
    ("hotmail", "hotmal"),
    ("outlook", "outlok"),
    ("yahoo", "yaho"),
    ("icloud", "iclod"),
    ("btinternet", "btinternett"),
)
_COUNTRIES = (("GB", 0.6), ("United Kingdom", 0.22), ("UK", 0.1), ("England", 0.03), ("", 0.05))
_COUNTRY_CUM = [0.6, 0.82, 0.92, 0.95, 1.0]


def typo(dice: Dice, word: str) -> str:
    """A word with one typing error: a dropped, doubled, swapped or neighbouring-key letter."""
    if len(word) < 3:
        return word
    i = dice.between(1, len(word) - 2)  # people rarely get the first letter wrong
    kind = dice.below(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    near = _NEIGHBOURS.get(word[i].lower())
    if not near:
        return word[:i] + word[i] + word[i:]
    return word[:i] + dice.pick(near) + word[i + 1 :]


def cased(dice: Dice, text: str) -> str:
    """Text as some systems store it: now and then in capitals or lower case."""
    r = dice.u()
    if r < 0.05:
        return text.upper()
    if r < 0.08:
        return text.lower()
    return text


def messy_email(dice: Dice, email: str, typo_rate: float) -> str:
    """An email address as typed: mixed case, stray spaces, and now and then a misspelt domain."""
    local, _, domain = email.partition("@")
    r = dice.u()
    if r < 0.12:
        local = local.capitalize()
    elif r < 0.18:
        local, domain = local.upper(), domain.upper()
    elif r < 0.24:
        local = ".".join(part.capitalize() for part in local.split("."))
    if dice.chance(typo_rate / 3):
        for right, wrong in _DOMAIN_TYPOS:
            if domain.lower().startswith(right + "."):
                domain = wrong + domain[len(right) :]
                break
    text = f"{local}@{domain}"
    r = dice.u()
    if r < 0.05:
        return text + " "
    if r < 0.08:
        return " " + text
    if r < 0.1:
        return text + "  "
    return text


def messy_phone(dice: Dice, phone: Phone, typo_rate: float) -> str:
    """A phone number written in any of the usual formats, rarely with a mistyped digit."""
    if dice.chance(typo_rate / 4):
        phone = mistyped(dice, phone)
    return written(dice, phone)


def messy_postcode(dice: Dice, postcode: str) -> str:
    """A postcode as typed: sometimes lower case or without its space."""
    r = dice.u()
    if r < 0.08:
        return postcode.replace(" ", "")
    if r < 0.14:
        return postcode.lower()
    return postcode


def country(dice: Dice) -> str:
    """How a system wrote the country of a UK address."""
    return _COUNTRIES[dice.index(_COUNTRY_CUM)][0]


def street(dice: Dice, address: Address) -> str:
    """A street line as typed: abbreviated, or with the flat number run in."""
    line = address.street
    r = dice.u()
    if r < 0.1:
        line = line.replace(" Road", " Rd").replace(" Street", " St").replace(" Avenue", " Ave")
    elif r < 0.14:
        line = line.replace("Flat ", "").replace(", ", "/", 1) if line.startswith("Flat ") else line.upper()
    return line


def birth_date(dice: Dice, born: date, missing_rate: float) -> str:
    """A date of birth in ISO form; sometimes missing, a placeholder, or with day and month swapped."""
    r = dice.u()
    if r < missing_rate * 2:
        return ""
    if r < missing_rate * 2 + 0.01:
        return "1900-01-01"
    if r < missing_rate * 2 + 0.03 and born.day <= 12 and born.day != born.month:
        return date(born.year, born.day, born.month).isoformat()
    return born.isoformat()
