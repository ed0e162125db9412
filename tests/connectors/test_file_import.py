"""File imports through a mapping: typed columns, bad rows quarantined with line and reason, no duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailor.connectors.exceptions import MappingError
from tailor.connectors.file_import import import_file
from tailor.connectors.files import open_source_file
from tailor.connectors.infer import infer_mapping
from tailor.connectors.mapping import Mapping, load_mapping, parse_mapping
from tailor.runtime import Runtime

CUSTOMERS = (
    "customer_id,email,first_name,age,vip,signed_up\n"
    "C1,ana@example.org,Ana,34,yes,2024-01-02T10:00:00Z\n"
    "C2,ben@example.org,Ben,forty,no,2024-01-03\n"  # age is not an integer
    "C3,,Cy,29,maybe,2024-02-01 09:30\n"  # vip is not a boolean; no identifier beyond the record
    "C4,dee@example.org,Dee,,true,not a date\n"  # signed_up is not a timestamp
    "C5,eve@example.org,Eve,51,false,2023-12-31T23:00:00+01:00\n"
)

MAPPING = """
kind = "identify"
record = "crm"
id = "customer_id"

[identifiers]
email = "email"

[traits]
first_name = "string"
age = "integer"
vip = "boolean"
signed_up = { type = "timestamp", name = "signedUpAt" }
"""


def _traits(rt: Runtime, source: str) -> dict[str, dict[str, object]]:
    rows = rt.db.execute(
        "SELECT json_extract_string(context, '$.record.id'), traits FROM events WHERE source_id = ?", [source]
    )
    return {rid: json.loads(traits) for rid, traits in rows}


def test_typed_csv_import_quarantines_bad_rows_with_line_and_column(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "m.toml").write_text(MAPPING, encoding="utf-8")
    mapping = load_mapping(tmp_path / "m.toml")
    counts = import_file(runtime.db, runtime.writer, path, mapping, "crm")
    assert (counts.rows_read, counts.rows_written, counts.rows_failed) == (5, 2, 3)
    assert counts.errors == [
        "$.age: line 3: column 'age': 'forty' is not an integer",
        "$.vip: line 4: column 'vip': 'maybe' is not a boolean (true/false, yes/no, 1/0)",
        "$.signed_up: line 5: column 'signed_up': 'not a date' is not an ISO 8601 date and time",
    ]
    traits = _traits(runtime, "import:crm")
    assert traits["C1"] == {
        "first_name": "Ana",
        "age": 34,
        "vip": True,
        "signedUpAt": "2024-01-02T10:00:00.000000Z",
    }
    assert traits["C5"]["signedUpAt"] == "2023-12-31T22:00:00.000000Z"
    quarantined = {q.batch_index: q for q in runtime.events.quarantine()}
    assert set(quarantined) == {3, 4, 5}
    assert quarantined[3].payload == "C2,ben@example.org,Ben,forty,no,2024-01-03\r\n"
    assert quarantined[3].endpoint == "import:crm"
    # Records join the identity graph like the record files of the demo.
    runtime.processor.run_once()
    assert dict(runtime.db.execute("SELECT record_id, kind FROM records")) == {"C1": "crm", "C5": "crm"}


def test_reimport_stores_nothing_twice_and_a_changed_row_once(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS, encoding="utf-8")
    mapping = parse_mapping({"record": "crm", "id": "customer_id", "identifiers": {"email": "email"}}, "m")
    first = import_file(runtime.db, runtime.writer, path, mapping, "crm")
    again = import_file(runtime.db, runtime.writer, path, mapping, "crm")
    assert (first.rows_written, again.rows_written, again.rows_skipped) == (5, 0, 5)
    path.write_text(CUSTOMERS.replace("Ana", "Anna"), encoding="utf-8")
    changed = import_file(runtime.db, runtime.writer, path, mapping, "crm")
    assert (changed.rows_written, changed.rows_skipped) == (0, 5)  # first_name is not mapped
    mapped = parse_mapping({**_as_dict(mapping), "traits": {"first_name": "string"}}, "m")
    import_file(runtime.db, runtime.writer, path, mapped, "crm")
    path.write_text(CUSTOMERS.replace("Anna", "Annie"), encoding="utf-8")
    last = import_file(runtime.db, runtime.writer, path, mapped, "crm")
    assert (last.rows_written, last.rows_skipped) == (1, 4)


def _as_dict(mapping: Mapping) -> dict[str, object]:
    import msgspec

    return {k: v for k, v in msgspec.to_builtins(mapping).items() if v is not None}


def test_a_missing_column_stops_the_import_naming_it(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,mail\nC1,a@example.org\n", encoding="utf-8")
    mapping = parse_mapping({"record": "crm", "id": "customer_id", "identifiers": {"email": "email"}}, "m")
    with pytest.raises(MappingError, match="no column 'email'; the source has: customer_id, mail"):
        import_file(runtime.db, runtime.writer, path, mapping, "crm")
    assert runtime.db.execute("SELECT count(*) FROM events") == [(0,)]


def test_bad_mappings_list_every_problem() -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping({"kind": "track", "traits": {"a": "string"}, "identifiers": {"e": "E-mail"}}, "m.toml")
    assert caught.value.problems == [
        "event: a track mapping needs `event` or `event_column`",
        "timestamp: a track mapping needs the column that says when each row happened",
        "traits: a track mapping carries `properties`",
        "identifiers.e: 'E-mail' is not an identifier type name",
    ]
    with pytest.raises(
        MappingError,
        match=r"Invalid enum value 'text' - at `\$.traits\[...\]` \(field types: string, integer",
    ):
        parse_mapping({"traits": {"a": "text"}, "identifiers": {"e": "email"}}, "m.toml")


def test_track_events_from_json_lines(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    lines = [
        {"order_id": "O1", "user": "u1", "at": "2024-05-01T12:00:00Z", "total": 42.5, "items": [1, 2]},
        "not an object",
        {"order_id": "O2", "user": "u2", "at": "2024-05-02T12:00:00Z", "total": "12"},
        {"order_id": "O3", "user": "u3", "at": "yesterday", "total": 1},
        {"order_id": "O4", "at": "2024-05-02T12:00:00Z", "total": 3},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{oops\n", encoding="utf-8")
    mapping = parse_mapping(
        {
            "kind": "track",
            "event": "Order Completed",
            "id": "order_id",
            "timestamp": "at",
            "identifiers": {"user": "user_id"},
            "properties": {"total": "number", "items": "json", "order_id": "string"},
        },
        "m",
    )
    counts = import_file(runtime.db, runtime.writer, path, mapping, "shop")
    assert (counts.rows_read, counts.rows_written, counts.rows_failed) == (6, 2, 4)
    assert counts.errors[0] == "$: line 2: a str, not a JSON object"
    assert "$.at: line 4: column 'at': 'yesterday' is not an ISO 8601 date and time" in counts.errors
    assert "$.user: line 5: column 'user': no identifier: every identifier column is empty" in counts.errors
    assert counts.errors[-1].startswith("$: line 6: not JSON")
    rows = runtime.db.execute(
        "SELECT user_id, event, timestamp, properties FROM events"
        " WHERE source_id = 'import:shop' ORDER BY seq"
    )
    assert [(u, e) for u, e, _, _ in rows] == [("u1", "Order Completed"), ("u2", "Order Completed")]
    assert rows[0][2].isoformat() == "2024-05-01T12:00:00+00:00"
    assert json.loads(rows[0][3]) == {"total": 42.5, "items": [1, 2], "order_id": "O1"}
    assert json.loads(rows[1][3])["total"] == 12.0
    again = import_file(runtime.db, runtime.writer, path, mapping, "shop")
    assert (again.rows_written, again.rows_skipped) == (0, 2)


def test_parquet_keeps_types_and_names_rows(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "people.parquet"
    table = pa.table(
        {
            "email": ["a@example.org", "b@example.org", None],
            "score": [1.0, 2.5, 3.0],
            "visits": [3, 4, 5],
        }
    )
    pq.write_table(table, path)
    mapping = parse_mapping(
        {"identifiers": {"email": "email"}, "traits": {"score": "integer", "visits": "integer"}}, "m"
    )
    counts = import_file(runtime.db, runtime.writer, path, mapping, "people")
    assert (counts.rows_written, counts.rows_failed) == (1, 2)
    assert counts.errors == [
        "$.score: row 2: column 'score': 2.5 is not a whole number",
        "$.email: row 3: column 'email': no identifier: every identifier column is empty",
    ]
    (payload,) = [q.payload for q in runtime.events.quarantine() if q.batch_index == 2]
    assert json.loads(payload) == {"email": "b@example.org", "score": 2.5, "visits": 4}


def test_inferred_mapping(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS.replace("forty", "40").replace("maybe", "no"), encoding="utf-8")
    source = open_source_file(path)
    sample = next(iter(source.chunks()))
    mapping = infer_mapping(source.columns, sample, record="customers")
    assert mapping.record == "customers"
    assert mapping.id == "customer_id"
    assert mapping.identifiers == {"customer_id": "crm_id", "email": "email"}
    assert mapping.traits == {
        "customer_id": "string",
        "email": "string",
        "first_name": "string",
        "age": "integer",
        "vip": "boolean",
        "signed_up": "string",  # 'not a date' is in the sample
    }
