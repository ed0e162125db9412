"""Identifier extraction: the typed, normalised identifiers each event of a micro-batch carries."""

from __future__ import annotations

import contextlib
from collections import defaultdict

import duckdb
import duckdb.func
import pyarrow as pa

from tailor.identity.arrays import create_from_arrow
from tailor.identity.exceptions import UnknownIdentifierTypeError
from tailor.identity.identifiers import BUILTIN_TYPES
from tailor.identity.normalise import IdentifierNormaliser
from tailor.identity.sql_normalise import (
    email_select,
    patterns_ok,
    phone_select,
    sql_literal,
    trimmed,
    usable,
)
from tailor.process.stage import BATCH_VIEW, PyStep, SqlStep
from tailor.store.database import Database

# Where each identifier type is read from, in one pass over the batch that parses each JSON
# column once. `traits` of a group call describe the group, not the person, so only identify
# traits are read. An alias's previousId is most often the anonymous id the person browsed under
# before, so it is typed as one. Further typed identifiers come from Segment's
# `context.externalIds` list ([{"type": ..., "id": ...}]), which imported records use too. Each
# event's message id and type come along, as the evidence of its refusals and edges, so that no
# later step reads the event log again.
SOURCE_PASS = f"""SELECT seq, message_id, type AS kind, user_id, anonymous_id,
       CASE WHEN type = 'alias' THEN previous_id END AS previous_id,
       CASE WHEN type = 'identify' AND traits IS NOT NULL
            THEN json_extract_string(traits, ['$.email', '$.phone']) END AS t,
       CASE WHEN context IS NOT NULL
            THEN json_extract_string(context, ['$.traits.email', '$.traits.phone', '$.device.id']) END AS c,
       CASE WHEN context LIKE '%"externalIds"%' THEN json_extract(context, '$.externalIds[*]') END AS x
FROM {BATCH_VIEW}"""

_SOURCES: tuple[tuple[str, str], ...] = (
    ("user_id", "user_id"),
    ("anonymous_id", "anonymous_id"),
    ("anonymous_id", "previous_id"),
    ("email", "t[1]"),
    ("phone", "t[2]"),
    ("email", "c[1]"),
    ("phone", "c[2]"),
    ("device_id", "c[3]"),
)


def identifier_values(src: str) -> str:
    """SQL of every identifier value of the events in `src` (a relation of `SOURCE_PASS`'s rows).

    Columns: seq, id_type, raw, and `o`, `i`: the value's source and its place in the event's
    externalIds, by which a live batch orders them as the event gives them. An externalIds entry
    without an id (or value) names no identifier, as an event without a userId has none.
    """
    plain = " UNION ALL ".join(
        f"SELECT seq, '{t}' AS id_type, {expr} AS raw, {o} AS o, 0 AS i FROM {src} WHERE {expr} IS NOT NULL"
        for o, (t, expr) in enumerate(_SOURCES)
    )
    return f"""{plain} UNION ALL SELECT * FROM (
        SELECT seq, coalesce(json_extract_string(e.x, '$.type'), '') AS id_type,
               coalesce(json_extract_string(e.x, '$.id'), json_extract_string(e.x, '$.value')) AS raw,
               {len(_SOURCES)} AS o, e.i
        FROM (SELECT seq, unnest(list_transform(x, lambda v, i: {{'x': v, 'i': i}})) AS e
              FROM {src} WHERE x IS NOT NULL)
    ) WHERE raw IS NOT NULL"""


PRIORITY = ("user_id", "crm_id", "record", "anonymous_id", "device_id", "email", "phone", "landline")
"""Identifier types from strongest to weakest; an event's strongest identifier is the hub of its edges."""

_RESULT = pa.struct([("value", pa.string()), ("reason", pa.string()), ("type", pa.string())])


def normalise_lists(
    normaliser: IdentifierNormaliser, types: list[str], raws: list[str | None]
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """The normalised value, the reason it cannot be used, and the type kept as, of each (type, raw)."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(types):
        by_type[t].append(i)
    values: list[str | None] = [None] * len(raws)
    reasons: list[str | None] = [None] * len(raws)
    kept_as: list[str | None] = [None] * len(raws)
    for t, positions in by_type.items():
        try:
            vs, rs = normaliser.normalise_many(t, [raws[i] for i in positions])
        except UnknownIdentifierTypeError as e:
            # An externalIds entry of a type nobody declared: reported, never guessed at.
            rs = [f"invalid: {e}; declare it under [identity.normalisation.custom_types]"] * len(positions)
            vs = [None] * len(positions)
        for i, v, r in zip(positions, vs, rs, strict=True):
            values[i], reasons[i] = v, r
            kept_as[i] = t if v is None else normaliser.retype(t, v)
    return values, reasons, kept_as


def normalise_arrow(normaliser: IdentifierNormaliser, types: pa.Array, raws: pa.Array) -> pa.StructArray:
    """The {value, reason, type} outcome of each (type, raw value), as a struct array.

    Shared by the live stage (a DuckDB function) and the batch pipeline (an Arrow map on any engine).
    """
    values, reasons, kept_as = normalise_lists(normaliser, types.to_pylist(), raws.to_pylist())
    return pa.StructArray.from_arrays(
        [pa.array(values, pa.string()), pa.array(reasons, pa.string()), pa.array(kept_as, pa.string())],
        fields=list(_RESULT),
    )


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
        return normalise_arrow(normaliser, types, raws)

    def check_patterns(types: pa.Array, values: pa.Array) -> pa.Array:
        return pa.array(patterns_ok(normaliser, types.to_pylist(), values.to_pylist()), pa.bool_())

    cur = db.cursor()
    # Already registered on this database when another stage shares the normaliser.
    with contextlib.suppress(duckdb.CatalogException):
        cur.create_function(
            name,
            normalise,
            ["VARCHAR", "VARCHAR"],
            duckdb.struct_type({"value": "VARCHAR", "reason": "VARCHAR", "type": "VARCHAR"}),
            type=duckdb.func.ARROW,
        )
    with contextlib.suppress(duckdb.CatalogException):
        cur.create_function(
            name + _PATTERNS, check_patterns, ["VARCHAR", "VARCHAR"], "BOOLEAN", type=duckdb.func.ARROW
        )
    return name, cur


_PATTERNS = "_patterns_ok"
"""Suffix of the name of the SQL function that checks SQL-normalised values against blocked patterns."""

_lit = sql_literal


def sql_id_normalisation(
    normaliser: IdentifierNormaliser, types: list[str], type_col: str, raw_col: str
) -> str:
    """SQL for the {value, reason} outcome of opaque-id types, as `IdentifierNormaliser` computes it.

    Opaque ids (user, anonymous, device, CRM ids, records) are most of a log's identifiers; checking
    them in SQL instead of one Python call per value makes a rebuild's normalisation several times
    faster. Emails, phones and names still go through Python (their libraries have no SQL form).
    """
    text = id_trim_sql(raw_col)
    reason = id_reason_sql(normaliser, types, type_col)
    return f"""(SELECT {{'value': CASE WHEN reason IS NULL THEN t END, 'reason': reason, 'type': {type_col}}}
        FROM (SELECT t, {reason} AS reason
              FROM (SELECT {text} AS t)))"""


def id_trim_sql(raw_col: str) -> str:
    """SQL of a raw value trimmed as `str.strip()` trims it."""
    return trimmed(raw_col)


def id_reason_sql(normaliser: IdentifierNormaliser, types: list[str], type_col: str) -> str:
    """SQL of why the trimmed value `t` of an opaque-id type cannot be used (NULL when it can)."""
    limit = normaliser.rules.max_length
    branches = []
    for name in types:
        blocked = sorted(normaliser.blocked_values(name))
        blocked_sql = ", ".join(_lit(v) for v in blocked) or "NULL"
        quoted = "'''' || t || ''''"
        checks = [
            ("t = ''", "'blocked: empty value'"),
            (
                f"length(t) > {limit}",
                f"'too long: ' || length(t) || ' characters, at most {limit} are accepted'",
            ),
            (f"lower(t) IN ({blocked_sql})", f"'blocked: ' || {quoted} || ' is a blocked {name} value'"),
            ("regexp_matches(t, '[\\x00-\\x1f\\x7f]')", "'invalid: contains control characters'"),
        ]
        for pattern in normaliser.blocked_patterns(name):
            message = f" matches the blocked {name} pattern {pattern!r}"
            checks.append(
                (f"regexp_matches(t, {_lit(pattern)})", f"'blocked: ' || {quoted} || {_lit(message)}")
            )
        reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"
        branches.append(f"WHEN {_lit(name)} THEN {reason}")
    return f"CASE {type_col} {' '.join(branches)} END"


def opaque_types(normaliser: IdentifierNormaliser) -> list[str]:
    """The identifier types whose values are opaque ids, normalised in SQL."""
    opaque = [n for n, t in BUILTIN_TYPES.items() if t.normaliser == "id"]
    return opaque + [n for n, kind in normaliser.rules.custom_types.items() if kind == "id"]


def _python_normalisation(normaliser: IdentifierNormaliser, keyed: str) -> PyStep:
    """`_idg_norm` with every distinct value of the batch through `IdentifierNormaliser` in one pass.

    For a micro-batch's couple of thousand values that costs a few milliseconds, less than DuckDB
    takes to plan the SQL form (12 ms of this machine's 26 ms for 1,000 events, with no rows at all).
    The outcome is the same: tests hold the SQL checks of opaque ids equal to Python's.
    """

    def run(cur: duckdb.DuckDBPyConnection) -> None:
        distinct = cur.sql("SELECT DISTINCT h, id_type, raw FROM _idg_raw").to_arrow_table()
        outcome = normalise_arrow(
            normaliser, distinct.column("id_type").combine_chunks(), distinct.column("raw").combine_chunks()
        )
        create_from_arrow(cur, "_idg_norm", distinct.append_column("n", outcome), f"{keyed} FROM _idg_arrays")

    return PyStep(run, "_idg_norm")


def extraction_steps(
    function: str, normaliser: IdentifierNormaliser, sql_emails_phones: bool = True
) -> list[SqlStep | PyStep]:
    """Steps that build the batch's identifiers and the values that cannot be used.

    With `sql_emails_phones` the common forms of emails and phone numbers are normalised in SQL
    (`tailor.identity.sql_normalise`) and opaque ids checked in SQL: worth it for a large batch;
    a small one goes through Python whole (`_python_normalisation`). Both give the same outcome.

    - `_idg_keys` (k, type, value, priority): each distinct identifier once. `k` is its key, a
      64-bit number derived from type and value by MD5: every join of the graph runs on it rather
      than on text.
    - `_idg_ids` (seq, k, priority): which event carries which identifier.
    - `_idg_bad`: values that cannot be used, with the reason, shaped like `identity_refusals`.
    """
    priority = " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(PRIORITY))
    opaque = opaque_types(normaliser)
    opaque_sql = ", ".join(_lit(t) for t in opaque)
    sql_norm = sql_id_normalisation(normaliser, opaque, "id_type", "raw")
    # Emails and phone numbers in their common forms are normalised in SQL as well (the rest, and
    # every refusal with its reason, by the Python function): see `tailor.identity.sql_normalise`.
    fast_selects: dict[str, str | None] = {"phone": phone_select(normaliser, "{source}")}
    emails = ["email", *(n for n, kind in normaliser.rules.custom_types.items() if kind == "email")]
    fast_selects.update((t, email_select(normaliser, t, "{source}")) for t in emails)
    fast = {
        t: sql for t, sql in fast_selects.items() if sql_emails_phones and sql is not None and usable(sql)
    }
    fast_sql = ", ".join(_lit(t) for t in fast) or "''"  # no type is named ''; NOT IN (NULL) is never true
    fast_rows = (
        " UNION ALL ".join(
            sql.replace("{source}", f"(SELECT * FROM d WHERE id_type = {_lit(t)})") for t, sql in fast.items()
        )
        or "SELECT h, id_type, raw, NULL::STRUCT(value VARCHAR, type VARCHAR, reason VARCHAR) AS f"
        " FROM d WHERE FALSE"
    )
    keyed = f"""SELECT h, id_type, raw, n.value AS value, n.reason AS reason, n.type AS kept_as,
                   CASE n.type {priority} ELSE {len(PRIORITY)} END AS priority,
                   md5_number_lower(n.type || ':' || n.value) AS k"""
    slow = f"{function}(id_type, raw)"
    outcome = "{'value': f.value, 'reason': NULL::VARCHAR, 'type': f.type}"
    refused = "{'value': NULL::VARCHAR, 'reason': f.reason, 'type': id_type}"
    # Blocked patterns are Python's regexes, checked by a Python function: called once over the
    # whole column (inside the CASE below, DuckDB called it on small slices, four times slower).
    if any(normaliser.blocked_patterns(t) for t in fast):
        checked = f"{function}{_PATTERNS}(id_type, f.value)"
    else:
        checked = "TRUE"
    return [
        SqlStep(f"CREATE OR REPLACE TEMP TABLE _idg_src AS {SOURCE_PASS}", "_idg_src"),
        # Within a batch, raw values are joined by DuckDB's 64-bit hash of (type, raw) rather than
        # by text; two different values of one batch sharing a hash is a one-in-10^13 event.
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_raw AS
            SELECT seq, id_type, raw, hash(id_type, raw) AS h FROM ({identifier_values("_idg_src")})""",
            "_idg_raw",
        ),
        SqlStep(
            f"""CREATE OR REPLACE TEMP TABLE _idg_norm AS
            WITH d AS (SELECT DISTINCT h, id_type, raw FROM _idg_raw),
            fast AS MATERIALIZED (SELECT *, {checked} AS clean FROM ({fast_rows})),
            n AS (
                SELECT h, id_type, raw, {sql_norm} AS n FROM d WHERE id_type IN ({opaque_sql})
                UNION ALL
                SELECT h, id_type, raw,
                       CASE WHEN f.value IS NOT NULL AND clean THEN {outcome}
                            WHEN f.reason IS NOT NULL THEN {refused} ELSE {slow} END
                FROM fast
                UNION ALL
                SELECT h, id_type, raw, {slow} FROM d
                WHERE id_type NOT IN ({opaque_sql}) AND id_type NOT IN ({fast_sql})
            )
            {keyed} FROM n""",
            "_idg_norm",
        )
        if sql_emails_phones
        else _python_normalisation(normaliser, keyed),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_keys AS
            SELECT DISTINCT k, kept_as AS type, value, priority FROM _idg_norm WHERE value IS NOT NULL""",
            "_idg_keys",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_ids AS
            SELECT DISTINCT r.seq, n.k, n.priority FROM _idg_raw r JOIN _idg_norm n USING (h)
            WHERE n.value IS NOT NULL""",
            "_idg_ids",
        ),
        SqlStep(
            """CREATE OR REPLACE TEMP TABLE _idg_bad AS
            WITH bad AS (
                SELECT n.id_type, n.raw, any_value(n.reason) AS reason, min(r.seq) AS seq,
                       max(r.seq) AS last_seq, count(*) AS events
                FROM _idg_raw r JOIN _idg_norm n USING (h) WHERE n.value IS NULL
                GROUP BY n.id_type, n.raw
            )
            SELECT bad.id_type, bad.raw, bad.reason, bad.seq, e.message_id, bad.last_seq, bad.events
            FROM bad JOIN _idg_src e USING (seq)""",
            "_idg_bad",
        ),
    ]
