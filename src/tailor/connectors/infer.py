"""Inferring a mapping from a source's columns and a sample of its rows, to be shown and confirmed."""

from __future__ import annotations

import re

from tailor.connectors.convert import parse_value
from tailor.connectors.files import RowChunk
from tailor.connectors.mapping import Field, FieldType, Mapping, parse_mapping

_ID_NAMES = {
    "email": "email",
    "e_mail": "email",
    "email_address": "email",
    "phone": "phone",
    "phone_number": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "crm_id": "crm_id",
    "user_id": "user_id",
    "userid": "user_id",
    "anonymous_id": "anonymous_id",
    "customer_id": "crm_id",
}
_TIME_NAMES = ("timestamp", "occurred_at", "event_time", "time", "created_at", "ordered_at", "sent_at")
_EVENT_NAMES = ("event", "event_name", "event_type", "action")
_ROW_ID_NAMES = ("id", "record_id", "customer_id", "crm_id", "contact_id", "event_id", "order_id")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ORDER: tuple[FieldType, ...] = ("boolean", "integer", "number", "date", "timestamp")


def _key(column: str) -> str:
    return column.strip().lower().replace(" ", "_").replace("-", "_")


def infer_type(values: list[object]) -> FieldType:
    """The narrowest field type every non-empty value of a sample converts to."""
    present = [v for v in values if v is not None and not (isinstance(v, str) and not v.strip())]
    if not present:
        return "string"
    if all(isinstance(v, dict | list) for v in present):
        return "json"
    for candidate in _ORDER:
        if candidate == "boolean" and not all(
            isinstance(v, bool) or str(v).strip().lower() in ("true", "false", "yes", "no") for v in present
        ):
            continue
        if candidate == "date" and not all(isinstance(v, str) and len(v.strip()) == 10 for v in present):
            continue
        try:
            for value in present:
                parse_value(value, candidate)
        except ValueError:
            continue
        return candidate
    return "string"


def infer_mapping(columns: list[str], sample: RowChunk, record: str | None = None) -> Mapping:
    """A mapping guessed from column names and sample values: identifiers, a record or event id, types."""
    values = {c: (sample.columns[c].to_pylist() if c in sample.columns else []) for c in columns}
    identifiers: dict[str, str] = {}
    for column in columns:
        id_type = _ID_NAMES.get(_key(column))
        if id_type is None:
            texts = [v for v in values[column] if isinstance(v, str) and v.strip()]
            if texts and all(_EMAIL.match(v.strip()) for v in texts):
                id_type = "email"
        if id_type is not None:
            identifiers[column] = id_type
    keys = {_key(c): c for c in columns}
    stamp = next((keys[n] for n in _TIME_NAMES if n in keys), None)
    event = next((keys[n] for n in _EVENT_NAMES if n in keys), None)
    row_id = next((keys[n] for n in _ROW_ID_NAMES if n in keys), None)
    if row_id is not None and len(set(values[row_id])) != len(values[row_id]) and event is None:
        row_id = None  # not unique in the sample: not a row key
    types = {c: infer_type(values[c]) for c in columns}
    track = event is not None and stamp is not None
    # An identify row's identifiers are traits too (the profile shows its email); a track row's are not.
    skip = {stamp, event, *(identifiers if track else ())}
    fields: dict[str, FieldType | Field] = {c: types[c] for c in columns if c not in skip}
    if track:
        data: dict[str, object] = {"kind": "track", "event_column": event, "timestamp": stamp}
        data["properties"] = fields
    else:
        data = {"kind": "identify", "traits": fields}
        if stamp is not None and types[stamp] == "timestamp":
            data["timestamp"] = stamp
        if record is not None and row_id is not None:
            data["record"] = record
    if row_id is not None:
        data["id"] = row_id
    data["identifiers"] = identifiers
    return parse_mapping(data, "the inferred mapping")
