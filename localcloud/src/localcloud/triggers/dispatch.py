"""Asynchronous (Event) invocations: what SNS, S3, EventBridge and ``InvocationType=Event`` use."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedAsyncInvocation:
    """An event whose invocation still failed after the retries."""

    function: str
    source: str
    event: Any
    result: InvocationResult | None
    reason: str


class AsyncInvoker:
    """Runs queued invocations on a thread pool with Lambda's async retry policy.

    Lambda retries a failed async invocation twice (after about 1 and 2 minutes); locally the
    delays are ``retry_delays`` seconds. Throttled invocations are retried for up to
    ``throttle_retry_s``. Events that still fail are kept in :attr:`failures` and logged.
    """

    def __init__(
        self,
        invoker: Invoker,
        max_workers: int = 8,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        throttle_retry_s: float = 60.0,
    ) -> None:
        self._invoker = invoker
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lambda-async")
        self._retry_delays = retry_delays
        self._throttle_retry_s = throttle_retry_s
        self._pending = 0
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self.failures: deque[FailedAsyncInvocation] = deque(maxlen=1000)

    def invoke_async(self, function: str, event: Any, source: str) -> None:
        """Queue one invocation and return at once."""
        with self._condition:
            self._pending += 1
        try:
            self._executor.submit(self._run, function, event, source)
        except RuntimeError:  # the executor is shut down
            self._done()

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Synchronous invocation, passed straight to the runtime."""
        return self._invoker.invoke(function, event)

    @property
    def pending(self) -> int:
        """Invocations queued or running."""
        with self._condition:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def stop(self) -> None:
        """Drop queued work and wait for running invocations."""
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _done(self) -> None:
        with self._condition:
            self._pending -= 1
            self._condition.notify_all()

    def _run(self, function: str, event: Any, source: str) -> None:
        try:
            self._run_with_retries(function, event, source)
        except Exception:
            LOG.exception("async invocation of %s from %s failed", function, source)
        finally:
            self._done()

    def _run_with_retries(self, function: str, event: Any, source: str) -> None:
        attempt = 0
        throttled_since: float | None = None
        result: InvocationResult | None = None
        while not self._stopping.is_set():
            try:
                result = self._invoker.invoke(function, event)
            except FunctionNotFoundError:
                self._fail(function, source, event, None, "function not found")
                return
            except TooManyRequestsError:
                throttled_since = throttled_since or time.monotonic()
                if time.monotonic() - throttled_since > self._throttle_retry_s:
                    self._fail(function, source, event, None, "throttled")
                    return
                self._stopping.wait(0.2)
                continue
            if result.ok:
                return
            if attempt >= len(self._retry_delays):
                self._fail(function, source, event, result, "function error after retries")
                return
            self._stopping.wait(self._retry_delays[attempt])
            attempt += 1

    def _fail(
        self, function: str, source: str, event: Any, result: InvocationResult | None, reason: str
    ) -> None:
        LOG.warning("async invocation of %s from %s dropped: %s", function, source, reason)
        self.failures.append(FailedAsyncInvocation(function, source, event, result, reason))
