"""Fitting a match model without labels: u from random pairs, then m and the prior by EM with u fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from tailor.identity.matching.blocking import DEFAULT_RULES, BlockingRule, candidate_pairs
from tailor.identity.matching.comparisons import COMPARISONS, NULL, ComparedPairs, compare
from tailor.identity.matching.exceptions import ModelError
from tailor.identity.matching.model import MatchModel, parameters_for, term_frequencies
from tailor.identity.matching.prepare import PreparedRecords

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingSession:
    """One EM run: the pairs of a blocking rule, and the comparisons that rule makes agree (not estimated)."""

    rule: BlockingRule
    fixed: frozenset[str]


DEFAULT_SESSIONS = (
    TrainingSession(BlockingRule("date of birth", ("dob",)), frozenset({"dob"})),
    TrainingSession(
        BlockingRule("last name and initial", ("last", "initial")), frozenset({"first_name", "last_name"})
    ),
    TrainingSession(BlockingRule("email", ("email",)), frozenset({"email"})),
)
"""Sessions that between them estimate m of every comparison, each on fields its rule leaves free."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a model is fitted."""

    u_pairs: int = 250_000
    """Random pairs drawn to estimate u (at most all pairs of the records)."""
    max_iterations: int = 100
    """EM stops after this many iterations even if it has not converged."""
    tolerance: float = 1e-5
    """EM has converged when no m probability and not the prior moves by more than this."""
    seed: int = 0
    """Seed of the random pairs, so that fitting the same records gives the same model."""
    blocking_rules: tuple[BlockingRule, ...] = DEFAULT_RULES
    """Rules that give the candidate pairs to score."""
    training_sessions: tuple[TrainingSession, ...] = ()
    """EM sessions whose m estimates are averaged; empty means `DEFAULT_SESSIONS`."""

    def __post_init__(self) -> None:
        if not self.training_sessions:
            object.__setattr__(self, "training_sessions", DEFAULT_SESSIONS)


@dataclass(frozen=True)
class CandidatePairs:
    """Candidate pairs (positions left < right, sorted) and their comparison levels."""

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    compared: ComparedPairs

    @classmethod
    def of(
        cls, records: PreparedRecords, rules: Sequence[BlockingRule], *, first_new: int = 0
    ) -> CandidatePairs:
        """The candidate pairs of records under the rules, compared."""
        left, right = candidate_pairs(records, rules, first_new=first_new)
        return cls(left, right, compare(records, left, right))

    def levels_of(self, records: PreparedRecords, rule: BlockingRule) -> NDArray[np.int8]:
        """Levels of the pairs of one rule: taken from these pairs if they hold them all, else compared."""
        left, right = candidate_pairs(records, [rule])
        n = len(records)
        keys, wanted = self.left * n + self.right, left * n + right
        at = np.searchsorted(keys, wanted)
        at = np.minimum(at, max(len(keys) - 1, 0))
        if len(keys) and np.array_equal(keys[at], wanted):
            levels: NDArray[np.int8] = self.compared.levels[at]
            return levels
        return compare(records, left, right).levels


def _ignore(_: str) -> None:
    return None


def _level_shares(levels: NDArray[np.int8], weights: NDArray[np.float64] | None = None) -> list[list[float]]:
    """For each comparison, the (weighted) share of non-null pairs at each level, smoothed away from 0."""
    out = []
    for k, comparison in enumerate(COMPARISONS):
        column = levels[:, k]
        w = np.ones(len(column)) if weights is None else weights
        present = column != NULL
        seen = np.bincount(column[present], weights=w[present], minlength=len(comparison.levels))
        # Half a pair more at every level: a zero m or u would give an infinite weight.
        counts = seen.astype(np.float64) + 0.5
        out.append([float(c) for c in counts / counts.sum()])
    return out


class Matcher:
    """Fits match models on records: estimates u, the prior and m without any labelled pairs."""

    def __init__(self, settings: TrainingSettings | None = None) -> None:
        self.settings = settings or TrainingSettings()

    def estimate_u(self, records: PreparedRecords) -> list[list[float]]:
        """u for every comparison level, from random pairs of records (nearly all of them non-matches).

        The exact level of a comparison on one field (date of birth, email, phone) is rare among
        random pairs, so a sample would see it a handful of times: its u is computed exactly from
        the field's value counts instead, and the sampled levels share the rest.
        """
        n = len(records)
        rng = np.random.default_rng(self.settings.seed)
        count = min(self.settings.u_pairs, n * (n - 1) // 2)
        left = rng.integers(0, n, size=count, dtype=np.int64)
        right = rng.integers(0, n, size=count, dtype=np.int64)
        keep = left != right
        u = _level_shares(compare(records, left[keep], right[keep]).levels)
        for k, comparison in enumerate(COMPARISONS):
            column = _EXACT_FIELDS.get(comparison.name)
            if column is None:
                continue
            exact = _exact_share(records.table.column(column))
            if exact is not None:
                # In a tiny file every value may be shared; the other levels keep some probability.
                exact = min(exact, 0.99)
                rest = sum(u[k][1:])
                u[k] = [exact] + [v * (1.0 - exact) / rest for v in u[k][1:]]
        return u

    def fit(
        self, records: PreparedRecords, progress: Progress = _ignore, candidates: CandidatePairs | None = None
    ) -> MatchModel:
        """A model fitted on these records; `candidates` are their compared candidate pairs, if known."""
        if len(records) < 2:
            raise ModelError(f"at least 2 records are needed to fit a model, got {len(records)}")
        progress("estimating u from random pairs")
        u = self.estimate_u(records)
        if candidates is None:
            progress("finding and comparing candidate pairs")
            candidates = CandidatePairs.of(records, self.settings.blocking_rules)
        if len(candidates.left) == 0:
            raise ModelError("no two records share a blocking key: nothing to learn a model from")
        m_estimates: list[list[list[float]]] = [[] for _ in COMPARISONS]
        iterations, converged = 0, True
        progress("estimating m by expectation maximisation")
        for session in self.settings.training_sessions:
            levels = candidates.levels_of(records, session.rule)
            if len(levels) == 0:
                continue
            patterns, counts = level_patterns(levels)
            estimate = [k for k, c in enumerate(COMPARISONS) if c.name not in session.fixed]
            m, _, n, ok = self.expectation_maximisation(patterns, counts, u, estimate)
            iterations, converged = iterations + n, converged and ok
            for k in estimate:
                m_estimates[k].append(m[k])
        missing = [c.name for k, c in enumerate(COMPARISONS) if not m_estimates[k]]
        if missing:
            raise ModelError(f"no training pairs to estimate m of {', '.join(missing)}")
        m = [[float(v) for v in np.mean(np.array(rows), axis=0)] for rows in m_estimates]
        # The prior: matches expected among all candidate pairs (EM of the share alone, m and u
        # fixed), over all pairs of records.
        patterns, counts = level_patterns(candidates.compared.levels)
        _, share, _, _ = self.expectation_maximisation(patterns, counts, u, [], m_fixed=m)
        n = len(records)
        prior = float(np.clip(share * len(candidates.left) / (n * (n - 1) / 2), 1e-12, 0.5))
        return MatchModel(
            prior=prior,
            comparisons=tuple(parameters_for(c, m[k], u[k]) for k, c in enumerate(COMPARISONS)),
            term_frequencies={
                "first_name": term_frequencies(records.table.column("first")),
                "last_name": term_frequencies(records.table.column("last")),
            },
            blocking_rules=self.settings.blocking_rules,
            em_iterations=iterations,
            em_converged=converged,
            records_fitted=len(records),
        )

    def expectation_maximisation(
        self,
        patterns: NDArray[np.int8],
        counts: NDArray[np.int64],
        u: Sequence[Sequence[float]],
        estimate: Sequence[int],
        m_fixed: Sequence[Sequence[float]] | None = None,
    ) -> tuple[list[list[float]], float, int, bool]:
        """EM over distinct level patterns with u fixed: (m, share of matches, iterations, converged).

        Only the comparisons in `estimate` take part: within pairs blocked on a field, agreement on
        that field says nothing about matching. With no comparison to estimate (and `m_fixed`), only
        the share of matches is estimated.
        """
        used = list(estimate) if m_fixed is None else list(range(len(COMPARISONS)))
        m = (
            [list(row) for row in m_fixed]
            if m_fixed is not None
            else [_initial_m(len(c.levels)) for c in COMPARISONS]
        )
        log_u = [np.log(np.array([*row, 1.0])) for row in u]
        prior = _initial_prior(patterns, counts)
        for iteration in range(1, self.settings.max_iterations + 1):
            log_ratio = np.full(len(patterns), np.log(prior / (1 - prior)))
            for k in used:
                log_ratio += (np.log(np.array([*m[k], 1.0])) - log_u[k])[patterns[:, k]]
            posterior = 1.0 / (1.0 + np.exp(-np.clip(log_ratio, -700, 700)))
            weights = posterior * counts
            new_prior = float(np.clip(weights.sum() / counts.sum(), 1e-9, 1 - 1e-9))
            change = abs(new_prior - prior)
            if m_fixed is None:
                shares = _level_shares(patterns, weights)
                for k in estimate:
                    change = max(change, *(abs(a - b) for a, b in zip(m[k], shares[k], strict=True)))
                    m[k] = shares[k]
            prior = new_prior
            if change < self.settings.tolerance:
                return m, prior, iteration, True
        return m, prior, self.settings.max_iterations, False


def level_patterns(levels: NDArray[np.int8]) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """The distinct rows of a levels matrix and how often each occurs.

    Each row is packed into one integer (3 bits per comparison) first: sorting integers is many
    times faster than numpy's row-wise unique.
    """
    shifted = levels.astype(np.int64) + 1  # NULL (-1) becomes 0
    codes = np.zeros(len(levels), dtype=np.int64)
    for k in range(levels.shape[1]):
        codes |= shifted[:, k] << (3 * k)
    distinct, counts = np.unique(codes, return_counts=True)
    patterns = np.stack([((distinct >> (3 * k)) & 7) - 1 for k in range(levels.shape[1])], axis=1)
    return patterns.astype(np.int8), counts.astype(np.int64)


_EXACT_FIELDS = {"dob": "dob", "email": "email", "phone": "phone"}


def _exact_share(values: pa.ChunkedArray) -> float | None:
    """Share of pairs of distinct records, both with a value, whose values are equal."""
    counts = pc.value_counts(values.drop_null()).field("counts").to_numpy().astype(np.float64)
    present = float(counts.sum())
    if present < 2:
        return None
    same = float((counts * (counts - 1)).sum() / (present * (present - 1)))
    # Kept off zero (all values distinct) for the same reason as the smoothed levels.
    return max(same, 0.5 / (present * (present - 1)))


def _initial_m(size: int) -> list[float]:
    # Matches mostly agree exactly; each weaker level is rarer, "else" rarest.
    raw = np.array([4.0**-k for k in range(size - 1)] + [0.05])
    return [float(v) for v in raw / raw.sum()]


def _initial_prior(patterns: NDArray[np.int8], counts: NDArray[np.int64]) -> float:
    """Share of candidate pairs that a strict deterministic rule calls a match: exact email, or
    exact phone and first name and last name."""
    names = [c.name for c in COMPARISONS]
    email, phone = patterns[:, names.index("email")], patterns[:, names.index("phone")]
    first, last = patterns[:, names.index("first_name")], patterns[:, names.index("last_name")]
    sure = (email == 0) | ((phone == 0) & (first == 0) & (last == 0))
    share = float(counts[sure].sum() / counts.sum())
    return float(np.clip(share, 0.01, 0.99))
