"""Golden records, computed traits, segment memberships and attribution inputs, as batch steps.

The SQL is the live stage's own (`tailor.profiles.plan`, `golden`, `compile`, `tailor.segments`,
`tailor.analytics.touchpoints`), evaluated for everyone at once: a live step that creates a
temporary table is taken as the query it runs, and the inserts, deletes and change logs that keep
live state are left out, as a rebuild starts from nothing.

Reads `events`, `identity_nodes` and `identity_event_hubs`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import duckdb

from tailor.analytics.settings import AnalyticsConfig
from tailor.analytics.touchpoints import touch_steps
from tailor.engines.dialect import Capabilities
from tailor.engines.steps import Query, Step
from tailor.process.stage import SqlStep
from tailor.profiles.catalog import Catalog
from tailor.profiles.compile import quote
from tailor.profiles.config import ProfilesConfig
from tailor.profiles.exceptions import DefinitionError
from tailor.profiles.facts import _BASE as FACTS_DDL
from tailor.profiles.facts import BUILTIN_SQL
from tailor.profiles.fields import FieldPath
from tailor.profiles.golden import DDL as GOLDEN_DDL
from tailor.profiles.golden import golden_steps, observations_query
from tailor.profiles.plan import KEY_NUMBERS, Plan, compile_plan, people_sql, trait_types
from tailor.store.database import run

_CREATE = re.compile(r"^\s*CREATE OR REPLACE TEMP (?:TABLE|VIEW) (\w+) AS\s+(.*)$", re.S)


def as_query(step: SqlStep) -> Query:
    """A live step that creates a temporary table or view, as the batch query it runs."""
    match = _CREATE.match(step.sql)
    if match is None:
        raise ValueError(f"{step.output}: not a CREATE OR REPLACE TEMP TABLE ... AS step")
    return Query(match.group(1), match.group(2))


def compile_batch_plan(catalog: Catalog, now: datetime) -> Plan:
    """The catalog compiled for everyone at `now`; DefinitionError with every problem.

    Trait types (which segments compare by) are found by DuckDB on empty tables, whatever the
    engine: it is compilation, not evaluation.
    """
    con = duckdb.connect(":memory:")
    try:
        run(con, FACTS_DDL)
        run(con, GOLDEN_DDL)
        run(con, "CREATE TABLE trait_quantiles (trait VARCHAR, thresholds DOUBLE[], computed_at TIMESTAMPTZ)")
        fields = compile_plan(Catalog(catalog.traits), now, {}, False).evaluation.fields
        _add_columns(con, fields.values())
        types = trait_types(con, catalog, now)
        plan = compile_plan(catalog, now, types, consent_available=False)
        if plan.problems:
            raise DefinitionError("definitions", None, plan.problems)
        _add_columns(con, plan.fields.values())
        return plan
    finally:
        con.close()


def _add_columns(con: duckdb.DuckDBPyConnection, fields: Iterable[FieldPath]) -> None:
    for f in fields:
        if not f.builtin:
            run(con, f"ALTER TABLE profile_facts ADD COLUMN IF NOT EXISTS {f.column} {f.sql_type()}")


def profile_steps(caps: Capabilities, plan: Plan, config: ProfilesConfig) -> list[Step]:
    """Facts, observations, golden record, computed traits (quantiles included) and memberships."""
    builtins = ", ".join(f"{sql} AS {name}" for name, sql in BUILTIN_SQL.items())
    extra = "".join(f", {caps.field(f)} AS {col}" for col, f in sorted(plan.fields.items()))
    golden = [as_query(golden_steps(None, config.default_policy, config.traits)[0])]
    steps: list[Step] = [
        Query(
            "profile_facts",
            f"""SELECT e.seq, h.k, e.timestamp AS ts, {builtins}{extra}
            FROM events e JOIN identity_event_hubs h ON h.seq = e.seq""",
        ),
        Query(
            "trait_observations",
            observations_query(config.ignore_traits, events="events", pairs=caps.json_pairs),
        ),
        Query("_pf_p", people_sql("identity_nodes", ordered=True)),
        Query("_pf_kn", KEY_NUMBERS.format("identity_nodes")),
        Query("_pf_f", "SELECT n.pn, f.* FROM profile_facts f JOIN _pf_kn n ON n.k = f.k"),
        *golden,
        Query("profile_traits", "SELECT * FROM _pf_golden"),
        Query(
            "trait_quantiles",
            "SELECT CAST(NULL AS VARCHAR) AS trait, CAST(NULL AS DOUBLE[]) AS thresholds WHERE FALSE",
        ),
        *(Query(t, q) for t, q in plan.evaluation.steps_sql()),
    ]
    quantiles = plan.evaluation.quantiles
    if quantiles:
        # Thresholds from everyone's values, then the scores with them, as a live full evaluation.
        steps.append(Query("_pf_new0", plan.final_select()))
        parts = []
        for name, (of, buckets) in quantiles.items():
            points = ", ".join(str(i / buckets) for i in range(1, buckets))
            lit = "'" + name.replace("'", "''") + "'"
            parts.append(
                f"SELECT {lit} AS trait,"
                f" quantile_cont(TRY_CAST({quote(of)} AS DOUBLE), [{points}]) AS thresholds FROM _pf_new0"
            )
        steps.append(Query("trait_quantiles", " UNION ALL ".join(parts)))
    steps.append(Query("_pf_new", plan.final_select()))
    steps.append(as_query(plan.segment_test_step()))
    traits = ", ".join(quote(t) for t in trait_names(plan))
    steps.append(
        Query("profile_computed", f"SELECT profile_id{', ' + traits if traits else ''} FROM _pf_new")
    )
    members = " UNION ALL ".join(
        f"SELECT '{name}' AS segment, profile_id FROM _pf_seg WHERE {quote(name)}" for name in plan.segments
    )
    steps.append(
        Query(
            "segment_members",
            members
            or "SELECT CAST(NULL AS VARCHAR) AS segment, CAST(NULL AS VARCHAR) AS profile_id WHERE FALSE",
        )
    )
    return steps


def trait_names(plan: Plan) -> list[str]:
    """The computed traits of a plan (its hidden segment aggregates left out)."""
    return [n for n in plan.evaluation.values if not n.startswith("_h_")]


def analytics_steps(caps: Capabilities, config: AnalyticsConfig) -> list[Step]:
    """`touchpoints` and `conversions`: the inputs of attribution, on resolved people."""
    steps: list[Step] = [as_query(s) for s in touch_steps(config, caps.analytics)]
    steps.append(
        Query("touchpoints", "SELECT seq, person AS profile_id, ts, channel, campaign FROM an_touches")
    )
    steps.append(
        Query("conversions", "SELECT seq, person AS profile_id, ts, value, prev_ts FROM an_conversions")
    )
    return steps
