"""The typed rules that say how identifier values are normalised and which values are blocked."""

from __future__ import annotations

import re
from typing import Literal

import msgspec
import phonenumbers

from tailor.identity.exceptions import UnknownIdentifierTypeError
from tailor.identity.identifiers import BUILTIN_TYPES, IdentifierType, Normaliser, type_name_problem

# Placeholders that broken SDK calls, forms and exports send instead of a real value. They are
# compared case-insensitively with the trimmed value, for every identifier type.
BLOCKED_EVERYWHERE = frozenset(
    {
        "null",
        "(null)",
        "<null>",
        "undefined",
        "none",
        "nil",
        "nan",
        "0",
        "-1",
        "-",
        "n/a",
        "anonymous",
        "unknown",
        "[object object]",
    }
)

BLOCKED_BY_TYPE = {
    "email": frozenset(
        {
            "test@test.com",
            "noemail@noemail.com",
            "no@email.com",
            "none@none.com",
            "email@email.com",
            "a@a.com",
            "user@domain.com",
            "name@domain.com",
        }
    ),
}

# All-zero ids (such as the zero UUID an iPhone reports as its advertising id when tracking is
# refused) are shared by millions of devices.
_ZERO_ID = r"^[0-]+$"

BLOCKED_PATTERNS_BY_TYPE = {
    "user_id": (_ZERO_ID,),
    "anonymous_id": (_ZERO_ID,),
    "device_id": (_ZERO_ID,),
    "crm_id": (_ZERO_ID,),
    "email": (
        r"^(?:no-?reply|do-?not-?reply|no-?e?mail|none|null|undefined|unknown|nobody|dummy|fake|test)(?:\+[^@]*)?@",
        # Keyboard filler such as a@a.com or xx@yy.com.
        r"^([a-z0-9])\1*@([a-z0-9])\2*\.[a-z]{2,3}$",
    ),
    "phone": (
        # One digit repeated after the country code: 07777 777777, 0000 000000.
        r"^\+\d{1,3}?(\d)\1{6,}$",
        r"^\+\d{1,3}?0?(?:123456789|987654321)",
    ),
}

# Mailbox providers known to ignore everything from a '+' in the local part.
PLUS_ADDRESSING_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "live.co.uk",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "fastmail.com",
    }
)


class NormalisationRules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How identifier values are normalised and which values are blocked, per identifier type."""

    default_region: str = "GB"
    """Region (ISO 3166 alpha-2) assumed for phone numbers written without a country code."""
    phone_validity: Literal["valid", "possible"] = "valid"
    """Accept numbers only in allocated ranges ("valid") or of any plausible length ("possible")."""
    link_fixed_lines: bool = False
    """Whether fixed-line phone numbers link identifiers; by default they are typed `landline` and
    link nothing, as a household's or an office's number is shared by several people."""
    email_plus_addressing: Literal["keep", "listed", "all"] = "listed"
    """Drop a '+tag' from the local part never, only at `email_plus_domains`, or at every domain."""
    email_plus_domains: frozenset[str] = PLUS_ADDRESSING_DOMAINS
    """Domains whose mailboxes ignore a '+tag' in the local part."""
    email_dotless_domains: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})
    """Domains whose mailboxes ignore dots in the local part."""
    email_domain_aliases: dict[str, str] = msgspec.field(
        default_factory=lambda: {"googlemail.com": "gmail.com"}
    )
    """Domains that deliver to the same mailboxes as another domain, mapped to that domain."""
    max_length: int = 255
    """Longest identifier value accepted, in characters after trimming; longer values are rejected."""
    blocked_values: frozenset[str] = BLOCKED_EVERYWHERE
    """Values blocked for every type, compared case-insensitively with the trimmed and normalised value."""
    blocked_values_by_type: dict[str, frozenset[str]] = msgspec.field(
        default_factory=lambda: dict(BLOCKED_BY_TYPE)
    )
    """Further blocked values per type name, compared like `blocked_values`."""
    blocked_patterns_by_type: dict[str, tuple[str, ...]] = msgspec.field(
        default_factory=lambda: dict(BLOCKED_PATTERNS_BY_TYPE)
    )
    """Regular expressions per type name; a normalised value in which one is found is blocked."""
    custom_types: dict[str, Normaliser] = msgspec.field(default_factory=dict)
    """User-defined identifier types by name, each with the normaliser its values go through."""

    def __post_init__(self) -> None:
        # ValueError, so that msgspec reports it as a validation error of the configuration.
        problems = []
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(f"default_region {self.default_region!r} is not a region phonenumbers knows")
        if self.max_length < 1:
            problems.append(f"max_length must be at least 1, got {self.max_length}")
        for name in self.custom_types:
            problem = type_name_problem(name)
            if problem is not None:
                problems.append(f"custom_types: {problem}")
        known = BUILTIN_TYPES.keys() | self.custom_types.keys()
        for field in ("blocked_values_by_type", "blocked_patterns_by_type"):
            problems += [
                f"{field}: unknown identifier type {name!r}"
                for name in getattr(self, field)
                if name not in known
            ]
        for name, patterns in self.blocked_patterns_by_type.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as e:
                    problems.append(f"blocked_patterns_by_type.{name}: {pattern!r} is not a regex: {e}")
        if problems:
            raise ValueError("; ".join(problems))

    def identifier_type(self, name: str) -> IdentifierType:
        """The built-in or user-defined identifier type of a name."""
        builtin = BUILTIN_TYPES.get(name)
        if builtin is not None:
            return builtin
        normaliser = self.custom_types.get(name)
        if normaliser is None:
            raise UnknownIdentifierTypeError(name, [*BUILTIN_TYPES, *self.custom_types])
        return IdentifierType(name, normaliser)
