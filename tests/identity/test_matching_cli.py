"""`tailor identity match`: a CSV of records in, id,cluster_id out; bad rows reported, good rows matched."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from click.testing import CliRunner

from tailor.cli import main
from tailor.demo.match_records import record_truth, records_table
from tailor.demo.synth import SynthConfig, generate

HEADER = "id,First Name,surname,date_of_birth,email,mobile,zip\n"
GOOD = [
    "a1,Anna,Hale,1980-03-04,anna.hale@example.com,07281 208400,LS1 4AB",
    "a2,ANNA,Hale,04/03/1980,Anna.Hale@example.com ,+44 7281 208400,ls14ab",
    "b1,Tom,Price,1975-11-30,tom@example.org,07525 460020,M1 1AA",
    "b2,Thomas,Price,1975-11-30,tom@example.org,,M1 1AA",
    "c1,Zoe,Quinn,1990-01-02,zq@example.net,07911 208401,EH1 1YZ",
]


def _run(tmp_path: Path, body: bytes, *args: str) -> tuple[int, str, str, Path]:
    path = tmp_path / "records.csv"
    path.write_bytes(body)
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(
        main, ["identity", "match", str(path), "--id-column", "id", "-o", str(out), *args]
    )
    return result.exit_code, result.stdout, result.stderr, out


def _clusters(out: Path) -> dict[str, str]:
    with out.open(encoding="utf-8") as f:
        return {row["id"]: row["cluster_id"] for row in csv.DictReader(f)}


def _rejected(out: Path) -> list[dict[str, str]]:
    with Path(f"{out}.rejected.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_matches_a_synthetic_file_end_to_end(tmp_path: Path) -> None:
    base = generate(SynthConfig(people=600, seed=5))
    path = tmp_path / "all.csv"
    pa_csv.write_csv(records_table(base), path)
    result = CliRunner().invoke(main, ["identity", "match", str(path), "--id-column", "record_id"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    truth = record_truth(base)
    assert [r["record_id"] for r in rows] == list(truth)
    assert len({r["cluster_id"] for r in rows}) < len(rows)
    assert "clusters" in result.stderr
    assert "pairs compared" in result.stderr


def test_small_file_with_headers_recognised(tmp_path: Path) -> None:
    code, _, err, out = _run(tmp_path, (HEADER + "\n".join(GOOD) + "\n").encode())
    assert code == 0, err
    clusters = _clusters(out)
    assert clusters["a1"] == clusters["a2"] == "a1"
    assert clusters["c1"] == "c1"
    assert _rejected(out) == []


def test_bad_rows_are_rejected_with_row_and_field_and_the_rest_matched(tmp_path: Path) -> None:
    lines = [
        *GOOD[:2],
        "x1,too,few,fields",  # row 4
        ",Nobody,Noid,1970-01-02,n@example.com,,",  # row 5: empty id
        "a1,Anna,Hale,1980-03-04,again@example.com,,",  # row 6: duplicate id
        "d1,Dan,Long," + "9" * 5000 + ",d@example.com,,",  # row 7: value too long
        "e1,Ren\xe9e,Blanc,1985-05-05,r@example.com,,",  # row 8: Latin-1, below
        "y" * 300 + ",Long,Id,,,,",  # row 9: id too long
        *GOOD[2:],
    ]
    body = (HEADER + "\n".join(lines) + "\n").encode("utf-8").replace("Ren\xe9e".encode(), b"Ren\xe9e")
    code, _, err, out = _run(tmp_path, body, "--column", "dob=date_of_birth")
    assert code == 0, err
    rejected = {int(r["row"]): (r["field"], r["reason"]) for r in _rejected(out)}
    assert rejected[4] == ("", "expected 7 fields, found 4")
    assert rejected[5] == ("id", "empty id")
    assert rejected[6] == ("id", "duplicate id 'a1', first seen at row 2")
    assert rejected[7][0] == "date_of_birth"
    assert rejected[7][1].startswith("value too long: 5000 characters")
    assert rejected[8] == ("", "undecodable byte 0xe9 at position 6 (not UTF-8)")
    assert rejected[9][0] == "id"
    assert rejected[9][1].startswith("id too long")
    assert len(rejected) == 6
    for row in (4, 5, 6, 7, 8, 9):
        assert f"row {row}" in err
    clusters = _clusters(out)
    assert set(clusters) == {"a1", "a2", "b1", "b2", "c1"}
    assert clusters["a2"] == "a1"


def test_unusable_values_are_counted_and_the_row_still_matched(tmp_path: Path) -> None:
    lines = [*GOOD, "f1,Fay,Moss,31/02/1980,not-an-email,12,EH1 1YZ"]
    code, _, err, out = _run(tmp_path, (HEADER + "\n".join(lines) + "\n").encode())
    assert code == 0, err
    assert "f1" in _clusters(out)
    assert "unusable email value(s) (invalid)" in err
    assert "unusable mobile value(s) (invalid)" in err
    assert "unusable date_of_birth value(s) (invalid)" in err
    assert "row 7" in err
    with Path(f"{out}.unusable.csv").open(encoding="utf-8") as f:
        unusable = {(r["row"], r["field"]) for r in csv.DictReader(f)}
    assert unusable == {("7", "date_of_birth"), ("7", "email"), ("7", "mobile")}


def test_a_file_in_another_encoding_shows_as_undecodable_rows(tmp_path: Path) -> None:
    body = (HEADER + "\n".join(GOOD) + "\ng1,Zo\xeb,M\xfcller,,,,\n").encode("latin-1")
    code, _, err, out = _run(tmp_path, body)
    assert code == 0, err
    assert _rejected(out) == [
        {"row": "7", "field": "", "reason": "undecodable byte 0xeb at position 5 (not UTF-8)"}
    ]


@pytest.mark.parametrize(
    ("body", "args", "message"),
    [
        (None, (), "no such file"),
        (HEADER.encode(), ("--id-column", "customer"), "no id column 'customer'"),
        (b"", (), "is empty"),
        ("\ufeffid,n\xe4me\n".encode("utf-16"), (), "cannot read the header row"),
        (HEADER.encode(), ("--column", "shoe=id"), "unknown type 'shoe'"),
        (HEADER.encode(), ("--column", "email=mail"), "no such column"),
    ],
)
def test_unusable_input_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, body: bytes | None, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "records.csv"
    if body is not None:
        path.write_bytes(body)
    result = CliRunner().invoke(main, ["identity", "match", str(path), "--id-column", "id", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_single_record_is_its_own_cluster(tmp_path: Path) -> None:
    code, _, err, out = _run(tmp_path, (HEADER + GOOD[0] + "\n").encode())
    assert code == 0, err
    assert _clusters(out) == {"a1": "a1"}


def test_a_tiny_file_where_every_value_is_shared_still_matches_without_error(tmp_path: Path) -> None:
    lines = [
        "a1,Anna,Hale,1980-03-04,anna@example.com,07281 208400,LS1 4AB",
        "a2,Anna,Hale,1980-03-04,ANNA@example.com,,",
        "d1,Tom,Stone,31/02/1999,nope,123,",
    ]
    code, _, err, out = _run(tmp_path, (HEADER + "\n".join(lines) + "\n").encode())
    assert code == 0, err
    assert set(_clusters(out)) == {"a1", "a2", "d1"}
    assert "records 3, rejected rows 0" in err


def test_a_saved_model_scores_another_file(tmp_path: Path) -> None:
    base = generate(SynthConfig(people=600, seed=5))
    big = tmp_path / "big.csv"
    pa_csv.write_csv(records_table(base), big)
    model = tmp_path / "model.json"
    runner = CliRunner()
    fitted = runner.invoke(
        main, ["identity", "match", str(big), "--id-column", "record_id", "--save-model", str(model)]
    )
    assert fitted.exit_code == 0, fitted.output
    assert model.read_bytes().startswith(b'{"format":"tailor.match-model/1"')
    small = tmp_path / "small.csv"
    small.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    scored = runner.invoke(
        main, ["identity", "match", str(small), "--id-column", "id", "--model", str(model), "-o", str(out)]
    )
    assert scored.exit_code == 0, scored.output
    assert _clusters(out)["a2"] == "a1"
    missing = runner.invoke(
        main, ["identity", "match", str(small), "--id-column", "id", "--model", str(tmp_path / "x")]
    )
    assert missing.exit_code == 2
    assert "cannot read the model" in missing.stderr
