"""Probabilistic record matching: a Fellegi-Sunter model fitted without labels, scored pairs, clusters.

records = prepare_records(table, "id")           # or pass a pyarrow Table to match_records
model = Matcher().fit(records)                    # u from random pairs, m by EM
result = match_records(records, model=model)      # full pass: scored pairs and clusters
later = match_new_records(model, records, result.clusters, new_table)   # incremental
"""

from tailor.identity.matching.blocking import DEFAULT_RULES, BlockingRule, candidate_pairs
from tailor.identity.matching.clustering import cluster_ids, connected_components
from tailor.identity.matching.columns import ColumnType, parse_column_option, recognise_columns
from tailor.identity.matching.comparisons import COMPARISONS, Comparison, compare
from tailor.identity.matching.exceptions import ColumnError, MatchingError, ModelError, RecordFileError
from tailor.identity.matching.match import (
    DEFAULT_THRESHOLD,
    MatchResult,
    match_new_records,
    match_records,
)
from tailor.identity.matching.model import MatchModel
from tailor.identity.matching.prepare import PreparedRecords, ValueProblem, prepare_records
from tailor.identity.matching.records_file import RecordFile, RejectedRow, read_record_file
from tailor.identity.matching.scoring import Contribution, ScoredPairs, score_pairs, score_records
from tailor.identity.matching.training import Matcher, TrainingSession, TrainingSettings

__all__ = [
    "COMPARISONS",
    "DEFAULT_RULES",
    "DEFAULT_THRESHOLD",
    "BlockingRule",
    "ColumnError",
    "ColumnType",
    "Comparison",
    "Contribution",
    "MatchModel",
    "MatchResult",
    "Matcher",
    "MatchingError",
    "ModelError",
    "PreparedRecords",
    "RecordFile",
    "RecordFileError",
    "RejectedRow",
    "ScoredPairs",
    "TrainingSession",
    "TrainingSettings",
    "ValueProblem",
    "candidate_pairs",
    "cluster_ids",
    "compare",
    "connected_components",
    "match_new_records",
    "match_records",
    "parse_column_option",
    "prepare_records",
    "read_record_file",
    "recognise_columns",
    "score_pairs",
    "score_records",
]
