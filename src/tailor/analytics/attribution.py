"""Multi-touch attribution: the rule-based models and Shapley values as SQL over journeys, plus Markov.

Every model shares the conversions and the conversion value of each converting path among the keys
(channels or campaigns) of its touches. The rule-based models weigh each touch by its position or
age; Shapley values follow Zhao, Mahboobi & Bagheri (2018); the Markov model is in `markov.py`.
"""

from __future__ import annotations

import msgspec

from tailor.analytics.exceptions import AnalyticsError
from tailor.analytics.journeys import PathTables
from tailor.analytics.markov import MarkovResult, markov_attribution
from tailor.process.stage import SqlStep

RULE_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MODELS = (*RULE_MODELS, "markov", "shapley", "shapley_ordered")
"""Every model, in the order they are shown."""


class Credit(msgspec.Struct):
    """What a model credits to one key: a share of the conversions and of their value."""

    conversions: float
    value: float


class Attribution(msgspec.Struct):
    """The credit per key under every model, with the totals shared and the Markov chain's figures."""

    models: dict[str, dict[str, Credit]]
    """Model -> key -> credit; `shapley_ordered` keys are `KEY@POSITION` (the key as the n-th touch)."""
    paths: int
    conversions: float
    value: float
    nulls: float
    markov: MarkovResult


def rule_weights(half_life: float, ends: float) -> dict[str, str]:
    """SQL for each rule-based model's weight of a touch (columns pos, n, age; window over path_id)."""
    if half_life <= 0:
        raise AnalyticsError(f"the time-decay half-life must be positive, got {half_life}")
    if not 0 <= ends <= 0.5:
        raise AnalyticsError(f"the position-based end share must be between 0 and 0.5, got {ends}")
    decay = f"power(0.5, t.age / {half_life!r})"
    return {
        "first_touch": "CASE WHEN t.pos = 1 THEN 1.0 ELSE 0.0 END",
        "last_touch": "CASE WHEN t.pos = t.n THEN 1.0 ELSE 0.0 END",
        "linear": "1.0 / t.n",
        "time_decay": f"{decay} / sum({decay}) OVER (PARTITION BY t.path_id)",
        # U-shaped: `ends` to the first and the last touch each, the rest shared by those between.
        "position_based": f"""CASE WHEN t.n = 1 THEN 1.0 WHEN t.n = 2 THEN 0.5
            WHEN t.pos = 1 OR t.pos = t.n THEN {ends!r} ELSE (1.0 - 2 * {ends!r}) / (t.n - 2) END""",
    }


def rule_step(t: PathTables, half_life: float, ends: float) -> SqlStep:
    """One pass over the touches of converting paths computing every rule-based model per key."""
    weights = rule_weights(half_life, ends)
    columns = ",\n".join(f"{sql} AS {name}" for name, sql in weights.items())
    sums = ", ".join(f"sum({m} * c), sum({m} * v)" for m in RULE_MODELS)
    sql = f"""WITH w AS (
        SELECT t.key, p.conversions AS c, p.value AS v, {columns}
        FROM {t.touches} t JOIN {t.paths} p ON p.path_id = t.path_id
        WHERE p.conversions > 0 OR p.value > 0
    )
    SELECT key, {sums} FROM w GROUP BY key ORDER BY key"""
    return SqlStep(sql, "rule_credit")


def shapley_steps(t: PathTables) -> list[SqlStep]:
    """Shapley values by the simplified formula, and their ordered form per touch position.

    With v(S) = conversions of the paths whose set of keys lies within S, Zhao et al. show the
    Shapley value of key j is the sum over key sets T holding j of R(T) / |T|, R(T) being the
    conversions of the paths whose key set is exactly T: each converting path gives an equal share
    to each distinct key it holds. The ordered form says at which touch the share was earned: a
    key that appears several times in a path splits its share equally among its touches, so the
    ordered values of a key sum to its Shapley value.
    """
    per_key = f"""CREATE OR REPLACE TEMP TABLE _shapley_keys AS
        SELECT k.path_id, k.key, k.touches, count(*) OVER (PARTITION BY k.path_id) AS distinct_keys
        FROM (SELECT path_id, key, count(*) AS touches FROM {t.touches} GROUP BY path_id, key) k"""
    simplified = f"""SELECT k.key, sum(p.conversions / k.distinct_keys), sum(p.value / k.distinct_keys)
        FROM _shapley_keys k JOIN {t.paths} p ON p.path_id = k.path_id
        WHERE p.conversions > 0 OR p.value > 0 GROUP BY k.key ORDER BY k.key"""
    ordered = f"""SELECT t.key, t.pos,
            sum(p.conversions / (k.distinct_keys * k.touches)), sum(p.value / (k.distinct_keys * k.touches))
        FROM {t.touches} t JOIN _shapley_keys k ON k.path_id = t.path_id AND k.key = t.key
        JOIN {t.paths} p ON p.path_id = t.path_id
        WHERE p.conversions > 0 OR p.value > 0 GROUP BY t.key, t.pos ORDER BY t.key, t.pos"""
    return [
        SqlStep(per_key, "_shapley_keys"),
        SqlStep(simplified, "shapley"),
        SqlStep(ordered, "shapley_ordered"),
    ]


def attribute(t: PathTables, half_life: float = 7.0, ends: float = 0.4, markov_order: int = 1) -> Attribution:
    """Runs every model over the journeys in `t`."""
    paths, conversions, value, nulls = t.counts()
    if paths == 0:
        raise AnalyticsError("there are no journeys to attribute")
    models: dict[str, dict[str, Credit]] = {m: {} for m in MODELS}
    for row in t.cur.execute(rule_step(t, half_life, ends).sql).fetchall():
        for i, model in enumerate(RULE_MODELS):
            models[model][row[0]] = Credit(float(row[1 + 2 * i]), float(row[2 + 2 * i]))
    keys_step, simplified, ordered = shapley_steps(t)
    t.cur.execute(keys_step.sql)
    for key, c, v in t.cur.execute(simplified.sql).fetchall():
        models["shapley"][key] = Credit(float(c), float(v))
    for key, pos, c, v in t.cur.execute(ordered.sql).fetchall():
        models["shapley_ordered"][f"{key}@{pos}"] = Credit(float(c), float(v))
    markov = markov_attribution(t, markov_order)
    models["markov"] = {
        key: Credit(share * conversions, share * value) for key, share in markov.shares.items()
    }
    every = sorted({k for m, credits in models.items() if m != "shapley_ordered" for k in credits})
    for model in MODELS[:-1]:
        models[model] = {k: models[model].get(k, Credit(0.0, 0.0)) for k in every}
    return Attribution(models, paths, conversions, value, nulls, markov)


def as_json(result: Attribution) -> dict[str, dict[str, dict[str, float]]]:
    """`{model: {key: {"conversions": x, "value": y}}}`, the shape `tailor attribution --json` prints."""
    return {
        model: {key: {"conversions": c.conversions, "value": c.value} for key, c in credits.items()}
        for model, credits in result.models.items()
    }
