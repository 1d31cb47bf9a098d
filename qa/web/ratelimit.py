"""Per-client rate limiting: one token bucket per client address, in memory, thread-safe."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`per_minute` requests a minute per client, in bursts of up to `per_minute`.

    Each client has a bucket of `per_minute` tokens that refills continuously; a request takes
    one token. Buckets that have refilled completely carry no information and are dropped, so
    memory stays bounded by the clients seen in the last minute (and by `max_clients`).
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be >= 0")
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the limit is 0 (no limit)."""
        return self.per_minute > 0

    def acquire(self, client: str) -> int:
        """Take a token for `client`: 0 when allowed, else whole seconds to wait (>= 1)."""
        if not self.enabled:
            return 0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _prune(self, now: float) -> None:
        full = [
            c
            for c, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.capacity
        ]
        for c in full:
            del self._buckets[c]
        # Still too many active clients: forget the least recently seen ones (they only gain).
        excess = len(self._buckets) - self.max_clients
        if excess > 0:
            for c, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[:excess]:
                del self._buckets[c]

    def __len__(self) -> int:
        return len(self._buckets)
