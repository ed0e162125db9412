"""Normalisation of each identifier type, checked by hand, and the blocked-value rules."""

from __future__ import annotations

import msgspec
import pytest

from tailor.identity import (
    EMAIL,
    PHONE,
    USER_ID,
    IdentifierNormaliser,
    IdentifierType,
    NormalisationRules,
    NormalisedValue,
    UnknownIdentifierTypeError,
    normalise,
    normalise_many,
)


def _ok(type: str, raw: str, rules: NormalisationRules | None = None) -> str | None:
    result = normalise(type, raw, rules)
    assert result.reason is None, result.reason
    return result.value


def _reason(type: str, raw: str | None, rules: NormalisationRules | None = None) -> str:
    result = normalise(type, raw, rules)
    assert result.value is None, result.value
    assert result.reason is not None
    return result.reason


@pytest.mark.parametrize(
    "raw",
    [
        "+44 20 7946 0018",
        "020 7946 0018",
        "(020) 7946-0018",
        "0044 20 7946 0018",
        "+44 (0)20 7946 0018",
        "02079460018",
        "+442079460018",
        " 020-7946-0018 ",
    ],
)
def test_uk_landline_formats_give_one_e164_number(raw: str) -> None:
    assert _ok("phone", raw) == "+442079460018"


def test_mobile_and_foreign_numbers() -> None:
    assert _ok("phone", "07911 123456") == "+447911123456"
    assert _ok("phone", "+1 202 555 0143") == "+12025550143"
    # An extension names a desk behind the same line.
    assert _ok("phone", "020 7946 0018 ext. 12") == "+442079460018"


def test_drama_range_mobile_is_unallocated_unless_only_possible_numbers_are_asked_for() -> None:
    # Ofcom keeps 07700 900xxx free for films and TV, so phonenumbers calls it invalid.
    assert _reason("phone", "07700 900123").startswith("invalid: not a number in an allocated range of GB")
    lenient = NormalisationRules(phone_validity="possible")
    assert _ok("phone", "07700 900123", lenient) == "+447700900123"
    assert _reason("phone", "12345", lenient).startswith("invalid")


@pytest.mark.parametrize("raw", ["12345", "call me", "+999 123", "0207"])
def test_invalid_phone_numbers_are_reported(raw: str) -> None:
    assert _reason("phone", raw).startswith("invalid")


@pytest.mark.parametrize("raw", ["07777 777777", "+44 7777 777777", "01234 567890"])
def test_filler_phone_numbers_in_allocated_ranges_are_blocked(raw: str) -> None:
    assert _reason("phone", raw).startswith("blocked")


@pytest.mark.parametrize("raw", ["0000000000", "+44 1111 111111", "0", "-1"])
def test_filler_phone_numbers_are_never_used(raw: str) -> None:
    assert _reason("phone", raw)
    assert _reason("phone", raw, NormalisationRules(phone_validity="possible")).startswith("blocked")


def test_email_trimmed_lower_cased_and_plus_and_dots_dropped_at_gmail() -> None:
    assert _ok("email", " Ana.Smith+news@GMail.com ") == "anasmith@gmail.com"
    assert _ok("email", "ana.smith@googlemail.com") == "anasmith@gmail.com"
    assert _ok("email", "Ana.Smith+news@Outlook.com") == "ana.smith@outlook.com"
    assert _ok("email", "Ana.Smith+news@foo.example") == "ana.smith+news@foo.example"


def test_email_plus_addressing_rules() -> None:
    keep = NormalisationRules(email_plus_addressing="keep", email_dotless_domains=frozenset())
    assert _ok("email", " Ana.Smith+news@GMail.com ", keep) == "ana.smith+news@gmail.com"
    everywhere = NormalisationRules(email_plus_addressing="all")
    assert _ok("email", "Ana.Smith+news@foo.example", everywhere) == "ana.smith@foo.example"
    assert _reason("email", "+news@foo.example", everywhere).startswith("invalid")


def test_demo_and_documentation_domains_are_not_blocked() -> None:
    assert _ok("email", "ana@foo.example") == "ana@foo.example"
    assert _ok("email", "ana@example.com") == "ana@example.com"


def test_internationalised_domain_in_ascii_form() -> None:
    assert _ok("email", "Jörg@Müller.de") == "jörg@xn--mller-kva.de"


@pytest.mark.parametrize(
    "raw",
    ["ana", "ana@", "@foo.example", "ana@@foo.example", "ana smith@foo.example", "ana@foo", "a..b@x.example"],
)
def test_invalid_emails_are_reported(raw: str) -> None:
    assert _reason("email", raw).startswith("invalid")


@pytest.mark.parametrize(
    "raw",
    [
        "test@test.com",
        "TEST@test.com ",
        "noemail@noemail.com",
        "no@email.com",
        "a@a.com",
        "null",
        "n/a",
        "noreply@shop.example",
        "test+1@test.com",
    ],
)
def test_junk_emails_are_blocked(raw: str) -> None:
    assert _reason("email", raw).startswith("blocked")


@pytest.mark.parametrize(
    ("type", "raw"),
    [
        ("user_id", "null"),
        ("user_id", "NULL"),
        ("user_id", "undefined"),
        ("user_id", "None"),
        ("user_id", "NaN"),
        ("user_id", "0"),
        ("user_id", "-1"),
        ("user_id", "[object Object]"),
        ("user_id", "  "),
        ("anonymous_id", "anonymous"),
        ("device_id", "00000000-0000-0000-0000-000000000000"),
        ("crm_id", "000"),
    ],
)
def test_junk_ids_are_blocked(type: str, raw: str) -> None:
    assert _reason(type, raw).startswith("blocked")


def test_ids_are_trimmed_but_otherwise_kept_exactly() -> None:
    assert _ok("user_id", "  User-42 ") == "User-42"
    uuid = "0b6c1f9e-2a5d-4c3e-9f1a-7d8e6b5a4c3d"
    assert _ok("anonymous_id", uuid) == uuid
    assert _ok("crm_id", "CRM0012345") == "CRM0012345"
    assert _reason("user_id", "a\x00b").startswith("invalid")


def test_missing_and_overlong_values() -> None:
    assert _reason("user_id", None) == "missing: no value"
    assert _reason("device_id", "d" * 256).startswith("too long: 256 characters")
    assert _ok("device_id", " " + "d" * 255 + " ") == "d" * 255
    short = NormalisationRules(max_length=10)
    assert _reason("email", "ana.smith@foo.example", short).startswith("too long")


def test_names_to_match_keys() -> None:
    assert _ok("name", "  Zoë   O\u2019Brien-Smith ") == "zoe obrien smith"
    assert _ok("name", "JOSÉ ÁLVAREZ") == "jose alvarez"
    # Fullwidth letters, as typed on an East Asian keyboard.
    assert _ok("name", "\uff2d\uff41\uff52\uff54\uff49\uff4e") == "martin"
    assert _ok("name", "Straße") == "strasse"
    assert _ok("name", "Søren Łukasz") == "soren lukasz"
    assert _reason("name", "--").startswith("invalid")
    assert _reason("name", "Unknown").startswith("blocked")


def test_custom_rules_block_values_and_patterns() -> None:
    rules = NormalisationRules(
        blocked_values=frozenset({"guest"}),
        blocked_values_by_type={"user_id": frozenset({"ADMIN"})},
        blocked_patterns_by_type={"user_id": (r"^tmp-",), "email": (r"@mailinator\.com$",)},
    )
    assert _reason("anonymous_id", "Guest", rules).startswith("blocked")
    assert _reason("user_id", "admin", rules).startswith("blocked")
    assert _reason("user_id", "tmp-123", rules).startswith("blocked")
    assert _reason("email", "x@Mailinator.com", rules).startswith("blocked")
    # Replacing the defaults drops them: "null" is now an ordinary id.
    assert _ok("user_id", "null", rules) == "null"


def test_user_defined_types() -> None:
    rules = NormalisationRules(
        custom_types={"loyalty_card": "id", "work_email": "email"},
        blocked_patterns_by_type={"loyalty_card": (r"^LC0+$",)},
    )
    normaliser = IdentifierNormaliser(rules)
    assert normaliser.identifier_type("loyalty_card") == IdentifierType("loyalty_card", "id")
    assert normaliser.normalise("loyalty_card", " LC123 ") == NormalisedValue("LC123", None)
    assert normaliser.normalise("loyalty_card", "LC000").reason == (
        "blocked: 'LC000' matches the blocked loyalty_card pattern '^LC0+$'"
    )
    assert normaliser.normalise("loyalty_card", "null").reason is not None
    assert normaliser.normalise("work_email", "Ana@Firm.example").value == "ana@firm.example"
    assert normalise(IdentifierType("badge", "id"), " B7 ").value == "B7"
    with pytest.raises(UnknownIdentifierTypeError, match="loyalty_card"):
        normalise("loyalty_card", "LC123")


def test_rules_are_checked_together() -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(
            {
                "default_region": "XX",
                "max_length": 0,
                "custom_types": {"Bad:Name": "id", "email": "email"},
                "blocked_patterns_by_type": {"emial": ["x"], "phone": ["("]},
            },
            NormalisationRules,
        )
    message = str(info.value)
    for part in ("default_region", "max_length", "'Bad:Name'", "built in", "'emial'", "not a regex"):
        assert part in message
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"phone_validity": "maybe"}, NormalisationRules)


def test_rules_round_trip_through_toml_shaped_data() -> None:
    rules = NormalisationRules(custom_types={"loyalty_card": "id"})
    assert msgspec.convert(msgspec.to_builtins(rules), NormalisationRules) == rules


def test_normalise_many_matches_one_at_a_time() -> None:
    raw = [" Ana@Foo.example", None, "null", "ana@foo.example", "nope", " Ana@Foo.example"]
    values, reasons = normalise_many(EMAIL, raw)
    assert values == [normalise(EMAIL, v).value for v in raw]
    assert reasons == [normalise(EMAIL, v).reason for v in raw]
    assert values[0] == values[3] == values[5] == "ana@foo.example"
    assert [r is None for r in reasons] == [True, False, False, True, False, True]


def test_normalise_many_on_phones_and_ids() -> None:
    values, reasons = normalise_many(PHONE, ["020 7946 0018", "12345", "", "(020) 7946-0018"])
    assert values == ["+442079460018", None, None, "+442079460018"]
    assert reasons[1] is not None
    assert reasons[1].startswith("invalid")
    assert reasons[2] == "blocked: empty value"
    assert normalise_many(USER_ID, []) == ([], [])
