"""The synthetic base's three record sources as one table of records to match, with its ground truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from tailor.demo.synth import RECORD_KINDS, CustomerBase

COLUMNS: tuple[str, ...] = ("record_id", "first_name", "last_name", "name", "date_of_birth", "email", "phone")
COLUMNS += ("street", "city", "postcode")
"""The common header: CRM, call-centre and guest-checkout columns under one name each."""

SOURCE_COLUMNS = {
    "crm": {c: c for c in COLUMNS if c not in ("record_id", "name")},
    "call_centre": {"name": "caller_name", "phone": "phone", "email": "email"},
    "guest_checkout": {
        "name": "name",
        "email": "email",
        "phone": "phone",
        "street": "shipping_street",
        "city": "shipping_city",
        "postcode": "shipping_postcode",
    },
}
"""For each source, the source column behind each common column it has."""


def records_table(base: CustomerBase) -> pa.Table:
    """Every record of every source, with ids as the truth writes them ("crm:<crm_id>").

    A column a source lacks is "" in its rows."""
    columns: dict[str, list[str]] = {c: [] for c in COLUMNS}
    for kind, rows in base.records().items():
        id_column = RECORD_KINDS[kind][0]
        mapping = SOURCE_COLUMNS[kind]
        columns["record_id"] += [f"{kind}:{row[id_column]}" for row in rows]
        for name in COLUMNS[1:]:
            source = mapping.get(name)
            columns[name] += [row[source] for row in rows] if source else [""] * len(rows)
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def record_truth(base: CustomerBase) -> dict[str, str]:
    """The person behind each record id."""
    return {value: person for kind, value, person in base.truth() if kind == "record"}


@dataclass(frozen=True)
class MatchScores:
    """Precision, recall and F1 over record pairs and over whole clusters."""

    pair_precision: float
    pair_recall: float
    pair_f1: float
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def score_clusters(ids: Sequence[str], clusters: Sequence[str], truth: dict[str, str]) -> MatchScores:
    """Pairwise: pairs of records put in one cluster vs pairs of records of one person.
    Cluster: a predicted cluster is correct when it holds exactly the records of one person."""
    predicted: dict[str, list[str]] = defaultdict(list)
    for record, cluster in zip(ids, clusters, strict=True):
        predicted[cluster].append(record)
    true_sizes = Counter(truth[r] for r in ids)
    true_pairs = sum(n * (n - 1) // 2 for n in true_sizes.values())
    found = correct = exact = 0
    for members in predicted.values():
        found += len(members) * (len(members) - 1) // 2
        people = Counter(truth[r] for r in members)
        correct += sum(n * (n - 1) // 2 for n in people.values())
        if len(people) == 1 and true_sizes[next(iter(people))] == len(members):
            exact += 1
    pp = correct / found if found else 1.0
    pr = correct / true_pairs if true_pairs else 1.0
    cp, cr = exact / len(predicted), exact / len(true_sizes)
    return MatchScores(pp, pr, _f1(pp, pr), cp, cr, _f1(cp, cr))
