"""Fast scalar random draws for the per-event simulation."""

from __future__ import annotations

import math
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_BLOCK = 1 << 14


def cumulative(weights: Sequence[float]) -> list[float]:
    """Normalised cumulative weights, for `Dice.index`."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must have a positive sum")
    cum = [w / total for w in accumulate(weights)]
    cum[-1] = 1.0
    return cum


class Dice:
    """A stream of uniform numbers drawn from a numpy generator in blocks.

    A numpy scalar call costs about a microsecond; the simulation makes several draws per event,
    so draws come from a pre-filled Python list instead.
    """

    __slots__ = ("_buf", "_i", "_n", "rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._buf: list[float] = []
        self._i = 0
        self._n = 0

    def u(self) -> float:
        """A uniform number in [0, 1)."""
        i = self._i
        if i == self._n:
            self._refill()
            i = 0
        self._i = i + 1
        return self._buf[i]

    def _refill(self) -> None:
        self._buf = self.rng.random(_BLOCK).tolist()
        self._n = _BLOCK
        self._i = 0

    def take(self, n: int) -> list[float]:
        """n uniform numbers in [0, 1) at once."""
        if self._i + n > self._n:
            self._refill()
        i = self._i
        self._i = i + n
        return self._buf[i : i + n]

    def chance(self, p: float) -> bool:
        """True with probability p."""
        return self.u() < p

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return int(self.u() * n)

    def between(self, lo: int, hi: int) -> int:
        """A uniform integer in [lo, hi]."""
        return lo + int(self.u() * (hi - lo + 1))

    def pick(self, seq: Sequence[T]) -> T:
        """A uniform element of a non-empty sequence."""
        return seq[int(self.u() * len(seq))]

    def index(self, cum: Sequence[float]) -> int:
        """An index drawn with the probabilities behind cumulative weights `cum` (which end in 1.0)."""
        i = self._i
        if i == self._n:
            self._refill()
            i = 0
        self._i = i + 1
        return bisect_right(cum, self._buf[i])

    def expo(self, mean: float) -> float:
        """An exponential draw with the given mean."""
        return -mean * math.log(1.0 - self.u())

    def geometric(self, mean: float) -> int:
        """A count >= 1 with the given mean (geometric distribution)."""
        if mean <= 1.0:
            return 1
        return 1 + int(math.log(1.0 - self.u()) / math.log(1.0 - 1.0 / mean))

    def poisson(self, lam: float) -> int:
        """A Poisson count (Knuth's method; the rates used here are small)."""
        limit = math.exp(-lam)
        k = 0
        p = self.u()
        while p > limit:
            k += 1
            p *= self.u()
        return k

    def uuid(self, upper: bool = False) -> str:
        """A random version-4 UUID string."""
        text = str(uuid.UUID(bytes=self.rng.bytes(16), version=4))
        return text.upper() if upper else text

    def hex(self, n: int) -> str:
        """A random lowercase hex string of n characters."""
        return self.rng.bytes((n + 1) // 2).hex()[:n]
