"""Arrow's CSV blocks against Python's csv module: the same rows, values, line numbers and rejections."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.connectors import csv_blocks
from tailor.connectors.files import CsvFile, RowChunk

CLEAN = st.text(alphabet="abcxyz 0123456789,.é-", max_size=6).map(lambda v: f'"{v}"' if "," in v else v)
LINES = st.one_of(
    st.lists(CLEAN, min_size=3, max_size=3).map(",".join),  # a good row
    st.just(""),  # a blank line
    st.just("only,two"),  # the wrong number of fields
    st.just('x,"two\nlines",z'),  # a line break inside a quoted value
    st.just("bad,\udcff,z"),  # a byte that is not UTF-8 (written back as 0xff)
)


def _rows(chunks: list[RowChunk]) -> tuple[list[tuple[int, tuple[str, ...]]], list[tuple[int | None, str]]]:
    good, bad = [], []
    for c in chunks:
        names = list(c.columns)
        values = [c.columns[n].to_pylist() for n in names]
        good += [(c.numbers[i], tuple(v[i] for v in values)) for i in range(len(c))]
        bad += [(r.index, r.errors[0].message) for r in c.rejections]
    return good, bad


def _write(path: Path, lines: list[str], crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join(["a,b,c", *lines]) + end
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=40), st.booleans(), st.integers(1, 7))
def test_arrow_blocks_read_what_pythons_reader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], crlf: bool, chunk_rows: int
) -> None:
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", 40)  # many small blocks
    path = tmp_path / "f.csv"
    _write(path, lines, crlf)
    source = CsvFile(path)
    fast = _rows(list(source.chunks(chunk_rows)))
    slow = _rows(list(source._python_chunks(source.columns, 0, 1, chunk_rows, skip_header=True)))
    assert fast == slow


def test_a_bad_row_late_in_a_large_file_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = [f"{i},v{i},w" for i in range(300_000)]
    lines[250_000] = "250000,short"
    _write(path, lines, crlf=False)
    good, bad = _rows(list(CsvFile(path).chunks()))
    assert bad == [(250_002, "line 250002: 2 fields where the header has 3")]
    assert len(good) == 299_999
    assert good[-1] == (300_001, ("299999", "v299999", "w"))
    assert good[250_000] == (250_003, ("250001", "v250001", "w"))


def test_event_ids_and_dedupe_hashes_are_the_collectors(tmp_path: Path) -> None:
    import duckdb

    from tailor.collect.validate import dedupe_hash
    from tailor.connectors.events import EventShape
    from tailor.connectors.importer import convert_chunk
    from tailor.connectors.mapping import parse_mapping

    path = tmp_path / "c.csv"
    rows = [f"C{i},p{i}@example.org,2024-01-0{1 + i % 9}T10:00:00.123456Z" for i in range(5000)]
    _write(path, rows, crlf=False)
    path.write_text(path.read_text().replace("a,b,c", "id,email,seen", 1))
    mapping = parse_mapping(
        {"record": "crm", "id": "id", "identifiers": {"email": "email"}, "traits": {"seen": "timestamp"}}, "m"
    )
    (chunk,) = CsvFile(path).chunks()
    events = EventShape(mapping, "import:crm", "crm").rows(
        duckdb.connect(), convert_chunk(mapping, chunk, "line").table, "c.csv"
    )
    assert events.dedupe_hash == [dedupe_hash("import:crm", m) for m in events.message_id]
    assert events.message_id[7].startswith("record:crm:C7:")
    assert events.traits[7] == '{"seen":"2024-01-08T10:00:00.123456Z"}'
    assert [r.decode() for r in events.raw[:1]] == [
        '{"c0":"C0","c1":"p0@example.org","c2":"2024-01-01T10:00:00.123456Z"}'
    ]


@pytest.mark.parametrize("record", [True, False])
def test_the_context_json_is_what_to_json_of_structs_writes(record: bool) -> None:
    import duckdb
    import pyarrow as pa

    from tailor.connectors.events import EventShape
    from tailor.connectors.mapping import parse_mapping

    tricky = ['a"b\\c', "é ü 字 \u2028", "", None, "  spaced  ", "tab\there\n", "ok@example.org"]
    table = pa.table(
        {
            "id": pa.array([f"r{i}{v or ''}" for i, v in enumerate(tricky)]),
            "email": pa.array(tricky),
            "phone": pa.array(list(reversed(tricky))),
            "__line": pa.array(range(2, 2 + len(tricky)), pa.int64()),
        }
    )
    spec: dict[str, object] = {"identifiers": {"email": "email", "phone": "phone"}}
    if record:
        spec |= {"record": "crm", "id": "id"}
    mapping = parse_mapping(spec, "m")
    origin = 'dir/"odd" fïle.csv'
    events = EventShape(mapping, "import:x", "crm").rows(duckdb.connect(), table, origin)
    # The reference: the struct-built JSON the events query wrote before.
    ids = [
        f"struct_pack(type := '{t}', id := trim({c}), collection := 'crm', encoding := 'none')"
        for c, t in (("email", "email"), ("phone", "phone"))
    ]
    rec = ""
    if record:
        record_id = "'crm:' || trim(id)"
        ids.insert(
            0, f"struct_pack(type := 'record', id := {record_id}, collection := 'crm', encoding := 'none')"
        )
        file = "'dir/\"odd\" fïle.csv'"
        rec = f", record := struct_pack(kind := 'crm', id := trim(id), file := {file}, line := __line)"
    con = duckdb.connect()
    con.register("chunk", table)
    reference = con.sql(
        f"SELECT to_json(struct_pack(externalIds := list_filter([{', '.join(ids)}],"
        f" lambda x: coalesce(x.id, '') <> ''){rec})) FROM chunk"
    ).fetchall()
    assert events.context == [r[0] for r in reference]
