"""Blocking: candidate pairs from several rules, deduplicated, incremental, with oversized keys skipped."""

from __future__ import annotations

import pyarrow as pa

from tailor.identity.matching import candidate_pairs, prepare_records


def _records(rows: list[dict[str, str]]) -> pa.Table:
    columns = ("first_name", "last_name", "email", "phone", "dob", "postcode")
    return pa.table(
        {"id": [str(n) for n in range(len(rows))]} | {c: [r.get(c, "") for r in rows] for c in columns}
    )


def _pairs(rows: list[dict[str, str]], **kwargs: int) -> set[tuple[int, int]]:
    left, right = candidate_pairs(prepare_records(_records(rows), "id"), **kwargs)
    assert all(left < right)
    return set(zip(left.tolist(), right.tolist(), strict=True))


def test_pairs_of_all_rules_once_each() -> None:
    rows = [
        {"first_name": "Anna", "last_name": "Hale", "email": "a@example.com", "dob": "1980-01-02"},
        {"first_name": "Anne", "last_name": "Hale", "email": "a@example.com", "dob": "1980-01-02"},
        {"first_name": "Hale", "last_name": "Anna"},  # swapped
        {"first_name": "Bob", "last_name": "Stone", "postcode": "LS1 4AB"},
        {"first_name": "Bill", "last_name": "Grey", "postcode": "ls14ab"},
        {"first_name": "Cy", "last_name": "Twombly"},
    ]
    assert _pairs(rows) == {(0, 1), (0, 2), (1, 2), (3, 4)}


def test_incremental_blocking_gives_only_pairs_with_a_new_record() -> None:
    rows = [{"first_name": "Anna", "last_name": "Hale"} for _ in range(4)]
    assert _pairs(rows, first_new=2) == {(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)}


def test_a_key_shared_by_too_many_records_makes_no_pairs() -> None:
    rows = [{"first_name": f"P{n}x", "last_name": f"Q{n}y", "email": "shared@example.com"} for n in range(30)]
    rows += [{"first_name": "Anna", "last_name": "Hale", "phone": "07281 208400"} for _ in range(2)]
    assert _pairs(rows, max_block_size=10) == {(30, 31)}
    assert len(_pairs(rows, max_block_size=30)) == 30 * 29 // 2 + 1
