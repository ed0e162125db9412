"""Compiling computed traits (and the event conditions of segments) into one SQL evaluation.

All traits of a set of people are evaluated by one query: one pass over their rows of
`profile_facts` computes every aggregate (`count(*) FILTER (WHERE ...)`), a few grouped
sub-queries compute what needs a second level (most frequent values, maps by a field), and
expressions are inlined over those columns. Beside each value stands the SQL of the next moment it
may change with no new event (a window sliding past its oldest event, a `days_since` ticking over),
so the scheduler looks again at a person exactly then, and at nobody else.

The query reads `_pf_f` (the facts of the people evaluated, with their person number `pn`), `_pf_p`
(those people: `profile_id` and `pn`) and `profile_traits` (the golden record); see
`tailor.profiles.stage`. The passes group and join by the number, a 4-byte integer numbered for
each evaluation, rather than by the 21-character profile id: at 1M people the passes and their
join took 6.6-8.1 s against 6.8-8.2 s by the id (three alternating runs, medians 6.9 and 7.3 s).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tailor.profiles.comparisons import _literal
from tailor.profiles.definitions import Aggregate, EventSelector, TraitDefinition
from tailor.profiles.durations import interval_sql
from tailor.profiles.exceptions import Problem
from tailor.profiles.expressions import Compiled, compile_expression, parse_expression
from tailor.profiles.fields import FieldPath


def quote(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def field_kind(path: FieldPath) -> str:
    """How a comparison treats a fact column: a list, a timestamp, or text."""
    if path.is_list:
        return "list"
    return "timestamp" if path.root == "timestamp" else "text"


def selector_sql(select: EventSelector, now: str, kinds: bool = True) -> str:
    """SQL true for the facts a selector picks (leaving out its event names and types if not `kinds`)."""
    conds: list[str] = []
    if select.events and kinds:
        conds.append(f"event IN ({', '.join(_literal(e) for e in select.events)})")
    if select.types and kinds:
        conds.append(f"type IN ({', '.join(_literal(t) for t in select.types)})")
    for f in select.where:
        conds.append(f.comparison.sql(quote(f.field.column), field_kind(f.field), now))
    if select.within is not None:
        conds.append(f"ts > {now} - {interval_sql(select.within)}")
    return " AND ".join(conds) or "TRUE"


@dataclass
class Evaluation:
    """The pieces of the evaluation query for a set of traits and hidden aggregates."""

    now: str
    split: bool = True
    """Many passes, one per kind of event (for everyone); one pass for the few people of a batch, where
    the cost is in the number of statements, not in the rows."""
    fields: dict[str, FieldPath] = field(default_factory=dict)
    """Fact columns the definitions read, by column name."""
    passes: dict[str, list[str]] = field(default_factory=dict)
    """Select items of the passes over `_pf_f` grouped by person, by the events each pass reads: an
    aggregate of orders is computed over the orders only (`sql AS "alias"`)."""
    subqueries: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    """Second-level aggregations several traits share (distinct values and their number), by what they do."""
    """Second-level aggregations, by alias: each a query of (pn, "alias"[, "nc_alias"])."""
    golden: set[str] = field(default_factory=set)
    values: dict[str, Compiled] = field(default_factory=dict)
    """Each trait's SQL over the row of its layer, and when it may change."""
    depth: dict[str, int] = field(default_factory=dict)
    """The layer of each expression and quantile trait (aggregates are layer 0, over the joined passes)."""
    quantiles: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Quantile traits, with the trait each scores and its number of buckets."""
    problems: list[Problem] = field(default_factory=list)

    def aggregate(self, alias: str, agg: Aggregate) -> Compiled:
        """Adds an aggregate under `alias`; returns the SQL of its value and change time."""
        for path in [agg.of, agg.by, *(f.field for f in agg.select.where)]:
            if path is not None and not path.builtin:
                self.fields[path.column] = path
        window = agg.select.within
        fn = agg.function
        col = quote(agg.of.column) if agg.of is not None else "NULL"
        is_list = agg.of is not None and agg.of.is_list
        if agg.by is not None or fn in ("most_frequent", "top"):
            return self._grouped(alias, agg, selector_sql(agg.select, self.now))
        if self.split and fn in ("distinct", "distinct_count"):
            return self._distinct(agg, selector_sql(agg.select, self.now))
        # Aggregates of the same kinds of event share a pass over just those events; aggregates that
        # keep per-person sets (distinct values, percentiles) get passes of their own, as they make
        # DuckDB aggregate a whole pass more slowly.
        heavy = fn in ("distinct", "distinct_count", "percentile")
        prefilter = _prefilter(agg.select) if self.split else "TRUE"
        cond = selector_sql(agg.select, self.now, kinds=not self.split)
        key = f"{prefilter} /* {'sets' if heavy and self.split else 'plain'} */"
        items = self.passes.setdefault(key, [])
        t = f"a{list(self.passes).index(key)}"
        a = f"{t}.{quote(alias)}"
        changes: tuple[str, ...] = ()
        if window is not None:
            items.append(f"min(ts) FILTER (WHERE {cond}) + {interval_sql(window)} AS {quote('nc_' + alias)}")
            changes = (f"{t}.{quote('nc_' + alias)}",)
        number = _number(col, is_list)
        exact = _number(col, is_list, EXACT)
        present = f"{cond} AND {col} IS NOT NULL"
        if fn == "count":
            sql, out = f"count(*) FILTER (WHERE {cond})", f"coalesce({a}, 0)"
        elif fn == "sum":
            summed = f"sum(list_sum({exact}))" if is_list else f"sum({exact})"
            sql, out = f"CAST({summed} FILTER (WHERE {cond}) AS DOUBLE)", f"coalesce({a}, 0)"
        elif fn == "avg":
            if is_list:
                avg = f"CAST(sum(list_sum({exact})) AS DOUBLE) / sum(array_length({col}))"
            else:
                avg = f"CAST(sum({exact}) AS DOUBLE) / count({exact})"
            sql, out = f"{avg} FILTER (WHERE {present})", a
        elif fn in ("min", "max"):
            if agg.of is not None and agg.of.root == "timestamp":
                value = "ts"
            elif agg.as_type == "text":
                value = f"list_{fn}({col})" if is_list else col
            else:
                value = f"list_{fn}({number})" if is_list else number
            sql, out = f"{fn}({value}) FILTER (WHERE {present})", a
        elif fn == "percentile":
            if is_list:
                values = f"flatten(list({number}) FILTER (WHERE {present}))"
                sql = f"list_aggregate({values}, 'quantile_cont', {agg.p})"
            else:
                sql = f"quantile_cont({number}, {agg.p}) FILTER (WHERE {present})"
            out = a
        elif fn in ("first", "last"):
            pick = "arg_min" if fn == "first" else "arg_max"
            sql, out = f"{pick}({col}, (ts, seq)) FILTER (WHERE {present})", _as(a, agg.as_type)
        elif fn in ("first_at", "last_at"):
            sql, out = f"{'min' if fn == 'first_at' else 'max'}(ts) FILTER (WHERE {cond})", a
        elif fn == "distinct_count":
            inner = f"flatten(list({col}) FILTER (WHERE {present}))" if is_list else None
            sql = (
                f"array_length(list_distinct({inner}))"
                if inner
                else f"count(DISTINCT {col}) FILTER (WHERE {cond})"
            )
            out = f"coalesce({a}, 0)"
        elif fn == "distinct":
            values = (
                f"flatten(list({col}) FILTER (WHERE {present}))"
                if is_list
                else f"list({col}) FILTER (WHERE {present})"
            )
            sql, out = f"list_sort(list_distinct({values}))", a
        else:
            raise AssertionError(fn)
        items.append(f"{sql} AS {quote(alias)}")
        return Compiled(out, changes)

    def _grouped(self, alias: str, agg: Aggregate, cond: str) -> Compiled:
        """Aggregates over (person, value) first: most frequent values, maps by a field."""
        assert agg.of is not None or agg.by is not None
        nc = quote("nc_" + alias)
        window = agg.select.within
        change = f"min(t0) + {interval_sql(window)}" if window is not None else "NULL::TIMESTAMPTZ"
        if agg.by is not None:
            # Keys are unique per person, so sorting the entries sorts them by key; list_sort of
            # the list measured 1.5x faster than an ordered aggregate (10M facts, 1M people).
            inner_agg = self._inner(agg)
            by = quote(agg.by.column)
            query = f"""SELECT pn,
                map_from_entries(list_sort(list(struct_pack(k := b, v := v)))) AS {quote(alias)},
                {change} AS {nc}
            FROM (SELECT pn, {by} AS b, {inner_agg} AS v, min(ts) AS t0 FROM _pf_f
                  WHERE {cond} AND {by} IS NOT NULL GROUP BY pn, b)
            GROUP BY pn"""
        else:
            assert agg.of is not None
            col = quote(agg.of.column)
            value = f"unnest({col})" if agg.of.is_list else col
            pick = (
                "arg_max(v, (c, t, v))"
                if agg.function == "most_frequent"
                else f"list(v ORDER BY c DESC, t DESC, v)[1:{agg.n}]"
            )
            query = f"""SELECT pn, {pick} AS {quote(alias)}, {change} AS {nc}
            FROM (SELECT pn, v, count(*) AS c, max(ts) AS t, min(ts) AS t0
                  FROM (SELECT pn, ts, {value} AS v FROM _pf_f WHERE {cond})
                  WHERE v IS NOT NULL GROUP BY pn, v)
            GROUP BY pn"""
        self.subqueries[alias] = query
        ref = f"{quote('s_' + alias)}.{quote(alias)}"
        changes = (f"{quote('s_' + alias)}.{nc}",) if window is not None else ()
        out = _as(ref, agg.as_type) if agg.function == "most_frequent" else ref
        return Compiled(out, changes)

    def _distinct(self, agg: Aggregate, cond: str) -> Compiled:
        """A field's distinct values and their number, once per field and selection, over (person, value)."""
        assert agg.of is not None
        col = quote(agg.of.column)
        key = f"distinct {col} WHERE {cond}"
        name = self.shared.setdefault(key, f"d{len(self.shared)}")
        window = agg.select.within
        if name not in self.subqueries:
            value = f"unnest({col})" if agg.of.is_list else col
            change = f"min(t0) + {interval_sql(window)}" if window is not None else "NULL::TIMESTAMPTZ"
            self.subqueries[name] = f"""SELECT pn, list(v ORDER BY v) AS vals, count(*) AS n,
                   {change} AS nc
            FROM (SELECT pn, v, min(ts) AS t0
                  FROM (SELECT pn, ts, {value} AS v FROM _pf_f WHERE {cond})
                  WHERE v IS NOT NULL GROUP BY pn, v)
            GROUP BY pn"""
        t = quote("s_" + name)
        changes = (f"{t}.nc",) if window is not None else ()
        if agg.function == "distinct":
            return Compiled(f"{t}.vals", changes)
        return Compiled(f"coalesce({t}.n, 0)", changes)

    def _inner(self, agg: Aggregate) -> str:
        col = quote(agg.of.column) if agg.of is not None else "NULL"
        number = _number(col, agg.of is not None and agg.of.is_list)
        exact = _number(col, agg.of is not None and agg.of.is_list, EXACT)
        return {
            "count": "count(*)",
            "sum": f"CAST(coalesce(sum({exact}), 0) AS DOUBLE)",
            "avg": f"CAST(sum({exact}) AS DOUBLE) / count({exact})",
            "min": f"min({number})",
            "max": f"max({number})",
            "first_at": "min(ts)",
            "last_at": "max(ts)",
        }[agg.function]

    def from_clause(self) -> str:
        """The joined rows the trait SQL reads: people, their aggregates, sub-aggregates, golden traits."""
        joins = ["_pf_p p"]
        joins += [f"LEFT JOIN _pf_a{i} a{i} USING (pn)" for i in range(len(self.passes))]
        joins += [
            f"LEFT JOIN _pf_s_{i} {quote('s_' + alias)} USING (pn)" for i, alias in enumerate(self.subqueries)
        ]
        if self.golden:
            joins.append("LEFT JOIN _pf_g g USING (pn)")
        return "\n".join(joins)

    def steps_sql(self, golden_from: str = "profile_traits") -> list[tuple[str, str]]:
        """(output table, SQL) of the temp tables `from_clause` joins, in order.

        `golden_from` is where the people's golden traits are read: `profile_traits`, or the
        evaluation's own `_pf_golden` when it has just chosen them for these people (at 1M
        people, a micro-batch's pivot read 69 ms scanning `profile_traits`).
        """
        out = []
        for i, (prefilter, aggregates) in enumerate(self.passes.items()):
            items = ", ".join(["pn", *aggregates])
            out.append((f"_pf_a{i}", f"SELECT {items} FROM _pf_f WHERE {prefilter} GROUP BY pn"))
        out += [(f"_pf_s_{i}", q) for i, q in enumerate(self.subqueries.values())]
        if self.golden:
            pivots = ", ".join(
                f"max(text) FILTER (WHERE trait = {_literal(g)}) AS {quote('g_' + g)}"
                for g in sorted(self.golden)
            )
            out.append(
                (
                    "_pf_g",
                    f"""SELECT p.pn, p.profile_id, {pivots}
                    FROM {golden_from} t JOIN _pf_p p ON p.profile_id = t.profile_id
                    WHERE t.trait IN ({", ".join(_literal(g) for g in sorted(self.golden))})
                    GROUP BY p.pn, p.profile_id""",
                )
            )
        return out


def _prefilter(select: EventSelector) -> str:
    """The part of a selector that picks whole kinds of event: aggregates sharing it share a pass."""
    conds = []
    if select.events:
        conds.append(f"event IN ({', '.join(_literal(e) for e in sorted(select.events))})")
    if select.types:
        conds.append(f"type IN ({', '.join(_literal(t) for t in sorted(select.types))})")
    return " AND ".join(conds) or "TRUE"


EXACT = "DECIMAL(38, 8)"
"""The type sums are taken in: floating-point sums depend on the order of the rows (a rebuild and a
micro-batch add them up differently), decimal ones do not."""


def _number(col: str, is_list: bool, as_type: str = "DOUBLE") -> str:
    if is_list:
        return f"list_transform({col}, lambda x: TRY_CAST(x AS {as_type}))"
    return f"TRY_CAST({col} AS {as_type})"


def _as(sql: str, as_type: str | None) -> str:
    types = {"number": "DOUBLE", "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
    return f"TRY_CAST({sql} AS {types[as_type]})" if as_type in types else sql


def compile_traits(
    definitions: Iterable[TraitDefinition], now: str, evaluation: Evaluation | None = None, split: bool = True
) -> Evaluation:
    """An evaluation of every trait in terms of the others; problems (unknown names, cycles) are recorded.

    Expressions name other traits by their column in the layer below (an expression one layer above
    the deepest trait it reads), so a trait used by many others is computed once.
    """
    ev = evaluation or Evaluation(now, split)
    by_name = {d.name: d for d in definitions}
    parsed = {}
    for d in by_name.values():
        if d.expression is not None:
            expression, problems = parse_expression(d.expression)
            ev.problems += [Problem(f"{d.name}.expression", p) for p in problems]
            if expression is not None:
                parsed[d.name] = expression
    visiting: list[str] = []
    reads: list[list[str]] = []

    def column(name: str) -> Compiled:
        """A trait as the layers above it read it: its column, and its next change's column."""
        if reads:
            reads[-1].append(name)
        own = value(name)
        return Compiled(quote(name), (quote("_nc_" + name),) if own.changes else ())

    def value(name: str) -> Compiled:
        if name in ev.values:
            return ev.values[name]
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            ev.problems.append(
                Problem(f"{visiting[-1]}.expression", f"traits refer to each other in a cycle: {cycle}")
            )
            return Compiled("NULL")
        d = by_name.get(name)
        if d is None:
            where = f"{visiting[-1]}.expression" if visiting else name
            known = ", ".join(sorted(by_name)) or "none yet"
            ev.problems.append(Problem(where, f"no computed trait {name!r} (computed traits: {known})"))
            return Compiled("NULL")
        visiting.append(name)
        reads.append([])
        try:
            if d.aggregate is not None:
                result = ev.aggregate(name, d.aggregate)
            elif d.quantile is not None:
                result = _quantile(ev, name, d, column)
            elif name in parsed:
                expression = parsed[name]
                ev.golden |= expression.golden
                result = compile_expression(expression, column, lambda g: quote("g_" + g), now)
            else:
                result = Compiled("NULL")
        finally:
            visiting.pop()
            read = reads.pop()
        if d.aggregate is None:
            ev.depth[name] = 1 + max((ev.depth.get(r, 0) for r in read), default=0)
        ev.values[name] = result
        return result

    for name in by_name:
        value(name)
    return ev


def thresholds_sql(trait: str) -> str:
    """SQL of the thresholds of a quantile trait (a list of numbers, NULL before they are first taken)."""
    return f"(SELECT thresholds FROM trait_quantiles WHERE trait = {_literal(trait)})"


def _quantile(ev: Evaluation, name: str, d: TraitDefinition, column: object) -> Compiled:
    assert d.quantile is not None
    assert callable(column)
    q = d.quantile
    scored: Compiled = column(q.of)
    ev.quantiles[name] = (q.of, q.buckets)
    v = f"TRY_CAST({scored.sql} AS DOUBLE)"
    thresholds = thresholds_sql(name)
    below = f"array_length(list_filter({thresholds}, lambda t: t < {v}))"
    score = f"{q.buckets} - {below}" if q.descending else f"1 + {below}"
    return Compiled(
        f"CASE WHEN {v} IS NULL OR {thresholds} IS NULL THEN NULL ELSE {score} END", scored.changes
    )
