"""The evaluation of one set of people: their golden record, computed traits and segment memberships.

A plan turns the catalog into SQL steps for a scope: `_pf_aff` (the people a micro-batch, a merge
or an expiring window touched) or everyone. Its steps:

1. gather the scope's facts (`_pf_f`) and people (`_pf_p`);
2. choose their golden-record values (`tailor.profiles.golden`);
3. compute every trait and hidden segment aggregate in one pass (`tailor.profiles.compile`) into
   `_pf_new`, and replace their rows of `profile_computed`;
4. test every segment (`tailor.segments.compile`), record who entered and who left in
   `segment_changes`, and update `segment_members`;
5. note when each person must be looked at again with no new event (`profile_schedule`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import duckdb

from tailor.process.stage import SqlStep
from tailor.profiles.catalog import Catalog
from tailor.profiles.compile import Evaluation, compile_traits, quote
from tailor.profiles.exceptions import Problem
from tailor.profiles.fields import FieldPath
from tailor.profiles.golden import TraitPolicy, golden_steps
from tailor.segments.compile import CompiledSegment, compile_segments
from tailor.store.database import run

SCOPE = "_pf_aff"


def now_literal(now: datetime) -> str:
    """A SQL literal of the evaluation time (all windows are relative to it)."""
    return f"TIMESTAMPTZ {time_text(now)}"


def time_text(now: datetime) -> str:
    """The quoted text inside `now_literal(now)`: what a compiled plan holds of the time, however
    the literal around it is written."""
    return f"'{now.isoformat()}'"


@dataclass
class Plan:
    """A catalog compiled for one evaluation time."""

    evaluation: Evaluation
    segments: dict[str, CompiledSegment]

    @property
    def problems(self) -> list[Problem]:
        return self.evaluation.problems

    @property
    def fields(self) -> dict[str, FieldPath]:
        return self.evaluation.fields

    def final_select(self) -> str:
        """The query of `_pf_new`: every trait's value and hidden aggregate, and the next change.

        Layer 0 joins the passes over the facts; each layer above adds the expressions that read
        only layers below it; the top keeps the traits and the earliest of their next changes.
        """
        ev = self.evaluation
        layers: dict[int, list[str]] = {}
        changes: list[str] = []
        for name, c in ev.values.items():
            items = layers.setdefault(ev.depth.get(name, 0), [])
            items.append(f"{c.sql} AS {quote(name)}")
            if c.changes:
                nc = quote("_nc_" + name)
                items.append(f"least({', '.join(c.changes)}) AS {nc}")
                changes.append(nc)
        golden = "".join(f", g.{quote('g_' + g)}" for g in sorted(ev.golden))
        first = ", ".join(layers.get(0, ["NULL AS _none"]))
        sql = f"SELECT p.profile_id{golden}, {first}\nFROM {ev.from_clause()}"
        for depth in sorted(d for d in layers if d > 0):
            sql = f"SELECT *, {', '.join(layers[depth])} FROM ({sql})"
        keep = ", ".join(quote(name) for name in ev.values)
        change = f"least({', '.join(changes)})" if changes else "NULL::TIMESTAMPTZ"
        return f"SELECT profile_id{', ' + keep if keep else ''}, {change} AS _next_change FROM ({sql})"

    def steps(
        self,
        full: bool,
        seq: int,
        default_policy: str,
        policies: Mapping[str, TraitPolicy],
        backfill: bool = False,
        golden: bool = True,
        quantiles: str = "missing",
        pending: bool = False,
    ) -> list[SqlStep]:
        """Every step of an evaluation of `_pf_aff` (or of everyone when `full`), logged at `seq`.

        With `pending`, a micro-batch's facts and observations (`_pf_bf`, `_pf_obs`) are not in
        their tables yet: they are read from those temporary tables, and added to the tables
        after the evaluation (see `ProfileStage.steps`).

        In a full evaluation, quantile thresholds are taken again from everyone's values when
        `quantiles` is "refresh" (definitions changed, or the scheduled refresh), only where none
        are stored when "missing" (a rebuild replays the log with the thresholds in force).
        """
        now = self.evaluation.now
        in_scope = "" if full else f"WHERE profile_id IN (SELECT profile_id FROM {SCOPE})"
        # `_pf_f` is a table in a small evaluation (kept for the next) and a view in a full one.
        steps = [SqlStep("DROP TABLE IF EXISTS _pf_f", "_pf_f (dropped)")] if full else []
        steps += _people_steps(in_scope)
        if full:
            steps.append(_ALL_FACTS)
        else:
            # A few people's rows of a table of everyone: the rows are found by reading the key
            # alone, then fetched by row id. Joined whole, DuckDB reads every column of every row
            # (measured: 230 ms against 20 ms of CPU for 1,000 events at 2M facts). With rows of
            # the transaction's own in the table, DuckDB scans it whole even so (at 10M facts 0.86 s
            # against 0.2 to 0.46 s), which is why a micro-batch's facts are added only afterwards.
            batch = (
                " UNION ALL BY NAME SELECT n.pn, b.* FROM _pf_bf b JOIN _pf_kn n ON n.k = b.k"
                if pending
                else ""
            )
            steps += [
                SqlStep(
                    """CREATE OR REPLACE TEMP TABLE _pf_rows AS
                    SELECT f.rowid AS r, n.pn FROM profile_facts f JOIN _pf_kn n ON n.k = f.k""",
                    "_pf_rows",
                ),
                SqlStep(
                    """CREATE OR REPLACE TEMP TABLE _pf_f AS
                    SELECT rr.pn, f.* EXCLUDE (_r)
                    FROM (SELECT *, rowid AS _r FROM profile_facts WHERE rowid IN (SELECT r FROM _pf_rows)) f
                    JOIN _pf_rows rr ON rr.r = f._r"""
                    + batch,
                    "_pf_f",
                ),
            ]
        if golden:
            steps += golden_steps(None if full else SCOPE, default_policy, policies, pending and not full)
        passes = self.evaluation.steps_sql("_pf_golden" if golden else "profile_traits")
        steps += [SqlStep(f"CREATE OR REPLACE TEMP TABLE {t} AS {q}", t) for t, q in passes]
        new = SqlStep(f"CREATE OR REPLACE TEMP TABLE _pf_new AS {self.final_select()}", "_pf_new")
        steps.append(new)
        if full and self.evaluation.quantiles:
            # Everyone's values are at hand: the thresholds are taken from them, and the scores
            # computed again with the new thresholds.
            steps += [*self.quantile_steps(only_missing=quantiles != "refresh"), new]
        steps += [
            SqlStep(f"DELETE FROM profile_computed {in_scope}", "profile_computed (replaced)"),
            SqlStep("INSERT INTO profile_computed BY NAME SELECT * FROM _pf_new", "profile_computed"),
        ]
        steps += self._membership_steps(full, seq, now, backfill)
        return steps

    def cleanup(self, full: bool) -> list[SqlStep]:
        """Steps that drop the plan's own temporary tables (and `_pf_f`, a view in a full evaluation)."""
        tables = [t for t, _ in self.evaluation.steps_sql()]
        out = [SqlStep(f"DROP TABLE IF EXISTS {t}", "cleanup") for t in tables]
        out.append(SqlStep(f"DROP {'VIEW' if full else 'TABLE'} IF EXISTS _pf_f", "cleanup"))
        return out

    def quantile_steps(self, only_missing: bool = False) -> list[SqlStep]:
        """Steps that set each quantile trait's thresholds from everyone's values in `_pf_new`."""
        out = []
        for name, (of, buckets) in self.evaluation.quantiles.items():
            points = ", ".join(str(i / buckets) for i in range(1, buckets))
            missing = (
                f"""HAVING NOT EXISTS (SELECT 1 FROM trait_quantiles
                                       WHERE trait = {_lit(name)} AND thresholds IS NOT NULL)"""
                if only_missing
                else ""
            )
            out.append(
                SqlStep(
                    f"""INSERT OR REPLACE INTO trait_quantiles
                    SELECT {_lit(name)}, quantile_cont(TRY_CAST({quote(of)} AS DOUBLE), [{points}]), now()
                    FROM _pf_new {missing}""",
                    "trait_quantiles",
                )
            )
        return out

    def segment_test_step(self) -> SqlStep:
        """`_pf_seg`: for each person of `_pf_new`, a column per segment and when any may flip."""
        golden = "LEFT JOIN _pf_g g USING (profile_id)" if self.evaluation.golden else ""
        flips = [f for s in self.segments.values() for f in s.flips]
        tests = "".join(f", {s.sql} AS {quote(name)}" for name, s in self.segments.items())
        flip = f"least({', '.join(flips)})" if flips else "NULL::TIMESTAMPTZ"
        return SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_seg AS
            SELECT c.profile_id{tests}, {flip} AS _flip FROM _pf_new c {golden}""",
            "_pf_seg",
        )

    def preview_steps(self) -> list[SqlStep]:
        """Steps that evaluate everyone into `_pf_new` and `_pf_seg` and change nothing stored."""
        steps = [*_people_steps(""), _ALL_FACTS]
        steps += [
            SqlStep(f"CREATE OR REPLACE TEMP TABLE {t} AS {q}", t) for t, q in self.evaluation.steps_sql()
        ]
        steps.append(SqlStep(f"CREATE OR REPLACE TEMP TABLE _pf_new AS {self.final_select()}", "_pf_new"))
        return [*steps, self.segment_test_step()]

    def _membership_steps(self, full: bool, seq: int, now: str, backfill: bool) -> list[SqlStep]:
        tests = self.segments
        current_scope = "" if full else f"WHERE profile_id IN (SELECT profile_id FROM {SCOPE})"
        if tests:
            members = " UNION ALL ".join(
                f"SELECT {_lit(name)} AS segment, profile_id FROM _pf_seg WHERE {quote(name)}"
                for name in self.segments
            )
        else:
            members = "SELECT NULL::VARCHAR AS segment, NULL::VARCHAR AS profile_id WHERE FALSE"
        return [
            self.segment_test_step(),
            SqlStep(f"CREATE OR REPLACE TEMP TABLE _pf_in AS {members}", "_pf_in"),
            SqlStep(
                f"""CREATE OR REPLACE TEMP TABLE _pf_was AS
                SELECT rowid AS r, segment, profile_id FROM segment_members {current_scope}""",
                "_pf_was",
            ),
            SqlStep(
                """CREATE OR REPLACE TEMP TABLE _pf_diff AS
                SELECT coalesce(i.segment, w.segment) AS segment,
                       coalesce(i.profile_id, w.profile_id) AS profile_id,
                       CASE WHEN w.profile_id IS NULL THEN 'entered' ELSE 'exited' END AS change
                FROM _pf_in i FULL OUTER JOIN _pf_was w
                    ON i.segment = w.segment AND i.profile_id = w.profile_id
                WHERE i.profile_id IS NULL OR w.profile_id IS NULL""",
                "_pf_diff",
            ),
            # Ids continue the count in `profile_meta`; within one evaluation their order is not
            # defined (sorting the 3.1M entries of a first evaluation at 1M people by segment and
            # person cost 1.2 s, a sequence's `nextval` another 0.6 s, against 0.7 s for the insert).
            SqlStep(
                f"""INSERT INTO segment_changes
                SELECT {_LAST_CHANGE_ID} + row_number() OVER (), segment, profile_id, change, {now},
                       {int(seq)}, {str(backfill).lower()}
                FROM _pf_diff""",
                "segment_changes",
            ),
            SqlStep(
                f"""UPDATE profile_meta
                SET value = CAST({_LAST_CHANGE_ID} + (SELECT count(*) FROM _pf_diff) AS VARCHAR)
                WHERE key = 'last_change_id' AND EXISTS (SELECT 1 FROM _pf_diff)""",
                "profile_meta (change ids)",
            ),
            # By the row ids `_pf_was` read in this transaction: DuckDB then reads no column of the
            # table (at 3.1M memberships: 4 ms, against 21-57 ms joining on segment and person).
            SqlStep(
                """DELETE FROM segment_members WHERE rowid IN (
                    SELECT w.r FROM _pf_was w JOIN _pf_diff x
                        ON x.segment = w.segment AND x.profile_id = w.profile_id
                    WHERE x.change = 'exited')""",
                "segment_members (exited)",
            ),
            SqlStep(
                f"""INSERT INTO segment_members
                SELECT segment, profile_id, {now}, {int(seq)} FROM _pf_diff WHERE change = 'entered'
                ORDER BY profile_id""",
                "segment_members (entered)",
            ),
            SqlStep(f"DELETE FROM profile_schedule {current_scope}", "profile_schedule (replaced)"),
            SqlStep(
                """INSERT INTO profile_schedule
                SELECT c.profile_id, least(c._next_change, s._flip) AS next_check
                FROM _pf_new c JOIN _pf_seg s USING (profile_id)
                WHERE least(c._next_change, s._flip) IS NOT NULL""",
                "profile_schedule",
            ),
        ]


def _people_steps(in_scope: str) -> list[SqlStep]:
    """`_pf_keys` (the scope's identifiers), `_pf_p` (its people, numbered) and `_pf_kn` (key -> number).

    One scan of `identity_nodes`, a table of every identifier (4.9M rows at 1M people, ~20 ms a
    scan for a micro-batch); facts are joined to `_pf_kn` by key, once per fact.
    """
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_keys AS
            SELECT k, profile_id FROM identity_nodes {in_scope}""",
            "_pf_keys",
        ),
        SqlStep(f"CREATE OR REPLACE TEMP TABLE _pf_p AS {people_sql('_pf_keys')}", "_pf_p"),
        SqlStep(f"CREATE OR REPLACE TEMP TABLE _pf_kn AS {KEY_NUMBERS.format('_pf_keys')}", "_pf_kn"),
    ]


KEY_NUMBERS = "SELECT n.k, p.pn FROM {} n JOIN _pf_p p ON p.profile_id = n.profile_id"
"""The query of `_pf_kn`: each identifier key (of a relation of `k`, `profile_id`) and its person's number."""

_ALL_FACTS = SqlStep(
    "CREATE OR REPLACE TEMP VIEW _pf_f AS SELECT n.pn, f.* FROM profile_facts f JOIN _pf_kn n ON n.k = f.k",
    "_pf_f",
)
"""Everyone's facts with their person's number, for a full evaluation."""

_LAST_CHANGE_ID = "(SELECT CAST(value AS BIGINT) FROM profile_meta WHERE key = 'last_change_id')"


def people_sql(relation: str, ordered: bool = False) -> str:
    """The query of `_pf_p`: each person of `relation` (by `profile_id`) with a number for the evaluation.

    `ordered` numbers them in the order of their ids, as engines that allow no unordered window
    (Spark) need; DuckDB numbers 1M people in 0.17 s so, 0.26 s ordered.
    """
    window = "ORDER BY profile_id" if ordered else ""
    return f"""SELECT profile_id, CAST(row_number() OVER ({window}) AS INTEGER) AS pn
    FROM (SELECT DISTINCT profile_id FROM {relation} d) d"""


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def compile_plan(
    catalog: Catalog,
    now: datetime,
    trait_types: Mapping[str, str],
    consent_available: bool,
    full: bool = True,
) -> Plan:
    """The catalog compiled at evaluation time `now` (for everyone, or for a few people if not `full`).

    `plan.problems` lists what is wrong with it.
    """
    ev = compile_traits(catalog.traits, now_literal(now), split=full)
    segments = compile_segments(list(catalog.segments), ev, trait_types, consent_available)
    return Plan(ev, segments)


def describe(cur: duckdb.DuckDBPyConnection, plan: Plan) -> dict[str, str]:
    """The SQL type of every column of `_pf_new` under this plan, found by evaluating it for no one."""
    run(
        cur,
        "CREATE OR REPLACE TEMP TABLE _pf_p AS"
        " SELECT NULL::VARCHAR AS profile_id, NULL::INTEGER AS pn WHERE FALSE",
    )
    run(
        cur,
        "CREATE OR REPLACE TEMP TABLE _pf_f AS SELECT NULL::INTEGER AS pn, * FROM profile_facts WHERE FALSE",
    )
    for table, query in plan.evaluation.steps_sql():
        run(cur, f"CREATE OR REPLACE TEMP TABLE {table} AS {query}")
    described = run(cur, f"DESCRIBE {plan.final_select()}").fetchall()
    for table in ["_pf_p", "_pf_f", *(t for t, _ in plan.evaluation.steps_sql())]:
        run(cur, f"DROP TABLE IF EXISTS {table}")
    return {str(row[0]): str(row[1]) for row in described if row[0] != "profile_id"}


def trait_types(cur: duckdb.DuckDBPyConnection, catalog: Catalog, now: datetime) -> dict[str, str]:
    """The SQL type of every computed trait (empty when the traits do not compile)."""
    ev = compile_traits(catalog.traits, now_literal(now))
    if ev.problems:
        return {}
    types = describe(cur, Plan(ev, {}))
    types.pop("_next_change", None)
    return types
