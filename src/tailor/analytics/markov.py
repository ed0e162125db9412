"""The Markov chain attribution model, with removal effects computed exactly by absorbing-chain algebra.

A journey is a walk from `(start)` through states to one of two absorbing states, `(conversion)` and
`(null)`. In a first-order chain a state is the key of the touch; in a chain of order k it is the
last k keys. Transition probabilities are the observed transition counts, weighted by how many
journeys took each path. With Q the transient-to-transient block and r the probabilities of
stepping into `(conversion)`, the probabilities x of ending in `(conversion)` from each transient
state solve (I - Q) x = r, and the chain's conversion probability is x at `(start)`.

Removing a key sends every walk that reaches a state holding it to `(null)`: those states leave the
system. Its removal effect is 1 - P(conversion without it) / P(conversion), and each key's credit
is its removal effect over the sum of all removal effects, times the conversions (or value).
No walk is simulated: each removal is one sparse LU solve.
"""

from __future__ import annotations

import msgspec
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.journeys import PathTables

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
STATE_SEP = "\x1f"  # joins the keys of a higher-order state; cannot occur in a channel name read from CSV


class MarkovResult(msgspec.Struct):
    """The chain's conversion probability, every key's removal effect and its share of the credit."""

    order: int
    states: int
    conversion_probability: float
    removal_effects: dict[str, float]
    shares: dict[str, float]


def transitions_sql(t: PathTables, order: int) -> str:
    """SQL: (from_state, to_state, journeys) of the chain of the given order over `t`."""
    if order < 1:
        raise AnalyticsError(f"the Markov order must be at least 1, got {order}")
    history = [f"lag(key, {j}) OVER w" for j in range(order - 1, 0, -1)]
    state = f"concat_ws(chr(31), {', '.join([*history, 'key'])})" if history else "key"
    return f"""WITH s AS (
        SELECT path_id, pos, n, {state} AS state FROM {t.touches} WINDOW w AS (PARTITION BY path_id ORDER BY pos)
    ), e AS (
        SELECT s.pos, s.n, s.state, lead(s.state) OVER (PARTITION BY s.path_id ORDER BY s.pos) AS next,
               p.conversions AS c, p.nulls AS z
        FROM s JOIN {t.paths} p ON p.path_id = s.path_id WHERE p.conversions + p.nulls > 0
    )
    SELECT '{START}', state, sum(c + z) FROM e WHERE pos = 1 GROUP BY state
    UNION ALL SELECT state, next, sum(c + z) FROM e WHERE next IS NOT NULL GROUP BY state, next
    UNION ALL SELECT state, '{CONVERSION}', sum(c) FROM e WHERE pos = n AND c > 0 GROUP BY state
    UNION ALL SELECT state, '{NULL}', sum(z) FROM e WHERE pos = n AND z > 0 GROUP BY state"""


def absorption(edges: list[tuple[str, str, float]], removed: set[str] | None = None) -> float:
    """P(conversion) from `(start)` of the chain with these weighted edges, states in `removed` cut."""
    probability, _ = _solve(edges, [removed or set()])
    return probability[0]


def _solve(edges: list[tuple[str, str, float]], removals: list[set[str]]) -> tuple[list[float], list[str]]:
    states = sorted(({a for a, _, _ in edges} | {b for _, b, _ in edges}) - {START, CONVERSION, NULL})
    index = {START: 0, **{s: i + 1 for i, s in enumerate(states)}}
    size = len(index)
    src = np.fromiter((index[a] for a, _, _ in edges), np.int64, len(edges))
    weight = np.fromiter((w for _, _, w in edges), np.float64, len(edges))
    out = np.bincount(src, weights=weight, minlength=size)
    out[out == 0] = 1.0  # a state with no way out never converts; its row stays empty
    into = [b for _, b, _ in edges]
    transient = np.array([b not in (CONVERSION, NULL) for b in into])
    dst = np.fromiter((index.get(b, 0) for b in into), np.int64, len(edges))
    p = weight / out[src]
    q = sp.csr_matrix((p[transient], (src[transient], dst[transient])), shape=(size, size))
    to_conversion = np.array([b == CONVERSION for b in into])
    r = np.bincount(src[to_conversion], weights=p[to_conversion], minlength=size)
    components = [set(s.split(STATE_SEP)) for s in [START, *states]]
    results = []
    for removed in removals:
        keep = np.array([i == 0 or not (components[i] & removed) for i in range(size)])
        idx = np.flatnonzero(keep)
        system = sp.identity(len(idx), format="csc") - q[idx][:, idx].tocsc()
        x = spla.splu(system).solve(r[idx])
        results.append(float(x[0]))
    return results, states


def markov_attribution(t: PathTables, order: int = 1) -> MarkovResult:
    """The Markov model over the journeys in `t`: exact removal effects and credit shares per key."""
    rows = t.cur.execute(transitions_sql(t, order)).fetchall()
    edges = [(str(a), str(b), float(w)) for a, b, w in rows]
    keys = sorted(
        {k for a, b, _ in edges for s in (a, b) for k in s.split(STATE_SEP)} - {START, CONVERSION, NULL}
    )
    if not edges:
        return MarkovResult(order, 0, 0.0, {}, {})
    probabilities, states = _solve(edges, [set(), *({k} for k in keys)])
    base = probabilities[0]
    effects = {k: (1.0 - p / base if base > 0 else 0.0) for k, p in zip(keys, probabilities[1:], strict=True)}
    total = sum(effects.values())
    shares = {k: (e / total if total > 0 else 0.0) for k, e in effects.items()}
    return MarkovResult(order, len(states) + 1, base, effects, shares)
