"""Asynchronous (Event) invocations: what SNS, S3, EventBridge and ``InvocationType=Event`` use.

Lambda's asynchronous queue, as AWS documents it:

* A **function error** is retried ``MaximumRetryAttempts`` times (0-2, default 2), about 1 and 2
  minutes apart on AWS; locally after ``retry_delays`` seconds.
* A **throttled** invocation (the function is at its reserved concurrency) goes back to the queue
  and is retried with exponential backoff, from 1 s doubling to at most 5 minutes, until the event
  is older than ``MaximumEventAgeInSeconds`` (60-21,600, default 6 hours). Throttles never use up
  retry attempts. ``time_scale`` multiplies the backoff and the event age (tests use e.g. 0.01).
* An event that runs out of retries (``RetriesExhausted``) or of time (``EventAgeExceeded``) goes to
  the function's ``DestinationConfig.OnFailure`` (SQS queue, SNS topic, Lambda function or
  EventBridge bus) with Lambda's invocation record; a successful one to ``OnSuccess``. Without a
  destination it is logged and kept in :attr:`AsyncInvoker.failures`: never silently dropped.

The settings are read from the function's ``EventInvokeConfig`` (``PutFunctionEventInvokeConfig``,
or ``AWS::Lambda::EventInvokeConfig`` / SAM's ``EventInvokeConfig`` in a template) at each attempt.
Waiting events sit in a time-ordered queue, not in threads, so a throttled function delays nobody else.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localcloud.aws import ACCOUNT_ID, DEFAULT_REGION
from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError

LOG = logging.getLogger(__name__)

# Lambda's defaults for asynchronous invocation (EventInvokeConfig).
DEFAULT_MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600.0
# Throttled events: backoff from 1 s, doubling, to at most 5 minutes (before time_scale).
THROTTLE_BACKOFF_S = (1.0, 300.0)


@dataclass(frozen=True)
class AsyncConfig:
    """A function's asynchronous invocation settings (its EventInvokeConfig, or Lambda's defaults)."""

    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S
    on_success: str | None = None
    on_failure: str | None = None


@dataclass(frozen=True)
class FailedAsyncInvocation:
    """An event whose invocation failed for good (``condition``: RetriesExhausted / EventAgeExceeded)."""

    function: str
    source: str
    event: Any
    result: InvocationResult | None
    reason: str
    condition: str = "RetriesExhausted"
    invoke_count: int = 0
    destination: str | None = None


@dataclass
class _QueuedEvent:
    function: str
    event: Any
    source: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued: float = field(default_factory=time.monotonic)
    # Attempts that ran the function and failed; throttled attempts are counted apart.
    errors: int = 0
    throttles: int = 0
    last_result: InvocationResult | None = None


def moto_async_config(function: str, region: str = DEFAULT_REGION) -> AsyncConfig:
    """The EventInvokeConfig moto keeps for ``function`` (name or ARN), or Lambda's defaults."""
    # Imported here: moto is heavy, and the dispatcher is also used without it in unit tests.
    from moto.awslambda.models import lambda_backends  # noqa: PLC0415

    if function.startswith("arn:"):
        region = function.split(":")[3]
    try:
        fn = lambda_backends[ACCOUNT_ID][region].get_function(function)
    except Exception:  # unknown function: the invocation itself reports it
        return AsyncConfig()
    configs = getattr(fn, "event_invoke_config", None) or []
    if not configs:
        return AsyncConfig()
    config: dict[str, Any] = configs[-1].config
    destinations = config.get("DestinationConfig") or {}
    return AsyncConfig(
        max_retry_attempts=int(config.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS)),
        max_event_age_s=float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)),
        on_success=(destinations.get("OnSuccess") or {}).get("Destination"),
        on_failure=(destinations.get("OnFailure") or {}).get("Destination"),
    )


def invocation_record(
    item: _QueuedEvent, function_arn: str, condition: str, result: InvocationResult | None
) -> dict[str, Any]:
    """Lambda's asynchronous invocation record, as sent to an OnSuccess / OnFailure destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": item.request_id,
            "functionArn": f"{function_arn}:$LATEST" if function_arn.count(":") == 6 else function_arn,
            "condition": condition,
            # UNDOCUMENTED whether throttled attempts count; locally every attempt does.
            "approximateInvokeCount": item.errors + item.throttles + (1 if condition == "Success" else 0),
        },
        "requestPayload": item.event,
    }
    if result is not None:
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            **({"functionError": result.function_error} if result.function_error else {}),
        }
        record["responsePayload"] = result.payload
    return record


DestinationSender = Callable[[str, dict[str, Any]], None]


class AsyncInvoker:
    """Lambda's asynchronous event queue: retries, throttle backoff, event age and destinations.

    ``retry_delays`` are the waits before the retries of a function error (AWS: about 60 and 120 s).
    ``time_scale`` multiplies the throttle backoff and the maximum event age. ``config_lookup``
    gives a function's :class:`AsyncConfig`; ``send_destination(arn, record)`` delivers an invocation
    record to an SQS / SNS / Lambda / EventBridge ARN. Events that fail for good are also kept in
    :attr:`failures` (the newest 1,000).
    """

    def __init__(
        self,
        invoker: Invoker,
        max_workers: int = 8,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        *,
        time_scale: float = 1.0,
        config_lookup: Callable[[str], AsyncConfig] | None = None,
        send_destination: DestinationSender | None = None,
    ) -> None:
        self._invoker = invoker
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lambda-async")
        self._retry_delays = retry_delays
        self._time_scale = time_scale
        self._config_lookup = config_lookup or (lambda function: AsyncConfig())
        self._send_destination = send_destination
        self._pending = 0
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        # (due time, tie-breaker, event): events waiting for their first attempt or a retry.
        self._queue: list[tuple[float, int, _QueuedEvent]] = []
        self._sequence = itertools.count()
        self._scheduler = threading.Thread(target=self._schedule, name="lambda-async-queue", daemon=True)
        self._scheduler.start()
        self.failures: deque[FailedAsyncInvocation] = deque(maxlen=1000)
        self.throttled = 0  # throttled attempts so far (each retried later)

    def invoke_async(self, function: str, event: Any, source: str) -> None:
        """Queue one invocation and return at once."""
        with self._condition:
            if self._stopping.is_set():
                return
            self._pending += 1
            self._push(time.monotonic(), _QueuedEvent(function, event, source))

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Synchronous invocation, passed straight to the runtime."""
        return self._invoker.invoke(function, event)

    @property
    def pending(self) -> int:
        """Invocations queued, waiting for a retry, or running."""
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
        """Drop queued work (the queue is not persisted) and wait for running invocations."""
        with self._condition:
            self._stopping.set()
            self._condition.notify_all()
        self._scheduler.join(timeout=5)
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- the queue -----------------------------------------------------------------------------
    def _push(self, due: float, item: _QueuedEvent) -> None:
        # Called with the condition held.
        heapq.heappush(self._queue, (due, next(self._sequence), item))
        self._condition.notify_all()

    def _requeue(self, due: float, item: _QueuedEvent) -> None:
        with self._condition:
            if self._stopping.is_set():
                self._pending -= 1
                self._condition.notify_all()
                return
            self._push(due, item)

    def _schedule(self) -> None:
        """Hand each event to the worker threads when it is due."""
        with self._condition:
            while not self._stopping.is_set():
                if not self._queue:
                    self._condition.wait()
                    continue
                due = self._queue[0][0]
                now = time.monotonic()
                if due > now:
                    self._condition.wait(due - now)
                    continue
                _, _, item = heapq.heappop(self._queue)
                try:
                    self._executor.submit(self._attempt, item)
                except RuntimeError:  # the executor is shut down
                    self._pending -= 1
                    self._condition.notify_all()

    def _done(self) -> None:
        with self._condition:
            self._pending -= 1
            self._condition.notify_all()

    # -- one attempt ---------------------------------------------------------------------------
    def _attempt(self, item: _QueuedEvent) -> None:
        try:
            again_at = self._try(item)
        except Exception:
            LOG.exception("async invocation of %s from %s failed", item.function, item.source)
            again_at = None
        if again_at is None:
            self._done()
        else:
            self._requeue(again_at, item)

    def _try(self, item: _QueuedEvent) -> float | None:
        """Run one attempt; the time of the next one, or None when the event is finished."""
        config = self._config_lookup(item.function)
        max_age_s = config.max_event_age_s * self._time_scale
        if time.monotonic() - item.enqueued >= max_age_s:
            self._fail(item, config, "EventAgeExceeded", "the event is older than MaximumEventAgeInSeconds")
            return None
        try:
            result = self._invoker.invoke(item.function, item.event)
        except FunctionNotFoundError:
            self._fail(item, config, "RetriesExhausted", "function not found")
            return None
        except TooManyRequestsError:
            # Back to the queue; throttles do not use up retry attempts.
            item.throttles += 1
            with self._condition:
                self.throttled += 1
            initial, ceiling = THROTTLE_BACKOFF_S
            backoff = min(initial * 2.0 ** min(item.throttles - 1, 20), ceiling) * self._time_scale
            # Try once more when the event's age runs out, so it reaches its destination on time.
            return float(min(time.monotonic() + backoff, item.enqueued + max_age_s))
        item.last_result = result
        if result.ok:
            if config.on_success:
                self._deliver(config.on_success, item, "Success", result)
            return None
        item.errors += 1
        if item.errors > config.max_retry_attempts:
            self._fail(item, config, "RetriesExhausted", "function error after retries")
            return None
        delays = self._retry_delays or (0.0,)
        return time.monotonic() + delays[min(item.errors - 1, len(delays) - 1)]

    def _fail(self, item: _QueuedEvent, config: AsyncConfig, condition: str, reason: str) -> None:
        LOG.warning(
            "async invocation of %s from %s failed for good (%s): %s",
            item.function,
            item.source,
            condition,
            reason,
        )
        self.failures.append(
            FailedAsyncInvocation(
                function=item.function,
                source=item.source,
                event=item.event,
                result=item.last_result,
                reason=reason,
                condition=condition,
                invoke_count=item.errors + item.throttles,
                destination=config.on_failure,
            )
        )
        if config.on_failure:
            self._deliver(config.on_failure, item, condition, item.last_result)

    def _deliver(
        self, destination: str, item: _QueuedEvent, condition: str, result: InvocationResult | None
    ) -> None:
        if self._send_destination is None:
            LOG.warning("no destination sender: %s record for %s not delivered", condition, item.function)
            return
        record = invocation_record(item, _function_arn(item.function), condition, result)
        try:
            self._send_destination(destination, record)
        except Exception:
            LOG.exception(
                "delivering the %s record of %s to %s failed", condition, item.function, destination
            )


def _function_arn(function: str, region: str = DEFAULT_REGION) -> str:
    if function.startswith("arn:"):
        return function
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}"


def destination_sender(
    client: Callable[[str], Any], dispatcher: Callable[[], AsyncInvoker | None]
) -> DestinationSender:
    """Deliver invocation records the way Lambda does, by the destination ARN's service."""

    def send(arn: str, record: dict[str, Any]) -> None:
        service = arn.split(":")[2]
        body = json.dumps(record)
        if service == "sqs":
            sqs = client("sqs")
            queue_url = sqs.get_queue_url(
                QueueName=arn.split(":")[5], QueueOwnerAWSAccountId=arn.split(":")[4]
            )
            sqs.send_message(QueueUrl=queue_url["QueueUrl"], MessageBody=body)
        elif service == "sns":
            client("sns").publish(TopicArn=arn, Message=body)
        elif service == "lambda":
            invoker = dispatcher()
            if invoker is not None:
                invoker.invoke_async(arn, record, "lambda:destination")
        elif service == "events":
            condition = record["requestContext"]["condition"]
            detail_type = (
                "Lambda Function Invocation Result - Success"
                if condition == "Success"
                else "Lambda Function Invocation Result - Failure"
            )
            client("events").put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": detail_type,
                        "Detail": body,
                        "EventBusName": arn,
                        "Resources": [record["requestContext"]["functionArn"]],
                    }
                ]
            )
        else:
            raise ValueError(f"unsupported destination {arn}")

    return send
