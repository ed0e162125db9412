"""Matching records end to end: a full pass over a table, or new records against stored ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailor.identity.matching.clustering import cluster_ids
from tailor.identity.matching.columns import ColumnType
from tailor.identity.matching.exceptions import MatchingError
from tailor.identity.matching.model import MatchModel
from tailor.identity.matching.prepare import PreparedRecords, prepare_records
from tailor.identity.matching.scoring import ScoredPairs, score_pairs, score_records
from tailor.identity.matching.training import CandidatePairs, Matcher, Progress, TrainingSettings

DEFAULT_THRESHOLD = 0.8
"""Match probability from which a pair joins two records into one cluster.

Clusters are connected components, so one wrong edge merges two people and all their records.
On the synthetic customer base (bench/README.md), 0.8 gave the best or nearly the best cluster
F1 at 20,000 and 50,000 people with pair precision near 0.9 or above; 0.5 gained a little at
20,000 people and lost precision at 50,000, 0.9 and above lost recall for little precision.
"""


@dataclass(frozen=True)
class MatchResult:
    """The outcome of matching: the model used, every scored pair, and the clusters."""

    records: PreparedRecords
    model: MatchModel
    pairs: ScoredPairs
    """Every candidate pair that was scored, above the threshold or not."""
    clusters: pa.Table
    """(id, cluster_id) for every record; records with the same cluster_id are one person."""
    threshold: float

    @property
    def matches(self) -> ScoredPairs:
        """The scored pairs at or above the threshold: the edges of the clusters."""
        return self.pairs.above(self.threshold)


def _records(
    table: pa.Table | PreparedRecords, id_column: str, columns: Mapping[ColumnType, str] | None
) -> PreparedRecords:
    records = table if isinstance(table, PreparedRecords) else prepare_records(table, id_column, columns)
    ids = records.table.column("id")
    if ids.null_count or pc.count_distinct(ids).as_py() != len(records):
        raise MatchingError("record ids must be present and unique")
    return records


def _ignore(_: str) -> None:
    return None


def match_records(
    table: pa.Table | PreparedRecords,
    id_column: str = "id",
    columns: Mapping[ColumnType, str] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    model: MatchModel | None = None,
    settings: TrainingSettings | None = None,
    progress: Progress = _ignore,
) -> MatchResult:
    """A full pass: fits a model (unless one is given), scores all candidate pairs, clusters."""
    progress("preparing records")
    records = _records(table, id_column, columns)
    rules = model.blocking_rules if model is not None else (settings or TrainingSettings()).blocking_rules
    progress("finding and comparing candidate pairs")
    candidates = CandidatePairs.of(records, rules)
    if model is None:
        model = Matcher(settings).fit(records, progress, candidates)
    progress("scoring candidate pairs")
    pairs = score_pairs(model, records, candidates.left, candidates.right, candidates.compared)
    progress("clustering")
    matches = pairs.above(threshold)
    clusters = cluster_ids(records.table.column("id").combine_chunks(), matches.left, matches.right)
    return MatchResult(records, model, pairs, clusters, threshold)


def match_new_records(
    model: MatchModel,
    existing: PreparedRecords,
    clusters: pa.Table,
    new: pa.Table | PreparedRecords,
    id_column: str = "id",
    columns: Mapping[ColumnType, str] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> MatchResult:
    """Incremental matching: scores only the pairs that involve a new record, and updates the clusters.

    `clusters` is the (id, cluster_id) table of the existing records, as a previous result gave it.
    The result's `pairs` are the new pairs only; its clusters cover existing and new records and
    equal what a full pass with the same model would give.
    """
    records = existing.concat(_records(new, id_column, columns))
    if pc.count_distinct(records.table.column("id")).as_py() != len(records):
        raise MatchingError("a new record has the id of a stored record")
    pairs = score_records(model, records, first_new=len(existing))
    matches = pairs.above(threshold)
    ids = records.table.column("id").combine_chunks()
    member = np.asarray(pc.index_in(clusters.column("id"), value_set=ids), dtype=np.int64)
    root = np.asarray(pc.index_in(clusters.column("cluster_id"), value_set=ids), dtype=np.int64)
    # Each stored record keeps the link to its cluster's first record; new edges join clusters.
    left = np.concatenate([member, matches.left])
    right = np.concatenate([root, matches.right])
    return MatchResult(records, model, pairs, cluster_ids(ids, left, right), threshold)
