"""Compiling segment definitions into SQL over a person's evaluated row.

A segment becomes one boolean SQL expression over `c` (the person's row of computed traits, see
`tailor.profiles.compile`) and `g` (their golden-record traits). Each event condition becomes a
hidden aggregate in the same evaluation pass as the computed traits (so all segments cost one pass
over the facts), a reference to another segment is inlined (cycles are refused), and conditions
that can change with time alone contribute the moment they may flip, for the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tailor.profiles.comparisons import _literal
from tailor.profiles.compile import Evaluation, quote
from tailor.profiles.exceptions import Problem
from tailor.segments.definitions import (
    All,
    AnyOf,
    ComputedCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    Not,
    SegmentCondition,
    SegmentDefinition,
    TraitCondition,
)

CONSENT_VIEW = "profile_consents"
"""The relation consent conditions read (`tailor.privacy`): the latest statement per profile, purpose and
channel (`*` for all channels), with its status (`granted` passes) and when it was recorded."""


def hidden_name(segment: str, index: int) -> str:
    """The column of a segment's event condition in the evaluated row."""
    return f"_h_{segment}_{index}"


@dataclass(frozen=True)
class CompiledSegment:
    """A segment's membership test and the moments it may flip with time alone."""

    sql: str
    flips: tuple[str, ...]


def column_kind(sql_type: str) -> str:
    """How comparisons treat a computed trait of this DuckDB type."""
    t = sql_type.upper()
    if t.endswith("[]"):
        return "list"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "timestamp"
    if t in ("BOOLEAN",):
        return "boolean"
    if t.startswith(("VARCHAR", "MAP", "STRUCT")):
        return "text"
    return "number"


def compile_segments(
    segments: list[SegmentDefinition],
    ev: Evaluation,
    trait_types: Mapping[str, str],
    consent_available: bool,
) -> dict[str, CompiledSegment]:
    """Every segment's SQL; hidden aggregates are added to `ev`, problems to `ev.problems`."""
    by_name = {s.name: s for s in segments}
    out: dict[str, CompiledSegment] = {}
    visiting: list[str] = []
    now = ev.now

    def segment(name: str, where: str) -> CompiledSegment:
        if name in out:
            return out[name]
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            ev.problems.append(Problem(where, f"segments refer to each other in a cycle: {cycle}"))
            return CompiledSegment("false", ())
        s = by_name.get(name)
        if s is None or s.condition is None:
            known = ", ".join(sorted(by_name)) or "none yet"
            ev.problems.append(Problem(where, f"no segment {name!r} (segments: {known})"))
            return CompiledSegment("false", ())
        visiting.append(name)
        counter = [0]
        try:
            result = condition(s.condition, f"{name}.condition", name, counter)
        finally:
            visiting.pop()
        out[name] = result
        return result

    def condition(c: Condition, where: str, owner: str, counter: list[int]) -> CompiledSegment:
        if isinstance(c, All | AnyOf):
            key = "all" if isinstance(c, All) else "any"
            parts = [
                condition(child, f"{where}.{key}[{i}]", owner, counter)
                for i, child in enumerate(c.conditions)
            ]
            joiner = " AND " if isinstance(c, All) else " OR "
            return CompiledSegment(
                "(" + joiner.join(p.sql for p in parts) + ")", tuple(f for p in parts for f in p.flips)
            )
        if isinstance(c, Not):
            inner = condition(c.condition, f"{where}.not", owner, counter)
            return CompiledSegment(f"(NOT {inner.sql})", inner.flips)
        if isinstance(c, EventCondition):
            alias = hidden_name(owner, counter[0])
            counter[0] += 1
            ev.values[alias] = ev.aggregate(alias, c.aggregate)
            return CompiledSegment(c.comparison.sql(f"c.{quote(alias)}", "number", now), ())
        if isinstance(c, ComputedCondition):
            if c.trait not in trait_types:
                known = ", ".join(sorted(t for t in trait_types if not t.startswith("_"))) or "none yet"
                ev.problems.append(
                    Problem(f"{where}.computed", f"no computed trait {c.trait!r} (computed traits: {known})")
                )
                return CompiledSegment("false", ())
            column, kind = f"c.{quote(c.trait)}", column_kind(trait_types[c.trait])
            flip = c.comparison.flip_sql(column, kind, now)
            return CompiledSegment(c.comparison.sql(column, kind, now), () if flip is None else (flip,))
        if isinstance(c, TraitCondition):
            ev.golden.add(c.trait)
            column = f"g.{quote('g_' + c.trait)}"
            flip = c.comparison.flip_sql(column, "text", now)
            return CompiledSegment(c.comparison.sql(column, "text", now), () if flip is None else (flip,))
        if isinstance(c, SegmentCondition):
            return segment(c.segment, f"{where}.segment")
        assert isinstance(c, ConsentCondition)
        if not consent_available:
            ev.problems.append(
                Problem(
                    f"{where}.consent",
                    "consent conditions need the consent stage, which this store does not have",
                )
            )
            return CompiledSegment("false", ())
        # As at send time: the latest statement for the purpose on the channel, or on all channels.
        channel = "" if c.channel is None else f" AND x.channel IN ({_literal(c.channel)}, '*')"
        return CompiledSegment(
            f"""coalesce((SELECT arg_max(x.status = 'granted', (x.recorded_at, x.seq)) FROM {CONSENT_VIEW} x
                WHERE x.profile_id = c.profile_id AND x.purpose = {_literal(c.purpose)}{channel}), false)""",
            (),
        )

    for name in by_name:
        segment(name, name)
    return out
