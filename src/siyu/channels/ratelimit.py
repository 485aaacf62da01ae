"""Token buckets that keep each provider account within its rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``. :meth:`take` waits until the tokens
    are there, so n messages over t seconds never exceed ``burst + rate * t``."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate must be above zero")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens (more than ``burst`` is fine: the debt is waited out). Returns the
        seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


_BUCKETS: dict[tuple[str, float], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket_for(account_id: str, rate: float) -> TokenBucket:
    """The process's bucket for an account (a new one when its rate changes)."""
    with _BUCKETS_LOCK:
        key = (account_id, rate)
        if key not in _BUCKETS:
            _BUCKETS[key] = TokenBucket(rate)
        return _BUCKETS[key]
