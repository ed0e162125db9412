"""Records from other systems: the promised columns, and the promised kinds of mess."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tailor.demo.model import Person
from tailor.demo.records import CALL_COLUMNS, CRM_COLUMNS, GUEST_COLUMNS
from tailor.demo.synth import CustomerBase, main

Records = dict[str, list[dict[str, str]]]
Truth = list[tuple[str, str, str]]
ID_COLUMN = {"crm": "crm_id", "call_centre": "call_id", "guest_checkout": "order_id"}


def _national(phone: str) -> str:
    """The national significant number of a UK phone string, however it was written."""
    digits = re.sub(r"\D", "", phone.replace("(0)", ""))
    for prefix in ("0044", "44", "0"):
        if digits.startswith(prefix):
            return digits[len(prefix) :]
    return digits


def _people(base: CustomerBase, truth: Truth) -> dict[str, Person]:
    """Who each record row is about, by "<source>:<row id>"."""
    by_id = {p.person_id: p for p in base.population.people}
    return {value: by_id[person] for kind, value, person in truth if kind == "record"}


def _rows(records: Records, base: CustomerBase, truth: Truth) -> list[tuple[str, dict[str, str], Person]]:
    owner = _people(base, truth)
    return [
        (kind, row, owner[f"{kind}:{row[ID_COLUMN[kind]]}"]) for kind, rows in records.items() for row in rows
    ]


def test_record_sources_have_their_columns(records: Records) -> None:
    assert set(records) == {"crm", "call_centre", "guest_checkout"}
    columns = {"crm": CRM_COLUMNS, "call_centre": CALL_COLUMNS, "guest_checkout": GUEST_COLUMNS}
    for kind, rows in records.items():
        assert rows, kind
        for row in rows:
            assert tuple(row) == columns[kind]
            assert all(isinstance(v, str) for v in row.values())


def test_phones_parse_to_the_persons_number(records: Records, base: CustomerBase, truth: Truth) -> None:
    phones = defaultdict(set)
    for kind, value, person in truth:
        if kind == "phone":
            phones[person].add(value[3:])
    written = [(row["phone"], p) for _, row, p in _rows(records, base, truth) if row["phone"]]
    right = sum(_national(text) in phones[p.person_id] for text, p in written)
    assert right / len(written) > 0.95  # the rest carry a mistyped digit


def test_phones_parse_with_phonenumbers_under_region_gb(records: Records) -> None:
    phonenumbers = pytest.importorskip("phonenumbers")
    texts = [row["phone"] for rows in records.values() for row in rows if row["phone"]]
    valid = 0
    for text in texts:
        number = phonenumbers.parse(text, "GB")
        assert number.country_code == 44
        valid += phonenumbers.is_valid_number(number)
    assert valid / len(texts) > 0.97


def test_the_same_person_writes_one_number_in_different_formats(
    records: Records, base: CustomerBase, truth: Truth
) -> None:
    seen: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for _, row, p in _rows(records, base, truth):
        if row["phone"]:
            seen[(p.person_id, _national(row["phone"]))].add(row["phone"])
    assert sum(len(texts) > 1 for texts in seen.values()) >= 5
    formats = {re.sub(r"\d", "9", t) for texts in seen.values() for t in texts}
    assert len(formats) >= 8


def test_names_are_swapped_misspelt_and_nicknamed(records: Records, base: CustomerBase, truth: Truth) -> None:
    swapped = misspelt = nicknamed = 0
    for kind, row, p in _rows(records, base, truth):
        if kind != "crm":
            continue
        first, last = row["first_name"].lower(), row["last_name"].lower()
        real_first, real_last = p.first_name.lower(), p.last_name.lower()
        swapped += first == real_last and last == real_first
        nicknamed += p.nickname is not None and first == p.nickname.lower()
        known = {real_first, real_last, (p.nickname or "").lower()}
        misspelt += first not in known or last not in known
    assert swapped > 0
    assert misspelt > 0
    assert nicknamed > 0


def test_emails_are_messy_but_recoverable(records: Records, base: CustomerBase, truth: Truth) -> None:
    emails = defaultdict(set)
    for kind, value, person in truth:
        if kind == "email":
            emails[person].add(value)
    written = [(row["email"], p) for _, row, p in _rows(records, base, truth) if row["email"]]
    assert any(text != text.strip() for text, _ in written)
    assert any(text.strip() != text.strip().lower() for text, _ in written)
    recovered = sum(text.strip().lower() in emails[p.person_id] for text, p in written)
    assert recovered / len(written) > 0.9


def test_fields_go_missing_and_addresses_go_stale(records: Records, base: CustomerBase, truth: Truth) -> None:
    crm = records["crm"]
    assert any(not r["email"] for r in crm)
    assert any(not r["phone"] for r in crm)
    assert any(not r["date_of_birth"] for r in crm)
    households = base.population.households
    stale = 0
    for kind, row, p in _rows(records, base, truth):
        old = households[p.household].previous_address
        if kind == "crm" and old is not None:
            stale += row["postcode"].replace(" ", "").upper() == old.postcode.replace(" ", "")
    assert stale > 0


def test_people_appear_in_several_sources_one_or_none(
    records: Records, base: CustomerBase, truth: Truth
) -> None:
    sources: defaultdict[str, set[str]] = defaultdict(set)
    for kind, _, p in _rows(records, base, truth):
        sources[p.person_id].add(kind)
    spread = Counter(len(sources.get(p.person_id, ())) for p in base.population.people)
    assert spread[0] > 0
    assert spread[1] > 0
    assert spread[2] + spread[3] > 0
    crm_people = Counter(p.person_id for kind, _, p in _rows(records, base, truth) if kind == "crm")
    assert any(n > 1 for n in crm_people.values()), "some CRM customers are duplicated"


def test_some_rows_share_no_identifier_with_the_events(
    records: Records, events: list[dict[str, Any]], base: CustomerBase, truth: Truth
) -> None:
    seen: set[str] = set()
    for e in events:
        for traits in (e.get("traits"), e["context"].get("traits")):
            if traits:
                seen.add(str(traits.get("email", "")).strip().lower())
                seen.add(_national(str(traits.get("phone", ""))))
    seen.discard("")
    orders = {e["properties"]["order_id"] for e in events if e.get("event") == "Order Completed"}
    calls = {e["properties"]["call_id"] for e in events if e.get("event") == "Call Completed"}
    loose = [
        row
        for kind, row, _ in _rows(records, base, truth)
        if row.get("email", "").strip().lower() not in seen
        and _national(row.get("phone", "")) not in seen
        and row.get("order_id") not in orders
        and row.get("call_id") not in calls
    ]
    assert len(loose) > 10


def test_guest_checkouts_match_the_tracked_orders(records: Records, events: list[dict[str, Any]]) -> None:
    orders = {e["properties"]["order_id"]: e for e in events if e.get("event") == "Order Completed"}
    guests = records["guest_checkout"]
    tracked = [g for g in guests if g["order_id"] in orders]
    assert tracked
    assert len(tracked) < len(guests)
    for g in tracked:
        e = orders[g["order_id"]]
        assert "userId" not in e
        assert g["total"] == f"{e['properties']['total']:.2f}"
        assert g["ordered_at"] == e["timestamp"][:19].replace("T", " ")


def test_calls_match_the_call_events(records: Records, events: list[dict[str, Any]]) -> None:
    calls = {e["properties"]["call_id"]: e for e in events if e.get("event") == "Call Completed"}
    rows = records["call_centre"]
    matched = [r for r in rows if r["call_id"] in calls]
    assert matched
    assert len(matched) < len(rows)
    for r in matched:
        assert r["called_at"] == calls[r["call_id"]]["timestamp"][:19].replace("T", " ")
        assert r["reason"] == calls[r["call_id"]]["properties"]["reason"]


def test_files_are_written(tmp_path: Path, base: CustomerBase) -> None:
    paths = base.write_records(tmp_path / "records")
    for kind, path in paths.items():
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows == base.records()[kind]
    truth_path = base.write_truth(tmp_path / "truth.csv")
    with truth_path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["kind", "value", "person_id"]
        assert [tuple(r) for r in reader] == base.truth()
    events_path = base.write_events(tmp_path / "events.jsonl")
    lines = events_path.read_text(encoding="utf-8").splitlines()
    first = next(base.events())
    assert json.loads(lines[0]) == first


def test_command_line_prints_counts_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--people", "40", "--days", "20"])
    out = capsys.readouterr().out
    assert "events/s" in out
    assert "records crm" in out
