"""The kinds of column the matcher understands, and how they are recognised from a header."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum

from tailor.identity.matching.exceptions import ColumnError


class ColumnType(StrEnum):
    """What a column of a record holds, as far as matching is concerned."""

    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    FULL_NAME = "full_name"
    DOB = "dob"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    POSTCODE = "postcode"
    CITY = "city"


# Header spellings seen in exports, compared after lower-casing and dropping everything but letters
# and digits ("First Name", "first_name" and "FirstName" are all "firstname").
_HEADERS: dict[ColumnType, tuple[str, ...]] = {
    ColumnType.FIRST_NAME: ("firstname", "fname", "forename", "givenname", "first", "christianname"),
    ColumnType.LAST_NAME: ("lastname", "lname", "surname", "familyname", "last"),
    ColumnType.FULL_NAME: ("name", "fullname", "customername", "callername", "contactname"),
    ColumnType.DOB: ("dob", "dateofbirth", "birthdate", "birthday", "born"),
    ColumnType.EMAIL: ("email", "emailaddress", "mail", "email1"),
    ColumnType.PHONE: ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell"),
    ColumnType.ADDRESS: ("address", "street", "streetaddress", "address1", "addressline1", "line1"),
    ColumnType.POSTCODE: ("postcode", "postalcode", "zip", "zipcode", "postcodezip"),
    ColumnType.CITY: ("city", "town", "locality"),
}
# Prefixes that qualify a column without changing what it holds: "shipping_postcode" is a postcode.
_PREFIXES = ("shipping", "billing", "delivery", "home", "customer", "contact")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(header: str) -> str:
    return _NOT_ALNUM.sub("", header.lower())


def _recognise(header: str) -> ColumnType | None:
    key = _key(header)
    candidates = [key] + [key[len(p) :] for p in _PREFIXES if key.startswith(p) and len(key) > len(p)]
    for candidate in candidates:
        for column_type, spellings in _HEADERS.items():
            if candidate in spellings:
                return column_type
    return None


def parse_column_option(option: str) -> tuple[ColumnType, str]:
    """A `TYPE=NAME` option as (column type, column name)."""
    type_name, sep, name = option.partition("=")
    if not sep or not name.strip():
        raise ColumnError(f"--column {option!r}: expected TYPE=NAME, e.g. first_name='Given Name'")
    try:
        return ColumnType(type_name.strip().lower()), name.strip()
    except ValueError:
        known = ", ".join(t.value for t in ColumnType)
        raise ColumnError(f"--column {option!r}: unknown type {type_name!r}; known types: {known}") from None


def recognise_columns(
    headers: Sequence[str], explicit: Mapping[ColumnType, str] | None = None, *, id_column: str | None = None
) -> dict[ColumnType, str]:
    """The column of each type among `headers`: the explicit choices first, then recognised names."""
    explicit = dict(explicit or {})
    missing = [f"{t.value}={name!r}" for t, name in explicit.items() if name not in headers]
    if missing:
        raise ColumnError(f"no such column for {', '.join(missing)}; columns are: {', '.join(headers)}")
    chosen = dict(explicit)
    taken = set(explicit.values()) | {id_column}
    for header in headers:
        if header in taken:
            continue
        column_type = _recognise(header)
        if column_type is not None and column_type not in chosen:
            chosen[column_type] = header
    return chosen
