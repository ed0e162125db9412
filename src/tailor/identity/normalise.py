"""Normalisation of identifier values, one at a time or a micro-batch at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache, partial

import msgspec

from tailor.identity.emails import normalise_email
from tailor.identity.identifiers import IdentifierType
from tailor.identity.names import normalise_name
from tailor.identity.phones import is_fixed_line, normalise_phone
from tailor.identity.rules import NormalisationRules

Outcome = tuple[str | None, str | None]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NormalisedValue(msgspec.Struct, frozen=True):
    """The outcome of normalising one identifier value: the value to match on, or why there is none.

    A reason starts with what went wrong: "missing", "blocked", "too long" or "invalid".
    """

    value: str | None
    """The normalised value, or None when the raw value cannot be used."""
    reason: str | None
    """Why the raw value cannot be used, or None when it can."""


def _normalise_id(text: str) -> Outcome:
    # Opaque ids are compared exactly: any change beyond trimming could join two different ids.
    if _CONTROL.search(text):
        return None, "invalid: contains control characters"
    return text, None


class IdentifierNormaliser:
    """Normalises identifier values of any type under one set of normalisation rules."""

    def __init__(self, rules: NormalisationRules | None = None) -> None:
        self.rules = rules = NormalisationRules() if rules is None else rules
        everywhere = frozenset(v.casefold() for v in rules.blocked_values)
        self._blocked_everywhere = everywhere
        self._blocked = {
            name: everywhere | {v.casefold() for v in values}
            for name, values in rules.blocked_values_by_type.items()
        }
        self._patterns = {
            name: tuple(re.compile(p) for p in patterns)
            for name, patterns in rules.blocked_patterns_by_type.items()
        }
        lower = partial(map, str.lower)
        email = partial(
            normalise_email,
            plus_all=rules.email_plus_addressing == "all",
            plus_domains=(
                frozenset(lower(rules.email_plus_domains))
                if rules.email_plus_addressing == "listed"
                else frozenset()
            ),
            dotless_domains=frozenset(lower(rules.email_dotless_domains)),
            domain_aliases={k.lower(): v.lower() for k, v in rules.email_domain_aliases.items()},
        )
        phone = partial(normalise_phone, region=rules.default_region, validity=rules.phone_validity)
        self._normalisers: dict[str, Callable[[str], Outcome]] = {
            "id": _normalise_id,
            "email": email,
            "phone": phone,
            "name": normalise_name,
        }

    def blocked_values(self, type_name: str) -> frozenset[str]:
        """The case-folded values blocked for a type."""
        return frozenset(self._blocked.get(type_name, self._blocked_everywhere))

    def blocked_patterns(self, type_name: str) -> tuple[str, ...]:
        """The regular expressions that block a type's values."""
        return tuple(p.pattern for p in self._patterns.get(type_name, ()))

    def retype(self, type_name: str, value: str) -> str:
        """The type a normalised value is kept under: a fixed-line `phone` becomes a `landline`."""
        if type_name == "phone" and not self.rules.link_fixed_lines and is_fixed_line(value):
            return "landline"
        return type_name

    def identifier_type(self, type: IdentifierType | str) -> IdentifierType:
        """The identifier type itself, or the built-in or user-defined type of that name."""
        return type if isinstance(type, IdentifierType) else self.rules.identifier_type(type)

    def normalise(self, type: IdentifierType | str, value: str | None) -> NormalisedValue:
        """One value of a type, normalised, or the reason it cannot be used."""
        t = self.identifier_type(type)
        return NormalisedValue(*self._one(t.name, self._normalisers[t.normaliser], value))

    def normalise_many(
        self, type: IdentifierType | str, values: Sequence[str | None]
    ) -> tuple[list[str | None], list[str | None]]:
        """Many values of one type: the normalised values and, position by position, the reasons."""
        t = self.identifier_type(type)
        normaliser = self._normalisers[t.normaliser]
        # A micro-batch repeats the same ids many times (one visitor's events), so each distinct
        # raw value is normalised once.
        seen: dict[str | None, Outcome] = {}
        out_values: list[str | None] = []
        out_reasons: list[str | None] = []
        for value in values:
            outcome = seen.get(value)
            if outcome is None:
                outcome = seen[value] = self._one(t.name, normaliser, value)
            out_values.append(outcome[0])
            out_reasons.append(outcome[1])
        return out_values, out_reasons

    def _one(self, name: str, normaliser: Callable[[str], Outcome], raw: str | None) -> Outcome:
        if raw is None:
            return None, "missing: no value"
        text = raw.strip()
        if not text:
            return None, "blocked: empty value"
        limit = self.rules.max_length
        if len(text) > limit:
            return None, f"too long: {len(text)} characters, at most {limit} are accepted"
        blocked = self._blocked.get(name, self._blocked_everywhere)
        if text.casefold() in blocked:
            return None, f"blocked: {text!r} is a blocked {name} value"
        value, reason = normaliser(text)
        if value is None:
            return None, reason
        if value != text and value.casefold() in blocked:
            return None, f"blocked: {text!r} normalises to the blocked {name} value {value!r}"
        for pattern in self._patterns.get(name, ()):
            if pattern.search(value):
                return None, f"blocked: {value!r} matches the blocked {name} pattern {pattern.pattern!r}"
        return value, None


@cache
def default_normaliser() -> IdentifierNormaliser:
    """The normaliser of the default rules, shared because building one compiles every pattern."""
    return IdentifierNormaliser()


def normalise(
    type: IdentifierType | str, value: str | None, rules: NormalisationRules | None = None
) -> NormalisedValue:
    """One identifier value normalised under the rules (the defaults when None), or why it cannot be used."""
    normaliser = default_normaliser() if rules is None else IdentifierNormaliser(rules)
    return normaliser.normalise(type, value)


def normalise_many(
    type: IdentifierType | str, values: Sequence[str | None], rules: NormalisationRules | None = None
) -> tuple[list[str | None], list[str | None]]:
    """Many values of one type normalised under the rules: the values and, by position, the reasons."""
    normaliser = default_normaliser() if rules is None else IdentifierNormaliser(rules)
    return normaliser.normalise_many(type, values)
