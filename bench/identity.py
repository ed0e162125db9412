"""Record-matching benchmark: Tailor's matcher against Splink (DuckDB backend) on the same data, in
the same run, scored against the synthetic customer base's ground truth.

    python bench/identity.py [--people 20000] [--seed 42] [--threshold 0.99]

Needs the `bench` extra (`pip install -e '.[bench]'`) for Splink. Prints pairwise and cluster
precision, recall and F1 of both, their wall times, and the ratios.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
from rich.console import Console
from rich.table import Table

from tailor.demo.match_records import record_truth, records_table, score_clusters
from tailor.demo.synth import SynthConfig, generate
from tailor.identity.matching import (
    DEFAULT_THRESHOLD,
    PreparedRecords,
    match_records,
    prepare_records,
    read_record_file,
)


def write_inputs(people: int, seed: int, out: Path) -> tuple[Path, dict[str, str]]:
    """Writes the three record files and one file of all records with common headers.

    Returns that file and the ground truth (record id to person id)."""
    base = generate(SynthConfig(people=people, seed=seed))
    base.write_records(out)
    combined = out / "records.csv"
    pa_csv.write_csv(records_table(base), combined)
    return combined, record_truth(base)


def run_tailor(path: Path, threshold: float, out: Path) -> tuple[list[str], list[str]]:
    """Tailor end to end, as `tailor identity match` does it: read, prepare, fit, score, cluster, write."""
    records_file = read_record_file(path, "record_id")
    result = match_records(records_file.table, "record_id", threshold=threshold)
    ids, clusters = result.records.ids, result.clusters.column("cluster_id").to_pylist()
    _write(out / "tailor.csv", ids, clusters)
    return ids, clusters


def _splink_input(records: PreparedRecords) -> pa.Table:
    t = records.table
    dob = [None if d is None else str(duckdb_date(d)) for d in t.column("dob").to_pylist()]
    postcode = [None if p is None else f"{p[:-3]} {p[-3:]}" for p in t.column("postcode").to_pylist()]
    return pa.table(
        {
            "id": t.column("id"),
            "first": t.column("first"),
            "last": t.column("last"),
            "initial": t.column("initial"),
            "dob": pa.array(dob, pa.string()),
            "email": t.column("email"),
            "phone": t.column("phone"),
            "postcode": pa.array(postcode, pa.string()),
            "street": t.column("street"),
            "city": t.column("city"),
        }
    )


def duckdb_date(days: int) -> object:
    import datetime as dt

    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def run_splink(path: Path, threshold: float, out: Path) -> tuple[list[str], list[str]]:
    """Splink end to end on the same file, cleaned by the same normalisers as Tailor's."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    table = con.sql(f"SELECT * FROM read_csv('{path}', all_varchar = true, header = true)").to_arrow_table()
    data = _splink_input(prepare_records(table, "record_id"))
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="id",
        comparisons=[
            cl.NameComparison("first").configure(term_frequency_adjustments=True),
            cl.NameComparison("last").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("street", [0.9]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("last", "initial"),
            "l.last = r.first AND l.initial = substr(r.last, 1, 1)",
            "r.last = l.first AND r.initial = substr(l.last, 1, 1)",
            block_on("dob"),
            block_on("postcode", "initial"),
        ],
    )
    linker = Linker(db_api.register(data), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone", "first", "last")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (block_on("dob"), block_on("last", "initial"), block_on("email")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold)
    result_table = clusters.as_duckdbpyrelation().select("id, cluster_id").to_arrow_table()
    ids = [str(v) for v in result_table.column("id").to_pylist()]
    cluster_ids = [str(v) for v in result_table.column("cluster_id").to_pylist()]
    _write(out / "splink.csv", ids, cluster_ids)
    return ids, cluster_ids


def _write(path: Path, ids: list[str], clusters: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("record_id", "cluster_id"))
        writer.writerows(zip(ids, clusters, strict=True))


def timed(fn: Callable[[], tuple[list[str], list[str]]]) -> tuple[tuple[list[str], list[str]], float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--skip-splink", action="store_true", help="measure Tailor only")
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory(prefix="tailor-bench-identity-") as tmp:
        out = Path(tmp)
        path, truth = write_inputs(args.people, args.seed, out)
        records = sum(1 for _ in path.open(encoding="utf-8")) - 1
        console.print(f"{args.people:,} people, {records:,} records, threshold {args.threshold}")
        (t_ids, t_clusters), t_time = timed(lambda: run_tailor(path, args.threshold, out))
        results = {"Tailor": (score_clusters(t_ids, t_clusters, truth), t_time)}
        if not args.skip_splink:
            (s_ids, s_clusters), s_time = timed(lambda: run_splink(path, args.threshold, out))
            results["Splink 5.0"] = (score_clusters(s_ids, s_clusters, truth), s_time)
    table = Table(title="Record matching against ground truth")
    for column in (
        "matcher",
        "pair P",
        "pair R",
        "pair F1",
        "cluster P",
        "cluster R",
        "cluster F1",
        "wall s",
    ):
        table.add_column(column, justify="right")
    for name, (s, seconds) in results.items():
        figures = (
            s.pair_precision,
            s.pair_recall,
            s.pair_f1,
            s.cluster_precision,
            s.cluster_recall,
            s.cluster_f1,
        )
        table.add_row(name, *(f"{v:.4f}" for v in figures), f"{seconds:.2f}")
    console.print(table)
    if len(results) == 2:
        (tailor, t_s), (splink, s_s) = results.values()
        console.print(
            f"pair F1 ratio Tailor/Splink {tailor.pair_f1 / splink.pair_f1:.3f}, "
            f"cluster F1 ratio {tailor.cluster_f1 / splink.cluster_f1:.3f}, "
            f"wall-time ratio Tailor/Splink {t_s / s_s:.3f}"
        )


if __name__ == "__main__":
    main()
