"""Importing record files: good rows stored as text, bad rows quarantined with their line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailor.connectors.records import RecordImportError, import_records, records_count
from tailor.runtime import Runtime


def test_good_rows_stored_bad_rows_quarantined(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(
        "crm_id,first_name,phone\n"
        "C1,Ana,020 7946 0018\n"
        "C2,Ben\n"  # too few fields
        ',"Nobody",\n'  # empty id
        'C3,"Smith, Jo","+44 (0)20 7946 0019"\n'
        "C1,Ana Maria,020 7946 0018\n",  # the same id again: the later line wins
        encoding="utf-8",
    )
    result = import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    runtime.processor.run_once()
    assert (result.rows_read, result.rows_stored, result.rows_quarantined) == (5, 3, 2)
    assert "line 3: 2 fields where the header has 3" in result.errors[0]
    assert "line 4" in result.errors[1]
    stored = dict(runtime.db.execute("SELECT record_id, fields FROM records ORDER BY record_id"))
    assert json.loads(stored["C1"]) == {"crm_id": "C1", "first_name": "Ana Maria", "phone": "020 7946 0018"}
    assert json.loads(stored["C3"])["first_name"] == "Smith, Jo"
    assert records_count(runtime.db) == {"crm": 2}
    quarantined = runtime.events.quarantine()
    assert {q.endpoint for q in quarantined} == {"import:crm"}
    assert {q.payload for q in quarantined} == {"C2,Ben\r\n", ",Nobody,\r\n"}


def test_reimport_replaces_records(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("call_id,notes\nK1,first\n", encoding="utf-8")
    import_records(runtime.db, runtime.writer, "call_centre", path, "call_id")
    path.write_text("call_id,notes\nK1,second\nK2,new\n", encoding="utf-8")
    again = import_records(runtime.db, runtime.writer, "call_centre", path, "call_id")
    assert (again.rows_stored, again.rows_unchanged) == (2, 0)
    unchanged = import_records(runtime.db, runtime.writer, "call_centre", path, "call_id")
    assert (unchanged.rows_stored, unchanged.rows_unchanged) == (0, 2)
    runtime.processor.run_once()
    assert records_count(runtime.db) == {"call_centre": 2}
    (fields,) = runtime.db.execute("SELECT fields FROM records WHERE record_id = 'K1'")[0]
    assert json.loads(fields)["notes"] == "second"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,phone\nAna,1\n", "no column 'crm_id'"),
        (b"crm_id,n\xe9\nC1,Ana\n", "header line is not UTF-8"),
    ],
)
def test_unusable_files_fail_clearly(runtime: Runtime, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(content)
    with pytest.raises(RecordImportError, match=message):
        import_records(runtime.db, runtime.writer, "crm", path, "crm_id")


def test_missing_file(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(RecordImportError, match="no such file"):
        import_records(runtime.db, runtime.writer, "crm", tmp_path / "nope.csv", "crm_id")


def test_rows_not_in_utf8_are_quarantined_and_the_rest_imported(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_bytes(b"\xef\xbb\xbfcrm_id,name,email\nC1,\xe9l\xe9onore,e@x.example\nC2,Ana,ana@x.example\n")
    result = import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    assert (result.rows_stored, result.rows_quarantined) == (1, 1)
    assert result.errors == ["$.name: line 2: column 'name' is not UTF-8 (byte 0xe9)"]
    (entry,) = runtime.events.quarantine()
    assert entry.payload.startswith("C1,")
    runtime.processor.run_once()
    assert records_count(runtime.db) == {"crm": 1}


def test_records_join_the_identity_graph(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("crm_id,name,email,mobile\nC1,Ana,Ana@Example.org,07911 123456\n", encoding="utf-8")
    import_records(runtime.db, runtime.writer, "crm", path, "crm_id")
    runtime.processor.run_once()
    members = runtime.db.execute("SELECT type, value, profile_id FROM identity_profiles ORDER BY type")
    assert [(t, v) for t, v, _ in members] == [
        ("crm_id", "C1"),
        ("email", "ana@example.org"),
        ("phone", "+447911123456"),
        ("record", "crm:C1"),
    ]
    assert len({p for _, _, p in members}) == 1
