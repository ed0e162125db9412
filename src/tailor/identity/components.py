"""Profiles as connected components of the linking edges, recomputed for the components a batch touches.

Every identifier keeps the label of its candidate component: its connected component over the
edges that neither the shared-device rule nor a split has cut, labelled by the smallest key in
it. A batch recomputes only the candidate components of its identifiers (and of the nodes an
override touches): their nodes are found by label, their edges by key, so a batch reads two
narrow slices of the graph, never the whole of it.

Within a candidate component the outcome is a pure function of its edges, whatever the batches
they came in:

- every node joins the user id nearest to it (fewest hops, then the earliest evidence, then the
  smaller user id), so a profile never holds two user ids; an edge between nodes that joined
  different user ids is refused;
- the remaining nodes (no user id in reach) form components by plain label propagation;
- per-type limits: where a profile so formed holds more values of a type than its limit (say six
  emails where five are allowed), the values seen last are over the limit; they are detached
  (each linked to nothing) and the profiles are formed again without them, and the edges that
  would have joined them are refused with the limit as the reason;
- a profile's id is derived from its earliest seen node, so when profiles merge the older id
  survives, and a profile that only grows keeps its id.

Every merge and split of a live profile is logged in `profile_changes` with the batch's last seq,
for the stages downstream (profiles, segments, journeys) to follow.

Inputs: `_idg_seedc(component)` (the labels of the affected components), `_idg_bnodes` (new
nodes: k, type, value, first_seq), `_idg_be` (the batch's edges, `cut` and `reason` set where an
override cuts them) and `_idg_keys` (the batch's identifiers).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from tailor.identity.arrays import components_step, grouping_step, groups_step
from tailor.process.stage import PyStep, SqlStep

PROFILE_ID = "'prof_' || left(md5({t} || ':' || {v}), 16)"
"""How a profile id is derived from the type and value of its earliest seen node."""

PROFILE_HEX = (
    "CASE WHEN regexp_full_match({0}, 'prof_[0-9a-f]{{16}}') THEN ('0x' || substr({0}, 6))::UBIGINT"
    " ELSE error('not a profile id of the form prof_<16 hex digits>: ' || {0}) END"
)
"""SQL for the 64-bit number a profile id (`PROFILE_ID`) spells in hex, as the in-memory index keeps it."""


def profile_id_text(numbers: npt.NDArray[np.uint64]) -> list[str]:
    """The profile ids that `PROFILE_HEX` numbers spell."""
    return [f"prof_{n:016x}" for n in numbers.tolist()]


STORED_NODES = """SELECT k, type, value, first_seq, shared, component, profile_id
FROM identity_nodes WHERE component IN (SELECT component FROM _idg_seedc)"""
"""SQL for the stored nodes of the affected components, by scanning (see `component_steps`)."""

STORED_EDGES = """SELECT a, b, a_type, a_value, b_type, b_value, seq, linking, reason, shared, cut
FROM identity_edges WHERE a IN (SELECT k FROM _idg_cn0) OR b IN (SELECT k FROM _idg_cn0)"""
"""SQL for the stored edges touching those nodes or new ones, by scanning (see `component_steps`)."""

DEFAULT_LIMITS: Mapping[str, int] = {
    "crm_id": 5,
    "email": 5,
    "phone": 5,
    "device_id": 20,
    "anonymous_id": 200,
}
"""How many values of a type one profile may hold (one user id always; see the module text)."""

SHARED_TYPES = ("anonymous_id", "device_id", "phone", "email")
"""Identifier types that people share: a family tablet, a household landline, a shared mailbox."""

NON_LINKING_TYPES = ("landline",)
"""Identifier types kept as evidence that link nothing (see `IdentifierNormaliser.retype`)."""

ANCHOR_TYPES = ("user_id", "crm_id")
"""Identifier types that each name one person. A shared-type value seen with two values of one
anchor type (two user ids, two CRM customers) is shared and links none of them."""


def component_steps(
    hi: int,
    limits: Mapping[str, int] = DEFAULT_LIMITS,
    stored_nodes: str = STORED_NODES,
    stored_edges: str = STORED_EDGES,
) -> list[SqlStep | PyStep]:
    """Steps that recompute components, profiles, aliases and edge verdicts around the batch.

    `hi` is the batch's last seq, with which merges and splits are logged. `stored_nodes` and
    `stored_edges` are queries for the graph's slice around the batch: by default scans of the
    tables; the identity stage passes tables it filled from its in-memory index instead.
    """
    profile_id = PROFILE_ID.format(t="e.first.t", v="e.first.v")
    caps = " ".join(f"WHEN '{t}' THEN {int(n)}" for t, n in sorted(limits.items()))
    cap = f"CASE c.type {caps} ELSE NULL END" if caps else "NULL"
    shared_types = ", ".join(f"'{t}'" for t in SHARED_TYPES)
    anchors = ", ".join(f"'{t}'" for t in ANCHOR_TYPES)
    non_linking = ", ".join(f"'{t}'" for t in NON_LINKING_TYPES)
    return [
        # The nodes of every affected candidate component, by label, and the new nodes.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_cn0 AS
            SELECT k, type, value, first_seq, component AS old_component, profile_id AS old_profile,
                   shared AS old_shared
            FROM ({stored_nodes})
            UNION ALL
            SELECT k, type, value, first_seq, NULL, NULL, FALSE FROM _idg_bnodes""",
            "_idg_cn0",
        ),
        # Their stored edges (an edge a split or the shared rule cut may lead out of them).
        SqlStep(
            f"CREATE OR REPLACE TEMP TABLE _idg_se AS {stored_edges}",
            "_idg_se",
        ),
        SqlStep(
            "CREATE OR REPLACE TEMP TABLE _idg_benew AS SELECT * FROM _idg_be ANTI JOIN _idg_se USING (a, b)",
            "_idg_benew",
        ),
        # Shared identifiers: for each anonymous id, device id, phone and email of the batch, the
        # most values of one anchor type (user ids, CRM ids) it has been seen with.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_touched_users AS
            WITH touched AS (SELECT k FROM _idg_keys WHERE type IN ({shared_types})),
            edges AS (
                SELECT a, b, a_type, b_type FROM _idg_se UNION SELECT a, b, a_type, b_type FROM _idg_be
            ),
            links AS (
                SELECT a AS k, b AS anchor, b_type AS anchor_type FROM edges
                WHERE b_type IN ({anchors}) AND a_type IN ({shared_types}) AND a IN (SELECT k FROM touched)
                UNION
                SELECT b, a, a_type FROM edges
                WHERE a_type IN ({anchors}) AND b_type IN ({shared_types}) AND b IN (SELECT k FROM touched)
            ),
            counted AS (SELECT k, anchor_type, count(*) AS n FROM links GROUP BY k, anchor_type)
            SELECT k, max(n) AS users, arg_max(anchor_type, (n, anchor_type)) AS anchor_type
            FROM counted GROUP BY k""",
            "_idg_touched_users",
        ),
        # Node ids from row ids (dense in a table just created; from 2^55 inside a transaction): a
        # row_number() cost a rebuild 2.7 s at 4.9M identifiers. The arrays size themselves by the
        # largest id, and an id past 32 bits fails the cast rather than wrapping.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_cn AS
            SELECT CAST(c.rowid - (SELECT min(rowid) FROM _idg_cn0) + 1 AS INTEGER) AS id, c.*,
                   old_shared OR coalesce(u.users >= 2, FALSE) AS shared, u.users, u.anchor_type,
                   {'s': first_seq, 't': type, 'v': value} AS first
            FROM _idg_cn0 c LEFT JOIN _idg_touched_users u USING (k)""",
            "_idg_cn",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_ce AS
            WITH every AS (
                SELECT a, b, a_type, a_value, b_type, b_value, seq, linking, reason, shared, cut, FALSE AS new
                FROM _idg_se
                UNION ALL
                SELECT a, b, a_type, a_value, b_type, b_value, seq, FALSE, reason, FALSE, cut, TRUE
                FROM _idg_benew
            )
            SELECT every.*, ca.id AS src, cb.id AS dst,
                   CASE WHEN every.b_type IN ({anchors}) AND every.a_type IN ({shared_types})
                             AND coalesce(ca.shared, FALSE) THEN ca.id
                        WHEN every.a_type IN ({anchors}) AND every.b_type IN ({shared_types})
                             AND coalesce(cb.shared, FALSE) THEN cb.id END AS shared_end,
                   ca.id IS NULL OR cb.id IS NULL AS outside,
                   every.a_type IN ({non_linking}) OR every.b_type IN ({non_linking}) AS non_linking,
                   every.cut OR shared_end IS NOT NULL OR outside OR non_linking AS excluded
            FROM every LEFT JOIN _idg_cn ca ON ca.k = every.a LEFT JOIN _idg_cn cb ON cb.k = every.b""",
            "_idg_ce",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_adj AS
            SELECT src, dst, seq FROM _idg_ce WHERE NOT excluded AND src IS NOT NULL AND dst IS NOT NULL""",
            "_idg_adj",
        ),
        # Candidate components, labelled by their smallest key.
        components_step(),
        SqlStep("CREATE OR REPLACE TEMP TABLE _idg_all AS SELECT id FROM _idg_cn", "_idg_all"),
        grouping_step("_idg_adj", "_idg_all", "_idg_grp1"),
        # Values over their type's limit: those seen last in each first-pass profile.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_over AS
            WITH capped AS (
                SELECT c.id, c.k, c.type, c.value, c.first, g.grp, {cap} AS cap
                FROM _idg_cn c JOIN _idg_grp1 g USING (id) WHERE cap IS NOT NULL
            ),
            crowded AS (SELECT grp, type FROM capped GROUP BY grp, type HAVING count(*) > any_value(cap))
            SELECT id, k, type, value, grp, cap FROM (
                SELECT c.*, row_number() OVER (PARTITION BY c.grp, c.type ORDER BY c.first) AS rank
                FROM capped c SEMI JOIN crowded USING (grp, type)
            ) WHERE rank > cap""",
            "_idg_over",
        ),
        # The second pass regroups only the candidate components holding a value over a limit.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_redo AS
            SELECT id FROM _idg_comp WHERE component IN (
                SELECT component FROM _idg_comp WHERE id IN (SELECT id FROM _idg_over))""",
            "_idg_redo",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_adj2 AS
            SELECT src, dst, seq FROM _idg_adj
            WHERE src IN (SELECT id FROM _idg_redo)
              AND src NOT IN (SELECT id FROM _idg_over) AND dst NOT IN (SELECT id FROM _idg_over)""",
            "_idg_adj2",
        ),
        grouping_step("_idg_adj2", "_idg_redo", "_idg_grp2"),
        groups_step(),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_new AS
            WITH grouped AS (SELECT c.*, g.grp, g.component FROM _idg_cn c JOIN _idg_groups g USING (id)),
            named AS (SELECT grp, {profile_id} AS profile_id FROM (
                SELECT grp, min(first) AS first FROM grouped GROUP BY grp) e)
            SELECT g.*, n.profile_id FROM grouped g JOIN named n USING (grp)""",
            "_idg_new",
        ),
        # An old id that no longer names a profile was absorbed: it now points at the profile of
        # the node it was derived from.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_absorbed AS
            WITH old AS (
                SELECT old_profile AS old_id, arg_min(profile_id, first) AS target
                FROM _idg_new WHERE old_profile IS NOT NULL GROUP BY old_profile
            )
            SELECT old_id, target FROM old WHERE old_id NOT IN (SELECT profile_id FROM _idg_new)""",
            "_idg_absorbed",
        ),
        # Edge verdicts: a cut edge keeps its reason; a shared one names the device and how many
        # people it was seen with; the rest link when both ends joined the same profile. An edge
        # leading out of the affected components (only ever a cut or shared one) keeps its verdict,
        # but for the count of people when its shared end was seen again.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_verdict AS
            SELECT e.a, e.b, e.a_type, e.a_value, e.b_type, e.b_value, e.new,
                   CASE WHEN e.cut THEN FALSE
                        WHEN e.shared_end IS NOT NULL OR e.non_linking THEN TRUE
                        ELSE e.outside AND e.shared END AS shared,
                   e.cut,
                   CASE WHEN e.excluded THEN FALSE ELSE ga.grp = gb.grp END AS linking,
                   CASE
                       WHEN e.cut THEN e.reason
                       WHEN e.non_linking
                       THEN CASE WHEN e.a_type IN ({non_linking}) THEN e.a_type || ' ' || e.a_value
                                 ELSE e.b_type || ' ' || e.b_value END
                            || ' is a fixed-line number, shared by a household or an office, '
                            || 'so it links no one'
                       WHEN e.shared_end IS NOT NULL AND cs.users IS NOT NULL
                       THEN CASE WHEN cs.type IN ('anonymous_id', 'device_id') THEN 'shared device: '
                                 ELSE 'shared identifier: ' END
                            || cs.type || ' ' || cs.value || ' was seen with ' || cs.users || ' '
                            || replace(cs.anchor_type, '_id', '') || ' ids, so it links none of them'
                       WHEN e.excluded THEN e.reason
                       WHEN ga.grp = gb.grp THEN NULL
                       WHEN o.id IS NOT NULL
                       THEN 'limit: refused, as the profile already holds ' || o.cap || ' ' || o.type
                            || ' values and ' || o.type || ' ' || o.value || ' was seen after them'
                       ELSE 'one user_id per profile: refused, as it would join user_id '
                            || ua.value || ' and user_id ' || ub.value
                   END AS reason,
                   e.linking AS old_linking, e.reason AS old_reason, e.shared AS old_shared, e.seq
            FROM (
                -- The end over a limit that the reason names, when both are: the one of least key.
                SELECT e.*, CASE WHEN ob.id IS NULL OR oa.k < ob.k THEN oa.id ELSE ob.id END AS over_id
                FROM _idg_ce e LEFT JOIN _idg_over oa ON oa.id = e.src LEFT JOIN _idg_over ob ON ob.id = e.dst
            ) e
            LEFT JOIN _idg_cn cs ON cs.id = e.shared_end
            LEFT JOIN _idg_new ga ON ga.id = e.src LEFT JOIN _idg_new gb ON gb.id = e.dst
            LEFT JOIN _idg_over o ON o.id = e.over_id
            LEFT JOIN _idg_cn ua ON ua.id = ga.grp LEFT JOIN _idg_cn ub ON ub.id = gb.grp""",
            "_idg_verdict",
        ),
        *write_steps(hi),
    ]


def write_steps(hi: int, prefix: str = "_idg") -> list[SqlStep]:
    """Steps that write a batch's outcome (`_idg_new`, `_idg_absorbed`, `_idg_verdict`, `_idg_benew`,
    or the same names under another `prefix`) to the tables: merges and splits logged with `hi`,
    aliases, nodes and edges."""
    return [
        # A profile id that appears for nodes of a profile that still exists split off it.
        SqlStep(
            f"""INSERT INTO profile_changes
            SELECT {int(hi)}, 'merged', target, old_id, now() FROM {prefix}_absorbed
            UNION ALL
            SELECT DISTINCT {int(hi)}, 'split', profile_id, old_profile, now()
            FROM {prefix}_new
            WHERE profile_id <> old_profile
              AND old_profile IN (SELECT profile_id FROM {prefix}_new)
              AND old_profile NOT IN (SELECT old_id FROM {prefix}_absorbed)""",
            "profile_changes",
        ),
        SqlStep(
            f"""UPDATE profile_aliases SET profile_id = a.target
            FROM {prefix}_absorbed a WHERE profile_aliases.profile_id = a.old_id""",
            "profile_aliases (repointed)",
        ),
        SqlStep(
            f"""INSERT INTO profile_aliases SELECT old_id, target FROM {prefix}_absorbed
            ON CONFLICT DO UPDATE SET profile_id = excluded.profile_id""",
            "profile_aliases",
        ),
        SqlStep(
            f"DELETE FROM profile_aliases WHERE old_id IN (SELECT profile_id FROM {prefix}_new)",
            "profile_aliases (revived)",
        ),
        # Nodes: changed ones updated, new ones inserted.
        SqlStep(
            f"""UPDATE identity_nodes
            SET component = n.component, profile_id = n.profile_id, shared = n.shared
            FROM (SELECT k, component, profile_id, shared FROM {prefix}_new
                  WHERE old_component IS NOT NULL
                    AND (component <> old_component OR profile_id <> old_profile OR shared <> old_shared)) n
            WHERE identity_nodes.k = n.k""",
            "identity_nodes (changed)",
        ),
        SqlStep(
            f"""INSERT INTO identity_nodes
            SELECT k, type, value, first_seq, shared, component, profile_id FROM {prefix}_new
            WHERE old_component IS NULL""",
            "identity_nodes (new)",
        ),
        SqlStep(
            f"""UPDATE identity_edges SET linking = v.linking, reason = v.reason, shared = v.shared
            FROM (SELECT a, b, linking, reason, shared FROM {prefix}_verdict
                  WHERE NOT new AND (linking IS DISTINCT FROM old_linking
                                     OR reason IS DISTINCT FROM old_reason
                                     OR shared IS DISTINCT FROM old_shared)) v
            WHERE identity_edges.a = v.a AND identity_edges.b = v.b""",
            "identity_edges (verdicts)",
        ),
        SqlStep(
            f"""INSERT INTO identity_edges
            SELECT v.a, v.b, v.a_type, v.a_value, v.b_type, v.b_value, n.seq, n.message_id, n.kind,
                   v.linking, v.reason, v.shared, v.cut
            FROM {prefix}_verdict v JOIN {prefix}_benew n USING (a, b) WHERE v.new""",
            "identity_edges (new)",
        ),
    ]
