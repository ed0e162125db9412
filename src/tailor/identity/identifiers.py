"""Identifier types: the built-in ones and those a user declares by name."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

Normaliser = Literal["id", "email", "phone", "name"]
"""How the values of an identifier type are normalised: opaque id, email address, phone number or name."""

# Type names appear in lookups such as `email:ana@foo.example`, so they must never contain ':'.
TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class IdentifierType(msgspec.Struct, frozen=True):
    """A kind of identifier, such as `email`, and the normaliser its values go through."""

    name: str
    """The type's name, lower-case letters, digits and underscores, as used in `TYPE:VALUE` lookups."""
    normaliser: Normaliser = "id"
    """How values of this type are normalised."""

    def __str__(self) -> str:
        return self.name


USER_ID = IdentifierType("user_id")
ANONYMOUS_ID = IdentifierType("anonymous_id")
EMAIL = IdentifierType("email", "email")
PHONE = IdentifierType("phone", "phone")
LANDLINE = IdentifierType("landline", "phone")
"""A fixed-line phone number: shared by a household or an office, so it is kept but links no one."""
DEVICE_ID = IdentifierType("device_id")
CRM_ID = IdentifierType("crm_id")
RECORD = IdentifierType("record")
"""An imported record, valued `KIND:ID` (such as `crm:C123`): the node its fields are evidence of."""

NAME = IdentifierType("name", "name")
"""A person's name as a match field for probabilistic matching; it never links records on its own."""

BUILTIN_TYPES: dict[str, IdentifierType] = {
    t.name: t for t in (USER_ID, ANONYMOUS_ID, EMAIL, PHONE, LANDLINE, DEVICE_ID, CRM_ID, RECORD, NAME)
}


def type_name_problem(name: str) -> str | None:
    """Why a string cannot name a user-defined identifier type, or None when it can."""
    if not TYPE_NAME.fullmatch(name):
        return f"identifier type name {name!r} must match {TYPE_NAME.pattern}"
    if name in BUILTIN_TYPES:
        return f"identifier type name {name!r} is built in and cannot be redefined"
    return None
