"""Retry policy for PutRecords: which errors are worth retrying, how long to wait, and for how long."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Per-entry codes PutRecords reports in a partial failure. Both are transient by definition.
RETRYABLE_ENTRY_CODES: frozenset[str] = frozenset(
    {"ProvisionedThroughputExceededException", "InternalFailure"}
)

# Whole-call errors that mean "try again later" rather than "this request is wrong".
RETRYABLE_CALL_CODES: frozenset[str] = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed entries are retried.

    Delays follow exponential backoff with full jitter: before retry ``n`` (1-based) the producer
    sleeps a uniform random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``. Full jitter
    spreads many producers hitting the same hot shard instead of having them retry in lockstep.

    ``record_ttl`` is each record's deadline, counted from ``put``: a record whose next retry would
    start after its deadline is returned as failed instead. ``max_attempts`` optionally caps the
    number of PutRecords attempts per record (``None``: only the deadline bounds retries).
    """

    base_delay: float = 0.05
    max_delay: float = 2.0
    record_ttl: float = 30.0
    max_attempts: int | None = None
    retryable_entry_codes: frozenset[str] = field(default=RETRYABLE_ENTRY_CODES)
    retryable_call_codes: frozenset[str] = field(default=RETRYABLE_CALL_CODES)

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0")
        if self.record_ttl <= 0:
            raise ValueError("record_ttl must be > 0")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return rng.uniform(0.0, cap)

    def is_retryable_call_error(self, code: str, http_status: int | None) -> bool:
        """Whether a whole PutRecords call that failed with ``code``/``http_status`` may be retried."""
        return code in self.retryable_call_codes or (http_status is not None and http_status >= 500)
