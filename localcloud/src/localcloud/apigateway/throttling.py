"""Stage and route throttling with token buckets, as API Gateway applies ``ThrottlingRateLimit`` /
``ThrottlingBurstLimit`` (REST ``MethodSettings``, HTTP API ``DefaultRouteSettings`` / ``RouteSettings``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from localcloud.apigateway.model import Stage, ThrottleLimit

Clock = Callable[[], float]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; each request takes one."""

    def __init__(self, limit: ThrottleLimit, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a token; False when the bucket is empty (the request is throttled)."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._updated = now
            self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class StageThrottles:
    """The buckets of one API's stages: a route's own limit when it has one, else the stage's."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, stage: Stage, method: str, resource_path: str, route_key: str) -> bool:
        """Whether a request to this route may pass now."""
        limit_key, limit = _limit_for(stage, method, resource_path, route_key)
        if limit is None:
            return True
        key = (stage.name, limit_key)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(limit, self._clock)
        return bucket.take()


def _limit_for(
    stage: Stage, method: str, resource_path: str, route_key: str
) -> tuple[str, ThrottleLimit | None]:
    for key in (route_key, f"{method} {resource_path}", f"* {resource_path}"):
        limit = stage.route_throttles.get(key)
        if limit is not None:
            return key, limit
    return "*", stage.default_throttle
