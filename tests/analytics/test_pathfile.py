"""Path files: bad rows reported with line and field, good rows used; `tailor attribution` output."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tailor.analytics.attribution import MODELS
from tailor.analytics.exceptions import BadInputError
from tailor.analytics.pathfile import PathFileOptions, load_path_file
from tailor.cli import main

BAD = """path,conversions,value,nulls
a > b > c,2,100,5
c | a,1,10,0
,1,1,1
a >> b,1,1,1
a > b,-1,1,1
a > b,1,-5,x
a,b,c,d,e
a -> b,1,2,0
a > c,1,20,
b,,3,1
b,NaN,3,1
c,0,9,1

a > c,1,50,3
"""


def test_every_problem_is_reported_with_its_line_and_the_good_rows_are_used(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(BAD)
    cur = duckdb.connect()
    tables, read = load_path_file(cur, path)
    got = [(p.line, p.field, p.message.split(":")[0].split(" (")[0]) for p in read.problems]
    assert got == [
        (3, "path", "unknown delimiter |"),
        (4, "path", "empty path"),
        (5, "path", "empty channel name at step 2"),
        (6, "conversions", "negative"),
        (7, "nulls", "not a number"),
        (7, "value", "negative"),
        (8, "row", "expected 4 fields, found 5"),
        (9, "path", "unknown delimiter ->"),
        (11, "conversions", "missing"),
        (12, "conversions", "not a number"),
        (13, "value", "a value without conversions"),
        (14, "conversions", "missing"),  # an empty line
        (14, "path", "empty path"),
    ]
    assert (read.rows, read.used) == (14, 3)
    lines = [r[0] for r in cur.execute(f"SELECT path_id FROM {tables.paths} ORDER BY 1").fetchall()]
    assert lines == [2, 10, 15]
    assert tables.counts() == (3, 4.0, 170.0, 8.0)


def test_another_delimiter_and_other_column_names(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("journey;conv;revenue\nsearch|email;2;30\nemail;1;5\n")
    options = PathFileOptions(
        path_column="journey",
        conversions_column="conv",
        value_column="revenue",
        delimiter="|",
        csv_delimiter=";",
    )
    tables, read = load_path_file(duckdb.connect(), path, options)
    assert read.problems == []
    assert tables.counts() == (2, 3.0, 35.0, 0.0)


def test_a_file_without_a_good_row_or_a_path_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("path,conversions\n,1\na,-2\n")
    with pytest.raises(BadInputError, match="no usable path") as e:
        load_path_file(duckdb.connect(), path)
    assert [p.line for p in e.value.problems] == [2, 3]
    path.write_text("route,conversions\na,1\n")
    with pytest.raises(BadInputError, match="no column path"):
        load_path_file(duckdb.connect(), path)


def test_cli_prints_json_per_model_and_channel(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("path,conversions,value,nulls\na > b,2,40,1\nb,1,5,3\nc | d,1,1,1\n")
    result = CliRunner().invoke(main, ["attribution", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out) == list(MODELS)
    assert out["linear"] == {
        "a": {"conversions": 1.0, "value": 20.0},
        "b": {"conversions": 2.0, "value": 25.0},
    }
    assert set(out["shapley_ordered"]) == {"a@1", "b@1", "b@2"}
    assert "line 4, path: unknown delimiter |" in result.stderr
    text = CliRunner().invoke(main, ["attribution", str(path)])
    assert text.exit_code == 0
    assert "Markov" in text.stdout
    assert "removal effect" in text.stdout


def test_cli_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["attribution", str(tmp_path / "nope.csv")])
    assert result.exit_code != 0
    assert "no such file" in result.output
