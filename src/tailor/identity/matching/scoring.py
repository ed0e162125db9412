"""Scored pairs: a match weight and probability per candidate pair, with each field's contribution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from tailor.identity.matching.blocking import candidate_pairs
from tailor.identity.matching.comparisons import ComparedPairs, compare
from tailor.identity.matching.model import MatchModel
from tailor.identity.matching.prepare import PreparedRecords


@dataclass(frozen=True)
class Contribution:
    """What one field comparison added to a pair's match weight."""

    level: str | None
    """The level label, or None when either record lacks the field."""
    weight: float
    """log2 of the Bayes factor of that level (0 when the field is missing)."""


@dataclass(frozen=True)
class ScoredPairs:
    """Candidate pairs with their scores; `table` has one row per pair.

    Columns: left_id, right_id, match_weight (log2 Bayes factor plus the prior's log2 odds),
    match_probability, names_swapped, household_rule (shared address and phone counted for
    nothing, as the first names differ), and per comparison `<name>_level` and `<name>_weight`.
    `left` and `right` are the pairs' positions in the records they were scored on.
    """

    table: pa.Table
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    comparisons: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def above(self, threshold: float) -> ScoredPairs:
        """Only the pairs whose match probability is at least `threshold`."""
        keep = self.table.column("match_probability").to_numpy() >= threshold
        return ScoredPairs(
            self.table.filter(pa.array(keep)), self.left[keep], self.right[keep], self.comparisons
        )

    def contributions(self, row: int) -> dict[str, Contribution]:
        """The per-field contributions of one pair, for explaining a match."""
        record = self.table.slice(row, 1).to_pylist()[0]
        return {
            name: Contribution(record[f"{name}_level"], record[f"{name}_weight"]) for name in self.comparisons
        }


def score_pairs(
    model: MatchModel,
    records: PreparedRecords,
    left: NDArray[np.int64],
    right: NDArray[np.int64],
    compared: ComparedPairs | None = None,
) -> ScoredPairs:
    """Scores the given pairs of records with a model (`compared`: their levels, when already known)."""
    if compared is None:
        compared = compare(records, left, right)
    weights = model.weights(compared.levels, compared.exact_values)
    total = weights.sum(axis=1) + model.prior_weight
    ids = records.table.column("id")
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "left_id": ids.take(pa.array(left)),
        "right_id": ids.take(pa.array(right)),
        "match_weight": pa.array(total),
        "match_probability": pa.array(1.0 / (1.0 + np.exp2(-total))),
        "names_swapped": pa.array(compared.names_swapped),
        "household_rule": pa.array(model.household_rule & model.first_names_differ(compared.levels)),
    }
    for k, params in enumerate(model.comparisons):
        labels = np.array([*params.levels, None], dtype=object)
        columns[f"{params.name}_level"] = pa.array(labels[compared.levels[:, k]], pa.string())
        columns[f"{params.name}_weight"] = pa.array(weights[:, k])
    names = tuple(c.name for c in model.comparisons)
    return ScoredPairs(pa.table(columns), left, right, names)


def score_records(model: MatchModel, records: PreparedRecords, *, first_new: int = 0) -> ScoredPairs:
    """Finds and scores the candidate pairs among records that involve a record from `first_new` on."""
    left, right = candidate_pairs(records, model.blocking_rules, first_new=first_new)
    return score_pairs(model, records, left, right)
