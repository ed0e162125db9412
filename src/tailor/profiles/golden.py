"""The golden record: every trait a person was ever given, and the one value that survives.

Traits arrive in identify calls (`traits`), in other calls' `context.traits` and in imported
records. Each is kept as an observation with its provenance (source, event, time) in
`trait_observations`: that is the trait's history. Keys are folded to one spelling (`firstName`,
`First Name` and `first_name` are `first_name`; `surname` is `last_name`, ...). A person's value of
each trait is chosen among the observations of all their identifiers by the trait's survivorship
policy:

- `most_recent` (the default): the latest observation;
- `first`: the earliest non-empty one;
- `most_frequent`: the value observed most often (ties: the latest);
- `source_priority`: from the most trusted source that has one (a list of source ids, most
  trusted first; sources not listed come after them), then the latest.

Since the choice is recomputed from the observations whenever a person's identifiers change, a
merge or split of profiles shows in their traits in the same micro-batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from tailor.process.stage import BATCH_VIEW, SqlStep
from tailor.profiles.comparisons import _literal

POLICIES = ("most_recent", "first", "most_frequent", "source_priority")

ALIASES: dict[str, str] = {
    "firstname": "first_name",
    "fname": "first_name",
    "forename": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "lname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "e_mail": "email",
    "email_address": "email",
    "mobile": "phone",
    "mobile_phone": "phone",
    "phone_number": "phone",
    "telephone": "phone",
    "dob": "birthday",
    "date_of_birth": "birthday",
    "birth_date": "birthday",
    "zip": "postcode",
    "postal_code": "postcode",
    "zip_code": "postcode",
    "full_name": "name",
}
"""Other spellings of common traits, after folding to snake case."""


class TraitPolicy(msgspec.Struct, forbid_unknown_fields=True):
    """How the surviving value of one trait is chosen."""

    policy: str = "most_recent"
    """One of most_recent, first, most_frequent, source_priority."""
    sources: list[str] = msgspec.field(default_factory=list)
    """For source_priority: source ids, most trusted first (e.g. ["import:crm", "web-and-app"])."""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(
                f"unknown survivorship policy {self.policy!r}; policies are {', '.join(POLICIES)}"
            )
        if self.policy == "source_priority" and not self.sources:
            raise ValueError("source_priority needs the list of sources, most trusted first")


DDL = """
CREATE TABLE IF NOT EXISTS trait_observations (
    seq BIGINT NOT NULL,
    k UBIGINT NOT NULL,
    trait VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_traits (
    profile_id VARCHAR NOT NULL,
    trait VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    observations BIGINT NOT NULL,
    policy VARCHAR NOT NULL
);
"""


def _folded(key: str) -> str:
    """SQL folding a trait key to snake case: `firstName` and `First Name` become `first_name`."""
    return f"""trim(regexp_replace(lower(regexp_replace(trim({key}), '([a-z0-9])([A-Z])', '\\1_\\2', 'g')),
                '[^a-z0-9]+', '_', 'g'), '_')"""


_ALIASES = (
    "(VALUES "
    + ", ".join(f"({_literal(a)}, {_literal(t)})" for a, t in ALIASES.items())
    + ") AS al(folded, trait)"
)


PAIRS = """SELECT seq, k, source_id, ts, j.key, CAST(j.value AS VARCHAR) AS value,
                       CASE WHEN j.type = 'VARCHAR' THEN json_extract_string(j.value, '$')
                            ELSE CAST(j.value AS VARCHAR) END
                           AS text
                FROM src, json_each(src.t) j
                WHERE json_type(src.t) = 'OBJECT' AND j.type <> 'NULL'"""
"""The (key, value as JSON, value as text) pairs of each object `src.t`, in DuckDB."""


def observations_query(ignored: list[str], events: str = BATCH_VIEW, pairs: str = PAIRS) -> str:
    """The trait observations of `events` (seq, k, trait, value, text, source_id, ts); `pairs` as `PAIRS`."""
    skip = f"AND trait NOT IN ({', '.join(_literal(t) for t in ignored)})" if ignored else ""
    # Keys are folded once per distinct key (the regular expressions cost ~40 us a call).
    return f"""WITH src AS (
                SELECT e.seq, h.k, e.source_id, e.timestamp AS ts,
                       CASE WHEN e.type = 'identify' THEN e.traits
                            ELSE json_extract(e.context, '$.traits')::VARCHAR END AS t
                FROM {events} e JOIN identity_event_hubs h ON h.seq = e.seq
                WHERE (e.type = 'identify' AND e.traits LIKE '{{%')
                   OR (e.type <> 'group' AND e.context LIKE '%"traits"%')
            ),
            pairs AS (
                {pairs}
            ),
            keys AS (
                SELECT key, coalesce(al.trait, f.folded) AS trait
                FROM (SELECT key, {_folded("key")} AS folded FROM (SELECT DISTINCT key FROM pairs)) f
                LEFT JOIN {_ALIASES} USING (folded)
            )
            SELECT seq, k, trait, value, trim(text) AS text, source_id, ts FROM pairs JOIN keys USING (key)
            WHERE trim(text) <> '' AND trait <> '' {skip}"""


def observation_steps(ignored: list[str]) -> list[SqlStep]:
    """Steps that add the batch's trait observations (`_pf_obs`) to `trait_observations`."""
    return [
        SqlStep(
            f"CREATE OR REPLACE TEMP TABLE _pf_obs AS\n            {observations_query(ignored)}", "_pf_obs"
        ),
        SqlStep("INSERT INTO trait_observations SELECT * FROM _pf_obs", "trait_observations"),
    ]


def policies_sql(policies: Mapping[str, TraitPolicy], alias: str) -> str:
    """A VALUES relation (trait, policy, sources) of the configured traits."""
    rows = [
        f"({_literal(t)}, {_literal(p.policy)}, [{', '.join(_literal(s) for s in p.sources)}]::VARCHAR[])"
        for t, p in sorted(policies.items())
    ]
    rows.append("('', 'most_recent', []::VARCHAR[])")  # VALUES cannot be empty; no trait is named ''
    return "(VALUES " + ", ".join(rows) + f") AS {alias}(trait, policy, sources)"


def _choices(default: str, policies: Mapping[str, TraitPolicy]) -> str:
    """SQL of the surviving observation of each (profile, trait) of `obs`, one aggregate per policy."""
    keep = "struct_pack(value := value, text := text, source_id := source_id, seq := seq, ts := ts)"
    by_policy: dict[str, list[str]] = {}
    for trait, p in sorted(policies.items()):
        by_policy.setdefault(p.policy, []).append(trait)
    configured = ", ".join(_literal(t) for t in sorted(policies)) or "''"

    def only(traits: list[str]) -> str:
        return f"trait IN ({', '.join(_literal(t) for t in traits)})"

    def latest(where: str, pick: str, order: str) -> str:
        return f"""SELECT profile_id, trait, {pick}({keep}, {order}) AS w, count(*) AS n, {{policy}} AS policy
                   FROM obs WHERE {where} GROUP BY profile_id, trait"""

    parts = []
    rest = f"trait NOT IN ({configured})"
    default_pick = "arg_min" if default == "first" else "arg_max"
    if default == "most_frequent":
        parts.append(_most_frequent(rest, keep, default))
    else:
        parts.append(latest(rest, default_pick, "(epoch_us(ts), seq)").format(policy=_literal(default)))
    for policy, traits in by_policy.items():
        if policy == "most_frequent":
            parts.append(_most_frequent(only(traits), keep, policy))
        elif policy == "source_priority":
            for t in traits:
                ranks = "[" + ", ".join(_literal(x) for x in policies[t].sources) + "]"
                order = f"(-coalesce(list_position({ranks}, source_id), 1000000), epoch_us(ts), seq)"
                parts.append(latest(only([t]), "arg_max", order).format(policy=_literal(policy)))
        else:
            pick = "arg_min" if policy == "first" else "arg_max"
            parts.append(latest(only(traits), pick, "(epoch_us(ts), seq)").format(policy=_literal(policy)))
    return " UNION ALL ".join(parts)


def _most_frequent(where: str, keep: str, policy: str) -> str:
    """The value given most often; ties go to the one given last."""
    return f"""SELECT profile_id, trait, arg_max(w, (same, epoch_us(w.ts), w.seq)) AS w, sum(same) AS n,
                      {_literal(policy)} AS policy
               FROM (SELECT profile_id, trait, value, arg_max({keep}, (epoch_us(ts), seq)) AS w,
                            count(*) AS same
                     FROM obs WHERE {where} GROUP BY profile_id, trait, value)
               GROUP BY profile_id, trait"""


def golden_steps(
    scope: str | None, default: str, policies: Mapping[str, TraitPolicy], pending: bool = False
) -> list[SqlStep]:
    """Steps that choose the surviving value of every trait of the people in `scope` (all when None).

    `scope` is SQL of a relation with a `profile_id` column. With `pending`, the batch's
    observations are still in `_pf_obs` only (see `Plan.steps`).
    """
    # `_pf_keys` (the scope's identifiers with their profile) is made by the evaluation first; a
    # few people's observations are found by key, then fetched by row id (see `Plan.steps`).
    if scope is None:
        observations = "SELECT n.profile_id, o.* FROM trait_observations o JOIN identity_nodes n ON n.k = o.k"
    else:
        observations = """SELECT rr.profile_id, o.* EXCLUDE (_r)
            FROM (SELECT *, rowid AS _r FROM trait_observations WHERE rowid IN (
                SELECT o.rowid FROM trait_observations o JOIN _pf_keys n ON n.k = o.k)) o
            JOIN (SELECT o.rowid AS r, n.profile_id FROM trait_observations o JOIN _pf_keys n ON n.k = o.k) rr
                ON rr.r = o._r"""
        if pending:
            observations += (
                " UNION ALL BY NAME SELECT n.profile_id, o.* FROM _pf_obs o JOIN _pf_keys n ON n.k = o.k"
            )
    delete = "DELETE FROM profile_traits" + (
        "" if scope is None else f" WHERE profile_id IN (SELECT profile_id FROM {scope})"
    )
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_golden AS
            WITH obs AS ({observations})
            SELECT profile_id, trait, w.value, w.text, w.source_id, w.seq, w.ts AS observed_at, n, policy
            FROM ({_choices(default, policies)})""",
            "_pf_golden",
        ),
        SqlStep(delete, "profile_traits (replaced)"),
        SqlStep("INSERT INTO profile_traits SELECT * FROM _pf_golden", "profile_traits"),
    ]
