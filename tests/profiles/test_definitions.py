"""Bad definitions are refused at save time with every problem listed, each with its path."""

from __future__ import annotations

from typing import Any

import pytest

from tailor.profiles.catalog import parse_segment, parse_trait
from tailor.profiles.exceptions import DefinitionError
from tests.profiles.store import Store


def _problems(call: Any, *args: Any) -> dict[str, str]:
    with pytest.raises(DefinitionError) as caught:
        call(*args)
    return {p.path: p.message for p in caught.value.problems}


def test_a_trait_with_many_mistakes_lists_them_all() -> None:
    problems = _problems(
        parse_trait,
        {
            "name": "Revenue 90",
            "aggregate": "summ",
            "within": "90 days",
            "where": [{"property": "category", "op": "≈", "value": "x"}, {"field": "price"}],
            "colour": "red",
        },
    )
    assert set(problems) == {
        "name",
        "aggregate",
        "within",
        "where[0].op",
        "where[1].field",
        "where[1].value",
        "colour",
    }
    assert "lower-case" in problems["name"]
    assert "summ" in problems["aggregate"]
    assert "count" in problems["aggregate"]
    assert "duration" in problems["within"]
    assert "unknown field" in problems["colour"]


def test_wrong_types_are_named() -> None:
    problems = _problems(
        parse_trait, {"name": "t", "aggregate": "top", "of": "category", "n": "three", "event": 5}
    )
    assert set(problems) == {"n", "event"}
    problems = _problems(parse_trait, {"name": "t", "aggregate": "count", "expression": "1"})
    assert "exactly one of" in problems[""]


def test_a_segment_with_mistakes_deep_in_its_tree() -> None:
    problems = _problems(
        parse_segment,
        {
            "name": "s",
            "condition": {
                "all": [
                    {"event": "Order Completed", "within": "soon"},
                    {"any": []},
                    {"not": {"trait": "city", "op": "in", "value": "London"}},
                    {"computed": "orders", "op": ">=", "value": True},
                    {"wibble": 1},
                ]
            },
        },
    )
    assert set(problems) == {
        "condition.all[0].within",
        "condition.all[1].any",
        "condition.all[2].not.value",
        "condition.all[3].value",
        "condition.all[4]",
    }


def test_unknown_names_cycles_and_unparseable_expressions_are_refused_by_the_store(store: Store) -> None:
    store.define_many([{"name": "orders", "aggregate": "count", "event": "Order Completed"}])
    with pytest.raises(DefinitionError) as caught:
        store.rt.definitions.put_many(
            [
                {"name": "a", "expression": "b + 1"},
                {"name": "b", "expression": "a * 2"},
                {"name": "c", "expression": "orders +* 2"},
                {"name": "d", "expression": "(SELECT 1) + now()"},
                {"name": "e", "expression": "missing_trait / 2"},
            ]
        )
    messages = "\n".join(f"{p.path}: {p.message}" for p in caught.value.problems)
    assert "cycle: a -> b -> a" in messages or "cycle: b -> a -> b" in messages
    assert "c.expression: does not parse" in messages
    assert "d.expression" in messages
    assert "not allowed" in messages
    assert "now()" in messages
    assert "no computed trait 'missing_trait'" in messages
    with pytest.raises(DefinitionError) as caught:
        store.rt.definitions.put_many(
            [
                {"name": "s1", "condition": {"segment": "s2"}},
                {
                    "name": "s2",
                    "condition": {"all": [{"segment": "s1"}, {"computed": "nope", "op": "exists"}]},
                },
            ]
        )
    messages = "\n".join(f"{p.path}: {p.message}" for p in caught.value.problems)
    assert "segments refer to each other in a cycle" in messages
    assert "s2.condition.all[1].computed: no computed trait 'nope'" in messages
    # Nothing of a refused change is kept.
    assert [d.name for d in store.rt.definitions.definitions("computed_trait")] == ["orders"]
    assert store.rt.definitions.definitions("segment") == []


def test_deleting_a_trait_others_use_is_refused(store: Store) -> None:
    store.define_many(
        [
            {"name": "orders", "aggregate": "count", "event": "Order Completed"},
            {"name": "buyer", "expression": "orders > 0"},
            {"name": "repeat", "condition": {"computed": "orders", "op": ">=", "value": 2}},
        ]
    )
    with pytest.raises(DefinitionError) as caught:
        store.rt.definitions.delete("computed_trait", "orders")
    paths = {p.path for p in caught.value.problems}
    assert paths == {"buyer.expression", "repeat.condition.computed"}
