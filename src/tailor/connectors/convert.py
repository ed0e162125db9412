"""Type validation of mapped columns: each value converted to its declared type, or its row flagged.

A whole column is converted at once with Arrow when every value is valid (the usual case); when
the fast path fails, the column is converted value by value to find which rows are bad and why.
The value-by-value conversion defines what is valid: the fast path only ever accepts a subset
of it, with the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from tailor.connectors.mapping import FieldType

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "json": pa.string(),
}
"""The Arrow type each field type converts to ("json" is JSON text)."""

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_MAX_INT = 2**63


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("is a boolean, not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{_show(value)} is not a whole number")
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip().replace("_", "x"))  # int() would accept 1_000
        except ValueError:
            raise ValueError(f"{_show(value)} is not an integer") from None
    else:
        raise ValueError(f"{_show(value)} is not an integer")
    if not -_MAX_INT <= number < _MAX_INT:
        raise ValueError(f"{number} does not fit in 64 bits")
    return number


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("is a boolean, not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{_show(value)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{_show(value)} is not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{_show(value)} is not a boolean (true/false, yes/no, 1/0)")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{_show(value)} is not an ISO 8601 date and time") from None
    else:
        raise ValueError(f"{_show(value)} is not a timestamp")
    # A time without a zone is taken as UTC, as Segment does with its timestamps.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{_show(value)} is not an ISO 8601 date (YYYY-MM-DD)") from None


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return msgspec.json.encode(value, enc_hook=str).decode()


def _json(value: Any) -> str:
    if isinstance(value, str):
        try:
            msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise ValueError(f"{_show(value)} is not JSON") from None
        return value
    return msgspec.json.encode(value, enc_hook=str).decode()


PARSERS: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "date": _date,
    "json": _json,
}


def parse_value(value: Any, type: FieldType) -> Any:
    """One value as its type; None for a missing or empty value; ValueError saying what is wrong."""
    if value is None or (type != "string" and isinstance(value, str) and not value.strip()):
        return None
    return PARSERS[type](value)


def _fast(column: pa.Array, type: str) -> pa.Array | None:
    """The whole column converted by Arrow, or None where some value needs a closer look."""
    target = ARROW_TYPES[type]
    if type == "json":
        return None  # every value must be parsed to know it is JSON
    if type == "string" and not pa.types.is_string(column.type):
        # Integers print the same either way; timestamps and the rest go through isoformat() and JSON.
        return column.cast(target) if pa.types.is_integer(column.type) else None
    try:
        if pa.types.is_string(column.type):
            if type == "string":
                return column
            if type == "boolean":
                words = pc.utf8_lower(pc.utf8_trim_whitespace(column))
                known = pc.or_(
                    pc.is_in(words, pa.array(sorted(_TRUE))), pc.is_in(words, pa.array(sorted(_FALSE)))
                )
                empty = pc.equal(words, "")
                if not pc.all(pc.or_(pc.fill_null(known, True), empty)).as_py():
                    return None
                truth = pc.is_in(words, pa.array(sorted(_TRUE)))
                return pc.if_else(pc.or_(empty, pc.is_null(words)), pa.scalar(None, pa.bool_()), truth)
            # Empty text is a missing value; surrounding spaces are not an error.
            trimmed = pc.utf8_trim_whitespace(column)
            column = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
            if type == "timestamp":
                try:
                    return column.cast(target)
                except pa.ArrowInvalid:
                    return pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
        elif type == "boolean" and not pa.types.is_boolean(column.type):
            return None
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def convert_column(column: pa.Array | pa.ChunkedArray, type: FieldType) -> tuple[pa.Array, dict[int, str]]:
    """A column converted to its field type, and {row position: what is wrong} for bad values (now null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), ARROW_TYPES[type]), {}
    fast = _fast(column, type)
    if fast is not None:
        return fast, {}
    values: list[Any] = []
    bad: dict[int, str] = {}
    for i, value in enumerate(column.to_pylist()):
        try:
            values.append(parse_value(value, type))
        except (ValueError, UnicodeDecodeError, TypeError) as e:
            bad[i] = str(e)
            values.append(None)
    return pa.array(values, ARROW_TYPES[type]), bad
