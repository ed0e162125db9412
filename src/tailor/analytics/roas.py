"""Return on spend per channel and campaign under every attribution model, and where to move budget.

ROAS is attributed conversion value over spend; ROI is (value - spend) / spend. Both use the spend
and the conversions of the same days. The budget suggestion fits, per paid channel, a response
curve value = a * spend^b to its days (least squares on logarithms; b is how fast returns
diminish) and moves budget in small steps from the channel whose next pound returns least
(marginal ROAS b * value / spend) to the one whose next pound returns most, while that gains.
"""

from __future__ import annotations

import math

import duckdb
import msgspec
import numpy as np

from tailor.analytics.attribution import MODELS, Attribution

DEFAULT_EXPONENT = 0.5  # diminishing returns assumed where a channel's days cannot be fitted
MIN_DAYS = 8


class Return(msgspec.Struct):
    """Spend, attributed value, ROAS and ROI of one channel or campaign under one model."""

    spend: float
    value: float
    conversions: float
    roas: float | None
    roi: float | None


class ChannelBudget(msgspec.Struct):
    """A channel's spend now and suggested, with its fitted response and marginal return."""

    channel: str
    spend: float
    suggested: float
    roas: float | None
    exponent: float
    fitted: bool
    marginal_roas: float | None


class Reallocation(msgspec.Struct):
    """A budget suggestion under one model, with the reasoning in sentences."""

    model: str
    channels: list[ChannelBudget]
    expected_gain: float
    reasoning: list[str]


def returns(attribution: Attribution, spend: dict[str, float]) -> dict[str, dict[str, Return]]:
    """Model -> key -> return, for every key that has spend or credit."""
    out: dict[str, dict[str, Return]] = {}
    for model in (m for m in MODELS if m != "shapley_ordered"):
        credits = attribution.models[model]
        rows = {}
        for key in sorted(set(credits) | set(spend)):
            s = spend.get(key, 0.0)
            c = credits.get(key)
            value, conv = (c.value, c.conversions) if c else (0.0, 0.0)
            rows[key] = Return(
                s, value, conv, value / s if s > 0 else None, (value - s) / s if s > 0 else None
            )
        out[model] = rows
    return out


def spend_by(cur: duckdb.DuckDBPyConnection, level: str) -> dict[str, float]:
    """Total spend per channel, or per `channel / campaign`."""
    key = "channel" if level == "channel" else "channel || ' / ' || campaign"
    rows = cur.execute(f"SELECT {key}, sum(cost) FROM analytics_spend GROUP BY 1").fetchall()
    return {str(k): float(v) for k, v in rows}


def _fit(days: list[tuple[float, float]]) -> tuple[float, bool]:
    pts = [(math.log(s), math.log(v)) for s, v in days if s > 0 and v > 0]
    if len(pts) < MIN_DAYS:
        return DEFAULT_EXPONENT, False
    x, y = np.array(pts).T
    if np.std(x) < 1e-6:
        return DEFAULT_EXPONENT, False
    b = float(np.polyfit(x, y, 1)[0])
    return min(max(b, 0.05), 1.0), True  # returns neither fall with spend nor grow faster than it


def reallocate(
    cur: duckdb.DuckDBPyConnection,
    attribution: Attribution,
    model: str = "markov",
    step_share: float = 0.01,
    max_move: float = 0.2,
) -> Reallocation:
    """A budget suggestion for the channels with spend, moving at most `max_move` of the total budget."""
    spend = spend_by(cur, "channel")
    credits = attribution.models[model]
    total_value = attribution.value or 1.0
    # Daily value per channel: the channel's share of the model's credit applied to each day's value.
    daily = cur.execute(
        """SELECT s.channel, s.day, sum(s.cost), any_value(v.value) FROM analytics_spend s
        LEFT JOIN (SELECT CAST(ts AS DATE) AS day, sum(value) AS value FROM an_conversions GROUP BY 1) v
            ON v.day = s.day
        GROUP BY s.channel, s.day"""
    ).fetchall()
    per_day: dict[str, list[tuple[float, float]]] = {}
    for channel, _, cost, value in daily:
        share = credits[channel].value / total_value if channel in credits else 0.0
        per_day.setdefault(str(channel), []).append((float(cost), float(value or 0.0) * share))
    budgets = []
    for channel, s in sorted(spend.items()):
        b, fitted = _fit(per_day.get(channel, []))
        value = credits[channel].value if channel in credits else 0.0
        budgets.append(ChannelBudget(channel, s, s, value / s if s > 0 else None, b, fitted, None))
    funded = [c for c in budgets if c.spend > 0]
    total = sum(c.spend for c in funded)

    def value_at(c: ChannelBudget, s: float) -> float:
        base = credits[c.channel].value if c.channel in credits else 0.0
        return base * (s / c.spend) ** c.exponent if c.spend > 0 and s > 0 else 0.0

    def marginal(c: ChannelBudget, s: float) -> float:
        return c.exponent * value_at(c, s) / s if s > 0 else 0.0

    moved, step = 0.0, total * step_share
    while funded and moved + step <= max_move * total + 1e-9:
        best = max(funded, key=lambda c: marginal(c, c.suggested))
        worst = min(
            (c for c in funded if c.suggested > step), key=lambda c: marginal(c, c.suggested), default=None
        )
        if worst is None or worst is best:
            break
        gain = value_at(best, best.suggested + step) - value_at(best, best.suggested)
        loss = value_at(worst, worst.suggested) - value_at(worst, worst.suggested - step)
        if gain <= loss:
            break
        best.suggested += step
        worst.suggested -= step
        moved += step
    for c in budgets:
        c.marginal_roas = marginal(c, c.spend) if c.spend > 0 else None
    before = sum(value_at(c, c.spend) for c in funded)
    after = sum(value_at(c, c.suggested) for c in funded)
    return Reallocation(
        model, budgets, after - before, _reasoning(budgets, model, moved, total, after - before)
    )


def _reasoning(
    budgets: list[ChannelBudget], model: str, moved: float, total: float, gain: float
) -> list[str]:
    lines = [
        f"Credit from the {model} model; each channel's value is assumed to follow value = a * spend^b, "
        f"b fitted on its days of spend (b = {DEFAULT_EXPONENT} where fewer than {MIN_DAYS} days could be used)."
    ]
    for c in sorted(budgets, key=lambda c: -(c.marginal_roas or 0.0)):
        if c.spend <= 0:
            continue
        how = "fitted" if c.fitted else "assumed"
        lines.append(
            f"{c.channel}: ROAS {c.roas or 0:.2f}, b = {c.exponent:.2f} ({how}), so the next unit of spend "
            f"returns {c.marginal_roas or 0:.2f}; suggested spend {c.suggested:,.0f} (now {c.spend:,.0f})."
        )
    if moved > 0:
        lines.append(
            f"Moving {moved:,.0f} of {total:,.0f} ({moved / total:.0%}) from the lowest to the highest marginal "
            f"return is expected to add {gain:,.0f} in value; it stops where the next step would gain less "
            "than it loses, or at the cap on how much to move at once."
        )
    else:
        lines.append("No move gains value: marginal returns are already as even as the step size allows.")
    return lines
