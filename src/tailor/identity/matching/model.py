"""A fitted Fellegi-Sunter model: m and u per comparison level, the prior, and name frequencies."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from tailor.identity.matching.blocking import DEFAULT_RULES, BlockingRule
from tailor.identity.matching.comparisons import COMPARISONS, NULL, Comparison
from tailor.identity.matching.exceptions import ModelError

FORMAT = "tailor.match-model/1"
HOUSEHOLD_COMPARISONS = ("address", "phone")
"""Comparisons of what a household shares."""


class ComparisonParameters(msgspec.Struct, frozen=True):
    """The m and u probability of each level of one comparison, strongest level first."""

    name: str
    levels: list[str]
    m: list[float]
    u: list[float]
    tf_adjusted: bool = False


class TermFrequencies(msgspec.Struct, frozen=True):
    """How common each value of a field is among the records the model was fitted on."""

    frequencies: dict[str, float]
    """Share of records with the value, for values seen at least twice."""
    floor: float
    """The share assumed for any other value: one record out of all those fitted on."""


class ModelDocument(msgspec.Struct, frozen=True):
    """The JSON form of a match model."""

    format: str
    prior: float
    comparisons: list[ComparisonParameters]
    term_frequencies: dict[str, TermFrequencies]
    blocking_rules: list[tuple[str, list[str], list[str]]]
    """(name, key expressions of one record, of the other if they differ) of each rule."""
    em_iterations: int
    em_converged: bool
    records_fitted: int
    household_rule: bool = True


@dataclass(frozen=True)
class MatchModel:
    """A fitted model: turns the comparison levels of a pair into a match weight and probability."""

    prior: float
    """Probability that a candidate pair (one that passed blocking) is a match, before comparing."""
    comparisons: tuple[ComparisonParameters, ...]
    term_frequencies: Mapping[str, TermFrequencies] = field(default_factory=dict)
    blocking_rules: tuple[BlockingRule, ...] = DEFAULT_RULES
    em_iterations: int = 0
    em_converged: bool = False
    records_fitted: int = 0
    household_rule: bool = True
    """Whether shared address and phone count for nothing when the first names disagree."""

    def __post_init__(self) -> None:
        expected = [c.name for c in COMPARISONS]
        if [c.name for c in self.comparisons] != expected:
            raise ModelError(f"a model must have the comparisons {expected}")
        if not 0.0 < self.prior < 1.0:
            raise ModelError(f"prior must be between 0 and 1, got {self.prior}")

    @property
    def prior_weight(self) -> float:
        """The prior as a match weight (log2 of the prior odds)."""
        return math.log2(self.prior / (1.0 - self.prior))

    def level_weights(self) -> list[NDArray[np.float64]]:
        """For each comparison, log2(m/u) by level, with one extra 0 at the end for the NULL level."""
        return [
            np.array([math.log2(m / u) for m, u in zip(c.m, c.u, strict=True)] + [0.0])
            for c in self.comparisons
        ]

    def weights(
        self, levels: NDArray[np.int8], exact_values: Mapping[str, NDArray[np.object_]]
    ) -> NDArray[np.float64]:
        """Per-pair, per-comparison weights (pairs x comparisons); exact name matches weighed by frequency."""
        out = np.zeros(levels.shape, dtype=np.float64)
        for k, (params, table) in enumerate(zip(self.comparisons, self.level_weights(), strict=True)):
            column = levels[:, k]
            # NULL is -1, which indexes the trailing 0 of the table.
            out[:, k] = table[column]
            tf = self.term_frequencies.get(params.name)
            values = exact_values.get(params.name)
            if not params.tf_adjusted or tf is None or values is None:
                continue
            exact = np.flatnonzero(column == 0)
            if exact.size:
                out[exact, k] = np.log2(params.m[0] / _frequencies(tf, values[exact]))
        if self.household_rule:
            self._discount_household_evidence(levels, out)
        return out

    def first_names_differ(self, levels: NDArray[np.int8]) -> NDArray[np.bool_]:
        """Pairs whose first names are both given and differ: those the household rule applies to."""
        k = [c.name for c in self.comparisons].index("first_name")
        differ: NDArray[np.bool_] = levels[:, k] == len(self.comparisons[k].levels) - 1
        return differ

    def _discount_household_evidence(self, levels: NDArray[np.int8], out: NDArray[np.float64]) -> None:
        """Shared address and phone stop counting for a pair whose first names disagree.

        Family members share an address and often a landline, so those agreements are far more
        common among them than among random pairs, which is what u measures: the model's
        independence assumption fails exactly there. When both first names are given and differ,
        a shared address or phone says "same household", not "same person".
        """
        names = [c.name for c in self.comparisons]
        differ = self.first_names_differ(levels)
        for name in HOUSEHOLD_COMPARISONS:
            k = names.index(name)
            out[differ, k] = np.minimum(out[differ, k], 0.0)

    def to_json(self) -> bytes:
        """The model as a JSON document."""
        document = ModelDocument(
            format=FORMAT,
            prior=self.prior,
            comparisons=list(self.comparisons),
            term_frequencies=dict(self.term_frequencies),
            blocking_rules=[(r.name, list(r.left), list(r.right)) for r in self.blocking_rules],
            em_iterations=self.em_iterations,
            em_converged=self.em_converged,
            records_fitted=self.records_fitted,
            household_rule=self.household_rule,
        )
        return msgspec.json.encode(document)

    @classmethod
    def from_json(cls, data: bytes | str) -> MatchModel:
        """A model read back from `to_json`."""
        try:
            document = msgspec.json.decode(data, type=ModelDocument)
        except msgspec.DecodeError as e:  # also raised for valid JSON of the wrong shape
            raise ModelError(f"not a match model: {e}") from e
        if document.format != FORMAT:
            raise ModelError(f"unknown model format {document.format!r}, expected {FORMAT!r}")
        return cls(
            prior=document.prior,
            comparisons=tuple(document.comparisons),
            term_frequencies=document.term_frequencies,
            blocking_rules=tuple(BlockingRule(n, tuple(a), tuple(b)) for n, a, b in document.blocking_rules),
            em_iterations=document.em_iterations,
            em_converged=document.em_converged,
            records_fitted=document.records_fitted,
            household_rule=document.household_rule,
        )


def _frequencies(tf: TermFrequencies, values: NDArray[np.object_]) -> NDArray[np.float64]:
    # Each distinct value is looked up once; pairs share their values' frequencies by index.
    encoded = pc.dictionary_encode(pa.array(values, pa.string()))
    looked_up = np.array([tf.frequencies.get(v, tf.floor) for v in encoded.dictionary.to_pylist()])
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return np.asarray(looked_up[indices], dtype=np.float64)


def term_frequencies(values: pa.ChunkedArray | pa.Array) -> TermFrequencies:
    """The frequencies of the non-missing values of one field."""
    present = values.drop_null()
    if len(present) == 0:
        return TermFrequencies({}, 1.0)
    counted = pc.value_counts(present)
    total = float(len(present))
    common = pc.greater_equal(counted.field("counts"), 2)
    shares = pc.divide(pc.cast(counted.field("counts").filter(common), pa.float64()), total)
    return TermFrequencies(
        dict(zip(counted.field("values").filter(common).to_pylist(), shares.to_pylist(), strict=True)),
        1.0 / total,
    )


def parameters_for(comparison: Comparison, m: Sequence[float], u: Sequence[float]) -> ComparisonParameters:
    """The parameters of one comparison."""
    return ComparisonParameters(
        comparison.name, list(comparison.levels), list(m), list(u), comparison.tf_adjusted
    )


__all__ = [
    "NULL",
    "ComparisonParameters",
    "MatchModel",
    "ModelDocument",
    "TermFrequencies",
    "term_frequencies",
]
