"""How the rows of a source become events: identifiers, traits, event fields and their types.

A mapping is declared in TOML (`[identifiers]`, `[traits]`, `[properties]` tables keyed by source
column) or inferred from a sample of the rows (`tailor.connectors.infer`). Rows become either
identify-style events (identifiers + traits; with `record`, each row is the latest version of one
record of that kind, keyed by `id`) or track events (an event name, a timestamp column, properties).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from tailor.connectors.exceptions import MappingError

FieldType = Literal["string", "integer", "number", "boolean", "timestamp", "date", "json"]
FIELD_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "timestamp", "date", "json")
"""The types a mapped column is validated and converted to ("json": any JSON value, kept as it is)."""

SEGMENT_ID_TYPES = ("user_id", "anonymous_id")
"""Identifier types carried in the event's own userId / anonymousId fields, not in externalIds."""


class Field(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One mapped column: its type, the name it is stored under, and whether a row needs a value."""

    type: FieldType = "string"
    """What the values must be; a value that is not is a bad row, quarantined with the reason."""
    name: str | None = None
    """The trait or property name; the column's name when not given."""
    required: bool = False
    """A row with no value here is quarantined."""


class Mapping(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How one source's rows become events."""

    kind: Literal["identify", "track"] = "identify"
    """identify: identifiers and traits of a person; track: something a person did, at a time."""
    record: str | None = None
    """Rows are records of this kind (such as `crm`) keyed by the `id` column; the latest version wins."""
    id: str | None = None
    """The column that identifies a row (a record id, or an event id that makes a re-import a no-op)."""
    identifiers: dict[str, str] = msgspec.field(default_factory=dict)
    """Column -> identifier type (email, phone, user_id, anonymous_id, crm_id, or a custom type)."""
    traits: dict[str, FieldType | Field] = msgspec.field(default_factory=dict)
    """Column -> type (or a Field) of the traits an identify row carries."""
    properties: dict[str, FieldType | Field] = msgspec.field(default_factory=dict)
    """Column -> type (or a Field) of the properties a track row carries."""
    event: str | None = None
    """The event name of every track row, when no `event_column` names it per row."""
    event_column: str | None = None
    """The column holding each track row's event name."""
    timestamp: str | None = None
    """The column holding when the row happened (required for track rows)."""
    text_traits: bool = False
    """Every column is a text trait, exactly as the source wrote it (how CRM record files are kept)."""

    def fields(self) -> dict[str, Field]:
        """The traits or properties, each as a Field."""
        chosen = self.traits if self.kind == "identify" else self.properties
        return {c: f if isinstance(f, Field) else Field(f) for c, f in chosen.items()}

    def columns(self) -> list[str]:
        """Every source column the mapping reads, in a stable order, without repeats."""
        wanted = [self.id, self.event_column, self.timestamp, *self.identifiers, *self.fields()]
        return list(dict.fromkeys(c for c in wanted if c))

    def problems(self) -> list[str]:
        """What is wrong with the mapping itself, each naming its path."""
        # Imported here: tailor.identity imports the record importer, which imports this module.
        from tailor.identity.identifiers import TYPE_NAME

        out = []
        if self.record is not None and not self.id:
            out.append("id: a record mapping needs the column that holds the record id")
        if self.record is not None and ":" in self.record:
            out.append(f"record: {self.record!r} must not contain ':'")
        if self.kind == "track":
            if not (self.event or self.event_column):
                out.append("event: a track mapping needs `event` or `event_column`")
            if not self.timestamp:
                out.append("timestamp: a track mapping needs the column that says when each row happened")
            if self.record is not None:
                out.append("record: only identify mappings hold records")
            if self.traits:
                out.append("traits: a track mapping carries `properties`")
        elif self.properties:
            out.append("properties: an identify mapping carries `traits`")
        for column, id_type in self.identifiers.items():
            if not TYPE_NAME.fullmatch(id_type):
                out.append(f"identifiers.{column}: {id_type!r} is not an identifier type name")
        if not self.identifiers and not self.text_traits and self.record is None:
            out.append("identifiers: a mapping needs at least one identifier column (who the row is about)")
        return out

    def check_columns(self, available: list[str], where: str) -> None:
        """Raises MappingError naming every mapped column the source does not have."""
        have = set(available)
        missing = [c for c in self.columns() if c not in have]
        if missing:
            problems = [f"no column {c!r}" for c in missing]
            raise MappingError(where, [*problems, f"the source has: {', '.join(available)}"])


def parse_mapping(data: dict[str, object], where: str) -> Mapping:
    """A mapping from a decoded TOML/JSON table; MappingError lists what is wrong."""
    try:
        mapping = msgspec.convert(data, Mapping)
    except msgspec.ValidationError as e:
        hint = f" (field types: {', '.join(FIELD_TYPES)})" if "enum" in str(e) else ""
        raise MappingError(where, [f"{e}{hint}"]) from e
    problems = mapping.problems()
    if problems:
        raise MappingError(where, problems)
    return mapping


def load_mapping(path: Path) -> Mapping:
    """Reads a mapping from a TOML file (the whole file, or its `[mapping]` table)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise MappingError(str(path), ["no such file"]) from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MappingError(str(path), [str(e)]) from e
    table = data.get("mapping", data)
    if not isinstance(table, dict):
        raise MappingError(str(path), ["mapping: must be a table"])
    return parse_mapping(table, str(path))


def dump_mapping(mapping: Mapping) -> str:
    """The mapping as TOML text, as `--infer` shows it and saves it."""
    import tomli_w

    data = msgspec.to_builtins(mapping)
    return tomli_w.dumps({k: v for k, v in data.items() if v not in (None, {}, False) or k == "kind"})
