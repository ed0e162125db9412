"""Fitting the Fellegi-Sunter model: EM recovers planted parameters; models survive JSON."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.identity.matching import COMPARISONS, Matcher, MatchModel, ModelError
from tailor.identity.matching.comparisons import NULL
from tailor.identity.matching.model import TermFrequencies, parameters_for


def _planted(rng: np.random.Generator) -> tuple[list[list[float]], list[list[float]]]:
    m, u = [], []
    for comparison in COMPARISONS:
        size = len(comparison.levels)
        # Matches mostly agree, non-matches mostly fall in "else": each drawn at random around that.
        m_raw = rng.dirichlet(np.linspace(size * 2.0, 1.0, size))
        u_raw = rng.dirichlet(np.linspace(1.0, size * 6.0, size))
        m.append([float(v) for v in m_raw])
        u.append([float(v) for v in u_raw])
    return m, u


def test_em_recovers_planted_m_and_prior_with_u_fixed() -> None:
    rng = np.random.default_rng(3)
    m, u = _planted(rng)
    pairs, share = 60_000, 0.25
    is_match = rng.random(pairs) < share
    levels = np.empty((pairs, len(COMPARISONS)), dtype=np.int8)
    for k in range(len(COMPARISONS)):
        size = len(m[k])
        levels[:, k] = np.where(
            is_match, rng.choice(size, pairs, p=m[k]), rng.choice(size, pairs, p=u[k])
        ).astype(np.int8)
        levels[rng.random(pairs) < 0.1, k] = NULL  # missing fields take no part
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    estimate = list(range(len(COMPARISONS)))
    m_hat, share_hat, iterations, converged = Matcher().expectation_maximisation(
        patterns, counts, u, estimate
    )
    assert converged
    assert iterations < 100
    assert share_hat == pytest.approx(share, abs=0.01)
    for k in estimate:
        assert m_hat[k] == pytest.approx(m[k], abs=0.02), COMPARISONS[k].name


def _model(m: list[list[float]], u: list[list[float]], smith: float) -> MatchModel:
    return MatchModel(
        prior=0.001,
        comparisons=tuple(parameters_for(c, m[k], u[k]) for k, c in enumerate(COMPARISONS)),
        term_frequencies={"last_name": TermFrequencies({"smith": smith}, 0.0001)},
        em_iterations=7,
        em_converged=True,
        records_fitted=100,
    )


def test_a_model_round_trips_through_json() -> None:
    m, u = _planted(np.random.default_rng(5))
    model = _model(m, u, 0.01)
    again = MatchModel.from_json(model.to_json())
    assert again == model
    with pytest.raises(ModelError, match="not a match model"):
        MatchModel.from_json(b'{"format": 1}')
    with pytest.raises(ModelError, match="not a match model"):
        MatchModel.from_json(b"not json")


def test_common_surnames_weigh_less_than_rare_ones() -> None:
    m, u = _planted(np.random.default_rng(5))
    model = _model(m, u, 0.02)
    levels = np.full((2, len(COMPARISONS)), NULL, dtype=np.int8)
    levels[:, 1] = 0
    values = np.array(["smith", "featherstonehaugh"], dtype=object)
    weights = model.weights(levels, {"last_name": values})
    assert weights[0, 1] < weights[1, 1]
    assert weights[0, 1] == pytest.approx(np.log2(m[1][0] / 0.02))
    assert weights[:, [0, 2, 3, 4, 5]].sum() == 0  # missing fields contribute nothing


def test_a_shared_address_and_phone_do_not_join_people_whose_first_names_differ() -> None:
    m, u = _planted(np.random.default_rng(5))
    model = _model(m, u, 0.02)
    names = [c.name for c in COMPARISONS]
    levels = np.zeros((2, len(COMPARISONS)), dtype=np.int8)  # everything agrees exactly
    levels[1, names.index("first_name")] = len(COMPARISONS[0].levels) - 1  # but the first names differ
    weights = model.weights(levels, {})
    for name in ("address", "phone"):
        k = names.index(name)
        assert weights[0, k] > 0
        assert weights[1, k] == 0
    assert weights[1, names.index("email")] == weights[0, names.index("email")]
