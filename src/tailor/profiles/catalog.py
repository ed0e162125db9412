"""The saved definitions of computed traits and segments, with every version kept."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb
import msgspec

from tailor.profiles.definitions import TraitDefinition, read_trait
from tailor.profiles.exceptions import DefinitionError
from tailor.segments.definitions import SegmentDefinition, read_segment
from tailor.store.database import run

DDL = """
CREATE TABLE IF NOT EXISTS definitions (
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS definition_history (
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    action VARCHAR NOT NULL,
    body VARCHAR,
    changed_at TIMESTAMPTZ NOT NULL
);
"""

TRAIT = "computed_trait"
SEGMENT = "segment"


@dataclass(frozen=True)
class Catalog:
    """Every computed trait and segment in force, in the order they were first saved."""

    traits: tuple[TraitDefinition, ...] = ()
    segments: tuple[SegmentDefinition, ...] = ()
    versions: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)

    def trait(self, name: str) -> TraitDefinition | None:
        return next((t for t in self.traits if t.name == name), None)

    def segment(self, name: str) -> SegmentDefinition | None:
        return next((s for s in self.segments if s.name == name), None)

    def with_trait(self, trait: TraitDefinition) -> Catalog:
        return Catalog(_put(self.traits, trait), self.segments, self.versions)

    def without_trait(self, name: str) -> Catalog:
        return Catalog(tuple(t for t in self.traits if t.name != name), self.segments, self.versions)

    def with_segment(self, segment: SegmentDefinition) -> Catalog:
        return Catalog(self.traits, _put(self.segments, segment), self.versions)

    def without_segment(self, name: str) -> Catalog:
        return Catalog(self.traits, tuple(s for s in self.segments if s.name != name), self.versions)

    def fingerprint(self) -> str:
        """A digest of every definition's body: equal catalogs evaluate equally."""
        bodies = [[TRAIT, t.body] for t in self.traits] + [[SEGMENT, s.body] for s in self.segments]
        return hashlib.sha256(msgspec.json.encode(bodies)).hexdigest()[:16]


D = TypeVar("D", TraitDefinition, SegmentDefinition)


def _put(items: tuple[D, ...], item: D) -> tuple[D, ...]:
    """The items with `item` replacing the one of its name in place, or added at the end."""
    out = [item if i.name == item.name else i for i in items]
    if not any(i.name == item.name for i in items):
        out.append(item)
    return tuple(out)


def parse_trait(body: dict[str, Any]) -> TraitDefinition:
    """A trait definition, or DefinitionError with every problem in it."""
    definition, reader = read_trait(body)
    reader.fail("computed trait", body.get("name") if isinstance(body.get("name"), str) else None)
    return definition


def parse_segment(body: dict[str, Any]) -> SegmentDefinition:
    """A segment definition, or DefinitionError with every problem in it."""
    definition, reader = read_segment(body)
    reader.fail("segment", body.get("name") if isinstance(body.get("name"), str) else None)
    return definition


def load_catalog(cur: duckdb.DuckDBPyConnection) -> Catalog:
    """The definitions in force, as saved."""
    traits: list[TraitDefinition] = []
    segments: list[SegmentDefinition] = []
    versions: dict[tuple[str, str], int] = {}
    rows = run(
        cur,
        """SELECT d.kind, d.name, d.body, d.version FROM definitions d
        LEFT JOIN (SELECT kind, name, min(changed_at) AS first FROM definition_history GROUP BY ALL) h
            USING (kind, name)
        ORDER BY h.first NULLS LAST, d.name""",
    ).fetchall()
    for kind, name, body, version in rows:
        parsed = msgspec.json.decode(body)
        try:
            if kind == TRAIT:
                traits.append(parse_trait(parsed))
            else:
                segments.append(parse_segment(parsed))
        except DefinitionError as e:
            # A definition saved by an older version that this one reads differently: say which.
            raise DefinitionError(e.kind, name, e.problems) from e
        versions[(kind, name)] = int(version)
    return Catalog(tuple(traits), tuple(segments), versions)


def save_steps(old: Catalog, new: Catalog) -> list[tuple[str, list[Any]]]:
    """Parameterised statements that write the difference between two catalogs, with history."""
    out: list[tuple[str, list[Any]]] = []
    for kind, before, after in (
        (TRAIT, {t.name: t.body for t in old.traits}, {t.name: t.body for t in new.traits}),
        (SEGMENT, {s.name: s.body for s in old.segments}, {s.name: s.body for s in new.segments}),
    ):
        for name in sorted(set(before) | set(after)):
            version = old.versions.get((kind, name), 0) + 1
            if name not in after:
                out.append(("DELETE FROM definitions WHERE kind = ? AND name = ?", [kind, name]))
                out.append(
                    (
                        "INSERT INTO definition_history VALUES (?, ?, ?, 'deleted', NULL, now())",
                        [kind, name, version],
                    )
                )
            elif before.get(name) != after[name]:
                body = msgspec.json.encode(after[name]).decode()
                action = "created" if name not in before else "updated"
                out.append(
                    (
                        "INSERT OR REPLACE INTO definitions VALUES (?, ?, ?, ?, now())",
                        [kind, name, body, version],
                    )
                )
                out.append(
                    (
                        "INSERT INTO definition_history VALUES (?, ?, ?, ?, ?, now())",
                        [kind, name, version, action, body],
                    )
                )
    return out
