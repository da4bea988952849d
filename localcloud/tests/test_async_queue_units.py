"""The asynchronous queue on its own (a scripted invoker, no cloud): backoff, age, retries, records."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from localcloud.invocation import InvocationResult, TooManyRequestsError
from localcloud.triggers.dispatch import AsyncConfig, AsyncInvoker

pytestmark = pytest.mark.timeout(60)


class ScriptedInvoker:
    """Throttles, fails or succeeds as its script says; remembers when each attempt came."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.attempts: list[float] = []
        self.lock = threading.Lock()

    def invoke(self, function: str, event: Any) -> InvocationResult:
        with self.lock:
            self.attempts.append(time.monotonic())
            step = self.script.pop(0) if self.script else "ok"
        if step == "throttle":
            raise TooManyRequestsError(function)
        if step == "error":
            return InvocationResult(request_id="r", payload={"errorType": "Boom"}, function_error="Unhandled")
        return InvocationResult(request_id="r", payload={"done": True})


def run(
    script: list[str], config: AsyncConfig, time_scale: float = 0.01
) -> tuple[ScriptedInvoker, AsyncInvoker, list[Any]]:
    invoker = ScriptedInvoker(script)
    sent: list[Any] = []
    queue = AsyncInvoker(
        invoker,
        retry_delays=(0.01, 0.01),
        time_scale=time_scale,
        config_lookup=lambda function: config,
        send_destination=lambda arn, record: sent.append((arn, record, time.monotonic())),
    )
    try:
        queue.invoke_async("fn", {"x": 1}, "test")
        assert queue.wait_idle(30)
    finally:
        queue.stop()
    return invoker, queue, sent


def test_throttles_back_off_exponentially_and_do_not_use_up_retries() -> None:
    # Given five throttles then success, with no retries allowed for function errors
    invoker, queue, sent = run(["throttle"] * 5, AsyncConfig(max_retry_attempts=0, on_success="arn:s"))

    # Then the event ran in the end, and the gaps between attempts doubled (10, 20, 40, 80 ms)
    assert len(invoker.attempts) == 6
    gaps = [b - a for a, b in zip(invoker.attempts, invoker.attempts[1:], strict=False)]
    assert gaps[3] >= 0.08 and gaps[4] >= 0.16
    assert [record["requestContext"]["condition"] for _, record, _ in sent] == ["Success"]
    assert queue.throttled == 5 and not queue.failures


def test_a_throttled_event_ages_out_to_the_failure_destination() -> None:
    # Given a function that is always throttled, and a 60 s maximum age (0.6 s here)
    invoker, queue, sent = run(["throttle"] * 10_000, AsyncConfig(max_event_age_s=60, on_failure="arn:f"))

    # Then it is given up as EventAgeExceeded, delivered to OnFailure, and kept in failures
    ((arn, record, sent_at),) = sent
    assert arn == "arn:f"
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestPayload"] == {"x": 1}
    assert sent_at - invoker.attempts[0] >= 0.6 - 0.01  # the first attempt came at once
    assert len(invoker.attempts) >= 5  # retried with backoff meanwhile
    assert [f.condition for f in queue.failures] == ["EventAgeExceeded"]


def test_function_errors_use_the_configured_retry_attempts() -> None:
    # Given a function that fails every time, with MaximumRetryAttempts 1
    invoker, _, sent = run(["error"] * 10, AsyncConfig(max_retry_attempts=1, on_failure="arn:f"))

    # Then it ran twice, then its record went to OnFailure
    assert len(invoker.attempts) == 2
    ((_, record, _),) = sent
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"


def test_a_failure_without_a_destination_is_kept() -> None:
    # Given no destination, when the event fails for good, then it is kept in failures
    _, queue, sent = run(["error"] * 10, AsyncConfig(max_retry_attempts=0))
    assert not sent
    assert len(queue.failures) == 1 and queue.failures[0].condition == "RetriesExhausted"
