"""Identifier extraction: the typed, normalised identifiers each event of a micro-batch carries."""

from __future__ import annotations

import contextlib
from collections import defaultdict

import duckdb
import duckdb.func
import pyarrow as pa

from tailor.identity.exceptions import UnknownIdentifierTypeError
from tailor.identity.normalise import IdentifierNormaliser
from tailor.process.stage import BATCH_VIEW, SqlStep
from tailor.store.database import Database

# Where each identifier type is read from. `traits` of a group call describe the group, not the
# person, so only identify traits are read. An alias's previousId is most often the anonymous id
# the person browsed under before, so it is typed as one. Further typed identifiers come from
# Segment's `context.externalIds` list ([{"type": ..., "id": ...}]), which imported records use too.
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("user_id", "user_id", "TRUE"),
    ("anonymous_id", "anonymous_id", "TRUE"),
    ("anonymous_id", "previous_id", "type = 'alias'"),
    ("email", "json_extract_string(traits, '$.email')", "type = 'identify'"),
    ("email", "json_extract_string(context, '$.traits.email')", "TRUE"),
    ("phone", "json_extract_string(traits, '$.phone')", "type = 'identify'"),
    ("phone", "json_extract_string(context, '$.traits.phone')", "TRUE"),
    ("device_id", "json_extract_string(context, '$.device.id')", "TRUE"),
)

_EXTERNAL_IDS = f"""SELECT seq, message_id, kind, coalesce(json_extract_string(x, '$.type'), '') AS id_type,
       coalesce(json_extract_string(x, '$.id'), json_extract_string(x, '$.value')) AS raw
FROM (SELECT seq, message_id, type AS kind, unnest(json_extract(context, '$.externalIds[*]')) AS x
      FROM {BATCH_VIEW} WHERE context LIKE '%"externalIds"%')"""

PRIORITY = ("user_id", "crm_id", "record", "anonymous_id", "device_id", "email", "phone")
"""Identifier types from strongest to weakest; an event's strongest identifier is the hub of its edges."""

_RESULT = pa.struct([("value", pa.string()), ("reason", pa.string())])


def register_normaliser(
    db: Database, normaliser: IdentifierNormaliser
) -> tuple[str, duckdb.DuckDBPyConnection]:
    """Registers the normaliser as a vectorised SQL function of (type, raw value).

    Returns its name and the cursor it was registered on, which must stay open as long as the
    function is used: closing it frees the function. The function is called on the distinct raw
    values of a batch, so each is normalised once.
    """
    # The registered function keeps the normaliser alive, so its id names it uniquely.
    name = f"tailor_identity_normalise_{id(normaliser):x}"

    def normalise(types: pa.Array, raws: pa.Array) -> pa.Array:
        by_type: dict[str, list[int]] = defaultdict(list)
        for i, t in enumerate(types.to_pylist()):
            by_type[t].append(i)
        raw = raws.to_pylist()
        values: list[str | None] = [None] * len(raw)
        reasons: list[str | None] = [None] * len(raw)
        for t, positions in by_type.items():
            try:
                vs, rs = normaliser.normalise_many(t, [raw[i] for i in positions])
            except UnknownIdentifierTypeError as e:
                # An externalIds entry of a type nobody declared: reported, never guessed at.
                rs = [f"invalid: {e}; declare it under [identity.normalisation.custom_types]"] * len(
                    positions
                )
                vs = [None] * len(positions)
            for i, v, r in zip(positions, vs, rs, strict=True):
                values[i], reasons[i] = v, r
        return pa.StructArray.from_arrays(
            [pa.array(values, pa.string()), pa.array(reasons, pa.string())], fields=list(_RESULT)
        )

    cur = db.cursor()
    # Already registered on this database when another stage shares the normaliser.
    with contextlib.suppress(duckdb.CatalogException):
        cur.create_function(
            name,
            normalise,
            ["VARCHAR", "VARCHAR"],
            duckdb.struct_type({"value": "VARCHAR", "reason": "VARCHAR"}),
            type=duckdb.func.ARROW,
        )
    return name, cur


def extraction_steps(function: str) -> list[SqlStep]:
    """Steps that build `_idg_ids` (seq, message_id, kind, type, value) and record refused values."""
    selects = " UNION ALL ".join(
        f"SELECT seq, message_id, type AS kind, '{t}' AS id_type, {expr} AS raw"
        f" FROM {BATCH_VIEW} WHERE {where} AND {expr} IS NOT NULL"
        for t, expr, where in _SOURCES
    )
    selects += f" UNION ALL {_EXTERNAL_IDS}"
    priority = " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(PRIORITY))
    return [
        SqlStep(f"CREATE OR REPLACE TEMP TABLE _idg_raw AS {selects}", "_idg_raw"),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_norm AS
            SELECT id_type, raw, n.value AS value, n.reason AS reason
            FROM (SELECT id_type, raw, {function}(id_type, raw) AS n
                  FROM (SELECT DISTINCT id_type, raw FROM _idg_raw))""",
            "_idg_norm",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_ids AS
            SELECT DISTINCT r.seq, r.message_id, r.kind, r.id_type AS type, n.value,
                   CASE r.id_type {priority} ELSE {len(PRIORITY)} END AS priority
            FROM _idg_raw r JOIN _idg_norm n USING (id_type, raw)
            WHERE n.value IS NOT NULL""",
            "_idg_ids",
        ),
        SqlStep(
            """INSERT INTO identity_refusals
            SELECT r.id_type, r.raw, any_value(n.reason), min(r.seq), arg_min(r.message_id, r.seq),
                   max(r.seq), count(*)
            FROM _idg_raw r JOIN _idg_norm n USING (id_type, raw)
            WHERE n.value IS NULL
            GROUP BY r.id_type, r.raw
            ON CONFLICT DO UPDATE SET last_seq = excluded.last_seq, events = events + excluded.events""",
            "identity_refusals",
        ),
        SqlStep(
            """INSERT INTO identity_nodes
            SELECT type, value, min(seq), max(seq) FROM _idg_ids GROUP BY type, value
            ON CONFLICT DO UPDATE SET last_seq = excluded.last_seq""",
            "identity_nodes",
        ),
    ]
