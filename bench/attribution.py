"""Attribution benchmark: every model over 1M paths, exact Markov alone, against ChannelAttribution.

    pip install -e '.[bench]'     # channelattribution 2.2.5 (and the matplotlib it imports)
    python bench/attribution.py [--paths 1000000] [--channels 12] [--repeat 3] [--skip-baseline]

Generates a path file of single journeys (1 to 12 touches over `--channels` channels, with
channel-dependent conversion odds and lognormal order values), then times, in the same run:

- Tailor end to end: read and check the CSV (`load_path_file`), then all eight models
  (`attribute`: first/last touch, linear, time decay, position based, exact Markov, Shapley and
  ordered Shapley). Target: under 10 s.
- Tailor's exact Markov model alone on the loaded journeys (transition counts in SQL, one sparse
  LU solve per removal). Target: under 2 s.
- The baseline: ChannelAttribution's `markov_model` (first order, its default 100,000 simulated
  walks, one core) on the same file read by pandas, and its `heuristic_models`.

It prints each time, the ratios, the largest difference between the two Markov credits (the
baseline estimates removal effects by simulation, so they differ by its sampling error) and the
load average of the machine before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tailor.analytics.attribution import attribute
from tailor.analytics.markov import markov_attribution
from tailor.analytics.pathfile import load_path_file


def generate(path: Path, paths: int, channels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = np.array([f"ch{i:02d}" for i in range(channels)])
    popularity = rng.dirichlet(np.ones(channels) * 2)
    lift = rng.normal(0, 0.6, channels)
    lengths = np.minimum(1 + rng.geometric(0.4, paths) - 1, 12)
    flat = rng.choice(channels, size=int(lengths.sum()), p=popularity)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    score = np.add.reduceat(lift[flat], starts) + 0.3 * lengths - 2.5
    converted = rng.random(paths) < 1 / (1 + np.exp(-score))
    value = np.where(converted, np.round(rng.lognormal(4, 0.6, paths), 2), 0.0)
    words = names[flat].tolist()
    text = [" > ".join(words[s : s + n]) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
    table = pa.table(
        {
            "path": text,
            "conversions": converted.astype(np.int64),
            "value": value,
            "nulls": (~converted).astype(np.int64),
        }
    )
    pacsv.write_csv(table, path)


def _time(fn: object, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "paths.csv"
        generate(file, args.paths, args.channels, args.seed)
        print(f"{args.paths:,} paths, {file.stat().st_size / 1e6:.0f} MB")

        def tailor_all() -> object:
            cur = duckdb.connect()
            tables, _ = load_path_file(cur, file)
            result = attribute(tables)
            cur.close()
            return result

        t_all, result = _time(tailor_all, args.repeat)
        cur = duckdb.connect()
        tables, _ = load_path_file(cur, file)
        t_markov, markov = _time(lambda: markov_attribution(tables), args.repeat)
        print(f"Tailor, read + all 8 models: {t_all:.2f} s (target < 10 s)")
        print(f"Tailor, exact Markov alone on loaded paths: {t_markov:.3f} s (target < 2 s)")
        print(f"  P(conversion) {markov.conversion_probability:.5f}, states {markov.states}")  # type: ignore[attr-defined]
        if args.skip_baseline:
            return
        import pandas as pd
        from ChannelAttribution import heuristic_models, markov_model

        t_read, df = _time(lambda: pd.read_csv(file), 1)

        def baseline() -> object:
            return markov_model(
                df,
                "path",
                "conversions",
                var_value="value",
                var_null="nulls",
                order=1,
                ncore=1,
                verbose=False,
                flg_pro=False,
            )

        t_base, base = _time(baseline, args.repeat)
        t_heur, _ = _time(
            lambda: heuristic_models(df, "path", "conversions", var_value="value", flg_pro=False), args.repeat
        )
        print(
            f"ChannelAttribution markov_model (simulated, 1 core): {t_base:.2f} s (+ pandas read {t_read:.2f} s)"
        )
        print(f"ChannelAttribution heuristic_models: {t_heur:.2f} s")
        print(f"ratio Tailor exact Markov / ChannelAttribution Markov: {t_markov / t_base:.3f}")
        print(
            f"ratio Tailor all 8 models incl. reading / ChannelAttribution Markov + heuristics incl. reading: "
            f"{t_all / (t_base + t_heur + t_read):.3f}"
        )
        ours = result.models["markov"]  # type: ignore[attr-defined]
        frame = base if isinstance(base, pd.DataFrame) else base[0]
        diffs = [
            abs(ours[str(r.channel_name)].conversions - float(r.total_conversions))
            for r in frame.itertuples()
        ]
        total = sum(c.conversions for c in ours.values())
        print(
            f"largest difference of Markov credit per channel: {max(diffs):.1f} conversions "
            f"({max(diffs) / total:.3%} of {total:,.0f})"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
