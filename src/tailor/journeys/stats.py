"""The two-proportion z-test behind lift: is the treated group's conversion rate really higher?"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""


def normal_cdf(z: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class ProportionTest:
    """Treated rate against baseline rate: difference, relative lift, z, two-sided p and a 95% interval."""

    rate: float
    baseline_rate: float
    difference: float
    lift: float | None
    """(rate - baseline) / baseline; None when the baseline rate is 0."""
    z: float | None
    p_value: float | None
    ci_low: float
    """95% interval of the difference in rates (unpooled standard error)."""
    ci_high: float


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """Compares x1 of n1 with x2 of n2 (pooled standard error for z, unpooled for the interval)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need at least one person")
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = diff / se if se > 0 else None
    p_value = 2 * (1 - normal_cdf(abs(z))) if z is not None else None
    se_diff = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return ProportionTest(
        p1,
        p2,
        diff,
        diff / p2 if p2 > 0 else None,
        z,
        p_value,
        diff - Z_95 * se_diff,
        diff + Z_95 * se_diff,
    )
