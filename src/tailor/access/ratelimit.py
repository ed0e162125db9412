"""Token-bucket rate limits, kept in memory per key (a write key, an admin token, a session)."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """Each key may take `burst` requests at once and `rate` per second on average."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> int | None:
        """Takes one request from the key's bucket; None if allowed, else seconds to wait (Retry-After)."""
        if self.rate <= 0:
            return None
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, t)
                return None
            self._buckets[key] = (tokens, t)
            if len(self._buckets) > 100_000:  # keys of revoked credentials would pile up
                self._buckets.clear()
            return max(1, math.ceil((1.0 - tokens) / self.rate))
