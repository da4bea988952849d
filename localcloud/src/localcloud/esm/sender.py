"""Invoking the function for a batch, and reading what its response means (the error taxonomy)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from localcloud.invocation import InvocationResult, Invoker

from .records import StreamRecord


class Verdict(Enum):
    """How an invocation of a batch ended."""

    SUCCESS = "success"
    # The function raised, timed out or crashed: the whole batch failed.
    FUNCTION_ERROR = "function_error"
    # The function returned, but its response marks the whole batch as failed (bad
    # batchItemFailures, a window response without state).
    BATCH_FAILURE = "batch_failure"
    # ReportBatchItemFailures named failed records: records before the lowest one succeeded.
    PARTIAL_FAILURE = "partial_failure"


@dataclass(frozen=True)
class Outcome:
    """The interpreted result of one invocation."""

    verdict: Verdict
    result: InvocationResult
    # Index (in the batch) of the lowest failed record for PARTIAL_FAILURE.
    failed_from: int = 0
    # The state returned by a tumbling-window invocation, when valid.
    state: dict[str, Any] | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every record of the batch succeeded."""
        return self.verdict is Verdict.SUCCESS


class FunctionSender:
    """Invokes one function through the :class:`Invoker` (throttles and internal errors propagate)."""

    def __init__(self, invoker: Invoker, function: str) -> None:
        self.invoker = invoker
        self.function = function

    def send(self, event: dict[str, Any]) -> InvocationResult:
        """Invoke synchronously; raises TooManyRequestsError / FunctionNotFoundError / others."""
        return self.invoker.invoke(self.function, event)


def interpret(
    result: InvocationResult,
    records: Sequence[StreamRecord],
    *,
    report_batch_item_failures: bool,
    windowed: bool,
) -> Outcome:
    """Apply Lambda's response rules to one batch invocation.

    - A function error fails the whole batch.
    - With a tumbling window, the response must be an object with ``state`` (an object or null).
    - With ReportBatchItemFailures: a null, empty-string or empty-list response, a missing/null/empty
      ``batchItemFailures`` is success; any other non-object response, a non-list
      ``batchItemFailures``, or an entry whose ``itemIdentifier`` is missing, empty, null, under
      another key or not a sequence number of the batch fails the whole batch; otherwise records
      before the lowest named one succeeded.
    - Without ReportBatchItemFailures the payload is ignored.
    """
    if not result.ok:
        return Outcome(Verdict.FUNCTION_ERROR, result, reason=str(result.error_kind or result.function_error))
    payload = result.payload
    if isinstance(payload, str | bytes) and windowed:
        # A handler may return JSON text; Lambda parses the response body.
        with contextlib.suppress(ValueError):
            payload = json.loads(payload)
    state: dict[str, Any] | None = None
    if windowed:
        if not isinstance(payload, dict) or "state" not in payload:
            return Outcome(Verdict.BATCH_FAILURE, result, reason="window response without state")
        raw_state = payload["state"]
        if raw_state is None:
            raw_state = {}
        if not isinstance(raw_state, dict):
            return Outcome(Verdict.BATCH_FAILURE, result, reason="window state is not an object")
        state = raw_state
    # Recorded on AWS: an empty string and an empty list count as success like a null response.
    if not report_batch_item_failures or payload is None or payload in ("", []):
        return Outcome(Verdict.SUCCESS, result, state=state)
    if not isinstance(payload, dict):
        return Outcome(Verdict.BATCH_FAILURE, result, state=state, reason="response is not an object")
    failures = payload.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(Verdict.SUCCESS, result, state=state)
    if not isinstance(failures, list):
        return Outcome(Verdict.BATCH_FAILURE, result, state=state, reason="batchItemFailures is not a list")
    index_of = {r.sequence_number: i for i, r in enumerate(records)}
    lowest: int | None = None
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in index_of:
            return Outcome(
                Verdict.BATCH_FAILURE, result, state=state, reason=f"bad itemIdentifier in {item!r}"
            )
        position = index_of[identifier]
        lowest = position if lowest is None else min(lowest, position)
    assert lowest is not None
    return Outcome(Verdict.PARTIAL_FAILURE, result, failed_from=lowest, state=state, reason="partial failure")
