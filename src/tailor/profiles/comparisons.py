"""Comparisons of a value with a constant (`category = Furniture`, `orders >= 2`), compiled to SQL.

The same operators serve property filters of events, conditions on traits and on computed traits.
A comparison knows the kind of the value it is applied to: text (event properties and identify
traits are kept as text and cast when compared with a number), number, timestamp, boolean, or a
list (any element matching counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tailor.profiles.durations import interval_sql, parse_duration
from tailor.profiles.reading import Reader

OPERATORS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "exists",
    "not_exists",
    "within",
    "older_than",
)
_ORDERED = ("<", "<=", ">", ">=")
_TIME = ("within", "older_than")


@dataclass(frozen=True)
class Comparison:
    """An operator and its constant."""

    op: str
    value: Any = None

    @property
    def duration(self) -> timedelta:
        return parse_duration(self.value)

    def sql(self, column: str, kind: str, now: str) -> str:
        """SQL true where `column` (of `kind`: text, number, timestamp, boolean, list) compares so.

        Unknown (NULL) values compare false, so `not` of a condition holds for them.
        """
        op = self.op
        if op == "exists":
            return f"({column} IS NOT NULL)"
        if op == "not_exists":
            return f"({column} IS NULL)"
        if kind == "list":
            element = self._element("x", "text")
            return f"coalesce(array_length(list_filter({column}, lambda x: {element})) > 0, false)"
        if op in _TIME:
            ts = column if kind == "timestamp" else f"TRY_CAST({column} AS TIMESTAMPTZ)"
            cmp = ">" if op == "within" else "<="
            return f"coalesce({ts} {cmp} {now} - {interval_sql(self.duration)}, false)"
        return f"coalesce({self._element(column, kind)}, false)"

    def flip_sql(self, column: str, kind: str, now: str) -> str | None:
        """SQL for when this comparison may change with time alone (None if it never does)."""
        if self.op not in _TIME:
            return None
        ts = column if kind == "timestamp" else f"TRY_CAST({column} AS TIMESTAMPTZ)"
        end = f"{ts} + {interval_sql(self.duration)}"
        return f"CASE WHEN {end} > {now} THEN {end} END"

    def _element(self, column: str, kind: str) -> str:
        op, value = self.op, self.value
        if op in ("in", "not_in"):
            items = ", ".join(_literal(v) for v in value)
            target = _cast(column, kind, value[0]) if value else column
            return f"{target} {'NOT IN' if op == 'not_in' else 'IN'} ({items})"
        if op == "contains":
            return f"contains(lower(CAST({column} AS VARCHAR)), {_literal(str(value).lower())})"
        if op == "starts_with":
            return f"starts_with(CAST({column} AS VARCHAR), {_literal(str(value))})"
        sql_op = "<>" if op == "!=" else op
        return f"{_cast(column, kind, value)} {sql_op} {_literal(value)}"


def _cast(column: str, kind: str, value: Any) -> str:
    """The column as the type of the constant it is compared with."""
    if isinstance(value, bool):
        return f"TRY_CAST({column} AS BOOLEAN)" if kind != "boolean" else column
    if isinstance(value, int | float):
        return f"TRY_CAST({column} AS DOUBLE)" if kind != "number" else column
    if kind in ("number", "boolean", "timestamp"):
        return f"CAST({column} AS VARCHAR)"
    return column


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def read_comparison(r: Reader, body: dict[str, Any], default_op: str = "=") -> Comparison | None:
    """The `op` and `value` of a condition, checked together."""
    op = body.get("op", default_op)
    if op not in OPERATORS:
        r.problem(f"unknown operator {op!r}; operators are {', '.join(OPERATORS)}", "op")
        return None
    value = body.get("value")
    if op in ("exists", "not_exists"):
        if value is not None:
            r.problem(f"{op} takes no value", "value")
        return Comparison(op)
    if op in _TIME:
        try:
            parse_duration(str(value))
        except ValueError as e:
            r.problem(str(e), "value")
            return None
        return Comparison(op, value)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            r.problem(f"{op} needs a non-empty list of strings, numbers or true/false", "value")
            return None
        return Comparison(op, tuple(value))
    if not _scalar(value):
        r.problem(f"{op} needs a string, a number or true/false as its value", "value")
        return None
    if op in _ORDERED and isinstance(value, bool):
        r.problem(f"{op} cannot compare with true/false", "value")
        return None
    return Comparison(op, value)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (isinstance(value, float) and value != value)
