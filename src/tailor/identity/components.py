"""Profiles as connected components of the linking edges, recomputed for the components a batch touches.

The outcome for a component is a pure function of its edges, whatever the batches they came in:

- the candidate component of a node is its connected component over the edges that neither the
  shared-device rule nor a split has cut;
- within it every node joins the user id nearest to it (fewest hops, then the earliest evidence,
  then the smaller user id), so a component never holds two user ids; an edge between nodes that
  joined different user ids is refused;
- the remaining nodes (no user id in reach) form components by plain label propagation;
- per-type limits: where a profile so formed holds more values of a type than its limit (say six
  emails where five are allowed), the values seen last are over the limit; they are detached
  (each linked to nothing) and the profiles are formed again without them, and the edges that
  would have joined them are refused with the limit as the reason;
- a profile's id is derived from its earliest seen node, so when profiles merge the older id
  survives, and a profile that only grows keeps its id.

Every merge and split of a live profile is logged in `profile_changes` with the batch's last seq,
for the stages downstream (profiles, segments, journeys) to follow.
"""

from __future__ import annotations

from collections.abc import Mapping

from tailor.process.stage import SqlStep

PROFILE_ID = "'prof_' || left(md5({t} || ':' || {v}), 16)"
"""How a profile id is derived from the type and value of its earliest seen node."""

DEFAULT_LIMITS: Mapping[str, int] = {
    "crm_id": 5,
    "email": 5,
    "phone": 5,
    "device_id": 20,
    "anonymous_id": 200,
}
"""How many values of a type one profile may hold (one user id always; see the module text)."""

# Both directions of the edges that neither the shared-device rule nor a split has cut.
_CANDIDATE_LINKS = """(SELECT a_type AS s_type, a_value AS s_value, b_type AS d_type, b_value AS d_value
     FROM identity_edges WHERE NOT shared AND NOT cut
     UNION ALL
     SELECT b_type, b_value, a_type, a_value FROM identity_edges WHERE NOT shared AND NOT cut)"""


def _grouping(adj: str, nodes: str, out: str) -> list[SqlStep]:
    """Steps that group `nodes` (ids of `_idg_cn`) over `adj`: by nearest user id, else by component."""
    return [
        # Nearest user id by multi-source relaxation: a node's tuple only ever decreases, so this
        # ends, and its fixed point is unique whatever order the relaxations ran in.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_near AS
            WITH RECURSIVE adj AS (
                SELECT src, dst, seq FROM {adj} UNION ALL SELECT dst, src, seq FROM {adj}
            ),
            near(node, best) USING KEY (node) AS (
                SELECT id, {{'d': 0, 's': CAST(0 AS BIGINT), 'u': value}} FROM _idg_cn
                WHERE type = 'user_id' AND id IN (SELECT id FROM {nodes})
                UNION
                SELECT a.dst, min({{'d': w.best.d + 1, 's': a.seq, 'u': w.best.u}})
                FROM near w JOIN adj a ON a.src = w.node
                LEFT JOIN recurring.near r ON r.node = a.dst
                GROUP BY a.dst
                HAVING any_value(r.best) IS NULL
                    OR min({{'d': w.best.d + 1, 's': a.seq, 'u': w.best.u}}) < any_value(r.best)
            )
            SELECT node, best.u AS user_id FROM near""",
            "_idg_near",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_cc AS
            WITH RECURSIVE free AS (
                SELECT c.id, c.first FROM _idg_cn c SEMI JOIN {nodes} n ON n.id = c.id
                ANTI JOIN _idg_near r ON r.node = c.id
            ),
            adj AS (
                SELECT src, dst FROM {adj} WHERE src IN (SELECT id FROM free)
                UNION ALL SELECT dst, src FROM {adj} WHERE src IN (SELECT id FROM free)
            ),
            lp(node, label) USING KEY (node) AS (
                SELECT id, first FROM free
                UNION
                SELECT a.dst, min(w.label) FROM lp w JOIN adj a ON a.src = w.node
                JOIN recurring.lp r ON r.node = a.dst
                GROUP BY a.dst HAVING min(w.label) < any_value(r.label)
            )
            SELECT node, label FROM lp""",
            "_idg_cc",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE {out} AS
            SELECT c.id, coalesce('u:' || n.user_id, 'c:' || cc.label.t || ':' || cc.label.v) AS grp
            FROM _idg_cn c SEMI JOIN {nodes} m ON m.id = c.id
            LEFT JOIN _idg_near n ON n.node = c.id LEFT JOIN _idg_cc cc ON cc.node = c.id""",
            out,
        ),
    ]


def component_steps(hi: int, limits: Mapping[str, int] = DEFAULT_LIMITS) -> list[SqlStep]:
    """Steps that recompute profiles, aliases and edge verdicts of the components around `_idg_seeds`.

    `hi` is the batch's last seq, with which merges and splits are logged.
    """
    profile_id = PROFILE_ID.format(t="e.first.t", v="e.first.v")
    caps = " ".join(f"WHEN '{t}' THEN {int(n)}" for t, n in sorted(limits.items()))
    cap = f"CASE c.type {caps} ELSE NULL END" if caps else "NULL"
    return [
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_cn AS
            WITH RECURSIVE reach(type, value) AS (
                SELECT type, value FROM _idg_seeds
                UNION
                SELECT l.d_type, l.d_value FROM reach r
                JOIN {_CANDIDATE_LINKS} l ON l.s_type = r.type AND l.s_value = r.value
            )
            SELECT CAST(row_number() OVER (ORDER BY r.type, r.value) AS INTEGER) AS id, r.type, r.value,
                   {{'s': n.first_seq, 't': r.type, 'v': r.value}} AS first
            FROM reach r JOIN identity_nodes n USING (type, value)""",
            "_idg_cn",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_adj AS
            SELECT a.id AS src, b.id AS dst, e.seq
            FROM identity_edges e
            JOIN _idg_cn a ON a.type = e.a_type AND a.value = e.a_value
            JOIN _idg_cn b ON b.type = e.b_type AND b.value = e.b_value
            WHERE NOT e.shared AND NOT e.cut""",
            "_idg_adj",
        ),
        SqlStep("CREATE OR REPLACE TEMP TABLE _idg_all AS SELECT id FROM _idg_cn", "_idg_all"),
        *_grouping("_idg_adj", "_idg_all", "_idg_grp1"),
        # Values over their type's limit: those seen last in each first-pass profile.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_over AS
            SELECT id, type, grp, cap FROM (
                SELECT c.id, c.type, g.grp, {cap} AS cap,
                       row_number() OVER (PARTITION BY g.grp, c.type ORDER BY c.first) AS rank
                FROM _idg_cn c JOIN _idg_grp1 g USING (id)
            ) WHERE rank > cap""",
            "_idg_over",
        ),
        # The second pass regroups only the candidate components holding a value over a limit.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_redo AS
            WITH RECURSIVE adj AS (SELECT src, dst FROM _idg_adj UNION ALL SELECT dst, src FROM _idg_adj),
            reach(id) AS (
                SELECT id FROM _idg_over UNION SELECT a.dst FROM reach r JOIN adj a ON a.src = r.id
            )
            SELECT id FROM reach""",
            "_idg_redo",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_adj2 AS
            SELECT src, dst, seq FROM _idg_adj
            WHERE src IN (SELECT id FROM _idg_redo)
              AND src NOT IN (SELECT id FROM _idg_over) AND dst NOT IN (SELECT id FROM _idg_over)""",
            "_idg_adj2",
        ),
        *_grouping("_idg_adj2", "_idg_redo", "_idg_grp2"),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_new AS
            WITH grouped AS (
                SELECT c.id, c.type, c.value, c.first, coalesce(g2.grp, g1.grp) AS grp
                FROM _idg_cn c JOIN _idg_grp1 g1 USING (id) LEFT JOIN _idg_grp2 g2 USING (id)
            ),
            earliest AS (SELECT grp, min(first) AS first FROM grouped GROUP BY grp)
            SELECT g.id, g.type, g.value, g.first, {profile_id} AS profile_id, g.grp
            FROM grouped g JOIN earliest e USING (grp)""",
            "_idg_new",
        ),
        # An old id that no longer names a profile was absorbed: it now points at the profile of
        # the node it was derived from.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_absorbed AS
            WITH old AS (
                SELECT p.profile_id AS old_id, arg_min(n.profile_id, n.first) AS target
                FROM identity_profiles p JOIN _idg_new n USING (type, value)
                GROUP BY p.profile_id
            )
            SELECT old_id, target FROM old WHERE old_id NOT IN (SELECT profile_id FROM _idg_new)""",
            "_idg_absorbed",
        ),
        # A profile id that appears for nodes that belonged to a profile which still exists split off it.
        SqlStep(
            f"""INSERT INTO profile_changes
            SELECT {int(hi)}, 'merged', target, old_id, now() FROM _idg_absorbed
            UNION ALL
            SELECT DISTINCT {int(hi)}, 'split', n.profile_id, p.profile_id, now()
            FROM identity_profiles p JOIN _idg_new n USING (type, value)
            WHERE n.profile_id <> p.profile_id
              AND p.profile_id IN (SELECT profile_id FROM _idg_new)
              AND p.profile_id NOT IN (SELECT old_id FROM _idg_absorbed)""",
            "profile_changes",
        ),
        SqlStep(
            """UPDATE profile_aliases SET profile_id = a.target
            FROM _idg_absorbed a WHERE profile_aliases.profile_id = a.old_id""",
            "profile_aliases (repointed)",
        ),
        SqlStep(
            """INSERT INTO profile_aliases SELECT old_id, target FROM _idg_absorbed
            ON CONFLICT DO UPDATE SET profile_id = excluded.profile_id""",
            "profile_aliases",
        ),
        SqlStep(
            "DELETE FROM profile_aliases WHERE old_id IN (SELECT profile_id FROM _idg_new)",
            "profile_aliases (revived)",
        ),
        SqlStep(
            """INSERT INTO identity_profiles SELECT type, value, profile_id FROM _idg_new
            ON CONFLICT DO UPDATE SET profile_id = excluded.profile_id""",
            "identity_profiles",
        ),
        SqlStep(
            """UPDATE identity_edges SET linking = v.linking, reason = v.reason
            FROM (
                SELECT e.a_type, e.a_value, e.b_type, e.b_value, a.grp = b.grp AS linking,
                       CASE WHEN a.grp = b.grp THEN NULL
                       WHEN o.id IS NOT NULL
                       THEN 'limit: refused, as the profile already holds ' || o.cap || ' ' || o.type
                            || ' values and ' || o.type || ' ' || o.value || ' was seen after them'
                       ELSE 'one user_id per profile: refused, as it would join user_id '
                            || substr(a.grp, 3) || ' and user_id ' || substr(b.grp, 3)
                       END AS reason
                FROM identity_edges e
                JOIN _idg_new a ON a.type = e.a_type AND a.value = e.a_value
                JOIN _idg_new b ON b.type = e.b_type AND b.value = e.b_value
                LEFT JOIN (SELECT o.id, o.type, c.value, o.cap FROM _idg_over o JOIN _idg_cn c USING (id)) o
                  ON o.id = a.id OR o.id = b.id
                WHERE NOT e.shared AND NOT e.cut
                QUALIFY row_number() OVER (
                    PARTITION BY e.a_type, e.a_value, e.b_type, e.b_value ORDER BY o.id NULLS LAST) = 1
            ) v
            WHERE identity_edges.a_type = v.a_type AND identity_edges.a_value = v.a_value
              AND identity_edges.b_type = v.b_type AND identity_edges.b_value = v.b_value""",
            "identity_edges (verdicts)",
        ),
    ]
