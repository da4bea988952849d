"""The contract between localcloud's Lambda runtime and everything that invokes functions.

The runtime (``localcloud.runtime``) implements :class:`Invoker`; the event-source-mapping engine
(``localcloud.esm``), the API Gateway front door and the other triggers only depend on this module,
so each can be tested with a small in-process invoker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class InvocationResult:
    """What one synchronous (RequestResponse) invocation returned.

    ``function_error`` is ``None`` on success. Otherwise it is Lambda's ``X-Amz-Function-Error``
    value: ``"Unhandled"`` for a raised exception, a timeout, or a crashed/exited worker.
    ``payload`` is the decoded JSON the handler returned (``None`` for a null/empty response), or,
    on error, Lambda's error object ``{"errorMessage", "errorType", "stackTrace"}``.
    """

    request_id: str
    payload: Any
    function_error: str | None = None
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    # Why the invocation failed, in localcloud's own words ("timeout", "crash", "exception").
    error_kind: str | None = None
    log_tail: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        """True when the function returned normally."""
        return self.function_error is None


class TooManyRequestsError(Exception):
    """The function is at its reserved concurrency (Lambda's TooManyRequestsException / throttle)."""


class FunctionNotFoundError(KeyError):
    """No deployed function has that name or ARN."""


class Invoker(Protocol):
    """Invokes a deployed function synchronously and reports the outcome.

    ``function`` is a function name or ARN. Implementations raise :class:`FunctionNotFoundError`
    for an unknown function and :class:`TooManyRequestsError` when reserved concurrency is
    exhausted; every handler failure is reported in the result, never raised.
    """

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Run the function with ``event`` and wait for the result."""
        ...
