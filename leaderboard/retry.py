"""One retry policy for every AWS call that can fail for a while: exponential backoff, full jitter.

The producer retries PutRecords entries a shard refused; the DynamoDB store retries throttled
calls, unprocessed keys and lost version races. Both wait the same way and stop the same way, so
they share this policy. It lives outside ``leaderboard.domain`` and imports only the standard
library, so both the producer library and the storage adapter can depend on it without either
depending on the other. What counts as retryable stays with each caller: it is about their API.

botocore's own retry modes ("standard", "adaptive") cannot take over: they retry whole calls, not
the failed entries of a partially successful PutRecords, nor a conditional write that lost a race.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed item (a Kinesis record, a DynamoDB write) is retried.

    Delays follow exponential backoff with full jitter: before retry ``n`` (1-based) the caller
    sleeps a uniform random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``. Full jitter
    spreads many writers hitting the same hot shard or partition instead of having them retry in
    lockstep.

    ``max_attempts`` caps the attempts per item, the first one included (``None``: no cap, only the
    deadline bounds retries). ``record_ttl`` is each item's deadline in seconds, counted from when
    it was handed over: an item whose next retry would start after it is given up. Callers that
    bound retries by attempts only (the DynamoDB store) say so where they use the policy.
    """

    base_delay: float = 0.05
    max_delay: float = 2.0
    record_ttl: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot work."""
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0")
        if self.record_ttl <= 0:
            raise ValueError("record_ttl must be > 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 for the first retry).

        ``rng`` makes the jitter reproducible in tests; without one the module's generator is used.
        """
        cap = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return (rng.uniform if rng is not None else random.uniform)(0.0, cap)
