"""Segment definitions: boolean trees of conditions on events, traits, computed traits, segments and consent.

```yaml
name: home_browsers_not_buying
description: Viewed home accessories in the last 90 days and ordered nothing in the last 30
condition:
  all:
    - event: Product Viewed
      where: [{property: category, op: "=", value: Home Accessories}]
      within: 90d                          # at least once by default (op ">=", value 1)
    - not: {event: Order Completed, within: 30d}
    - any:
        - trait: city                      # the golden record (identify calls, imports)
          op: in
          value: [London, Leeds]
        - computed: orders_lifetime        # a computed trait
          op: ">="
          value: 2
    - segment: newsletter_readers          # another segment
    - consent: email_marketing             # consent for a purpose
```
An event condition may aggregate instead of counting: `aggregate: sum`, `of: properties.total`,
`op: ">"`, `value: 100` is "spent more than 100".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tailor.profiles.comparisons import Comparison, read_comparison
from tailor.profiles.definitions import AGGREGATES, Aggregate, read_selector
from tailor.profiles.reading import Reader

NUMERIC_AGGREGATES = ("count", "sum", "avg", "min", "max", "distinct_count")


@dataclass(frozen=True)
class All:
    """Every condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The condition does not hold."""

    condition: Condition


@dataclass(frozen=True)
class EventCondition:
    """An aggregate of the person's matching events compared with a constant (by default: at least one)."""

    aggregate: Aggregate
    comparison: Comparison


@dataclass(frozen=True)
class TraitCondition:
    """A trait of the golden record compared with a constant."""

    trait: str
    comparison: Comparison


@dataclass(frozen=True)
class ComputedCondition:
    """A computed trait compared with a constant."""

    trait: str
    comparison: Comparison


@dataclass(frozen=True)
class SegmentCondition:
    """Membership of another segment."""

    segment: str


@dataclass(frozen=True)
class ConsentCondition:
    """The person has granted consent for a purpose (on a channel, if given)."""

    purpose: str
    channel: str | None = None


Condition = (
    All
    | AnyOf
    | Not
    | EventCondition
    | TraitCondition
    | ComputedCondition
    | SegmentCondition
    | ConsentCondition
)


@dataclass(frozen=True)
class SegmentDefinition:
    """A named segment."""

    name: str
    condition: Condition | None
    description: str = ""
    body: dict[str, Any] = field(default_factory=dict, compare=False)


_KINDS = ("all", "any", "not", "event", "type", "trait", "computed", "segment", "consent")
_EVENT_KEYS = {"event", "type", "where", "within", "aggregate", "of", "op", "value"}


def read_segment(body: dict[str, Any]) -> tuple[SegmentDefinition, Reader]:
    """A segment definition and the reader holding any problems found in it (not raised here)."""
    r = Reader()
    r.unknown_keys(body, {"name", "description", "condition"})
    name = r.name(body)
    description = r.text(body, "description")
    condition = None
    if "condition" not in body:
        r.problem("is required", "condition")
    else:
        with r.at("condition"):
            condition = read_condition(r, body["condition"])
    return SegmentDefinition(name, condition, description, body), r


def read_condition(r: Reader, item: Any) -> Condition | None:
    """One node of a condition tree, and everything below it."""
    body = r.mapping(item, "a condition (an object with one of " + ", ".join(_KINDS) + ")")
    if body is None:
        return None
    kinds = [k for k in _KINDS if k in body]
    if "event" in kinds and "type" in kinds:
        kinds.remove("type")
    if len(kinds) != 1:
        r.problem(f"a condition needs exactly one of {', '.join(_KINDS)}; found {', '.join(kinds) or 'none'}")
        return None
    kind = kinds[0]
    if kind in ("all", "any"):
        r.unknown_keys(body, {kind})
        children = body[kind]
        if not isinstance(children, list) or not children:
            r.problem("must be a non-empty list of conditions", kind)
            return None
        found: list[Condition] = r.each(body, kind, lambda child: read_condition(r, child))
        return All(tuple(found)) if kind == "all" else AnyOf(tuple(found))
    if kind == "not":
        r.unknown_keys(body, {"not"})
        with r.at("not"):
            inner = read_condition(r, body["not"])
        return None if inner is None else Not(inner)
    if kind in ("event", "type"):
        return _read_event(r, dict(body))
    if kind in ("trait", "computed"):
        r.unknown_keys(body, {kind, "op", "value"})
        name = r.text(body, kind, required=True)
        comparison = read_comparison(r, dict(body))
        if comparison is None or not name:
            return None
        return TraitCondition(name, comparison) if kind == "trait" else ComputedCondition(name, comparison)
    if kind == "segment":
        r.unknown_keys(body, {"segment"})
        name = r.text(body, "segment", required=True)
        return SegmentCondition(name) if name else None
    r.unknown_keys(body, {"consent", "channel"})
    purpose = r.text(body, "consent", required=True)
    channel = r.text(body, "channel") or None
    return ConsentCondition(purpose, channel) if purpose else None


def _read_event(r: Reader, body: dict[str, Any]) -> EventCondition | None:
    r.unknown_keys(body, _EVENT_KEYS)
    function = body.get("aggregate", "count")
    if function not in NUMERIC_AGGREGATES:
        allowed = ", ".join(NUMERIC_AGGREGATES)
        r.problem(f"an event condition compares a number: aggregate must be one of {allowed}", "aggregate")
        return None
    assert function in AGGREGATES
    of = r.field(body, "of", default_root="properties")
    if function not in ("count",) and of is None and "of" not in body:
        r.problem(f"{function} needs the field to aggregate (of: properties.KEY)", "of")
    if function == "count" and "of" in body:
        r.problem("count takes no field", "of")
    comparison = (
        read_comparison(r, body, default_op=">=") if "op" in body or "value" in body else Comparison(">=", 1)
    )
    if comparison is not None and comparison.op in ("within", "older_than", "contains", "starts_with"):
        r.problem(f"{comparison.op} does not compare numbers", "op")
        comparison = None
    selector = read_selector(r, body)
    if comparison is None:
        return None
    return EventCondition(Aggregate(function, selector, of), comparison)
