"""Normalisation against the synthetic customer base, whose ground truth lists every real phone."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tailor.demo.synth import CustomerBase, SynthConfig, generate
from tailor.identity import normalise_many


@pytest.fixture(scope="module")
def base() -> CustomerBase:
    return generate(SynthConfig(people=100))


@pytest.fixture(scope="module")
def truth(base: CustomerBase) -> list[tuple[str, str, str]]:
    return base.truth()


def test_true_phones_and_emails_normalise_to_themselves(truth: list[tuple[str, str, str]]) -> None:
    for kind in ("phone", "email", "user_id", "anonymous_id", "device_id", "crm_id"):
        raw = sorted({value for k, value, _ in truth if k == kind})
        assert raw, kind
        values, reasons = normalise_many(kind, raw)
        assert [r for r in reasons if r is not None] == [], kind
        if kind != "email":  # email normalisation may fold a real address's case or plus tag
            assert values == raw, kind


def test_junk_identifiers_in_the_truth_are_rejected(truth: list[tuple[str, str, str]]) -> None:
    for junk_kind, kind in (("junk_user_id", "user_id"), ("junk_email", "email")):
        raw = [value for k, value, _ in truth if k == junk_kind]
        values, _ = normalise_many(kind, raw)
        assert values == [None] * len(raw), (raw, values)


@pytest.mark.parametrize("kind", ["phone", "email"])
def test_crm_values_mostly_normalise_to_a_value_of_their_person(
    base: CustomerBase, truth: list[tuple[str, str, str]], kind: str
) -> None:
    person_of_row = {value: person for k, value, person in truth if k == "record"}
    values_of: dict[str, set[str]] = defaultdict(set)
    for k, value, person in truth:
        if k == kind:
            values_of[person].add(value)
    rows = [row for row in base.records()["crm"] if row[kind]]
    values, _ = normalise_many(kind, [row[kind] for row in rows])
    hits = sum(
        value in values_of[person_of_row[f"crm:{row['crm_id']}"]]
        for row, value in zip(rows, values, strict=True)
    )
    assert len(rows) >= 30
    # Some values carry a deliberate error (a mistyped digit, a misspelt domain): not all can match.
    assert hits / len(rows) >= 0.9
