"""The rule-based models and Shapley values on journeys small enough to credit by hand."""

from __future__ import annotations

import pytest

from tailor.analytics.attribution import MODELS, attribute
from tests.analytics.conftest import Load

# a > b > c converts twice for 100; a > c once for 50; b alone never converts.
ROWS = [("a > b > c", 2, 100, 5), ("a > c", 1, 50, 3), ("b", 0, 0, 4)]


def credit(
    load: Load, model: str, rows: list[tuple[str, float, float, float]] = ROWS
) -> dict[str, tuple[float, float]]:
    result = attribute(load(rows), half_life=1.0, ends=0.4)
    return {k: (round(c.conversions, 9), round(c.value, 9)) for k, c in result.models[model].items()}


def test_first_and_last_touch(load: Load) -> None:
    assert credit(load, "first_touch") == {"a": (3, 150), "b": (0, 0), "c": (0, 0)}
    assert credit(load, "last_touch") == {"a": (0, 0), "b": (0, 0), "c": (3, 150)}


def test_linear_shares_each_path_equally_among_its_touches(load: Load) -> None:
    # a > b > c: 2/3 each; a > c: 1/2 each.
    assert credit(load, "linear") == {
        "a": (round(2 / 3 + 1 / 2, 9), round(100 / 3 + 25, 9)),
        "b": (round(2 / 3, 9), round(100 / 3, 9)),
        "c": (round(2 / 3 + 1 / 2, 9), round(100 / 3 + 25, 9)),
    }


def test_position_based_gives_the_ends_forty_percent(load: Load) -> None:
    # a > b > c: 0.4, 0.2, 0.4 of 2 conversions; a > c: half each.
    assert credit(load, "position_based") == {"a": (1.3, 65), "b": (0.4, 20), "c": (1.3, 65)}


def test_time_decay_halves_the_weight_per_half_life(load: Load) -> None:
    # In a path file a touch's age is the number of touches after it: weights 1/4, 1/2, 1.
    got = credit(load, "time_decay")
    assert got["a"][0] == pytest.approx(2 * 0.25 / 1.75 + 0.5 / 1.5)
    assert got["b"][0] == pytest.approx(2 * 0.5 / 1.75)
    assert got["c"][0] == pytest.approx(2 * 1 / 1.75 + 1 / 1.5)
    assert got["c"][1] == pytest.approx(100 / 1.75 + 50 / 1.5)


def test_shapley_gives_each_distinct_channel_of_a_path_an_equal_share(load: Load) -> None:
    rows = [("a > b > a", 3, 30, 0), ("b", 1, 10, 2)]
    assert credit(load, "shapley", rows) == {"a": (1.5, 15), "b": (2.5, 25)}
    # Ordered: a's share of a > b > a is split between its two touches.
    assert credit(load, "shapley_ordered", rows) == {
        "a@1": (0.75, 7.5),
        "a@3": (0.75, 7.5),
        "b@1": (1, 10),
        "b@2": (1.5, 15),
    }


@pytest.mark.parametrize("model", [m for m in MODELS if m != "shapley_ordered"])
def test_every_model_shares_out_exactly_the_conversions_and_value(load: Load, model: str) -> None:
    rows = [("a > b > c > a", 2, 80, 1), ("c > b", 1, 15, 6), ("d", 0, 0, 3), ("b > b > d", 4, 10, 0)]
    got = credit(load, model, rows)
    assert sum(c for c, _ in got.values()) == pytest.approx(7)
    assert sum(v for _, v in got.values()) == pytest.approx(105)
    assert set(got) == {"a", "b", "c", "d"}


def test_ordered_shapley_sums_to_shapley(load: Load) -> None:
    rows = [("a > b > a > c", 2, 80, 1), ("c > b", 1, 15, 6), ("b > b > d", 4, 10, 0)]
    ordered = credit(load, "shapley_ordered", rows)
    for key, (c, v) in credit(load, "shapley", rows).items():
        parts = [x for k, x in ordered.items() if k.split("@")[0] == key]
        assert sum(p[0] for p in parts) == pytest.approx(c)
        assert sum(p[1] for p in parts) == pytest.approx(v)
