"""Expressions over traits, in a safe subset of SQL, parsed and rewritten with sqlglot.

`revenue_lifetime / nullif(orders_lifetime, 0)` names other computed traits; `traits.city` names a
trait of the golden record (text: `CAST(traits.age AS DOUBLE)` to compute with it). Arithmetic,
comparisons, `and`/`or`/`not`, `CASE`, `coalesce`, `nullif`, casts and a few functions of numbers,
text and lists are allowed; nothing that reads a table, and no clock: time enters only through
`days_since(ts)`, `hours_since(ts)`, `within(ts, '30d')` and `older_than(ts, '30d')`, whose value
changes at a moment Tailor can compute, so a profile is looked at again exactly then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from tailor.profiles.durations import interval_sql, parse_duration

_ALLOWED = {
    "add", "sub", "mul", "div", "mod", "neg", "paren", "eq", "neq", "gt", "gte", "lt", "lte", "and",
    "or", "not", "is", "in", "between", "case", "if", "coalesce", "nullif", "cast", "trycast",
    "datatype", "literal", "boolean", "null", "column", "identifier", "abs", "round", "floor",
    "ceil", "greatest", "least", "ln", "exp", "sqrt", "pow", "lower", "upper", "length", "arraysize",
    "concat", "dpipe", "arraydistinct", "arraycontains", "arrayoverlaps", "like", "ilike", "anonymous",
}  # fmt: skip
_FUNCTIONS = {"list_intersect", "days_since", "hours_since", "within", "older_than", "list_sort"}
TIME_FUNCTIONS = {"days_since": 86400, "hours_since": 3600}
FLIP_FUNCTIONS = ("within", "older_than")


@dataclass(frozen=True)
class Expression:
    """A parsed, checked expression and the traits it reads."""

    text: str
    tree: exp.Expr
    traits: frozenset[str]
    """Computed traits it names."""
    golden: frozenset[str]
    """Golden-record traits it names (`traits.x`)."""


def parse_expression(text: str) -> tuple[Expression | None, list[str]]:
    """The expression, or None and every problem found in it."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError as e:
        detail = e.errors[0] if e.errors else {}
        where = f" at line {detail.get('line')}, column {detail.get('col')}" if detail else ""
        return None, [f"does not parse{where}: {detail.get('description', str(e))}"]
    problems: list[str] = []
    traits: set[str] = set()
    golden: set[str] = set()
    for node in tree.walk():
        if node.key not in _ALLOWED:
            problems.append(f"{node.sql('duckdb')!r} is not allowed in an expression")
        elif isinstance(node, exp.Anonymous) and node.name.lower() not in _FUNCTIONS:
            problems.append(f"unknown function {node.name}()")
        elif isinstance(node, exp.Anonymous):
            problems.extend(_check_time_call(node))
        elif isinstance(node, exp.Column):
            if node.table == "traits" and not node.args.get("db"):
                golden.add(node.name)
            elif node.table:
                problems.append(f"{node.sql('duckdb')!r}: name a computed trait, or traits.NAME")
            else:
                traits.add(node.name)
    if problems:
        return None, problems
    return Expression(text, tree, frozenset(traits), frozenset(golden)), []


def _check_time_call(node: exp.Anonymous) -> list[str]:
    name, args = node.name.lower(), node.expressions
    if name in TIME_FUNCTIONS and len(args) != 1:
        return [f"{name}() takes one timestamp"]
    if name in FLIP_FUNCTIONS:
        if len(args) != 2 or not (isinstance(args[1], exp.Literal) and args[1].is_string):
            return [f"{name}() takes a timestamp and a duration such as '30d'"]
        try:
            parse_duration(args[1].name)
        except ValueError as e:
            return [f"{name}(): {e}"]
    return []


@dataclass(frozen=True)
class Compiled:
    """SQL of a value and of the moments it may change with time alone."""

    sql: str
    changes: tuple[str, ...] = ()


def compile_expression(
    expression: Expression,
    trait: Callable[[str], Compiled],
    golden: Callable[[str], str],
    now: str,
) -> Compiled:
    """DuckDB SQL for an expression; `trait` and `golden` give the SQL of the traits it names."""
    changes: list[str] = []
    pieces: list[str] = []

    def placeholder(sql: str) -> exp.Expr:
        # SQL of our own is spliced in after sqlglot has written the rest, never parsed back.
        pieces.append(sql)
        return exp.column(f"__tailor_{len(pieces) - 1}__", quoted=True)

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            if node.table == "traits":
                return placeholder(f"({golden(node.name)})")
            inner = trait(node.name)
            changes.extend(inner.changes)
            return placeholder(f"({inner.sql})")
        if isinstance(node, exp.Anonymous) and node.name.lower() in _TIME_CALLS:
            argument = node.expressions[0].copy().transform(rewrite).sql("duckdb")
            sql, change = _time_call(node, _splice(argument, pieces), now)
            changes.append(change)
            return placeholder(sql)
        return node

    sql = _splice(expression.tree.copy().transform(rewrite).sql("duckdb"), pieces)
    return Compiled(sql, tuple(changes))


_TIME_CALLS = set(TIME_FUNCTIONS) | set(FLIP_FUNCTIONS)


def _splice(sql: str, pieces: list[str]) -> str:
    for i in range(len(pieces) - 1, -1, -1):
        sql = sql.replace(f'"__tailor_{i}__"', pieces[i])
    return sql


def _time_call(node: exp.Anonymous, argument: str, now: str) -> tuple[str, str]:
    """SQL of a time function call and of the next moment its value changes."""
    name = node.name.lower()
    ts = f"CAST({argument} AS TIMESTAMPTZ)"
    if name in TIME_FUNCTIONS:
        unit_us = TIME_FUNCTIONS[name] * 1_000_000
        elapsed = f"((epoch_us({now}) - epoch_us({ts})) // {unit_us})"
        return elapsed, f"({ts} + to_microseconds(({elapsed} + 1) * {unit_us}))"
    interval = interval_sql(parse_duration(node.expressions[1].name))
    op = ">" if name == "within" else "<="
    end = f"({ts} + {interval})"
    return f"({ts} {op} {now} - {interval})", f"CASE WHEN {end} > {now} THEN {end} END"
