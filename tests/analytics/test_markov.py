"""The Markov chain model: exact removal effects against hand algebra and a brute-force simulation."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from tailor.analytics.attribution import attribute
from tailor.analytics.markov import CONVERSION, NULL, START, STATE_SEP, markov_attribution, transitions_sql
from tests.analytics.conftest import Load

ROWS = [("a > b > c", 2, 100, 5), ("a > c", 1, 50, 3), ("b", 0, 0, 4), ("a > c", 1, 20, 0)]


def test_removal_effects_match_the_hand_computed_chain(load: Load) -> None:
    # start->a 12, start->b 4; a->b 7, a->c 5; b->c 7, b->null 4; c->conv 4, c->null 8.
    # P(c) = 1/3, P(b) = 7/33, P(a) = 7/12 * 7/33 + 5/12 * 1/3 = 104/396, P = 12/16 P(a) + 4/16 P(b) = 1/4.
    result = markov_attribution(load(ROWS))
    assert result.conversion_probability == pytest.approx(0.25)
    # Without a: only start -> b -> c remains: 4/16 * 7/33. Without b: start -> a -> c: 12/16 * 5/12 * 1/3.
    assert result.removal_effects["a"] == pytest.approx(1 - (4 / 16 * 7 / 33) / 0.25)
    assert result.removal_effects["b"] == pytest.approx(1 - (12 / 16 * 5 / 12 / 3) / 0.25)
    assert result.removal_effects["c"] == pytest.approx(1.0)
    total = sum(result.removal_effects.values())
    credit = attribute(load(ROWS)).models["markov"]
    for k, e in result.removal_effects.items():
        assert credit[k].conversions == pytest.approx(4 * e / total)
        assert credit[k].value == pytest.approx(170 * e / total)


def _chain(
    load: Load, rows: list[tuple[str, float, float, float]], order: int
) -> dict[str, dict[str, float]]:
    t = load(rows)
    edges: dict[str, dict[str, float]] = defaultdict(dict)
    for a, b, w in t.cur.execute(transitions_sql(t, order)).fetchall():
        edges[a][b] = float(w)
    return edges


def _simulate(edges: dict[str, dict[str, float]], removed: str | None, walks: int, seed: int) -> float:
    """P(conversion) estimated by walking the chain `walks` times, all walks advanced together."""
    rng = np.random.default_rng(seed)
    names = sorted({START, CONVERSION, NULL, *edges, *(b for out in edges.values() for b in out)})
    index = {s: i for i, s in enumerate(names)}
    cumulative = np.zeros((len(names), len(names)))
    for a, out in edges.items():
        row = np.zeros(len(names))
        for b, w in out.items():
            row[index[b]] = w
        cumulative[index[a]] = np.cumsum(row / row.sum())
    cut = np.array([removed is not None and removed in s.split(STATE_SEP) for s in names])
    state = np.full(walks, index[START])
    done = np.zeros(walks, dtype=bool)
    converted = np.zeros(walks, dtype=bool)
    while not done.all():
        live = np.flatnonzero(~done)
        u = rng.random(len(live))
        nxt = (cumulative[state[live]] < u[:, None]).sum(axis=1)
        state[live] = nxt
        converted[live] |= nxt == index[CONVERSION]
        done[live] |= (nxt == index[CONVERSION]) | (nxt == index[NULL]) | cut[nxt]
    return float(converted.mean())


ROWS_LOOPY = [
    ("a > b > a > c", 3, 30, 2),
    ("b > c > b", 1, 5, 4),
    ("c > a", 2, 20, 1),
    ("a > a > b", 0, 0, 5),
    ("d > c", 1, 10, 3),
    ("b > d > a > c", 2, 25, 2),
]


@pytest.mark.parametrize("order", [1, 2])
def test_exact_removal_effects_agree_with_a_brute_force_simulation(load: Load, order: int) -> None:
    result = markov_attribution(load(ROWS_LOOPY), order)
    edges = _chain(load, ROWS_LOOPY, order)
    walks = 200_000
    for i, removed in enumerate([None, "a", "b", "c", "d"]):
        simulated = _simulate(edges, removed, walks, seed=100 + i)
        exact = result.conversion_probability * (
            1.0 if removed is None else 1.0 - result.removal_effects[removed]
        )
        # A frequency over independent walks has standard error sqrt(p(1-p)/walks), here <= 0.0012;
        # 5 standard errors leave a chance of about 1 in 1.7 million of a false failure per check.
        se = np.sqrt(max(exact * (1 - exact), 1e-9) / walks)
        assert abs(simulated - exact) < 5 * se, (removed, simulated, exact)


def test_a_higher_order_chain_remembers_where_a_walk_came_from(load: Load) -> None:
    # After a, b converts; after c, b never does.
    rows = [("a > b", 4, 40, 0), ("c > b", 0, 0, 4)]
    first, second = markov_attribution(load(rows), 1), markov_attribution(load(rows), 2)
    assert first.conversion_probability == pytest.approx(0.5)
    assert second.conversion_probability == pytest.approx(0.5)
    # First order mixes the walks at b: without c, half the walks are lost and b still converts
    # half of the rest, so c seems to matter as much as a.
    assert first.removal_effects == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    # Second order knows that walks through c never converted: removing c changes nothing.
    assert second.removal_effects == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    assert second.states == 5  # (start), a, c, a>b, c>b


def test_no_conversions_credits_nothing(load: Load) -> None:
    result = markov_attribution(load([("a > b", 0, 0, 3)]))
    assert result.conversion_probability == 0.0
    assert result.shares == {"a": 0.0, "b": 0.0}
