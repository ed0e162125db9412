"""Phone numbers in any written form to E.164, with the `phonenumbers` library."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no known country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


_FIXED_LINES: dict[str, bool] = {}
"""Whether each E.164 number normalised so far is a fixed line, found while normalising it."""


# The same numbers recur in every micro-batch (a customer's mobile on each of their orders and
# calls), and parsing is the costliest step of normalisation, so results are cached by raw text.
@lru_cache(maxsize=65_536)
def normalise_phone(
    text: str, region: str, validity: Literal["valid", "possible"] = "valid"
) -> tuple[str | None, str | None]:
    """A trimmed phone number as (E.164 value, None), or (None, why it is not a usable number).

    Numbers without a country code are read as numbers of `region`. An extension is dropped: it
    names a desk behind the line, not another line.
    """
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as e:
        return None, f"invalid: {_PARSE_ERRORS.get(e.error_type, 'not a phone number')}"
    # The number's type answers both whether it is valid (in an allocated range) and whether it is
    # a fixed line, with one pass over the region's patterns.
    kind = phonenumbers.number_type(number)
    if validity == "valid":
        if kind == PhoneNumberType.UNKNOWN:  # what is_valid_number tests, without a second pass
            code = number.country_code or 0
            where = phonenumbers.region_code_for_country_code(code)
            return None, f"invalid: not a number in an allocated range of {where} (+{code})"
    elif phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None, "invalid: not a possible length for a phone number"
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if len(_FIXED_LINES) > 1_000_000:
        _FIXED_LINES.clear()
    _FIXED_LINES[e164] = kind == PhoneNumberType.FIXED_LINE
    return e164, None


def is_fixed_line(e164: str) -> bool:
    """Whether an E.164 number is a fixed line (a household, shop or office number).

    Numbers that may be either (as in the United States) are not counted as fixed lines.
    """
    known = _FIXED_LINES.get(e164)
    if known is not None:
        return known
    return phonenumbers.number_type(phonenumbers.parse(e164, None)) == PhoneNumberType.FIXED_LINE
