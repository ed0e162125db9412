"""Reading a CSV of paths a user already has: `path` (channels joined by `>`), `conversions`,
optional `value` and `nulls` (journeys along that path that did not convert).

Every problem is reported with its line and field; the good rows are used. A file with no good row
is an error carrying every problem.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tailor.analytics.dialect import DUCKDB, Dialect
from tailor.analytics.exceptions import BadInputError, InputProblem
from tailor.analytics.journeys import PATHS_DDL, TOUCHES_DDL, PathTables
from tailor.store.database import registered

# Separators people use for paths; seen in a path that lacks the one asked for, they are named.
OTHER_SEPARATORS = (">", ",", "|", ";", "->", "=>", "→", "»", "\t")


class PathFileOptions(msgspec.Struct, frozen=True):
    """Which columns hold what, and how channels are separated."""

    path_column: str = "path"
    conversions_column: str = "conversions"
    value_column: str = "value"
    nulls_column: str = "nulls"
    delimiter: str = ">"
    """Separator of the channels within a path."""
    csv_delimiter: str = ","
    """Separator of the fields of the CSV file."""


class PathFile(msgspec.Struct):
    """A path file read into journeys: rows read, rows used, and every problem with its line."""

    rows: int
    used: int
    problems: list[InputProblem]


def _read(path: Path, options: PathFileOptions) -> tuple[pa.Table, list[InputProblem]]:
    problems: list[InputProblem] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        problems.append(
            InputProblem(
                row.number or 0,
                "row",
                f"expected {row.expected_columns} fields, found {row.actual_columns}: {row.text[:80]!r}",
            )
        )
        return "skip"

    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f, delimiter=options.csv_delimiter), [])
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter=options.csv_delimiter, invalid_row_handler=invalid, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                auto_dict_encode=False,
            ),
        )
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: no such file", []) from e
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: not a readable CSV file: {e}", []) from e
    return table.cast(pa.schema([(n, pa.string()) for n in table.column_names])), problems


def _lines(rows: int, skipped: list[InputProblem]) -> np.ndarray:
    """The file line of each row read: rows skipped as malformed leave gaps (the header is line 1)."""
    bad = np.array(sorted(p.line for p in skipped if p.line), dtype=np.int64)
    return np.setdiff1d(np.arange(2, rows + len(bad) + 2, dtype=np.int64), bad)[:rows]


def _number_checks(column: str, field: str, required: bool) -> list[str]:
    missing = f"SELECT line, '{field}', 'missing' FROM _pf_raw WHERE trim({column}) = ''"
    return [
        *([missing] if required else []),
        f"""SELECT line, '{field}', 'not a number: ' || {column} FROM _pf_raw
            WHERE trim({column}) <> '' AND (try_cast({column} AS DOUBLE) IS NULL
                OR NOT isfinite(try_cast({column} AS DOUBLE)))""",
        f"""SELECT line, '{field}', 'negative: ' || {column} FROM _pf_raw
            WHERE try_cast({column} AS DOUBLE) < 0""",
    ]


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def _problems_sql(sep: str, has_value: bool, has_nulls: bool, dialect: Dialect) -> str:
    others = [s for s in OTHER_SEPARATORS if s != sep and sep not in s]
    unknown = " ".join(f"WHEN position({lit(s)} IN path) > 0 THEN {lit(s)}" for s in others)
    # A separator that holds the one asked for ("->" holds ">") is found even where that one is.
    within = [s for s in OTHER_SEPARATORS if s != sep and sep in s]
    hidden = " ".join(f"WHEN position({lit(s)} IN path) > 0 THEN {lit(s)}" for s in within)
    checks = [
        "SELECT line, 'path', 'empty path' FROM _pf_raw WHERE trim(path) = ''",
        f"""SELECT line, 'path', 'unknown delimiter ' || d || ' (channels are separated by '
                || {lit(sep)} || '; choose another with --delimiter)'
            FROM (SELECT line, CASE {unknown} END AS d FROM _pf_raw
                  WHERE trim(path) <> '' AND position({lit(sep)} IN path) = 0)
            WHERE d IS NOT NULL""",
        *(
            [
                f"""SELECT line, 'path', 'unknown delimiter ' || d || ' (channels are separated by '
                    || {lit(sep)} || '; choose another with --delimiter)'
                FROM (SELECT line, CASE {hidden} END AS d FROM _pf_raw) WHERE d IS NOT NULL"""
            ]
            if within
            else []
        ),
        f"""SELECT id, 'path', 'empty channel name at step ' || min(pos)
            FROM {dialect.explode("(SELECT * FROM _pf_raw WHERE trim(path) <> '')", "line", "path", lit(sep))}
            WHERE trim(item) = '' GROUP BY id""",
        *_number_checks("conversions", "conversions", required=True),
    ]
    if has_value:
        checks += _number_checks("value", "value", required=False)
        checks.append(
            """SELECT line, 'value', 'a value without conversions: ' || value FROM _pf_raw
               WHERE try_cast(value AS DOUBLE) > 0 AND try_cast(conversions AS DOUBLE) = 0"""
        )
    if has_nulls:
        checks += _number_checks("nulls", "nulls", required=False)
    return "\nUNION ALL\n".join(checks)


def load_path_file(
    cur: duckdb.DuckDBPyConnection,
    path: Path,
    options: PathFileOptions | None = None,
    dialect: Dialect = DUCKDB,
) -> tuple[PathTables, PathFile]:
    """Reads and checks a path file into journeys on `cur` (temp tables `pf_paths`, `pf_touches`)."""
    options = options or PathFileOptions()
    if not options.delimiter:
        raise BadInputError("the path delimiter must not be empty", [])
    table, problems = _read(path, options)
    wanted = {
        options.path_column: "path",
        options.conversions_column: "conversions",
        options.value_column: "value",
        options.nulls_column: "nulls",
    }
    missing = [c for c in (options.path_column, options.conversions_column) if c not in table.column_names]
    if missing:
        found = ", ".join(table.column_names)
        raise BadInputError(f"{path}: no column {' or '.join(missing)} (columns: {found})", problems)
    columns = {wanted[c]: table.column(c) for c in table.column_names if c in wanted}
    raw = pa.table({"line": pa.array(_lines(table.num_rows, problems)), **columns})
    has_value, has_nulls = "value" in columns, "nulls" in columns
    with registered(cur, _pf_raw=raw):
        rows = cur.execute(_problems_sql(options.delimiter, has_value, has_nulls, dialect)).fetchall()
        problems += [InputProblem(int(line), field, message) for line, field, message in rows]
        bad = sorted({p.line for p in problems})
        with registered(cur, _pf_bad=pa.table({"line": pa.array(bad, pa.int64())})):
            value = "coalesce(try_cast(nullif(trim(value), '') AS DOUBLE), 0)" if has_value else "0.0"
            nulls = "coalesce(try_cast(nullif(trim(nulls), '') AS DOUBLE), 0)" if has_nulls else "0.0"
            cur.execute(f"CREATE OR REPLACE TEMP TABLE pf_paths ({PATHS_DDL})")
            cur.execute(
                f"""INSERT INTO pf_paths SELECT line, CAST(conversions AS DOUBLE), {value}, {nulls}
                    FROM _pf_raw WHERE line NOT IN (SELECT line FROM _pf_bad)"""
            )
            cur.execute(f"CREATE OR REPLACE TEMP TABLE pf_touches ({TOUCHES_DDL})")
            sep = "'" + options.delimiter.replace("'", "''") + "'"
            cur.execute(
                f"""INSERT INTO pf_touches
                    SELECT id, pos, max(pos) OVER (PARTITION BY id), trim(item),
                           max(pos) OVER (PARTITION BY id) - pos
                    FROM {dialect.explode("_pf_raw", "line", "path", sep)}
                    WHERE id IN (SELECT path_id FROM pf_paths)"""
            )
    tables = PathTables(cur, "pf_paths", "pf_touches", "touches")
    used = tables.counts()[0]
    problems.sort(key=lambda p: (p.line, p.field))
    if used == 0:
        raise BadInputError(f"{path}: no usable path", problems)
    return tables, PathFile(table.num_rows + sum(1 for p in problems if p.field == "row"), used, problems)
