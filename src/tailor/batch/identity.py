"""The identity graph rebuilt in one pass over a whole event log, as steps any engine runs.

The same merge rules as the live stage (`tailor.identity.graph`, `tailor.identity.components`),
applied to every identifier at once instead of to the components a micro-batch touches: edges from
each event's identifiers to its hub (plus probabilistic matches and users' splits, when exported
with the log), shared identifiers, nearest user id, per-type limits and profile ids from each
profile's earliest node. The recursive CTEs of the live stage become `Fixpoint` steps (label
propagation as a loop of joins), the only form Spark has.

Reads `events`, `identity_overrides` and `identity_matches`; produces `identity_nodes` (k, type,
value, first_seq, shared, profile_id) and `identity_event_hubs` (seq, k).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import pyarrow as pa

from tailor.engines.dialect import Capabilities
from tailor.engines.steps import ArrowMap, Fixpoint, Query, Step
from tailor.identity.components import (
    ANCHOR_TYPES,
    DEFAULT_LIMITS,
    NON_LINKING_TYPES,
    PROFILE_ID,
    SHARED_TYPES,
)
from tailor.identity.extract import PRIORITY, id_reason_sql, id_trim_sql, normalise_arrow, opaque_types
from tailor.identity.graph import NODE_KEY
from tailor.identity.normalise import IdentifierNormaliser

OVERRIDES_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ("id", "action", "a_type", "a_value", "b_type", "b_value", "note")]
)
MATCHES_SCHEMA = pa.schema(
    [("a", pa.string()), ("b", pa.string()), ("seq", pa.int64()), ("veto", pa.string())]
)
NORMALISED = pa.schema(
    [("id_type", pa.string()), ("raw", pa.string()), ("value", pa.string()), ("kept_as", pa.string())]
)

# Where identifiers are read from, as in `tailor.identity.extract`, one column per source.
_SOURCES = (
    ("user_id", "user_id", "user_id"),
    ("anonymous_id", "anonymous_id", "anonymous_id"),
    ("anonymous_id", "previous_id", "CASE WHEN type = 'alias' THEN previous_id END"),
    ("email", "t_email", "CASE WHEN type = 'identify' THEN json_extract_string(traits, '$.email') END"),
    ("phone", "t_phone", "CASE WHEN type = 'identify' THEN json_extract_string(traits, '$.phone') END"),
    ("email", "c_email", "json_extract_string(context, '$.traits.email')"),
    ("phone", "c_phone", "json_extract_string(context, '$.traits.phone')"),
    ("device_id", "c_device", "json_extract_string(context, '$.device.id')"),
)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(_lit(v) for v in values)


def _normalise_batch(normaliser: IdentifierNormaliser, batch: pa.RecordBatch) -> pa.RecordBatch:
    outcome = normalise_arrow(normaliser, batch.column(0), batch.column(1))
    return pa.RecordBatch.from_arrays(
        [batch.column(0), batch.column(1), outcome.field("value"), outcome.field("type")], schema=NORMALISED
    )


def extraction(caps: Capabilities, normaliser: IdentifierNormaliser) -> list[Step]:
    """`_b_ids` (seq, k, priority), `_b_keys` (k, type, value, priority) and `identity_event_hubs`."""
    columns = ", ".join(f"{sql} AS {col}" for _, col, sql in _SOURCES)
    raws = " UNION ALL ".join(
        f"SELECT seq, '{t}' AS id_type, {col} AS raw FROM _b_src WHERE {col} IS NOT NULL"
        for t, col, _ in _SOURCES
    )
    external = f"""SELECT seq, coalesce(json_extract_string(x, '$.type'), '') AS id_type,
            coalesce(json_extract_string(x, '$.id'), json_extract_string(x, '$.value')) AS raw
        FROM (SELECT seq, {caps.json_elements.format(x="x")} AS x FROM _b_src WHERE x IS NOT NULL)"""
    opaque = opaque_types(normaliser)
    priority = " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(PRIORITY))
    key = NODE_KEY.format(t="kept_as", v="value")
    return [
        Query(
            "_b_src",
            f"""SELECT seq, {columns},
                CASE WHEN context LIKE '%"externalIds"%' THEN json_extract(context, '$.externalIds') END AS x
            FROM events""",
        ),
        Query("_b_raw", f"SELECT * FROM ({raws} UNION ALL {external}) WHERE raw IS NOT NULL"),
        Query("_b_distinct", "SELECT DISTINCT id_type, raw FROM _b_raw"),
        Query(
            "_b_opaque",
            f"""SELECT id_type, raw, CASE WHEN reason IS NULL THEN t END AS value, id_type AS kept_as
            FROM (SELECT id_type, raw, t, {id_reason_sql(normaliser, opaque, "id_type")} AS reason
                  FROM (SELECT id_type, raw, {id_trim_sql("raw")} AS t FROM _b_distinct
                        WHERE id_type IN ({_in(opaque)})))""",
        ),
        # Emails and phones go through Python's libraries, once per distinct raw value.
        ArrowMap(
            "_b_other",
            f"SELECT id_type, raw FROM _b_distinct WHERE id_type NOT IN ({_in(opaque)})",
            partial(_normalise_batch, normaliser),
            NORMALISED,
        ),
        Query(
            "_b_norm",
            f"""SELECT id_type, raw, value, kept_as,
                   CASE kept_as {priority} ELSE {len(PRIORITY)} END AS priority, {key} AS k
            FROM (SELECT * FROM _b_opaque UNION ALL SELECT * FROM _b_other) WHERE value IS NOT NULL""",
        ),
        Query("_b_keys", "SELECT DISTINCT k, kept_as AS type, value, priority FROM _b_norm"),
        Query(
            "_b_ids",
            "SELECT DISTINCT r.seq, n.k, n.priority FROM _b_raw r JOIN _b_norm n USING (id_type, raw)",
        ),
        # Each event's hub: its strongest identifier.
        Query("identity_event_hubs", "SELECT seq, arg_min(k, (priority, k)) AS k FROM _b_ids GROUP BY seq"),
    ]


_CUT = """LEFT JOIN (SELECT DISTINCT a_type, a_value, b_type, b_value FROM identity_overrides
                   WHERE action = 'remove_edge') r
        ON r.a_type = e.a_type AND r.a_value = e.a_value AND r.b_type = e.b_type AND r.b_value = e.b_value
    LEFT JOIN (SELECT DISTINCT a_type, a_value FROM identity_overrides WHERE action = 'block') x
        ON x.a_type = e.a_type AND x.a_value = e.a_value
    LEFT JOIN (SELECT DISTINCT a_type, a_value FROM identity_overrides WHERE action = 'block') y
        ON y.a_type = e.b_type AND y.a_value = e.b_value"""


def edges() -> list[Step]:
    """`_b_nodes` and `_b_edges` (a, b, a_type, b_type, seq, cut): every edge, cut where a split says."""
    record_key = NODE_KEY.format(t="'record'", v="{}")
    return [
        Query(
            "_b_nodes",
            """SELECT i.k, any_value(n.type) AS type, any_value(n.value) AS value, min(i.seq) AS first_seq
            FROM _b_ids i JOIN _b_keys n ON n.k = i.k GROUP BY i.k""",
        ),
        # (a, b) is ordered by (type, value), so each pair is one edge.
        Query(
            "_b_pairs",
            """WITH pairs AS (
                SELECT i.k, h.k AS h_k, min(i.seq) AS seq FROM _b_ids i
                JOIN identity_event_hubs h ON h.seq = i.seq WHERE i.k <> h.k GROUP BY i.k, h.k
            ),
            named AS (
                SELECT p.k, p.h_k, p.seq, x.type AS x_type, x.value AS x_value, y.type AS y_type,
                       y.value AS y_value, (x.type, x.value) < (y.type, y.value) AS first
                FROM pairs p JOIN _b_nodes x ON x.k = p.k JOIN _b_nodes y ON y.k = p.h_k
            )
            SELECT CASE WHEN first THEN k ELSE h_k END AS a, CASE WHEN first THEN h_k ELSE k END AS b,
                   any_value(CASE WHEN first THEN x_type ELSE y_type END) AS a_type,
                   any_value(CASE WHEN first THEN x_value ELSE y_value END) AS a_value,
                   any_value(CASE WHEN first THEN y_type ELSE x_type END) AS b_type,
                   any_value(CASE WHEN first THEN y_value ELSE x_value END) AS b_value,
                   min(seq) AS seq, CAST(NULL AS VARCHAR) AS veto
            FROM named GROUP BY 1, 2""",
        ),
        # Probabilistic matches join two record nodes that the log holds.
        Query(
            "_b_matches",
            f"""SELECT m.a_k AS a, m.b_k AS b, 'record' AS a_type, m.a AS a_value, 'record' AS b_type,
                   m.b AS b_value, m.seq, m.veto
            FROM (SELECT {record_key.format("a")} AS a_k, {record_key.format("b")} AS b_k, a, b, seq, veto
                  FROM identity_matches) m
            SEMI JOIN _b_nodes na ON na.k = m.a_k SEMI JOIN _b_nodes nb ON nb.k = m.b_k
            ANTI JOIN _b_pairs p ON p.a = m.a_k AND p.b = m.b_k""",
        ),
        Query(
            "_b_edges",
            f"""SELECT e.a, e.b, e.a_type, e.b_type, e.seq,
                   e.veto IS NOT NULL OR r.a_type IS NOT NULL OR x.a_type IS NOT NULL
                       OR y.a_type IS NOT NULL AS cut
            FROM (SELECT * FROM _b_pairs UNION ALL SELECT * FROM _b_matches) e
            {_CUT}""",
        ),
    ]


def _grouping(adj: str, out: str) -> list[Step]:
    """`out` (k, grp): each node joins its nearest user id over `adj` (src, dst, seq, both ways), else
    the component of the nodes that reach none, labelled by its earliest node."""
    return [
        Fixpoint(
            f"{out}_near",
            "SELECT k AS node, {'d': 0, 's': CAST(0 AS BIGINT), 'u': value} AS label "
            "FROM _b_cn WHERE type = 'user_id'",
            f"""SELECT a.dst AS node, min({{'d': w.label.d + 1, 's': a.seq, 'u': w.label.u}}) AS label
            FROM {{delta}} w JOIN {adj} a ON a.src = w.node GROUP BY a.dst""",
        ),
        Query(
            f"{out}_free",
            f"""SELECT a.src, a.dst FROM {adj} a ANTI JOIN {out}_near n ON n.node = a.src""",
        ),
        Fixpoint(
            f"{out}_cc",
            f"SELECT c.k AS node, c.first AS label FROM _b_cn c ANTI JOIN {out}_near n ON n.node = c.k",
            f"""SELECT a.dst AS node, min(w.label) AS label
            FROM {{delta}} w JOIN {out}_free a ON a.src = w.node GROUP BY a.dst""",
        ),
        Query(
            out,
            f"""SELECT c.k, coalesce('u:' || n.label.u, 'c:' || cc.label.t || ':' || cc.label.v) AS grp
            FROM _b_cn c LEFT JOIN {out}_near n ON n.node = c.k LEFT JOIN {out}_cc cc ON cc.node = c.k""",
        ),
    ]


def components(limits: Mapping[str, int] = DEFAULT_LIMITS) -> list[Step]:
    """Shared identifiers, the two grouping passes around the per-type limits, and the profiles."""
    shared, anchors, fixed = _in(SHARED_TYPES), _in(ANCHOR_TYPES), _in(NON_LINKING_TYPES)
    caps = " ".join(f"WHEN '{t}' THEN {int(n)}" for t, n in sorted(limits.items()))
    cap = f"CASE c.type {caps} ELSE NULL END" if caps else "NULL"
    profile_id = PROFILE_ID.format(t="e.first.t", v="e.first.v")
    return [
        # A shared-type identifier seen with two values of one anchor type links none of them.
        Query(
            "_b_shared",
            f"""WITH links AS (
                SELECT DISTINCT a AS k, b AS anchor, b_type AS anchor_type FROM _b_edges
                WHERE b_type IN ({anchors}) AND a_type IN ({shared})
                UNION SELECT DISTINCT b, a, a_type FROM _b_edges
                WHERE a_type IN ({anchors}) AND b_type IN ({shared})
            )
            SELECT k FROM (SELECT k, anchor_type, count(*) AS n FROM links GROUP BY k, anchor_type)
            GROUP BY k HAVING max(n) >= 2""",
        ),
        Query(
            "_b_cn",
            """SELECT n.k, n.type, n.value, n.first_seq, s.k IS NOT NULL AS shared,
                   {'s': n.first_seq, 't': n.type, 'v': n.value} AS first
            FROM _b_nodes n LEFT JOIN _b_shared s ON s.k = n.k""",
        ),
        Query(
            "_b_adj",
            f"""WITH kept AS (
                SELECT e.a, e.b, e.seq FROM _b_edges e
                LEFT JOIN _b_shared sa ON sa.k = e.a LEFT JOIN _b_shared sb ON sb.k = e.b
                WHERE NOT e.cut
                  AND e.a_type NOT IN ({fixed}) AND e.b_type NOT IN ({fixed})
                  AND NOT (e.b_type IN ({anchors}) AND e.a_type IN ({shared}) AND sa.k IS NOT NULL)
                  AND NOT (e.a_type IN ({anchors}) AND e.b_type IN ({shared}) AND sb.k IS NOT NULL)
            )
            SELECT a AS src, b AS dst, seq FROM kept UNION ALL SELECT b, a, seq FROM kept""",
        ),
        *_grouping("_b_adj", "_b_grp1"),
        # Values over their type's limit: those seen last in each first-pass profile.
        Query(
            "_b_over",
            f"""SELECT k FROM (
                SELECT c.k, {cap} AS cap,
                       row_number() OVER (PARTITION BY g.grp, c.type ORDER BY c.first) AS rank
                FROM _b_cn c JOIN _b_grp1 g ON g.k = c.k
            ) WHERE rank > cap""",
        ),
        # The second pass over the graph without them (components holding none are unchanged).
        Query(
            "_b_adj2",
            """SELECT a.* FROM _b_adj a
            ANTI JOIN _b_over o ON o.k = a.src ANTI JOIN _b_over p ON p.k = a.dst""",
        ),
        *_grouping("_b_adj2", "_b_grp2"),
        Query(
            "identity_nodes",
            f"""WITH grouped AS (SELECT c.*, g.grp FROM _b_cn c JOIN _b_grp2 g ON g.k = c.k),
            earliest AS (SELECT grp, min(first) AS first FROM grouped GROUP BY grp)
            SELECT g.k, g.type, g.value, g.first_seq, g.shared, {profile_id} AS profile_id
            FROM grouped g JOIN earliest e ON e.grp = g.grp""",
        ),
    ]


def identity_steps(
    caps: Capabilities, normaliser: IdentifierNormaliser, limits: Mapping[str, int] = DEFAULT_LIMITS
) -> list[Step]:
    """Every step of the identity rebuild."""
    return [*extraction(caps, normaliser), *edges(), *components(limits)]


IDENTITY_TEMP = (
    "_b_src", "_b_raw", "_b_distinct", "_b_opaque", "_b_other", "_b_norm", "_b_keys", "_b_ids",
    "_b_pairs", "_b_matches", "_b_edges", "_b_shared", "_b_cn", "_b_adj", "_b_over", "_b_adj2",
    *(f"{g}{s}" for g in ("_b_grp1", "_b_grp2") for s in ("", "_near", "_free", "_cc")),
)  # fmt: skip
"""The intermediate relations, dropped once the profiles are made."""
