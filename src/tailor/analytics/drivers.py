"""Conversion drivers: which behaviours and traits go with converting, by a ridge logistic regression.

Each person's features are measured before their first conversion (all their history if they never
converted), so that the order itself and what follows it do not explain it. Features are
standardised; the L2 penalty is a Gaussian prior on the coefficients, so the posterior is
approximately normal with covariance (X'WX + lambda I)^-1 at the optimum (Laplace), which gives the
intervals. These are associations, not effects: people who search may convert for other reasons.
"""

from __future__ import annotations

import duckdb
import msgspec
import numpy as np
from scipy.stats import norm

from tailor.analytics.exceptions import AnalyticsError

FEATURES: dict[str, str] = {
    "used the app": "count(*) FILTER (WHERE e.type = 'screen') > 0",
    "used the website": "count(*) FILTER (WHERE e.type = 'page') > 0",
    "searched": "count(*) FILTER (WHERE e.name = 'Products Searched') > 0",
    "viewed 3+ products": "count(*) FILTER (WHERE e.name = 'Product Viewed') >= 3",
    "added to wishlist": "count(*) FILTER (WHERE e.name = 'Product Added to Wishlist') > 0",
    "signed up": "count(*) FILTER (WHERE e.name = 'Signed Up') > 0",
    "opened an email": "count(*) FILTER (WHERE e.name = 'Email Opened') > 0",
    "clicked an email": "count(*) FILTER (WHERE e.name = 'Email Link Clicked') > 0",
    "clicked an SMS": "count(*) FILTER (WHERE e.name = 'SMS Link Clicked') > 0",
    "called support": "count(*) FILTER (WHERE e.name = 'Call Completed') > 0",
    "seen on 2+ devices": "count(DISTINCT coalesce(json_extract_string(e.context, '$.device.id'), "
    "json_extract_string(e.context, '$.userAgent'))) >= 2",
    "log(1 + events)": "ln(1 + count(*))",
}
CHANNELS = ("organic_search", "paid_search", "paid_social", "organic_social", "display", "affiliate", "email")


class Driver(msgspec.Struct):
    """One feature: its coefficient per standard deviation, 95% interval, odds ratio and share of people."""

    feature: str
    coefficient: float
    low: float
    high: float
    odds_ratio: float
    z: float
    prevalence: float


class Drivers(msgspec.Struct):
    """The fitted drivers, strongest first, with the data they came from."""

    people: int
    converted: int
    penalty: float
    drivers: list[Driver]


def feature_sql(conversion_event: str) -> str:
    """SQL of one row per person: converted, then each feature as a number."""
    conv = "'" + conversion_event.replace("'", "''") + "'"
    cols = ",\n".join(f'CAST({sql} AS DOUBLE) AS "{name}"' for name, sql in FEATURES.items())
    firsts = ",\n".join(
        f"CAST(coalesce(any_value(f.channel) = '{c}', FALSE) AS DOUBLE) AS \"arrived by {c}\""
        for c in CHANNELS
    )
    return f"""WITH first_order AS (SELECT person, min(ts) AS at FROM an_events WHERE name = {conv} GROUP BY person),
    first_touch AS (SELECT person, arg_min(channel, ts) AS channel FROM an_touches GROUP BY person)
    SELECT e.person, CAST(any_value(o.at) IS NOT NULL AS DOUBLE) AS converted, {cols}, {firsts}
    FROM an_events e LEFT JOIN first_order o ON o.person = e.person LEFT JOIN first_touch f ON f.person = e.person
    WHERE (o.at IS NULL OR e.ts < o.at) AND e.name <> {conv} AND e.source_id NOT LIKE 'import:%'
    GROUP BY e.person"""


def fit_logistic(
    x: np.ndarray, y: np.ndarray, penalty: float, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge logistic regression by Newton's method: coefficients (intercept first) and their covariance."""
    n, k = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    ridge = np.full(k + 1, penalty)
    ridge[0] = 0.0  # the intercept is not shrunk
    beta = np.zeros(k + 1)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-design @ beta))
        w = p * (1 - p)
        gradient = design.T @ (y - p) - ridge * beta
        hessian = (design * w[:, None]).T @ design + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    p = 1 / (1 + np.exp(-design @ beta))
    hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(ridge)
    return beta, np.linalg.inv(hessian)


def conversion_drivers(
    cur: duckdb.DuckDBPyConnection, conversion_event: str, penalty: float = 1.0
) -> Drivers:
    """Fits the drivers on the people of `an_events` (needs `an_touches` too)."""
    result = cur.execute(feature_sql(conversion_event))
    names = [d[0] for d in result.description][2:]
    rows = result.fetchall()
    if len(rows) < 20:
        raise AnalyticsError(f"too few people ({len(rows)}) to look for conversion drivers")
    data = np.array([r[1:] for r in rows], dtype=np.float64)
    y, x = data[:, 0], data[:, 1:]
    if y.min() == y.max():
        raise AnalyticsError("everyone or no one converted: nothing to tell converters apart")
    keep = x.std(axis=0) > 0
    names = [n for n, k in zip(names, keep, strict=True) if k]
    x = x[:, keep]
    prevalence = x.mean(axis=0)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    beta, cov = fit_logistic(z, y, penalty)
    se = np.sqrt(np.diag(cov))[1:]
    q = float(norm.ppf(0.975))
    drivers = [
        Driver(name, float(b), float(b - q * s), float(b + q * s), float(np.exp(b)), float(b / s), float(pv))
        for name, b, s, pv in zip(names, beta[1:], se, prevalence, strict=True)
    ]
    drivers.sort(key=lambda d: -abs(d.z))
    return Drivers(len(rows), int(y.sum()), penalty, drivers)
