"""The batch rebuild: an exported event log in, profiles, identities, traits and memberships out.

One list of steps (`rebuild_steps`) runs on any engine; the outputs are Parquet directories:

| output | columns |
| --- | --- |
| `profiles` | profile_id, identifiers, events |
| `identities` | type, value, profile_id, first_seq |
| `golden_traits` | profile_id, trait, value, text, source_id, seq, observed_at, observations, policy |
| `computed_traits` | profile_id, one column per computed trait |
| `segment_members` | segment, profile_id |
| `touchpoints` | seq, profile_id, ts, channel, campaign |
| `conversions` | seq, profile_id, ts, value, prev_ts |
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from tailor.batch.definitions import MATCHES_SCHEMA, OVERRIDES_SCHEMA, BatchDefinitions
from tailor.batch.identity import IDENTITY_TEMP, identity_steps
from tailor.batch.profiles import analytics_steps, compile_batch_plan, profile_steps
from tailor.engines.base import Engine
from tailor.engines.steps import Query, Step
from tailor.identity.normalise import IdentifierNormaliser
from tailor.profiles.compile import thresholds_sql

OUTPUTS: dict[str, str] = {
    "profiles": """SELECT n.profile_id, count(*) AS identifiers, coalesce(any_value(e.events), 0) AS events
        FROM identity_nodes n LEFT JOIN (
            SELECT m.profile_id, count(*) AS events FROM identity_event_hubs h
            JOIN identity_nodes m ON m.k = h.k GROUP BY m.profile_id
        ) e ON e.profile_id = n.profile_id GROUP BY n.profile_id""",
    "identities": "SELECT type, value, profile_id, first_seq FROM identity_nodes",
    "golden_traits": """SELECT profile_id, trait, value, text, source_id, seq, observed_at,
        n AS observations, policy FROM profile_traits""",
    "computed_traits": "SELECT * FROM profile_computed",
    "segment_members": "SELECT segment, profile_id FROM segment_members",
    "touchpoints": "SELECT * FROM touchpoints",
    "conversions": "SELECT * FROM conversions",
}
"""Each output and the query that makes it from the pipeline's relations."""


@dataclass
class RebuildResult:
    """What a rebuild produced: rows per output, where, and how long each phase took."""

    engine: str
    out: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def rebuild_steps(engine: Engine, definitions: BatchDefinitions, now: datetime) -> list[Step]:
    """Every step of the rebuild, in the engine's capabilities; DefinitionError for bad definitions."""
    caps = engine.capabilities
    plan = compile_batch_plan(definitions.catalog(), now)
    normaliser = IdentifierNormaliser(definitions.identity.normalisation)
    steps: list[Step] = [
        *identity_steps(caps, normaliser, definitions.identity.limits),
        *profile_steps(caps, plan, definitions.profiles),
        *analytics_steps(caps, definitions.analytics),
    ]
    return [*steps, *(Query(f"out_{name}", sql) for name, sql in OUTPUTS.items())]


def _after(steps: list[Step], output: str) -> int:
    """The index after the last step producing `output`."""
    return max(i for i, s in enumerate(steps) if s.output == output) + 1


def _thresholds(engine: Engine) -> dict[str, list[float] | None]:
    rows = engine.arrow("SELECT trait, thresholds FROM trait_quantiles").to_pylist()
    return {str(r["trait"]): r["thresholds"] for r in rows}


_THRESHOLDS = re.compile(re.escape(thresholds_sql("@")).replace("'@'", "'(?:[^']|'')*'"))


def _inline(step: Step, thresholds: dict[str, list[float] | None] | None) -> Step:
    if not isinstance(step, Query):
        return step
    sql = step.sql
    if thresholds is None:
        return Query(step.output, _THRESHOLDS.sub("(CAST(NULL AS DOUBLE[]))", sql))
    for trait, values in thresholds.items():
        literal = (
            "NULL" if values is None else f"CAST([{', '.join(repr(float(v)) for v in values)}] AS DOUBLE[])"
        )
        sql = sql.replace(thresholds_sql(trait), f"({literal})")
    return Query(step.output, sql)


def rebuild(
    engine: Engine,
    events: str,
    out: str,
    definitions: BatchDefinitions,
    now: datetime,
    overrides: pa.Table | None = None,
    matches: pa.Table | None = None,
    progress: Callable[[str], None] | None = None,
) -> RebuildResult:
    """Reads the events at `events` (Parquet), runs the pipeline and writes every output under `out`."""
    result = RebuildResult(engine.capabilities.name, out)
    started = time.perf_counter()
    steps = rebuild_steps(engine, definitions, now)
    engine.read_parquet("events", events)
    engine.register(
        "identity_overrides", overrides if overrides is not None else OVERRIDES_SCHEMA.empty_table()
    )
    engine.register("identity_matches", matches if matches is not None else MATCHES_SCHEMA.empty_table())
    split = _after(steps, "identity_nodes")
    engine.run(steps[:split], progress)
    result.seconds["identity"] = time.perf_counter() - started
    for name in IDENTITY_TEMP:
        engine.drop(name)
    mark = time.perf_counter()
    quantiles = _after(steps, "trait_quantiles")
    # Before the thresholds are taken, quantile scores are unknown (NULL), as in a new store.
    engine.run([_inline(s, None) for s in steps[split:quantiles]], progress)
    # Spark allows no subquery inside a lambda: the thresholds, a few numbers per trait, are put in
    # the queries that read them as constants.
    thresholds = _thresholds(engine)
    engine.run([_inline(s, thresholds) for s in steps[quantiles:]], progress)
    result.seconds["profiles"] = time.perf_counter() - mark
    mark = time.perf_counter()
    for name in OUTPUTS:
        if progress is not None:
            progress(f"writing {name}")
        engine.write_parquet(f"out_{name}", f"{out.rstrip('/')}/{name}")
        result.rows[name] = int(engine.arrow(f"SELECT count(*) AS n FROM out_{name}").column(0)[0].as_py())
    result.seconds["write"] = time.perf_counter() - mark
    result.seconds["total"] = time.perf_counter() - started
    return result
