"""Saving, listing, previewing and deleting computed traits and segments of one running store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import msgspec

from tailor.process.processor import Processor
from tailor.process.stage import run_steps
from tailor.profiles import facts
from tailor.profiles.catalog import SEGMENT, TRAIT, Catalog, parse_segment, parse_trait
from tailor.profiles.compile import quote
from tailor.profiles.exceptions import DefinitionError, UnknownDefinitionError
from tailor.profiles.stage import ProfileStage
from tailor.store.database import Database, run


class SavedDefinition(msgspec.Struct):
    """A definition as saved, with its version."""

    kind: str
    name: str
    version: int
    updated_at: datetime
    definition: dict[str, Any]
    members: int | None = None
    """For a segment: how many people are in it now."""


class SegmentPreview(msgspec.Struct):
    """How many people a segment definition would hold now, and a few of them."""

    name: str
    members: int
    profiles: int
    sample: list[str]


class TraitPreview(msgspec.Struct):
    """What a trait definition would compute now: how many people have a value, and some values."""

    name: str
    profiles: int
    with_value: int
    sample: list[dict[str, Any]]


@dataclass
class DefinitionService:
    """The definitions of one store: every change is checked in full, saved and back-filled at once."""

    db: Database
    processor: Processor
    stage: ProfileStage

    # -- reading -------------------------------------------------------------------------------------

    def definitions(self, kind: str) -> list[SavedDefinition]:
        """Every definition of a kind (`computed_trait` or `segment`), in the order they were created."""
        return self._read(kind, None)

    def names(self, kind: str) -> list[str]:
        """The names of every definition of a kind, in the order they were created (no member counts)."""
        return [d.name for d in self._read(kind, None, counted=False)]

    def get(self, kind: str, name: str) -> SavedDefinition:
        found = self._read(kind, name)
        if not found:
            raise UnknownDefinitionError(f"no {kind.replace('_', ' ')} {name!r}")
        return found[0]

    def _read(self, kind: str, only: str | None, counted: bool = True) -> list[SavedDefinition]:
        # Member counts scan the memberships (3M rows at 1M profiles: ~100 ms), so they are taken
        # for segments only, and for the one asked for when there is one.
        counts: dict[str, int] = {}
        if kind == SEGMENT and counted:
            if only is None:
                counts = dict(
                    self.db.execute("SELECT segment, count(*) FROM segment_members GROUP BY segment")
                )
            else:
                ((members,),) = self.db.execute(
                    "SELECT count(*) FROM segment_members WHERE segment = ?", [only]
                )
                counts = {only: members}
        where, params = ("kind = ? AND name = ?", [kind, only]) if only is not None else ("kind = ?", [kind])
        rows = self.db.execute(
            f"SELECT kind, name, version, updated_at, body FROM definitions WHERE {where}", params
        )
        saved = {r[1]: r for r in rows}
        order = [
            d.name for d in (self.stage.catalog.traits if kind == TRAIT else self.stage.catalog.segments)
        ]
        out = []
        for name in [*order, *sorted(set(saved) - set(order))]:
            if name in saved:
                k, n, version, at, body = saved[name]
                members = int(counts.get(n, 0)) if kind == SEGMENT else None
                out.append(SavedDefinition(k, n, int(version), at, msgspec.json.decode(body), members))
        return out

    # -- changing ------------------------------------------------------------------------------------

    def put_trait(self, body: dict[str, Any]) -> SavedDefinition:
        """Creates or replaces a computed trait; everyone is evaluated again with it."""
        trait = parse_trait(body)
        self._install(self.stage.catalog.with_trait(trait))
        return self.get(TRAIT, trait.name)

    def put_segment(self, body: dict[str, Any]) -> SavedDefinition:
        """Creates or replaces a segment; its members are found at once (entries recorded as back-fill)."""
        segment = parse_segment(body)
        self._install(self.stage.catalog.with_segment(segment))
        return self.get(SEGMENT, segment.name)

    def put_many(self, bodies: list[dict[str, Any]]) -> list[SavedDefinition]:
        """Creates or replaces several definitions at once (a segment is one with a `condition`)."""
        catalog = self.stage.catalog
        kinds: list[tuple[str, str]] = []
        for body in bodies:
            if "condition" in body:
                segment = parse_segment(body)
                catalog, kinds = catalog.with_segment(segment), [*kinds, (SEGMENT, segment.name)]
            else:
                trait = parse_trait(body)
                catalog, kinds = catalog.with_trait(trait), [*kinds, (TRAIT, trait.name)]
        self._install(catalog)
        return [self.get(kind, name) for kind, name in kinds]

    def delete(self, kind: str, name: str) -> None:
        """Deletes a definition; refused, with the reasons, while other definitions use it."""
        catalog = self.stage.catalog
        if kind == TRAIT:
            if catalog.trait(name) is None:
                raise UnknownDefinitionError(f"no computed trait {name!r}")
            self._install(catalog.without_trait(name))
        else:
            if catalog.segment(name) is None:
                raise UnknownDefinitionError(f"no segment {name!r}")
            self._install(catalog.without_segment(name))

    def _install(self, catalog: Catalog) -> None:
        with self.processor.exclusive() as cur:
            self.stage.install(cur, catalog)

    # -- previews ------------------------------------------------------------------------------------

    def preview_segment(self, body: dict[str, Any], sample: int = 20) -> SegmentPreview:
        """Evaluates a segment definition for everyone without saving it."""
        segment = parse_segment(body)
        catalog = self.stage.catalog.with_segment(segment)
        with self._scratch() as cur:
            plan = self.stage.check(cur, catalog)
            facts.add_fields(self.db, cur, plan.fields.values())
            self.stage.refresh_columns(cur)
            cur.execute("BEGIN")
            run_steps(cur, "preview", plan.preview_steps())
            ((members, profiles),) = run(
                cur, f"SELECT count(*) FILTER (WHERE {quote(segment.name)}), count(*) FROM _pf_seg"
            ).fetchall()
            ids = [
                r[0]
                for r in run(
                    cur,
                    f"SELECT profile_id FROM _pf_seg WHERE {quote(segment.name)} ORDER BY profile_id LIMIT ?",
                    [sample],
                ).fetchall()
            ]
        return SegmentPreview(segment.name, int(members), int(profiles), ids)

    def preview_trait(self, body: dict[str, Any], sample: int = 20) -> TraitPreview:
        """Evaluates a computed trait definition for everyone without saving it."""
        trait = parse_trait(body)
        catalog = self.stage.catalog.with_trait(trait)
        with self._scratch() as cur:
            plan = self.stage.check(cur, catalog)
            facts.add_fields(self.db, cur, plan.fields.values())
            self.stage.refresh_columns(cur)
            cur.execute("BEGIN")
            run_steps(cur, "preview", plan.preview_steps())
            column = quote(trait.name)
            ((profiles, with_value),) = run(cur, f"SELECT count(*), count({column}) FROM _pf_new").fetchall()
            rows = run(
                cur,
                f"""SELECT profile_id, {column} FROM _pf_new WHERE {column} IS NOT NULL
                ORDER BY profile_id LIMIT ?""",
                [sample],
            ).fetchall()
        values = [{"profile_id": p, "value": _plain(v)} for p, v in rows]
        return TraitPreview(trait.name, int(profiles), int(with_value), values)

    @contextmanager
    def _scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The processor's cursor, with no batch running, and whatever a preview wrote rolled back."""
        with self.processor.exclusive() as cur:
            try:
                yield cur
            finally:
                with contextlib.suppress(duckdb.Error):  # no transaction was opened
                    cur.execute("ROLLBACK")


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (maps as objects, timestamps as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = ["DefinitionError", "DefinitionService", "SavedDefinition", "SegmentPreview", "TraitPreview"]
