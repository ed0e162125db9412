"""Phone numbers in any written form to E.164, with the `phonenumbers` library."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no known country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


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
    if validity == "valid":
        if not phonenumbers.is_valid_number(number):
            code = number.country_code or 0
            where = phonenumbers.region_code_for_country_code(code)
            return None, f"invalid: not a number in an allocated range of {where} (+{code})"
    elif phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None, "invalid: not a possible length for a phone number"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), None


@lru_cache(maxsize=65_536)
def is_fixed_line(e164: str) -> bool:
    """Whether an E.164 number is a fixed line (a household, shop or office number).

    Numbers that may be either (as in the United States) are not counted as fixed lines.
    """
    number = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE
