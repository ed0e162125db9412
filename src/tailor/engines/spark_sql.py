"""DuckDB SQL rewritten for Spark SQL: sqlglot's transpiler plus the fixes it does not make.

Tailor's SQL is written once, in DuckDB's dialect. sqlglot carries most of it to Spark; what it
gets wrong, or leaves as a DuckDB function Spark does not have, is rewritten here on the parsed
tree (each fix is one branch of `_fix`), so no builder of SQL needs to know Spark's spelling:

- `len(list)` and `length(text)` are one node to sqlglot; Tailor writes `array_length` for lists,
  so `len`/`length` stay string lengths;
- tuples `(a, b)` (orderings of `arg_max`, comparisons) become `STRUCT(a, b)`, which Spark orders
  field by field as DuckDB orders tuples;
- `epoch_us`, `to_microseconds`, `md5_number_lower`, `hash`, `list_position`, `list_sum`,
  `quantile_cont` and `list_aggregate(..., 'quantile_cont', p)` get Spark equivalents;
- regular expression replacements name groups `$1` rather than `\\1`; `SIMILAR TO` (a whole-text
  match) becomes an anchored `RLIKE`; `json_exists` a test of `get_json_object`.

Struct orderings differ in one way Tailor avoids: Spark sorts a NULL field first, DuckDB last, so
every ordering tuple Tailor writes has fields that are never NULL.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from tailor.exceptions import StoreError

SIGN = 9223372036854775808
"""2^63: md5_number_lower is an unsigned 64-bit number; Spark's keys are it less 2^63, in the same order."""


def spark_key(text: exp.Expr) -> exp.Expr:
    """Spark SQL for DuckDB's `md5_number_lower(text)`, shifted into a signed BIGINT of the same order.

    DuckDB reads the last 8 bytes of the MD5 digest as a little-endian number; the hex digits are
    reversed pair by pair to read them big-endian.
    """
    digest = exp.Anonymous(this="MD5", expressions=[text])
    pairs = [
        exp.Substring(this=digest.copy(), start=exp.Literal.number(31 - 2 * i), length=exp.Literal.number(2))
        for i in range(8)
    ]
    hexed = exp.Anonymous(this="CONCAT", expressions=pairs)
    unsigned = exp.Anonymous(this="CONV", expressions=[hexed, exp.Literal.number(16), exp.Literal.number(10)])
    as_decimal = exp.cast(unsigned, "DECIMAL(20, 0)")
    return exp.cast(exp.Sub(this=as_decimal, expression=exp.Literal.number(SIGN)), "BIGINT")


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _fixed(node: exp.Expr) -> exp.Expr:
    # A node put in place of another is not visited again by `transform`: its children are fixed here.
    return node.copy().transform(_fix)


def _fix(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Tuple) and not isinstance(node.parent, exp.In | exp.Values):
        return exp.Struct(expressions=[_fixed(e) for e in node.expressions])
    if isinstance(node, exp.ArrayDistinct):
        # DuckDB's list_distinct leaves NULL out; Spark's array_distinct keeps one.
        return _fn("ARRAY_COMPACT", exp.ArrayDistinct(this=_fixed(node.this)))
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg):
        return _nonempty(exp.Filter(this=_ordered_list(node.this), expression=_fixed(node.expression)))
    if isinstance(node, exp.ArrayAgg) and not isinstance(node.parent, exp.Filter):
        return _nonempty(_ordered_list(node))
    if isinstance(node, exp.Least | exp.Greatest) and not node.expressions:
        # Spark's least and greatest need two arguments or more.
        return _fixed(node.this)
    if isinstance(node, exp.PercentileCont):
        return _fn("PERCENTILE", _fixed(node.this), _fixed(node.expression))
    if isinstance(node, exp.SimilarTo):
        # SIMILAR TO matches the whole text; RLIKE finds the pattern anywhere in it.
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            anchored = exp.Literal.string(f"^(?:{pattern.this})$")
            return exp.RegexpLike(this=_fixed(node.this), expression=anchored)
        return node
    if isinstance(node, exp.RegexpReplace):
        replacement = node.args.get("replacement")
        if isinstance(replacement, exp.Literal) and replacement.is_string:
            text = replacement.this
            for i in range(9, 0, -1):
                text = text.replace(f"\\{i}", f"${i}")
            node.set("replacement", exp.Literal.string(text))
        return node
    if not isinstance(node, exp.Anonymous):
        return node
    name, args = node.name.lower(), [_fixed(a) for a in node.expressions]
    if name == "json_exists":
        # JSON null counts as absent on Spark; Segment payloads do not send the keys read here as null.
        return exp.Not(this=exp.Is(this=_fn("GET_JSON_OBJECT", *args), expression=exp.Null()))
    if name == "epoch_us":
        return _fn("UNIX_MICROS", *args)
    if name == "to_microseconds":
        seconds = exp.Div(this=exp.cast(args[0], "DECIMAL(38, 6)"), expression=exp.Literal.number(1_000_000))
        zero = exp.Literal.number(0)
        return _fn("MAKE_DT_INTERVAL", zero, zero, zero, seconds)
    if name == "md5_number_lower":
        return spark_key(args[0])
    if name == "hash":
        return _fn("XXHASH64", *args)
    if name == "list_position":
        # Spark answers 0 for a value not in the list, DuckDB NULL.
        return exp.Nullif(this=_fn("ARRAY_POSITION", *args), expression=exp.Literal.number(0))
    if name == "list_sum":
        x = exp.to_identifier("x")
        acc = exp.to_identifier("acc")
        add = exp.Lambda(this=exp.Add(this=exp.column(acc), expression=exp.column(x)), expressions=[acc, x])
        return _fn("AGGREGATE", args[0], exp.cast(exp.Literal.number(0), "DOUBLE"), add)
    if name == "list_aggregate" and len(args) == 3 and args[1].name == "quantile_cont":
        # Only ever used on a list aggregated just before, so it is an aggregate of its elements.
        return _quantile_of_list(args[0], args[2])
    return node


def _nonempty(agg: exp.Expr) -> exp.Expr:
    """DuckDB's list() of no rows is NULL, Spark's collect_list an empty array."""
    size = _fn("SIZE", agg.copy())
    return exp.Case(ifs=[exp.If(this=exp.GT(this=size, expression=exp.Literal.number(0)), true=agg)])


def _ordered_list(node: exp.ArrayAgg) -> exp.Expr:
    """collect_list, in the order of DuckDB's `list(x ORDER BY k, ...)` (ascending keys only)."""
    inner = node.this
    if not isinstance(inner, exp.Order):
        return exp.ArrayAgg(this=_fixed(inner))
    keys = inner.expressions
    if any(k.args.get("desc") for k in keys):
        raise StoreError(
            "a list in descending order (the `top` aggregate) cannot be built on Spark yet", node.sql()
        )
    fields = [exp.alias_(_fixed(k.this), f"_k{i}") for i, k in enumerate(keys)]
    fields.append(exp.alias_(_fixed(inner.this), "_v"))
    e = exp.to_identifier("_e")
    value = exp.Lambda(this=exp.Dot(this=exp.column(e), expression=exp.to_identifier("_v")), expressions=[e])
    collected = exp.ArrayAgg(this=exp.Struct(expressions=fields))
    return _fn("TRANSFORM", _fn("ARRAY_SORT", collected), value)


def _quantile_of_list(values: exp.Expr, p: exp.Expr) -> exp.Expr:
    """`percentile` of a list's elements as a higher-order expression: sort, then interpolate."""
    sql = """CASE WHEN size(__v) = 0 THEN NULL ELSE
        element_at(__v, CAST(floor((size(__v) - 1) * __p) AS INT) + 1)
        + ((size(__v) - 1) * __p - floor((size(__v) - 1) * __p))
          * (element_at(__v, least(CAST(floor((size(__v) - 1) * __p) AS INT) + 2, size(__v)))
             - element_at(__v, CAST(floor((size(__v) - 1) * __p) AS INT) + 1)) END"""
    tree = sqlglot.parse_one(sql, read="spark")
    x = exp.to_identifier("x")
    present = exp.Lambda(
        this=exp.Not(this=exp.Is(this=exp.column(x), expression=exp.Null())), expressions=[x]
    )
    sorted_values = _fn("ARRAY_SORT", _fn("FILTER", values, present))

    def put(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and n.name == "__v":
            return sorted_values.copy()
        if isinstance(n, exp.Column) and n.name == "__p":
            return p.copy()
        return n

    return tree.transform(put)


def to_spark(sql: str) -> str:
    """Spark SQL of one DuckDB statement or query; StoreError naming the SQL when it cannot be read."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise StoreError(f"cannot translate to Spark SQL: {e}", sql) from e
    return tree.transform(_fix).sql(dialect="spark")
