"""What a batch rebuild needs besides the event log: definitions, settings, splits and matches.

They are read from a data directory (`--data`) or from the files `tailor export-events` writes
beside the events: `definitions.json` (the computed traits and segments in force, and the
settings of identity, profiles and analytics), `identity_overrides.parquet` (users' splits) and
`identity_matches.parquet` (probabilistic matches of imported records, which the batch does not
fit again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from tailor.analytics.settings import AnalyticsConfig
from tailor.batch.identity import MATCHES_SCHEMA, OVERRIDES_SCHEMA
from tailor.config import IdentityConfig
from tailor.exceptions import ConfigError
from tailor.profiles.catalog import Catalog, parse_segment, parse_trait
from tailor.profiles.config import ProfilesConfig
from tailor.profiles.exceptions import DefinitionError, Problem

DEFINITIONS_FILE = "definitions.json"
OVERRIDES_FILE = "identity_overrides.parquet"
MATCHES_FILE = "identity_matches.parquet"


class BatchDefinitions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The definitions and settings a rebuild evaluates, as one JSON document."""

    traits: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Computed trait definitions, as saved (`tailor traits put` bodies)."""
    segments: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Segment definitions, as saved."""
    identity: IdentityConfig = msgspec.field(default_factory=IdentityConfig)
    """Identity limits and normalisation rules."""
    profiles: ProfilesConfig = msgspec.field(default_factory=ProfilesConfig)
    """Survivorship policies of the golden record."""
    analytics: AnalyticsConfig = msgspec.field(default_factory=AnalyticsConfig)
    """Touchpoint and conversion settings."""

    def catalog(self) -> Catalog:
        """The definitions parsed; DefinitionError naming every bad one."""
        problems = []
        traits, segments = [], []
        for i, body in enumerate(self.traits):
            try:
                traits.append(parse_trait(body))
            except DefinitionError as e:
                problems += [Problem(f"traits[{i}].{p.path}", p.message) for p in e.problems]
        for i, body in enumerate(self.segments):
            try:
                segments.append(parse_segment(body))
            except DefinitionError as e:
                problems += [Problem(f"segments[{i}].{p.path}", p.message) for p in e.problems]
        if problems:
            raise DefinitionError("definitions", None, problems)
        return Catalog(tuple(traits), tuple(segments))


def read_definitions(path: Path) -> BatchDefinitions:
    """A definitions file; ConfigError naming the file and what is wrong in it."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=BatchDefinitions)
    except FileNotFoundError as e:
        raise ConfigError(f"no definitions file at {path}") from e
    except msgspec.ValidationError as e:
        raise ConfigError(f"{path}: {e}") from e
    except msgspec.DecodeError as e:
        raise ConfigError(f"{path} is not JSON: {e}") from e


def write_definitions(path: Path, definitions: BatchDefinitions) -> None:
    """Writes a definitions file (indented JSON)."""
    path.write_bytes(msgspec.json.format(msgspec.json.encode(definitions), indent=2))


def read_side_table(path: Path, schema: pa.Schema) -> pa.Table:
    """Overrides or matches beside the events; an empty table when there is no such file."""
    if not path.exists():
        return schema.empty_table()
    table = pq.read_table(path)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ConfigError(f"{path}: missing columns {', '.join(missing)}")
    return table.select(schema.names).cast(schema)


__all__ = [
    "DEFINITIONS_FILE",
    "MATCHES_FILE",
    "MATCHES_SCHEMA",
    "OVERRIDES_FILE",
    "OVERRIDES_SCHEMA",
    "BatchDefinitions",
    "read_definitions",
    "read_side_table",
    "write_definitions",
]
