"""Computed-trait definitions: aggregations over a person's events, expressions over traits, quantile scores.

```yaml
name: revenue_90d                 # an aggregation
aggregate: sum
of: properties.total
event: Order Completed
within: 90d

name: furniture_views
aggregate: count
event: Product Viewed
where: [{property: category, op: "=", value: Furniture}]

name: average_order_value         # an expression over other traits (SQL syntax, a safe subset)
expression: revenue_lifetime / nullif(orders_lifetime, 0)

name: rfm_recency                 # a score from 1 to 5 by where a trait falls in the population
quantile: {of: days_since_last_order, buckets: 5, descending: true}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tailor.profiles.comparisons import Comparison, read_comparison
from tailor.profiles.fields import FieldPath
from tailor.profiles.reading import Reader

AGGREGATES: dict[str, str] = {
    "count": "how many events",
    "sum": "the sum of a numeric field",
    "avg": "the average of a numeric field",
    "min": "the smallest value of a field",
    "max": "the largest value of a field",
    "percentile": "the value of a numeric field below which a share p of the events fall",
    "first": "the field's value in the earliest event",
    "last": "the field's value in the latest event",
    "first_at": "when the earliest event happened",
    "last_at": "when the latest event happened",
    "distinct_count": "how many different values a field took",
    "distinct": "the list of different values a field took",
    "most_frequent": "the value a field took most often",
    "top": "the n values a field took most often, most frequent first",
}
NEEDS_FIELD = {
    "sum",
    "avg",
    "min",
    "max",
    "percentile",
    "first",
    "last",
    "distinct_count",
    "distinct",
    "most_frequent",
    "top",
}
GROUPABLE = {"count", "sum", "avg", "min", "max", "first_at", "last_at"}
VALUE_TYPES = ("text", "number", "boolean", "timestamp")
MESSAGE_TYPES = ("track", "page", "screen", "identify", "group", "alias")


@dataclass(frozen=True)
class Filter:
    """A condition on a field of each event (`properties.category = Furniture`)."""

    field: FieldPath
    comparison: Comparison


@dataclass(frozen=True)
class EventSelector:
    """Which of a person's events count: by name, by message type, by fields, within a window."""

    events: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    where: tuple[Filter, ...] = ()
    within: timedelta | None = None


@dataclass(frozen=True)
class Aggregate:
    """An aggregation of the selected events of one person."""

    function: str
    select: EventSelector
    of: FieldPath | None = None
    n: int = 3
    by: FieldPath | None = None
    as_type: str | None = None
    p: float = 0.5


@dataclass(frozen=True)
class Quantile:
    """A score from 1 to `buckets` by where a trait's value falls among everyone's values."""

    of: str
    buckets: int = 5
    descending: bool = False


@dataclass(frozen=True)
class TraitDefinition:
    """A computed trait: exactly one of an aggregate, an expression or a quantile score."""

    name: str
    description: str = ""
    aggregate: Aggregate | None = None
    expression: str | None = None
    quantile: Quantile | None = None
    body: dict[str, Any] = field(default_factory=dict, compare=False)
    """The definition as written, kept to show and export it."""


_TRAIT_KEYS = {
    "name",
    "description",
    "aggregate",
    "of",
    "event",
    "type",
    "where",
    "within",
    "n",
    "p",
    "by",
    "as",
    "expression",
    "quantile",
}
_SELECTOR_KEYS = {"event", "type", "where", "within"}


def read_filter(r: Reader, item: Any) -> Filter | None:
    """One `where` entry: `{property: category, op: "=", value: Furniture}` or `{field: ..., ...}`."""
    body = r.mapping(item)
    if body is None:
        return None
    r.unknown_keys(body, {"property", "field", "op", "value"})
    if ("property" in body) == ("field" in body):
        r.problem("give exactly one of property (a key of properties) or field (any field path)")
        return None
    key = "property" if "property" in body else "field"
    path = r.field(body, key, default_root="properties" if key == "property" else None)
    comparison = read_comparison(r, dict(body))
    if path is None or comparison is None:
        return None
    return Filter(path, comparison)


def read_selector(r: Reader, body: dict[str, Any]) -> EventSelector:
    """The `event`, `type`, `where` and `within` fields of a definition."""
    types = r.names(body, "type")
    for t in types:
        if t not in MESSAGE_TYPES:
            r.problem(f"unknown message type {t!r}; types are {', '.join(MESSAGE_TYPES)}", "type")
    return EventSelector(
        events=r.names(body, "event"),
        types=types,
        where=tuple(r.each(body, "where", lambda item: read_filter(r, item))),
        within=r.duration(body, "within"),
    )


def read_trait(body: dict[str, Any]) -> tuple[TraitDefinition, Reader]:
    """A trait definition and the reader holding any problems found in it (not raised here)."""
    r = Reader()
    r.unknown_keys(body, _TRAIT_KEYS)
    name = r.name(body)
    description = r.text(body, "description")
    forms = [k for k in ("aggregate", "expression", "quantile") if k in body]
    if len(forms) != 1:
        r.problem("give exactly one of aggregate, expression or quantile")
        return TraitDefinition(name, description, body=body), r
    if forms[0] == "expression":
        for key in _SELECTOR_KEYS | {"of", "n", "p", "by", "as"}:
            if key in body:
                r.problem("belongs to an aggregate, not an expression", key)
        expression = r.text(body, "expression", required=True)
        return TraitDefinition(name, description, expression=expression, body=body), r
    if forms[0] == "quantile":
        return TraitDefinition(name, description, quantile=_read_quantile(r, body), body=body), r
    return TraitDefinition(name, description, aggregate=_read_aggregate(r, body), body=body), r


def _read_aggregate(r: Reader, body: dict[str, Any]) -> Aggregate | None:
    function = body.get("aggregate")
    if function not in AGGREGATES:
        r.problem(f"unknown aggregate {function!r}; aggregates are {', '.join(AGGREGATES)}", "aggregate")
        # The rest is still read, so that every problem is reported at once.
        read_selector(r, body)
        r.field(body, "of", default_root="properties")
        return None
    of = r.field(body, "of", default_root="properties")
    if function in NEEDS_FIELD and of is None and "of" not in body:
        r.problem(f"{function} needs the field to aggregate (of: properties.KEY)", "of")
    if function not in NEEDS_FIELD and "of" in body:
        r.problem(f"{function} takes no field", "of")
    if function in ("sum", "avg") and of is not None and of.root == "timestamp":
        r.problem(f"{function} of a timestamp means nothing; use first_at or last_at", "of")
    by = r.field(body, "by", default_root="properties")
    if by is not None and function not in GROUPABLE:
        r.problem(f"by works with {', '.join(sorted(GROUPABLE))}, not {function}", "by")
    if by is not None and by.is_list:
        r.problem("by needs a single-valued field", "by")
    as_type = body.get("as")
    if as_type is not None and as_type not in VALUE_TYPES:
        r.problem(f"must be one of {', '.join(VALUE_TYPES)}", "as")
    n = r.integer(body, "n", 3, 1, 100) if function == "top" else 3
    if "n" in body and function != "top":
        r.problem("only top takes n", "n")
    p = body.get("p", 0.5)
    if function == "percentile" and (isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p < 1):
        r.problem(f"must be a share between 0 and 1 (0.9 for the 90th percentile), got {p!r}", "p")
        p = 0.5
    if "p" in body and function != "percentile":
        r.problem("only percentile takes p", "p")
    return Aggregate(function, read_selector(r, body), of, n, by, as_type, float(p))


def _read_quantile(r: Reader, body: dict[str, Any]) -> Quantile | None:
    for key in _SELECTOR_KEYS | {"of", "n", "p", "by", "as"}:
        if key in body:
            r.problem("belongs to an aggregate, not a quantile", key)
    with r.at("quantile"):
        spec = r.mapping(body["quantile"])
        if spec is None:
            return None
        r.unknown_keys(spec, {"of", "buckets", "descending"})
        of = r.text(spec, "of", required=True)
        buckets = r.integer(spec, "buckets", 5, 2, 100)
        descending = spec.get("descending", False)
        if not isinstance(descending, bool):
            r.problem("must be true or false", "descending")
            descending = False
    return Quantile(of, buckets, descending)
