"""Probabilistic matching of imported records, as a processing stage that feeds the identity graph.

Records that share no identifier (a CRM row, a call-centre log entry, a guest checkout of the same
person) are matched by the Fellegi-Sunter model of `tailor.identity.matching`. Each match above the
threshold is kept in `identity_matches` with its probability, weight and the contribution of every
field, and the identity graph adds it as an edge between the two `record` nodes.

The model is fitted once, without labels, when enough records have arrived (`min_records`), with
a full pass over every record; from then on each micro-batch's new or changed records are matched
incrementally against the stored ones with the same model. The model is kept through a rebuild,
so a rebuild (a full pass with that model) gives the same matches as the live increments.

Merging two people is far costlier than missing a link, so a match joins profiles only when it is
very likely (`threshold`, 0.99 by default, above the 0.8 that suits deduplicating a file) and no
strong field contradicts it: two different emails or two different dates of birth veto it (two
namesakes of one household, father and son at one address). Vetoed matches are kept, with the
reason, as refused edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import duckdb
import msgspec
import numpy as np
import pyarrow as pa

from tailor.connectors.records import IMPORT_SOURCE
from tailor.exceptions import StoreError
from tailor.identity.matching import (
    ColumnType,
    Matcher,
    MatchModel,
    ScoredPairs,
    candidate_pairs,
    prepare_records,
    recognise_columns,
    score_pairs,
)
from tailor.identity.normalise import IdentifierNormaliser, default_normaliser
from tailor.process.stage import BATCH_VIEW, Batch, SqlStep
from tailor.store.database import Database, run

MATCH_DDL = """
CREATE TABLE IF NOT EXISTS identity_match_model (
    id INTEGER PRIMARY KEY,
    model VARCHAR NOT NULL,
    records BIGINT NOT NULL,
    fitted_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_matches (
    a VARCHAR NOT NULL,
    b VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    found_in BIGINT NOT NULL,
    probability DOUBLE NOT NULL,
    weight DOUBLE NOT NULL,
    contributions VARCHAR NOT NULL,
    veto VARCHAR
);
"""

_FIELDS = tuple(ColumnType)

VETO_FIELDS = ("email", "dob")
"""Fields whose disagreement ("else" level) vetoes an automatic merge."""


Row = tuple[str, str, str, int]
"""A record: kind, id, fields as JSON, and the seq of the event that carried this version."""


def common_table(rows: list[Row]) -> tuple[pa.Table, dict[ColumnType, str]]:
    """Records of any kinds as one table: `id` ("kind:id") and one column per field type.

    Each kind's columns are recognised by their names (first_name, caller_name, shipping_postcode ...).
    """
    columns: dict[str, list[str | None]] = {"id": [], **{t.value: [] for t in _FIELDS}}
    recognised: dict[tuple[str, ...], Mapping[ColumnType, str]] = {}
    decode = msgspec.json.decode
    for kind, rid, text, _ in rows:
        fields: dict[str, object] = decode(text)
        header = tuple(fields)
        mapping = recognised.get(header)
        if mapping is None:
            mapping = recognised[header] = recognise_columns(list(header))
        columns["id"].append(f"{kind}:{rid}")
        for t in _FIELDS:
            source = mapping.get(t)
            value = fields.get(source) if source is not None else None
            columns[t.value].append(None if value is None else str(value))
    present = {t: t.value for t in _FIELDS if any(v for v in columns[t.value])}
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    return table, present


class RecordMatching:
    """The processing stage that matches imported records probabilistically."""

    name = "record_matching"

    def __init__(
        self,
        threshold: float = 0.99,
        min_records: int = 200,
        normaliser: IdentifierNormaliser | None = None,
    ) -> None:
        self.threshold = threshold
        self.min_records = min_records
        self.normaliser = normaliser or default_normaliser()

    def setup(self, db: Database) -> None:
        """Creates the model and match tables."""
        db.ddl(MATCH_DDL)

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Forgets the matches; the fitted model stays, so that a rebuild gives the same matches."""
        cur.execute("DELETE FROM identity_matches")

    def steps(self, batch: Batch) -> list[SqlStep]:
        """This stage runs Python (the matcher) through `apply`; it has no SQL steps."""
        return []

    def apply(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        """Matches the batch's new and changed records against the stored ones."""
        new: list[Row] = run(
            cur,
            f"""SELECT json_extract_string(context, '$.record.kind') AS kind,
                       json_extract_string(context, '$.record.id') AS id, traits, seq
                FROM {BATCH_VIEW}
                WHERE source_id LIKE '{IMPORT_SOURCE}:%' AND json_exists(context, '$.record.id')
                QUALIFY row_number() OVER (PARTITION BY kind, id ORDER BY seq DESC) = 1""",
        ).fetchall()
        if not new:
            return
        stored = run(cur, "SELECT model FROM identity_match_model WHERE id = 1").fetchall()
        everything: list[Row] = run(cur, "SELECT kind, record_id, fields, seq FROM records").fetchall()
        if stored:
            model = MatchModel.from_json(stored[0][0])
            fresh = [f"{k}:{i}" for k, i, _, _ in new]
            # A changed record is matched again from scratch.
            run(
                cur,
                "DELETE FROM identity_matches WHERE list_contains(?, a) OR list_contains(?, b)",
                [fresh, fresh],
            )
            changed = set(fresh)
            old = [row for row in everything if f"{row[0]}:{row[1]}" not in changed]
            self._match(cur, model, old, new, batch.hi)
            return
        if len(everything) < self.min_records:
            return
        table, present = common_table(everything)
        model = Matcher().fit(prepare_records(table, "id", present, self.normaliser))
        run(
            cur,
            "INSERT OR REPLACE INTO identity_match_model VALUES (1, ?, ?, ?)",
            [model.to_json().decode(), len(everything), datetime.now(UTC)],
        )
        self._match(cur, model, [], everything, batch.hi)

    @staticmethod
    def _vetoes(pairs: ScoredPairs) -> list[str | None]:
        t = pairs.table
        columns = {
            f: t.column(f"{f}_level").to_pylist() for f in VETO_FIELDS if f"{f}_level" in t.column_names
        }
        vetoes: list[str | None] = []
        for i in range(t.num_rows):
            differ = [f for f, levels in columns.items() if levels[i] == "else"]
            vetoes.append(
                f"match refused: the records' {' and '.join(differ)} differ, so they may be two people"
                if differ
                else None
            )
        return vetoes

    def _match(
        self, cur: duckdb.DuckDBPyConnection, model: MatchModel, old: list[Row], new: list[Row], found_in: int
    ) -> None:
        """Stores the matches above the threshold that involve a record of `new`.

        A match's seq is that of the later of its two records, whatever batch found it, so live
        matching and a rebuild agree; `found_in` is the batch that found it, for the graph to read.
        """
        old, new = sorted(old), sorted(new)
        table, _ = common_table(old + new)
        records = prepare_records(table, "id", {t: t.value for t in _FIELDS}, self.normaliser)
        left, right = candidate_pairs(records, model.blocking_rules, first_new=len(old))
        # Each pair oriented by record id, whatever order the records and the blocking joins came
        # in, so that a pair scores the same live and in a rebuild.
        ids = np.array(records.ids, dtype=object)
        flip = ids[left] > ids[right]
        left, right = np.where(flip, right, left), np.where(flip, left, right)
        order = np.lexsort((ids[right], ids[left]))
        pairs = score_pairs(model, records, left[order], right[order]).above(self.threshold)
        if not len(pairs):
            return
        seq_of = {f"{k}:{i}": s for k, i, _, s in old + new}
        t = pairs.table
        contributions = [
            msgspec.json.encode(
                {
                    name: {"level": c.level, "weight": round(c.weight, 3)}
                    for name, c in pairs.contributions(i).items()
                }
            ).decode()
            for i in range(t.num_rows)
        ]
        left, right = t.column("left_id").to_pylist(), t.column("right_id").to_pylist()
        matches = pa.table(  # noqa: F841 (read by the SQL below)
            {
                "a": pa.array([min(x, y) for x, y in zip(left, right, strict=True)], pa.string()),
                "b": pa.array([max(x, y) for x, y in zip(left, right, strict=True)], pa.string()),
                "seq": pa.array(
                    [max(seq_of[x], seq_of[y]) for x, y in zip(left, right, strict=True)], pa.int64()
                ),
                "found_in": pa.array([found_in] * t.num_rows, pa.int64()),
                "probability": t.column("match_probability"),
                "weight": t.column("match_weight"),
                "contributions": pa.array(contributions, pa.string()),
                "veto": pa.array(self._vetoes(pairs), pa.string()),
            }
        )
        # Read by DuckDB from this frame's `matches` (a replacement scan): registering and
        # unregistering a view inside the batch's transaction would leave DuckDB unable to checkpoint.
        try:
            cur.execute("INSERT INTO identity_matches SELECT * FROM matches")
        except duckdb.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}", "INSERT INTO identity_matches") from e
