"""Opaque ids are normalised in SQL during stitching: it must agree with the Python normaliser."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.identity import default_normaliser
from tailor.identity.extract import sql_id_normalisation
from tailor.identity.sql_normalise import email_select, patterns_ok, phone_select

TYPES = ["user_id", "anonymous_id", "device_id", "crm_id", "record"]
_con = duckdb.connect()
_EXPR = sql_id_normalisation(default_normaliser(), TYPES, "id_type", "raw")


def _sql(type: str, raw: str) -> tuple[str | None, str | None]:
    expr = _EXPR
    row = _con.execute(
        f"SELECT n.value, n.reason FROM (SELECT {expr} AS n FROM (SELECT ? AS id_type, ? AS raw))",
        [type, raw],
    )
    value, reason = row.fetchone()  # type: ignore[misc]
    return value, reason


_tricky = st.sampled_from(
    [
        "null",
        " NULL ",
        "undefined",
        "0",
        "-1",
        "000-000",
        "\tu-1\n",
        "",
        "   ",
        "a\x00b",
        "x" * 256,
        "ok",
        "Anonymous",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TYPES), st.one_of(_tricky, st.text(max_size=40)))
def test_sql_and_python_agree(type: str, raw: str) -> None:
    python = default_normaliser().normalise(type, raw)
    value, reason = _sql(type, raw)
    assert value == python.value, (raw, reason, python)
    if python.reason is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.split(":")[0] == python.reason.split(":")[0], (raw, reason, python.reason)


def test_reasons_name_the_problem() -> None:
    assert _sql("user_id", "null") == (None, "blocked: 'null' is a blocked user_id value")
    assert _sql("user_id", " u-1 ") == ("u-1", None)
    assert (
        _sql("device_id", "0000-0000")[1]
        == "blocked: '0000-0000' matches the blocked device_id pattern '^[0-]+$'"
    )
    assert _sql("crm_id", "c" * 300)[1] == "too long: 300 characters, at most 255 are accepted"


# -- emails and phone numbers in SQL, the rest in Python --------------------------------------------

_N = default_normaliser()
_EMAIL = email_select(_N, "email", "{source}")
_PHONE = phone_select(_N, "{source}")
assert _PHONE is not None


def _fast(select: str | None, raws: list[str]) -> list[object]:
    assert select is not None
    source = "(SELECT generate_subscripts(?, 1) AS h, 'x' AS id_type, unnest(?::VARCHAR[]) AS raw)"
    rows = _con.execute(f"SELECT f FROM ({select.replace('{source}', source)}) ORDER BY h", [raws, raws])
    return [r[0] for r in rows.fetchall()]


def _check_emails(raws: list[str]) -> int:
    """Every email the SQL normalises is what Python makes of it; returns how many it normalised."""
    done = 0
    for raw, fast in zip(raws, _fast(_EMAIL, raws), strict=True):
        python = _N.normalise("email", raw)
        if fast is None:
            continue
        done += 1
        assert isinstance(fast, dict)
        if patterns_ok(_N, ["email"], [fast["value"]]) == [True]:
            assert (fast["value"], None) == (python.value, python.reason), raw
        else:
            assert python.value is None, raw
    return done


def _check_phones(raws: list[str]) -> int:
    done = 0
    for raw, fast in zip(raws, _fast(_PHONE, raws), strict=True):
        if fast is None:
            continue
        done += 1
        assert isinstance(fast, dict)
        python = _N.normalise("phone", raw)
        if fast["value"] is None:  # refused in SQL: exactly as Python refuses it
            assert (None, fast["reason"]) == (python.value, python.reason), raw
        elif patterns_ok(_N, ["phone"], [fast["value"]]) == [True]:
            assert (fast["value"], None) == (python.value, python.reason), raw
            assert fast["type"] == _N.retype("phone", fast["value"]), raw
        else:
            assert python.value is None, raw
    return done


_local = st.text("abcXYZ019._+-!#'", min_size=0, max_size=12)
_domain = st.sampled_from(
    ["example.org", "Gmail.com", "googlemail.com", "outlook.com", "x.co.uk", "a-b.example", "ex_ample.org",
     "example", "-bad.org", "xn--bcher-kva.example", "münchen.de", "EXAMPLE.ORG.", "test.com", "mail..com"]
)  # fmt: skip
_emails = st.one_of(
    st.builds(
        lambda lp, d, s: f"{s}{lp}@{d}{s}", _local, _domain, st.sampled_from(["", " ", "\t", "\u3000"])
    ),
    st.builds(lambda lp, d: f"{lp}@{d}@{d}", _local, _domain),
    st.sampled_from(["test@test.com", "No-Reply@example.org", "aaa@bbb.com", "NULL", "", "Ω@example.org"]),
    st.text(max_size=30),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_emails, min_size=50, max_size=200))
def test_emails_in_sql_agree_with_python(raws: list[str]) -> None:
    _check_emails(raws)


_digits = st.text("0123456789", min_size=0, max_size=14)
_sep = st.sampled_from(["", " ", "-", ".", " (0)", "(", ")"])
_phones = st.one_of(
    st.builds(lambda a, s, b: f"0{a}{s}{b}", _digits, _sep, _digits),
    st.builds(
        lambda p, a, s, b: f"{p}{a}{s}{b}",
        st.sampled_from(["+44", "+44 ", "0044", "+44 (0)", "+1", "0033", "44", "+"]),
        _digits,
        _sep,
        _digits,
    ),
    st.builds(lambda a: "07" + a, st.text("0123456789", min_size=9, max_size=9)),
    st.builds(lambda a: "01" + a, st.text("0123456789", min_size=8, max_size=9)),
    st.text("0123456789 +()-.x#", max_size=20),
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(_phones, min_size=50, max_size=200))
def test_phones_in_sql_agree_with_python(raws: list[str]) -> None:
    _check_phones(raws)


def test_common_forms_are_normalised_in_sql() -> None:
    emails = ["Ana@Example.org", " p123@example.org ", "first.last+news@gmail.com", "x@sub.example.co.uk"]
    assert _check_emails(emails) == len(emails)
    phones = ["07911 123456", "+44 7911 123456", "+44 (0)7911 123456", "0044 7911 123456", "0161 496 0000",
              "(0161) 496-0000", "07911-123-456"]  # fmt: skip
    assert _check_phones(phones) == len(phones)
    landline = {"value": "+441614960000", "type": "landline", "reason": None}
    assert _fast(_PHONE, ["0161 496 0000"]) == [landline]
    # A number in no allocated range is refused in SQL with phonenumbers' verdict.
    assert _check_phones(["07911 300006", "+44 7911 300006"]) == 2
    assert _fast(_PHONE, ["07911 300006"])[0]["reason"].startswith("invalid: not a number in an allocated")
    # Other countries, extensions and letters are left to phonenumbers.
    assert _fast(_PHONE, ["+33 1 23 45 67 89", "07911 123456 ext. 12", "0800 FLOWERS"]) == [None, None, None]
