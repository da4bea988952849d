"""Which PutRecords errors are worth retrying. How long to wait, and for how long, is the shared
:class:`~leaderboard.retry.RetryPolicy` (re-exported here as the producer's ``RetryPolicy``)."""

from __future__ import annotations

from leaderboard.retry import RetryPolicy

__all__ = ["RETRYABLE_CALL_CODES", "RETRYABLE_ENTRY_CODES", "RetryPolicy", "is_retryable_call_error"]

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


def is_retryable_call_error(code: str, http_status: int | None) -> bool:
    """Whether a whole PutRecords call that failed with ``code``/``http_status`` may be retried."""
    return code in RETRYABLE_CALL_CODES or (http_status is not None and http_status >= 500)
