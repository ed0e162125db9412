"""The profiles stage: golden record, computed traits and segment membership, kept live from the log.

Each micro-batch adds its events to `profile_facts` and its traits to `trait_observations`, then
evaluates again exactly the people it touched: the profiles of its events, the profiles merged or
split since the last evaluation (`profile_changes`, which also records users' splits), and the
people whose time-dependent values are due (`profile_schedule`). Between batches, `refresh` does
the same for merges, splits and due people alone, so a window sliding past someone's last order
changes their segments with no new event, and only theirs. A rebuild evaluates everyone at once;
live and rebuilt state agree (tests check it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb
import msgspec

from tailor.privacy.registry import PersonalDataTable
from tailor.process.stage import Batch, SqlStep, run_steps
from tailor.profiles import facts
from tailor.profiles.catalog import DDL as CATALOG_DDL
from tailor.profiles.catalog import Catalog, load_catalog, save_steps
from tailor.profiles.config import ProfilesConfig
from tailor.profiles.exceptions import DefinitionError
from tailor.profiles.golden import DDL as GOLDEN_DDL
from tailor.profiles.golden import observation_steps
from tailor.profiles.plan import SCOPE, Plan, compile_plan, describe, now_literal, time_text, trait_types
from tailor.segments.compile import CONSENT_VIEW
from tailor.store.database import Database, run

log = logging.getLogger(__name__)

DDL = f"""
{GOLDEN_DDL}
{CATALOG_DDL}
CREATE TABLE IF NOT EXISTS profile_computed (profile_id VARCHAR NOT NULL, _next_change TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS segment_members (
    segment VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    since TIMESTAMPTZ NOT NULL,
    since_seq BIGINT NOT NULL
);
-- A person's segments on their profile page are found by the row groups' ranges of profile ids:
-- entries are inserted sorted by person (see `Plan._membership_steps`). At 1M people and 3.1M
-- memberships: 2.2-3 ms, against 43 ms scanning unsorted rows and 0.5-1.3 ms with an index on
-- profile_id, which took 2.3 s to build after a first evaluation (and costs every change after).
CREATE TABLE IF NOT EXISTS segment_changes (
    id BIGINT NOT NULL,
    segment VARCHAR NOT NULL,
    profile_id VARCHAR NOT NULL,
    change VARCHAR NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    seq BIGINT NOT NULL,
    backfill BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_schedule (profile_id VARCHAR NOT NULL, next_check TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS profile_dirty (profile_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS trait_quantiles (
    trait VARCHAR PRIMARY KEY, thresholds DOUBLE[], computed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
"""

RESET_TABLES = (
    "profile_facts",
    "trait_observations",
    "profile_traits",
    "profile_computed",
    "profile_schedule",
    "profile_dirty",
)
"""What a rebuild empties. Memberships stay, so a rebuild records only real entries and exits."""

_WATERMARK = """coalesce((SELECT CAST(value AS TIMESTAMPTZ) FROM profile_meta WHERE key = 'changes_seen'),
                 TIMESTAMPTZ '1970-01-01 00:00:00+00')"""

_TEMP = (
    "_pf_bf", "_pf_obs", "_pf_aff", "_pf_p", "_pf_golden", "_pf_a", "_pf_g", "_pf_new", "_pf_seg",
    "_pf_in", "_pf_was", "_pf_diff", "_pf_keys", "_pf_kn", "_pf_rows",
)  # fmt: skip


def _affected(now: str, batch: Batch | None) -> SqlStep:
    # The batch's people: those of its events and traits, and those of the identifiers it added
    # (an identifier refused a link stands alone as a profile with no event of its own).
    touched = (
        f"""SELECT profile_id FROM identity_nodes
        WHERE k IN (SELECT k FROM _pf_bf UNION ALL SELECT k FROM _pf_obs)
           OR (first_seq > {int(batch.lo)} AND first_seq <= {int(batch.hi)})
        UNION ALL """
        if batch is not None
        else ""
    )
    return SqlStep(
        f"""CREATE OR REPLACE TEMP TABLE {SCOPE} AS
        SELECT DISTINCT profile_id FROM (
            {touched}SELECT profile_id FROM profile_changes WHERE changed_at > {_WATERMARK}
            UNION ALL SELECT other_id FROM profile_changes WHERE changed_at > {_WATERMARK}
            UNION ALL SELECT profile_id FROM profile_schedule WHERE next_check <= {now}
            UNION ALL SELECT profile_id FROM profile_dirty
        ) WHERE profile_id IS NOT NULL""",
        SCOPE,
    )


_SEEN = [
    SqlStep(
        """INSERT OR REPLACE INTO profile_meta
        SELECT 'changes_seen', CAST(max(changed_at) AS VARCHAR) FROM profile_changes
        HAVING max(changed_at) IS NOT NULL""",
        "profile_meta (changes seen)",
    ),
    SqlStep("DELETE FROM profile_dirty", "profile_dirty"),
]


# Stand-in evaluation times for compiled plans (see `ProfileStage._at`): instants no definition writes.
_STAND_IN = datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
_CHECK = datetime(1971, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


class ProfileStage:
    """The processing stage that keeps golden records, computed traits and segments up to date."""

    name = "profiles"

    def __init__(
        self, config: ProfilesConfig | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.config = config or ProfilesConfig()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.catalog = Catalog()
        self._types: dict[str, str] = {}
        self._columns: dict[str, str] = {}
        self._consent = False
        self._rebuilding = False
        self._evaluated: datetime | None = None
        """The evaluation time of the last micro-batch or refresh (see `refresh`)."""
        self._db: Database | None = None
        self._templates: dict[
            tuple[bool, bool, tuple[tuple[str, str], ...]], tuple[Catalog, Plan | None]
        ] = {}

    # -- the stage protocol --------------------------------------------------------------------------

    def setup(self, db: Database) -> None:
        """Creates the tables and evaluates everyone again if the definitions changed since the last run."""
        from tailor.profiles.library import library_catalog

        db.ddl(DDL)
        facts.create_facts(db)
        self._db = db
        cur = db.cursor()
        try:
            _continue_change_ids(db, cur)
            db.ddl("DROP INDEX IF EXISTS segment_members_profile")  # of older stores: see DDL
            catalog = load_catalog(cur)
            installed = run(cur, "SELECT 1 FROM profile_meta WHERE key = 'library_installed'").fetchall()
            if not installed:
                # A new store starts with the library of computed traits marketers ask for.
                catalog = library_catalog(catalog)
                run(cur, "INSERT OR REPLACE INTO profile_meta VALUES ('library_installed', 'yes')")
            self.install(cur, catalog)
        finally:
            cur.close()

    def reset(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Empties everything the log rebuilds; memberships stay to be compared with the rebuilt ones."""
        for table in RESET_TABLES:
            run(cur, f"DELETE FROM {table}")
        run(cur, "DELETE FROM profile_meta WHERE key = 'changes_seen'")
        self._rebuilding = True

    def steps(self, batch: Batch) -> list[SqlStep]:
        """The batch's facts and trait observations, then an evaluation of everyone it touched."""
        now = self.clock()
        (batch_facts, add_facts) = facts.fact_steps(self._columns)
        (batch_observations, add_observations) = observation_steps(self.config.ignore_traits)
        backfill, self._rebuilding = self._rebuilding, False
        self._evaluated = now
        if batch.full:
            out = [batch_facts, add_facts, batch_observations, add_observations]
            out += self._at(now, True, lambda plan: self._evaluation(plan, True, batch.hi, backfill))
            return out + _SEEN + _cleanup()
        # The batch's facts and observations go into their tables after the evaluation has read
        # the people's earlier ones, which it finds faster in tables the transaction has not
        # written to (see `Plan.steps`). A small batch's temporary tables are small and replaced by
        # the next one; dropping them would cost a statement each.
        out = [batch_facts, batch_observations, _affected(now_literal(now), batch)]
        out += self._at(
            now, False, lambda plan: self._evaluation(plan, False, batch.hi, backfill, pending=True)
        )
        return [*out, add_facts, add_observations, *_SEEN]

    def refresh(self, cur: duckdb.DuckDBPyConnection) -> list[SqlStep]:
        """An evaluation of the people merged, split or due since the last one, if there are any."""
        now = self.clock()
        nl = now_literal(now)
        seq = self._offset(cur)
        if self._quantiles_due(cur, now):
            steps = self._at(
                now,
                True,
                lambda plan: self._evaluation(plan, True, seq, False, golden=False, quantiles="refresh"),
            )
            return [*steps, *_SEEN, *_cleanup()]
        due, changed = run(
            cur,
            f"""SELECT EXISTS (SELECT 1 FROM profile_schedule WHERE next_check <= {nl}),
                       EXISTS (SELECT 1 FROM profile_changes WHERE changed_at > {_WATERMARK})
                       OR EXISTS (SELECT 1 FROM profile_dirty)""",
        ).fetchone() or (False, False)
        if not (due or changed):
            return []
        last = self._evaluated
        if not changed and last is not None and now - last < timedelta(seconds=self.config.tick_seconds):
            return []  # the next micro-batch or tick evaluates them (see `ProfilesConfig.tick_seconds`)
        self._evaluated = now
        # Time alone changes no golden record: a tick with no merge or split leaves it alone.
        steps = self._at(
            now, False, lambda plan: self._evaluation(plan, False, seq, False, golden=bool(changed))
        )
        return [_affected(nl, None), *steps, *_SEEN]

    def personal_data(self) -> list[PersonalDataTable]:
        """The stage's tables holding data about people, for access export and erasure."""
        keys, events, profiles = (
            "(SELECT k FROM _pp_keys)",
            "(SELECT seq FROM _pp_events)",
            "(SELECT profile_id FROM _pp_profiles)",
        )
        return [
            PersonalDataTable("profile_facts", f"seq IN {events} OR k IN {keys}", order_by="seq"),
            PersonalDataTable("trait_observations", f"seq IN {events} OR k IN {keys}", order_by="ts, seq"),
            PersonalDataTable("profile_traits", f"profile_id IN {profiles}", order_by="trait"),
            PersonalDataTable("profile_computed", f"profile_id IN {profiles}"),
            PersonalDataTable("segment_members", f"profile_id IN {profiles}", order_by="segment"),
            PersonalDataTable("segment_changes", f"profile_id IN {profiles}", order_by="id"),
            PersonalDataTable("profile_schedule", f"profile_id IN {profiles}"),
            PersonalDataTable("profile_dirty", f"profile_id IN {profiles}"),
        ]

    # -- definitions ---------------------------------------------------------------------------------

    def plan(self, now: datetime, catalog: Catalog | None = None, full: bool = True) -> Plan:
        """The catalog in force (or another) compiled for evaluation time `now`."""
        plan = compile_plan(catalog or self.catalog, now, self._types, self._consent, full)
        if plan.problems:
            raise DefinitionError("definitions", None, plan.problems)
        return plan

    def _at(self, now: datetime, full: bool, build: Callable[[Plan], list[SqlStep]]) -> list[SqlStep]:
        """The steps `build` makes from the catalog in force, compiled for evaluation time `now`.

        Compiling the catalog (sqlglot, in Python) was ~40% of the processor's time holding the GIL
        in a micro-batch, where it competes with the collector's requests. The plan is compiled
        once per catalog at a stand-in time and the stand-in's literal replaced in each statement;
        where that would not give what compiling at `now` gives (a definition that does arithmetic
        on the time in Python), every batch compiles afresh.
        """
        key = (full, self._consent, tuple(sorted(self._types.items())))
        cached = self._templates.get(key)
        if cached is None or cached[0] is not self.catalog:
            cached = (self.catalog, self._template(full, build))
            self._templates = {k: v for k, v in self._templates.items() if v[0] is self.catalog}
            self._templates[key] = cached
        template = cached[1]
        if template is None:
            return build(self.plan(now, full=full))
        stand_in, real = time_text(_STAND_IN), time_text(now)
        return [SqlStep(s.sql.replace(stand_in, real), s.output) for s in build(template)]

    def _template(self, full: bool, build: Callable[[Plan], list[SqlStep]]) -> Plan | None:
        """The catalog in force compiled at the stand-in time, or None if another time changes more."""
        template = self.plan(_STAND_IN, full=full)
        check = self.plan(_CHECK, full=full)
        stand_in, other = time_text(_STAND_IN), time_text(_CHECK)
        if [s.sql.replace(stand_in, other) for s in build(template)] != [s.sql for s in build(check)]:
            log.info(
                "the definitions' SQL depends on the evaluation time beyond its literal: compiled per batch"
            )
            return None
        return template

    def check(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog) -> Plan:
        """Compiles a catalog against this store (raising DefinitionError with every problem)."""
        now = self.clock()
        types = trait_types(cur, catalog, now) if not _trait_problems(catalog, now) else {}
        plan = compile_plan(catalog, now, types, self._has_consent(cur))
        if plan.problems:
            raise DefinitionError("definitions", None, plan.problems)
        return plan

    def install(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, force: bool = False) -> bool:
        """Puts a catalog in force: adds the columns it needs, saves it and evaluates everyone if it changed.

        Runs with no micro-batch in progress (at setup, or under `Processor.exclusive`). Returns
        whether everyone was evaluated.
        """
        assert self._db is not None
        db = self._db
        now = self.clock()
        self._consent = self._has_consent(cur)
        compile_traits_only = compile_plan(Catalog(catalog.traits), now, {}, self._consent)
        if compile_traits_only.problems:
            # Report the segments' problems too, as if every defined trait had compiled.
            defined = {t.name: "VARCHAR" for t in catalog.traits}
            problems = compile_plan(catalog, now, defined, self._consent).problems
            raise DefinitionError("definitions", None, problems)
        facts.add_fields(db, cur, compile_traits_only.fields.values())
        plan = self.check(cur, catalog)
        facts.add_fields(db, cur, plan.fields.values())
        self._columns = facts.stored_fields(cur)
        types = describe(cur, plan)
        self._ensure_columns(cur, types)
        self._types = trait_types(cur, catalog, now)
        fingerprint = catalog.fingerprint()
        meta = dict(run(cur, "SELECT key, value FROM profile_meta").fetchall())
        changed = force or meta.get("fingerprint") != fingerprint
        # The golden record depends on the survivorship settings, not on the definitions.
        policies = self._policies_fingerprint()
        golden = meta.get("policies") != policies
        old = self.catalog if self.catalog.traits or self.catalog.segments else load_catalog(cur)
        cur.execute("BEGIN")
        try:
            for sql, params in save_steps(old, catalog):
                run(cur, sql, params)
            if changed or golden:
                steps = self._evaluation(
                    plan, True, self._offset(cur), True, golden=golden, quantiles="refresh"
                )
                run_steps(cur, self.name, [*steps, *_cleanup()])
                run(cur, "INSERT OR REPLACE INTO profile_meta VALUES ('fingerprint', ?)", [fingerprint])
                run(cur, "INSERT OR REPLACE INTO profile_meta VALUES ('policies', ?)", [policies])
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise
        self.catalog = load_catalog(cur)
        return changed

    def _policies_fingerprint(self) -> str:
        c = self.config
        return msgspec.json.encode([c.default_policy, sorted(msgspec.to_builtins(c.traits).items())]).decode()

    def refresh_columns(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Takes note of fact columns added since (a preview may add one)."""
        self._columns = facts.stored_fields(cur)

    # -- internals -----------------------------------------------------------------------------------

    def _evaluation(
        self,
        plan: Plan,
        full: bool,
        seq: int,
        backfill: bool,
        golden: bool = True,
        quantiles: str = "missing",
        pending: bool = False,
    ) -> list[SqlStep]:
        policy, traits = self.config.default_policy, self.config.traits
        steps = plan.steps(full, seq, policy, traits, backfill, golden, quantiles, pending)
        if full:
            steps += plan.cleanup(full)
        if full and quantiles == "refresh":
            steps.append(
                SqlStep(
                    f"""INSERT OR REPLACE INTO profile_meta VALUES
                    ('quantiles_at', CAST({plan.evaluation.now} AS VARCHAR)),
                    ('quantiles_people', (SELECT CAST(count(*) AS VARCHAR) FROM profile_computed))""",
                    "profile_meta (quantiles)",
                )
            )
        return steps

    def _quantiles_due(self, cur: duckdb.DuckDBPyConnection, now: datetime) -> bool:
        """Whether quantile thresholds are stale: old, or taken from a population 10% smaller or larger."""
        if not any(t.quantile is not None for t in self.catalog.traits):
            return False
        meta = dict(
            run(
                cur, "SELECT key, value FROM profile_meta WHERE key IN ('quantiles_at', 'quantiles_people')"
            ).fetchall()
        )
        if len(meta) < 2:
            return True
        (people,) = run(cur, "SELECT count(*) FROM profile_computed").fetchone() or (0,)
        then = int(meta["quantiles_people"])
        if abs(int(people) - then) > 0.1 * then:
            return True
        taken = datetime.fromisoformat(meta["quantiles_at"])
        return taken < now - timedelta(hours=self.config.quantile_refresh_hours)

    def _offset(self, cur: duckdb.DuckDBPyConnection) -> int:
        rows = run(cur, 'SELECT "offset" FROM stage_offsets WHERE stage = ?', [self.name]).fetchall()
        return int(rows[0][0]) if rows else 0

    def _has_consent(self, cur: duckdb.DuckDBPyConnection) -> bool:
        rows = run(
            cur,
            """SELECT 1 FROM duckdb_views() WHERE view_name = ?
            UNION ALL SELECT 1 FROM duckdb_tables() WHERE table_name = ?""",
            [CONSENT_VIEW, CONSENT_VIEW],
        ).fetchall()
        return bool(rows)

    def _ensure_columns(self, cur: duckdb.DuckDBPyConnection, types: dict[str, str]) -> None:
        """Makes `profile_computed` hold exactly a column per trait and hidden aggregate, of its type."""
        assert self._db is not None
        have = dict(
            run(
                cur,
                """SELECT column_name, data_type FROM information_schema.columns
                WHERE table_name = 'profile_computed' AND table_schema = 'main'""",
            ).fetchall()
        )
        for column, sql_type in have.items():
            if column not in ("profile_id", "_next_change") and types.get(column) != sql_type:
                self._db.ddl(f'ALTER TABLE profile_computed DROP COLUMN "{column}"')
        for column, sql_type in types.items():
            if column != "_next_change" and have.get(column) != sql_type:
                self._db.ddl(f'ALTER TABLE profile_computed ADD COLUMN "{column}" {sql_type}')


def _continue_change_ids(db: Database, cur: duckdb.DuckDBPyConnection) -> None:
    """Starts the count of change ids (`profile_meta` 'last_change_id') where the issued ones end.

    Ids were numbered by a sequence, which costs 0.2 µs a row (0.6 s for the 3.1M entries of a first
    evaluation at 1M people); a store that has one moves over to the count, above every id it
    issued (deleted ones included, so a reader's cursor never sees an id twice).
    """
    if run(cur, "SELECT 1 FROM profile_meta WHERE key = 'last_change_id'").fetchall():
        return
    ((issued,),) = run(cur, "SELECT coalesce(max(id), 0) FROM segment_changes").fetchall()
    sequence = "SELECT 1 FROM duckdb_sequences() WHERE sequence_name = 'segment_change_ids'"
    if run(cur, sequence).fetchall():
        ((next_id,),) = run(cur, "SELECT nextval('segment_change_ids')").fetchall()
        issued = max(issued, next_id - 1)
    run(cur, "INSERT INTO profile_meta VALUES ('last_change_id', ?)", [str(issued)])
    db.ddl("DROP SEQUENCE IF EXISTS segment_change_ids")


def _trait_problems(catalog: Catalog, now: datetime) -> bool:
    return bool(compile_plan(Catalog(catalog.traits), now, {}, False).problems)


def _cleanup() -> list[SqlStep]:
    return [SqlStep(f"DROP TABLE IF EXISTS {t}", "cleanup") for t in _TEMP]
