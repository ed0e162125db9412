"""Profiles as connected components of the linking edges, recomputed for the components a batch touches.

The outcome for a component is a pure function of its edges, whatever the batches they came in:

- the candidate component of a node is its connected component over the edges not cut by the
  shared-device rule;
- within it every node joins the user id nearest to it (fewest hops, then the earliest evidence,
  then the smaller user id), so a component never holds two user ids; an edge between nodes that
  joined different user ids is refused;
- the remaining nodes (no user id in reach) form components by plain label propagation;
- a profile's id is derived from its earliest seen node, so when profiles merge the older id
  survives, and a profile that only grows keeps its id.
"""

from __future__ import annotations

from tailor.process.stage import SqlStep

PROFILE_ID = "'prof_' || left(md5({t} || ':' || {v}), 16)"
"""How a profile id is derived from the type and value of its earliest seen node."""

# Both directions of the edges that the shared-device rule has not cut.
_CANDIDATE_LINKS = """(SELECT a_type AS s_type, a_value AS s_value, b_type AS d_type, b_value AS d_value
     FROM identity_edges WHERE NOT shared
     UNION ALL
     SELECT b_type, b_value, a_type, a_value FROM identity_edges WHERE NOT shared)"""


def component_steps() -> list[SqlStep]:
    """Steps that recompute profiles, aliases and edge verdicts of the components around `_idg_seeds`."""
    profile_id = PROFILE_ID.format(t="e.first.t", v="e.first.v")
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
            WHERE NOT e.shared""",
            "_idg_adj",
        ),
        # Nearest user id by multi-source relaxation: a node's tuple only ever decreases, so this
        # ends, and its fixed point is unique whatever order the relaxations ran in.
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_near AS
            WITH RECURSIVE adj AS (
                SELECT src, dst, seq FROM _idg_adj UNION ALL SELECT dst, src, seq FROM _idg_adj
            ),
            near(node, best) USING KEY (node) AS (
                SELECT id, {'d': 0, 's': CAST(0 AS BIGINT), 'u': value} FROM _idg_cn WHERE type = 'user_id'
                UNION
                SELECT a.dst, min({'d': w.best.d + 1, 's': a.seq, 'u': w.best.u})
                FROM near w JOIN adj a ON a.src = w.node
                LEFT JOIN recurring.near r ON r.node = a.dst
                GROUP BY a.dst
                HAVING any_value(r.best) IS NULL
                    OR min({'d': w.best.d + 1, 's': a.seq, 'u': w.best.u}) < any_value(r.best)
            )
            SELECT node, best.u AS user_id FROM near""",
            "_idg_near",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_cc AS
            WITH RECURSIVE free AS (
                SELECT c.id, c.first FROM _idg_cn c ANTI JOIN _idg_near n ON n.node = c.id
            ),
            adj AS (
                SELECT src, dst FROM _idg_adj WHERE src IN (SELECT id FROM free)
                UNION ALL SELECT dst, src FROM _idg_adj WHERE src IN (SELECT id FROM free)
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
            f"""CREATE OR REPLACE TEMP TABLE _idg_new AS
            WITH grouped AS (
                SELECT c.id, c.type, c.value, c.first,
                       coalesce('u:' || n.user_id, 'c:' || cc.label.t || ':' || cc.label.v) AS grp
                FROM _idg_cn c LEFT JOIN _idg_near n ON n.node = c.id LEFT JOIN _idg_cc cc ON cc.node = c.id
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
                       ELSE 'one user_id per profile: refused, as it would join user_id '
                            || substr(a.grp, 3) || ' and user_id ' || substr(b.grp, 3)
                       END AS reason
                FROM identity_edges e
                JOIN _idg_new a ON a.type = e.a_type AND a.value = e.a_value
                JOIN _idg_new b ON b.type = e.b_type AND b.value = e.b_value
                WHERE NOT e.shared
            ) v
            WHERE identity_edges.a_type = v.a_type AND identity_edges.a_value = v.a_value
              AND identity_edges.b_type = v.b_type AND identity_edges.b_value = v.b_value""",
            "identity_edges (verdicts)",
        ),
    ]
