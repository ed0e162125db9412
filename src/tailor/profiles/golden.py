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


def observation_steps(ignored: list[str]) -> list[SqlStep]:
    """Steps that add the batch's trait observations (`_pf_obs`) to `trait_observations`."""
    skip = f"AND trait NOT IN ({', '.join(_literal(t) for t in ignored)})" if ignored else ""
    # Keys are folded once per distinct key (the regular expressions cost ~40 us a call).
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_obs AS
            WITH src AS (
                SELECT e.seq, h.k, e.source_id, e.timestamp AS ts,
                       CASE WHEN e.type = 'identify' THEN e.traits
                            ELSE json_extract(e.context, '$.traits')::VARCHAR END AS t
                FROM {BATCH_VIEW} e JOIN identity_event_hubs h ON h.seq = e.seq
                WHERE (e.type = 'identify' AND e.traits LIKE '{{%')
                   OR (e.type <> 'group' AND e.context LIKE '%"traits"%')
            ),
            pairs AS (
                SELECT seq, k, source_id, ts, j.key, CAST(j.value AS VARCHAR) AS value,
                       CASE WHEN j.type = 'VARCHAR' THEN json_extract_string(j.value, '$')
                            ELSE CAST(j.value AS VARCHAR) END
                           AS text
                FROM src, json_each(src.t) j
                WHERE json_type(src.t) = 'OBJECT' AND j.type <> 'NULL'
            ),
            keys AS (
                SELECT key, coalesce(al.trait, f.folded) AS trait
                FROM (SELECT key, {_folded("key")} AS folded FROM (SELECT DISTINCT key FROM pairs)) f
                LEFT JOIN {_ALIASES} USING (folded)
            )
            SELECT seq, k, trait, value, trim(text) AS text, source_id, ts FROM pairs JOIN keys USING (key)
            WHERE trim(text) <> '' AND trait <> '' {skip}""",
            "_pf_obs",
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


def golden_steps(scope: str | None, default: str, policies: Mapping[str, TraitPolicy]) -> list[SqlStep]:
    """Steps that choose the surviving value of every trait of the people in `scope` (all when None).

    `scope` is SQL of a relation with a `profile_id` column.
    """
    people = "" if scope is None else f"WHERE profile_id IN (SELECT profile_id FROM {scope})"
    delete = "DELETE FROM profile_traits" + (
        "" if scope is None else f" WHERE profile_id IN (SELECT profile_id FROM {scope})"
    )
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _pf_golden AS
            WITH nodes AS (SELECT k, profile_id FROM identity_nodes {people}),
            obs AS (SELECT n.profile_id, o.* FROM trait_observations o JOIN nodes n ON n.k = o.k),
            counted AS (
                SELECT *, count(*) OVER (PARTITION BY profile_id, trait, value) AS same,
                       count(*) OVER (PARTITION BY profile_id, trait) AS observations
                FROM obs
            ),
            ranked AS (
                SELECT c.*, coalesce(p.policy, {_literal(default)}) AS policy,
                       coalesce(list_position(p.sources, c.source_id), 1000000) AS source_rank
                FROM counted c LEFT JOIN {policies_sql(policies, "p")} ON p.trait = c.trait
            )
            SELECT profile_id, trait, value, text, source_id, seq, ts AS observed_at, observations, policy
            FROM ranked
            QUALIFY row_number() OVER (
                PARTITION BY profile_id, trait
                ORDER BY CASE policy WHEN 'most_frequent' THEN same
                                     WHEN 'source_priority' THEN -source_rank ELSE 0 END DESC,
                         CASE policy WHEN 'first' THEN -epoch_us(ts) ELSE epoch_us(ts) END DESC,
                         CASE policy WHEN 'first' THEN -seq ELSE seq END DESC
            ) = 1""",
            "_pf_golden",
        ),
        SqlStep(delete, "profile_traits (replaced)"),
        SqlStep("INSERT INTO profile_traits SELECT * FROM _pf_golden", "profile_traits"),
    ]
