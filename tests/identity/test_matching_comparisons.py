"""Comparison levels of record pairs, and the columns the matcher recognises."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tailor.identity.matching import (
    COMPARISONS,
    ColumnError,
    ColumnType,
    compare,
    parse_column_option,
    prepare_records,
    recognise_columns,
)

FIELDS = ("first_name", "last_name", "name", "dob", "email", "phone", "street", "city", "postcode")


def _level(left: dict[str, str], right: dict[str, str], comparison: str) -> str | None:
    rows = [left, right]
    table = pa.table({"id": ["a", "b"]} | {f: [r.get(f, "") for r in rows] for f in FIELDS})
    records = prepare_records(table, "id")
    compared = compare(records, np.array([0]), np.array([1]))
    k = [c.name for c in COMPARISONS].index(comparison)
    level = int(compared.levels[0, k])
    return None if level < 0 else COMPARISONS[k].levels[level]


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ({"first_name": "Anna"}, {"first_name": " ANNA "}, "exact"),
        ({"first_name": "Katherine"}, {"first_name": "Katharine"}, "jaro-winkler >= 0.92"),
        ({"first_name": "Steven"}, {"first_name": "Stephen"}, "jaro-winkler >= 0.8"),
        ({"first_name": "Jonathan"}, {"name": "J. Smith"}, "initial of a name given as initial"),
        ({"first_name": "Marcus"}, {"first_name": "Marie"}, "else"),
        ({"first_name": "Anna"}, {"first_name": "Beatrice"}, "else"),
        ({"first_name": "Anna"}, {"name": "Mrs Smith"}, None),
        ({"first_name": "Anna"}, {}, None),
    ],
)
def test_first_name_levels(left: dict[str, str], right: dict[str, str], expected: str | None) -> None:
    assert _level(left, right, "first_name") == expected


def test_swapped_names_compare_crossed_over() -> None:
    left = {"first_name": "Hale", "last_name": "Anna"}
    right = {"name": "Anna Hale"}
    assert _level(left, right, "first_name") == "exact"
    assert _level(left, right, "last_name") == "exact"
    assert _level({"name": "Hale, Anna"}, right, "last_name") == "exact"


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1980-03-04", "1980-03-04", "exact"),
        ("1980-03-04", "04/03/1980", "exact"),
        ("1980-03-04", "1980-04-03", "day and month swapped"),
        ("1980-03-04", "1980-11-30", "within a year"),
        ("1980-03-04", "1990-03-04", "else"),
        ("1980-03-04", "1900-01-01", None),
        ("1980-03-04", "not a date", None),
    ],
)
def test_dob_levels(left: str, right: str, expected: str | None) -> None:
    assert _level({"dob": left}, {"dob": right}, "dob") == expected


@pytest.mark.parametrize(
    ("comparison", "left", "right", "expected"),
    [
        ("email", "Ana.Lopez@Example.com ", "ana.lopez@example.com", "exact"),
        ("email", "ana.lopez@gmial.example", "ana.lopez@gmail.example", "same local part, domain mistyped"),
        ("email", "ana.lopez@gmail.example", "ana.lopez@hotmail.example", "else"),
        ("email", "ana@example.com", "bob@example.com", "else"),
        ("email", "ana@example.com", "noemail@noemail.com", None),
        ("phone", "07281 208400", "+44 7281 208400", "exact"),
        ("phone", "07281 208400", "07281 208401", "one digit off"),
        ("phone", "07281 208400", "07525 460020", "else"),
        ("phone", "07281 208400", "12", None),
    ],
)
def test_email_and_phone_levels(comparison: str, left: str, right: str, expected: str | None) -> None:
    assert _level({comparison: left}, {comparison: right}, comparison) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (
            {"postcode": "SW1A 1AA", "street": "10 Downing Street"},
            {"postcode": "sw1a1aa", "street": "10 Downing St"},
            "postcode and street",
        ),
        (
            {"postcode": "SW1A 1AA", "street": "10 Downing Street"},
            {"postcode": "SW1A 1AA", "street": "3 Elm Road"},
            "postcode",
        ),
        (
            {"street": "Flat 2, 5 Mill Lane", "city": "Leeds"},
            {"street": "2/5 Mill Lane", "city": "LEEDS"},
            "street and town",
        ),
        ({"postcode": "LS1 4AB"}, {"postcode": "LS1 9ZZ"}, "postcode district"),
        ({"postcode": "LS1 4AB"}, {"postcode": "M1 1AA"}, "else"),
        ({"postcode": "LS1 4AB"}, {"city": "Leeds"}, None),
    ],
)
def test_address_levels(left: dict[str, str], right: dict[str, str], expected: str | None) -> None:
    assert _level(left, right, "address") == expected


def test_common_headers_are_recognised() -> None:
    headers = ["Customer ID", "First Name", "surname", "date_of_birth", "E-mail", "mobile", "zip", "Town"]
    assert recognise_columns(headers, id_column="Customer ID") == {
        ColumnType.FIRST_NAME: "First Name",
        ColumnType.LAST_NAME: "surname",
        ColumnType.DOB: "date_of_birth",
        ColumnType.EMAIL: "E-mail",
        ColumnType.PHONE: "mobile",
        ColumnType.POSTCODE: "zip",
        ColumnType.CITY: "Town",
    }
    assert recognise_columns(["fname", "shipping_postcode"])[ColumnType.POSTCODE] == "shipping_postcode"


def test_explicit_columns_win_and_bad_options_are_named() -> None:
    chosen = recognise_columns(["given", "phone"], {ColumnType.FIRST_NAME: "given"})
    assert chosen == {ColumnType.FIRST_NAME: "given", ColumnType.PHONE: "phone"}
    assert parse_column_option("last_name=Family Name") == (ColumnType.LAST_NAME, "Family Name")
    with pytest.raises(ColumnError, match="unknown type 'shoe_size'"):
        parse_column_option("shoe_size=x")
    with pytest.raises(ColumnError, match="expected TYPE=NAME"):
        parse_column_option("first_name")
    with pytest.raises(ColumnError, match="no such column"):
        recognise_columns(["a"], {ColumnType.EMAIL: "mail"})
