"""Shapley values by the simplified formula against the definition, enumerated over every coalition."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.analytics.attribution import attribute
from tests.analytics.conftest import Load


def shapley_by_definition(rows: list[tuple[str, float, float, float]], measure: int) -> dict[str, float]:
    """phi_j = sum over S without j of |S|! (n-|S|-1)! / n! (v(S + j) - v(S)),
    v(S) = the conversions (or value) of the paths whose channels all lie in S."""
    paths = [
        ({c.strip() for c in p.split(">")}, row[measure]) for p, *row in [(r[0], r[1], r[2]) for r in rows]
    ]
    players = sorted(set().union(*(s for s, _ in paths)))
    n = len(players)

    def v(coalition: frozenset[str]) -> float:
        return sum(x for s, x in paths if s <= coalition)

    phi = {}
    for j in players:
        others = [p for p in players if p != j]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                total += weight * (v(frozenset(s) | {j}) - v(frozenset(s)))
        phi[j] = total
    return phi


def test_hand_example_against_the_definition(load: Load) -> None:
    rows = [("a > b", 4, 40, 0), ("a", 2, 10, 1), ("b > c > b", 3, 90, 2), ("c", 0, 0, 5)]
    got = attribute(load(rows)).models["shapley"]
    for measure, field in ((0, "conversions"), (1, "value")):
        expected = shapley_by_definition(rows, measure)
        assert {k: getattr(c, field) for k, c in got.items()} == pytest.approx(expected)
    assert got["a"].conversions == pytest.approx(2 + 2)  # half of a > b, all of a
    assert got["c"].conversions == pytest.approx(1.5)


channels = st.sampled_from("abcde")
path_rows = st.lists(
    st.tuples(
        st.lists(channels, min_size=1, max_size=5).map(" > ".join),
        st.integers(0, 5),
        st.integers(0, 100),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path_rows)
def test_random_small_cases_against_the_definition(load: Load, rows: list[tuple[str, int, int, int]]) -> None:
    rows = [(p, c, v if c else 0, z if c + z else 1) for p, c, v, z in rows]
    got = attribute(load([(p, float(c), float(v), float(z)) for p, c, v, z in rows])).models["shapley"]
    expected = shapley_by_definition([(p, c, v, z) for p, c, v, z in rows], 0)
    assert {k: c.conversions for k, c in got.items()} == pytest.approx(expected, abs=1e-9)
