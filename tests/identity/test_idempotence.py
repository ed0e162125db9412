"""Property: normalising an already normalised value gives the same value back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tailor.identity import BUILTIN_TYPES, IdentifierType, NormalisationRules, normalise

_PHONE_TEXT = st.text(alphabet="0123456789 +-().x", max_size=24)
_UK_NUMBERS = st.builds(
    lambda prefix, rest, fmt: fmt.format(prefix + rest),
    st.sampled_from(["020", "0161", "0131", "07911", "07480", "01632", "0044 20", "+44 7700"]),
    st.text(alphabet="0123456789", min_size=5, max_size=8),
    st.sampled_from(["{}", " {} ", "({})"]),
)
_EMAILS = st.one_of(
    st.emails(),
    st.builds(
        lambda local, tag, domain: f"{local}+{tag}@{domain}",
        st.from_regex(r"[A-Za-z0-9.]{1,10}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True),
        st.sampled_from(["gmail.com", "GoogleMail.com", "foo.example", "Outlook.com", "münchen.de"]),
    ),
)


def _idempotent(type: IdentifierType | str, raw: str, rules: NormalisationRules | None = None) -> None:
    first = normalise(type, raw, rules)
    if first.value is not None:
        again = normalise(type, first.value, rules)
        assert again.value == first.value, (raw, first, again)


@given(st.one_of(_PHONE_TEXT, _UK_NUMBERS))
def test_phone_normalisation_is_idempotent(raw: str) -> None:
    _idempotent("phone", raw)


@given(st.one_of(_EMAILS, st.text(max_size=30)))
def test_email_normalisation_is_idempotent(raw: str) -> None:
    _idempotent("email", raw)
    _idempotent("email", raw, NormalisationRules(email_plus_addressing="all"))


@given(st.text(max_size=40))
def test_name_normalisation_is_idempotent(raw: str) -> None:
    _idempotent("name", raw)


@given(st.sampled_from(sorted(BUILTIN_TYPES)), st.text(max_size=40))
def test_every_type_is_idempotent_on_any_text(type: str, raw: str) -> None:
    _idempotent(type, raw)
